#!/usr/bin/env node
// `npm run conformance:upstream`: the upstream-side suite. Starts the malformed
// upstream, then each proxy (tidegate, nginx, HAProxy from the bench's peer
// definitions, 2 workers each, forwarding every path to it), runs every vector through
// it and prints the verdicts side by side. `--target PORT --upstream-port UPORT` runs
// against a proxy you started yourself instead.
import { writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyPeer } from '../../peers/haproxy.js';
import { nginxPeer } from '../../peers/nginx.js';
import type { PeerDefinition } from '../../peers/peer.js';
import { tidegatePeer, type TidegateContext } from '../../peers/tidegate.js';
import { killAllNow, stopAll } from '../../processes.js';
import { RESPONSE_VECTORS } from './responses.js';
import { runResponseSuite, startMalformedUpstream, type ResponseResult } from './suite.js';

const USAGE = `usage: npm run conformance:upstream -- [--peers tidegate,nginx,haproxy] [--only a,b] [--md FILE] [--json FILE]`;

const PEERS: readonly { def: PeerDefinition; title: string; run: string }[] = [
  { def: tidegatePeer, title: 'tidegate', run: 'tg' },
  { def: nginxPeer, title: 'nginx', run: 'ng' },
  { def: haproxyPeer, title: 'HAProxy', run: 'hp' },
];

export function markdown(columns: readonly { name: string; results: readonly ResponseResult[] }[]): string {
  const first = columns[0]?.results ?? [];
  const lines = [`| vector | RFC | expected | ${columns.map((c) => c.name).join(' | ')} |`, `|---|---|---|${columns.map(() => '---|').join('')}`];
  first.forEach((r, i) => {
    lines.push(`| \`${r.vector.id}\` ${r.vector.name} | ${r.vector.rfc} | ${r.vector.expected} | ${columns.map((c) => { const x = c.results[i]!; return `${x.pass ? '✓' : '✗'} ${x.verdict}`; }).join(' | ')} |`);
  });
  lines.push(`| **passed** | | | ${columns.map((c) => `**${c.results.filter((r) => r.pass).length}/${c.results.length}**`).join(' | ')} |`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let peers: string[] = [];
  let only: string[] = [];
  let md: string | undefined;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => argv[++i] ?? (() => { throw new Error(`${a} needs a value`); })();
    if (a === '--peers') peers = v().split(',').filter(Boolean);
    else if (a === '--only') only = v().split(',').filter(Boolean);
    else if (a === '--md') md = v();
    else if (a === '--json') json = v();
    else if (a === '--help' || a === '-h') return void process.stdout.write(USAGE + '\n');
    else throw new Error(`unknown flag ${a}\n${USAGE}`);
  }
  const vectors = only.length === 0 ? RESPONSE_VECTORS : RESPONSE_VECTORS.filter((x) => only.some((s) => x.id.includes(s)));
  process.once('exit', killAllNow);
  const upstream = await startMalformedUpstream();
  const work = mkdtempSync(join(tmpdir(), 'tidegate-upstream-conformance-'));
  const columns: { name: string; results: ResponseResult[] }[] = [];
  const versions: string[] = [];
  try {
    for (const p of PEERS.filter((x) => peers.length === 0 || peers.includes(x.def.name))) {
      const avail = await p.def.available();
      if (!avail.ok) {
        process.stderr.write(`${p.title}: skipped (${avail.reason})\n`);
        continue;
      }
      versions.push(`${p.title} ${avail.version}`);
      const ctx: TidegateContext = { upstreamPort: upstream.port, workers: 2, cpus: undefined, workDir: join(work, p.def.name) };
      const peer = await p.def.start(ctx);
      try {
        const results = await runResponseSuite({ proxyPort: peer.port, upstream, run: p.run, vectors });
        process.stderr.write(`${p.title}: ${results.filter((r) => r.pass).length}/${results.length} passed\n`);
        columns.push({ name: p.title, results });
      } finally {
        await peer.stop();
      }
    }
  } finally {
    await upstream.close();
    await stopAll();
  }
  const doc = `Versions: ${versions.join('; ')}. Each proxy runs 2 workers on 127.0.0.1 with one route to the malformed upstream.\n\n${markdown(columns)}\n`;
  process.stdout.write(doc);
  if (md) writeFileSync(md, doc);
  if (json) writeFileSync(json, JSON.stringify(columns.map((c) => ({ name: c.name, results: c.results.map((r) => ({ id: r.vector.id, expected: r.vector.expected, verdict: r.verdict, pass: r.pass, detail: r.detail })) })), null, 2) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`conformance:upstream: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
