// `npm run conformance -- --compare`: tidegate, nginx and HAProxy, each started from its
// own temp prefix by the bench's peer definitions (2 workers each, one route / one
// proxy_pass / one backend to the recording upstream), run the whole suite one after
// another; one Markdown table puts their verdicts side by side.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haproxyPeer } from '../peers/haproxy.js';
import { nginxPeer } from '../peers/nginx.js';
import type { PeerDefinition } from '../peers/peer.js';
import { tidegatePeer, type TidegateContext } from '../peers/tidegate.js';
import { killAllNow, stopAll } from '../processes.js';
import { startRecordingUpstream } from './recording-upstream.js';
import { jsonReport, legendMarkdown, markdownTable, summary, type Column } from './report.js';
import { runSuite, type VectorResult } from './suite.js';
import { TAG_PATTERN, type Vector } from './vectors.js';

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

// Why tidegate closed without an answer, told apart by its own access log (every
// request the handler saw has an entry; status 0 = the connection ended unanswered).
export const UWS_SILENT_MARK = ' ¹';
export const UWS_CLOSED_MARK = ' ²';
export const UWS_NOTES = [
  '¹ uWS 20.30 refuses these bytes in its own parser: tidegate\'s handler is never called, so it cannot answer 400; uWS writes nothing and closes (at once, or on its fixed ≈ 10 s idle timer). Nothing is forwarded.',
  '² tidegate\'s handler saw the head (its access log has the request, status 0), but uWS closed the connection before tidegate\'s answer, written on the next turn of the event loop, went out: uWS refuses the framing itself right after the handler returns (an invalid Content-Length, chunk size or chunk extension), or it parsed bytes pipelined behind the head while the request was unanswered. Nothing behind the head is forwarded.',
];

// Access log on for every request, flushed often, so each vector's tag can be looked up.
const TIDEGATE_OBSERVABILITY = { observability: { accessLog: { sampleRate: 1, maxPerInterval: 10_000 }, snapshotInterval: '200ms' } };

/** tag → statuses of the access-log entries whose path carries it */
function handlerSaw(logFile: string): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  if (!existsSync(logFile)) return seen;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"access"')) continue;
    try {
      const e = JSON.parse(line) as { log?: string; path?: string; status?: number };
      if (e.log !== 'access' || typeof e.path !== 'string') continue;
      for (const tag of e.path.match(TAG_PATTERN) ?? []) seen.set(tag, [...(seen.get(tag) ?? []), e.status ?? 0]);
    } catch {
      /* a partial line */
    }
  }
  return seen;
}

function tidegateMark(saw: Map<string, number[]>): (r: VectorResult) => string {
  return (r) => {
    if (r.verdict !== 'closed') return '';
    return saw.has(r.tag) ? UWS_CLOSED_MARK : UWS_SILENT_MARK;
  };
}

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
      const workDir = join(work, p.def.name);
      const ctx: TidegateContext = { upstreamPort: upstream.port, workers: 2, cpus: undefined, workDir, extraConfig: p.def === tidegatePeer ? TIDEGATE_OBSERVABILITY : undefined };
      const peer = await p.def.start(ctx);
      let results: VectorResult[];
      try {
        const started = Date.now();
        results = await runSuite({ host: '127.0.0.1', port: peer.port, upstream, run: p.run, vectors: o.vectors, concurrency: o.concurrency, closeBoundMs: o.closeBoundMs });
        log(`${p.title}: ${summary(results)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } finally {
        await peer.stop();
      }
      if (p.def === tidegatePeer) {
        const saw = handlerSaw(join(workDir, 'tidegate.log'));
        columns.push({ name: p.title, results, mark: tidegateMark(saw) });
        json.push({ ...(jsonReport(p.title, results) as object), handlerSaw: Object.fromEntries(results.map((r) => [r.vector.id, saw.get(r.tag) ?? null])) });
      } else {
        columns.push({ name: p.title, results });
        json.push(jsonReport(p.title, results));
      }
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
    ...UWS_NOTES.flatMap((n) => [n, '']),
    legendMarkdown(),
    '',
  ].join('\n');
  process.stdout.write(doc);
  if (o.md) writeFileSync(o.md, doc);
  if (o.json) writeFileSync(o.json, JSON.stringify({ versions, targets: json }, null, 2) + '\n');
}
