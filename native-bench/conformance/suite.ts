// Runs vectors against one proxy: a few at a time (each on its own connection, each
// tagged), then judges every one from its probe and the upstream's records. Running
// concurrently keeps the suite short although a silent reject may take the server's
// whole idle timeout to close.
import { probe, type ProbeResult } from './probe.js';
import type { RecordingUpstream, UpstreamRequest } from './recording-upstream.js';
import { judge, passes, type Judgement } from './verdict.js';
import { tagFor, VECTORS, type Vector } from './vectors.js';

export interface SuiteOptions {
  readonly host: string;
  readonly port: number;
  readonly upstream: RecordingUpstream;
  /** two lower-case letters that make this run's tags unique */
  readonly run?: string;
  readonly vectors?: readonly Vector[];
  readonly concurrency?: number;
  readonly closeBoundMs?: number;
  readonly settleMs?: number;
  readonly onResult?: (r: VectorResult) => void;
}

export interface VectorResult extends Judgement {
  readonly vector: Vector;
  readonly tag: string;
  readonly pass: boolean;
  readonly probe: ProbeResult;
  /** what the upstream recorded under this vector's tag */
  readonly seen: readonly UpstreamRequest[];
}

// uWS closes what its parser refuses only on its idle timer (compile-time 10 s, swept
// every few seconds by uSockets): measured closes land 8–12 s after the write, so 16 s
// bounds it with room for a loaded host.
export const DEFAULT_CLOSE_BOUND_MS = 16_000;
export const DEFAULT_CONCURRENCY = 16;

export async function runSuite(o: SuiteOptions): Promise<VectorResult[]> {
  const run = o.run ?? 'aa';
  const vectors = o.vectors ?? VECTORS;
  const closeBoundMs = o.closeBoundMs ?? DEFAULT_CLOSE_BOUND_MS;
  const settleMs = o.settleMs ?? 400;
  const tags = new Map(vectors.map((v) => [v, tagFor(run, VECTORS.indexOf(v) >= 0 ? VECTORS.indexOf(v) : vectors.indexOf(v))]));
  const probes = new Map<Vector, ProbeResult>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < vectors.length) {
      const v = vectors[next++]!;
      const parts = v.parts(tags.get(v)!);
      probes.set(v, await probe({ host: o.host, port: o.port, parts, halfClose: v.halfClose ?? false, waitForClose: v.mustClose ?? false, expectResponses: v.requests(tags.get(v)!).length, closeBoundMs, settleMs }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? DEFAULT_CONCURRENCY, vectors.length) }, worker));
  // A smuggled request can reach the upstream after its connection was judged: give the
  // proxy a moment to forward anything still in flight before reading the records.
  await new Promise((r) => setTimeout(r, settleMs));
  return vectors.map((v) => {
    const tag = tags.get(v)!;
    const p = probes.get(v)!;
    const seen = o.upstream.requests.filter((r) => r.tags.includes(tag));
    const j = judge(
      v,
      tag,
      p,
      seen,
      o.upstream.errors.filter((e) => e.tags.includes(tag)),
    );
    const result: VectorResult = { ...j, vector: v, tag, probe: p, seen, pass: passes(v.expected, j) };
    o.onResult?.(result);
    return result;
  });
}
