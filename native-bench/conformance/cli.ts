#!/usr/bin/env node
// `npm run conformance -- --target 127.0.0.1:PORT --upstream 127.0.0.1:UPORT`: starts the
// recording upstream on UPORT, sends every vector to the proxy on PORT (which must
// forward to UPORT), prints the verdicts. `--compare` runs tidegate, nginx and HAProxy
// side by side instead (compare.ts).
import { writeFileSync } from 'node:fs';
import { runCompare } from './compare.js';
import { startRecordingUpstream } from './recording-upstream.js';
import { jsonReport, markdownTable, summary, textTable } from './report.js';
import { DEFAULT_CLOSE_BOUND_MS, DEFAULT_CONCURRENCY, runSuite } from './suite.js';
import { VECTORS, type Vector } from './vectors.js';

const USAGE = `usage:
  npm run conformance -- --target HOST:PORT --upstream HOST:UPORT [options]
  npm run conformance -- --compare [options]

  --target HOST:PORT    the proxy under test (it must forward every path to --upstream)
  --upstream HOST:PORT  where the suite's recording upstream listens
  --compare             start tidegate (dist/src/cli.js), nginx and HAProxy on loopback
                        and run the suite against each (needs scripts/install-bench-deps.sh)
  --peers a,b           with --compare: only these of tidegate,nginx,haproxy
  --only a,b            run only vectors whose id contains one of these
  --json FILE           write every result, with the exact bytes sent
  --md FILE             write the Markdown table
  --concurrency N       vectors in flight at once (default ${DEFAULT_CONCURRENCY})
  --close-bound MS      how long a server may take to close (default ${DEFAULT_CLOSE_BOUND_MS})
  --list                print the vectors and exit`;

export interface CliOptions {
  target?: { host: string; port: number };
  upstream?: { host: string; port: number };
  compare: boolean;
  only: string[];
  peers: string[];
  json?: string;
  md?: string;
  concurrency: number;
  closeBoundMs: number;
  list: boolean;
}

function hostPort(flag: string, v: string | undefined): { host: string; port: number } {
  const m = /^([^:]+):(\d{1,5})$/.exec(v ?? '');
  if (!m) throw new Error(`${flag} expects HOST:PORT, got ${JSON.stringify(v)}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { compare: false, only: [], peers: [], concurrency: DEFAULT_CONCURRENCY, closeBoundMs: DEFAULT_CLOSE_BOUND_MS, list: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--target':
        o.target = hostPort(a, value());
        break;
      case '--upstream':
        o.upstream = hostPort(a, value());
        break;
      case '--compare':
        o.compare = true;
        break;
      case '--only':
        o.only = value().split(',').filter(Boolean);
        break;
      case '--peers':
        o.peers = value().split(',').filter(Boolean);
        break;
      case '--json':
        o.json = value();
        break;
      case '--md':
        o.md = value();
        break;
      case '--concurrency':
        o.concurrency = Math.max(1, Number(value()));
        break;
      case '--close-bound':
        o.closeBoundMs = Math.max(1000, Number(value()));
        break;
      case '--list':
        o.list = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
      default:
        throw new Error(`unknown flag ${a}\n${USAGE}`);
    }
  }
  return o;
}

export function selectVectors(only: readonly string[]): Vector[] {
  const vs = only.length === 0 ? [...VECTORS] : VECTORS.filter((v) => only.some((s) => v.id.includes(s)));
  if (vs.length === 0) throw new Error(`--only ${only.join(',')} matches no vector`);
  return vs;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const vectors = selectVectors(o.only);
  if (o.list) {
    for (const v of vectors) process.stdout.write(`${v.id.padEnd(32)} ${v.category.padEnd(18)} ${v.expected.padEnd(8)} ${v.rfc}\n`);
    return;
  }
  if (o.compare) {
    await runCompare({ vectors, peers: o.peers, md: o.md, json: o.json, concurrency: o.concurrency, closeBoundMs: o.closeBoundMs });
    return;
  }
  if (!o.target || !o.upstream) throw new Error(`--target and --upstream are required\n${USAGE}`);
  const upstream = await startRecordingUpstream(o.upstream.host, o.upstream.port);
  try {
    const started = Date.now();
    const results = await runSuite({ host: o.target.host, port: o.target.port, upstream, vectors, concurrency: o.concurrency, closeBoundMs: o.closeBoundMs });
    process.stdout.write(textTable(results) + '\n\n' + summary(results) + ` (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    const name = `${o.target.host}:${o.target.port}`;
    if (o.json) writeFileSync(o.json, JSON.stringify(jsonReport(name, results), null, 2) + '\n');
    if (o.md) writeFileSync(o.md, markdownTable([{ name, results }]) + '\n');
  } finally {
    await upstream.close();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`conformance: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
