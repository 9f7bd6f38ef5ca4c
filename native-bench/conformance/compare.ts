// `npm run conformance -- --compare`: tidegate, nginx and HAProxy, each started from its
// own temp prefix by the bench's peer definitions (2 workers each, one route / one
// proxy_pass / one backend to the recording upstream), run the whole suite one after
// another; one Markdown table puts their verdicts side by side.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyPeer } from '../peers/haproxy.js';
import { nginxPeer } from '../peers/nginx.js';
import type { PeerDefinition } from '../peers/peer.js';
import { tidegatePeer } from '../peers/tidegate.js';
import { killAllNow, stopAll } from '../processes.js';
import { startRecordingUpstream } from './recording-upstream.js';
import { jsonReport, legendMarkdown, markdownTable, summary, type Column } from './report.js';
import { runSuite, type VectorResult } from './suite.js';
import type { Vector } from './vectors.js';

export interface CompareOptions {
  readonly vectors: readonly Vector[];
  /** peer names (tidegate, nginx, haproxy); empty = all */
  readonly peers: readonly string[];
  readonly md: string | undefined;
  readonly json: string | undefined;
  readonly concurrency: number;
  readonly closeBoundMs: number;
}

const PEERS: readonly { def: PeerDefinition; title: string; run: string }[] = [
  { def: tidegatePeer, title: 'tidegate', run: 'tg' },
  { def: nginxPeer, title: 'nginx', run: 'ng' },
  { def: haproxyPeer, title: 'HAProxy', run: 'hp' },
];

// What tidegate cannot turn into a 400: uWS 20.30's parser refuses these bytes before
// any handler runs and closes without writing (at once, or on its ≈ 10 s idle timer).
export const UWS_SILENT_MARK = ' ¹';
export const UWS_SILENT_NOTE =
  '¹ uWS 20.30 refuses these bytes in its own parser: tidegate\'s handler is never called, so it cannot answer 400; uWS writes nothing and closes (at once, or on its fixed ≈ 10 s idle timer). Nothing is forwarded.';

function log(msg: string): void {
  process.stderr.write(`[conformance ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export async function runCompare(o: CompareOptions): Promise<void> {
  process.once('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void stopAll().finally(() => process.exit(130));
    });
  }
  const work = mkdtempSync(join(tmpdir(), 'tidegate-conformance-'));
  const upstream = await startRecordingUpstream();
  const columns: Column[] = [];
  const versions: string[] = [];
  const json: unknown[] = [];
  try {
    const chosen = PEERS.filter((p) => o.peers.length === 0 || o.peers.includes(p.def.name));
    if (chosen.length === 0) throw new Error(`--peers ${o.peers.join(',')}: choose from ${PEERS.map((p) => p.def.name).join(', ')}`);
    for (const p of chosen) {
      const avail = await p.def.available();
      if (!avail.ok) throw new Error(`${p.title}: ${avail.reason}`);
      versions.push(`${p.title} ${avail.version}`);
      log(`starting ${p.title} (${avail.version})`);
      const peer = await p.def.start({ upstreamPort: upstream.port, workers: 2, cpus: undefined, workDir: join(work, p.def.name) });
      let results: VectorResult[];
      try {
        const started = Date.now();
        results = await runSuite({ host: '127.0.0.1', port: peer.port, upstream, run: p.run, vectors: o.vectors, concurrency: o.concurrency, closeBoundMs: o.closeBoundMs });
        log(`${p.title}: ${summary(results)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } finally {
        await peer.stop();
      }
      columns.push({ name: p.title, results, ...(p.def === tidegatePeer ? { mark: (r: VectorResult) => (r.verdict === 'closed' ? UWS_SILENT_MARK : '') } : {}) });
      json.push(jsonReport(p.title, results));
    }
  } finally {
    await upstream.close();
    await stopAll();
  }
  const doc = [
    `Versions: ${versions.join('; ')}. Each proxy runs 2 workers on 127.0.0.1 and forwards every path to the suite's recording upstream.`,
    '',
    markdownTable(columns),
    '',
    UWS_SILENT_NOTE,
    '',
    legendMarkdown(),
    '',
  ].join('\n');
  process.stdout.write(doc);
  if (o.md) writeFileSync(o.md, doc);
  if (o.json) writeFileSync(o.json, JSON.stringify({ versions, targets: json }, null, 2) + '\n');
}
