// Where tidegate's time goes under load: run it with --cpu-prof (through NODE_OPTIONS,
// which worker threads inherit, so each thread writes its own .cpuprofile), drive it
// with wrk, stop it, and sum self time per function over the worker threads.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { wrk } from './load/wrk.js';
import type { CpuPlan } from './machine.js';
import type { Options } from './options.js';
import { tidegatePeer, type TidegateContext } from './peers/tidegate.js';
import type { ProfileSummary } from './results.js';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function areaOf(fn: string, url: string): string {
  if (fn === '(idle)') return 'idle (event loop waiting)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'native (uWS C++, V8, libuv; no JS frame)';
  if (url.includes('node_modules/undici')) return 'undici';
  if (url.includes('uWebSockets') || url.includes('uws')) return 'uWS JS glue';
  if (url.includes('/dist/src/')) return 'tidegate (dist/src)';
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('node_modules/')) return 'other node_modules';
  if (!url) return 'native builtins (no url)';
  return 'other';
}

/** self time per (function, location) over the given profiles */
export function summariseProfiles(files: string[], topN = 25): Omit<ProfileSummary, 'files' | 'workerThreads'> & { totalMs: number } {
  const self = new Map<string, { fn: string; where: string; ms: number; area: string }>();
  // Native leaves (writeLatin1String, writev …) say little alone: charge them also to
  // the nearest JS caller, so the report can say which code path pays the syscall.
  const nativeCallers = new Map<string, number>();
  let totalMs = 0;
  let durationS = 0;
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
    durationS = Math.max(durationS, (p.endTime - p.startTime) / 1e6);
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    for (let i = 0; i < p.samples.length; i++) {
      const n = byId.get(p.samples[i]!);
      if (!n) continue;
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      const fn = n.callFrame.functionName || '(anonymous)';
      const url = n.callFrame.url;
      const where = url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : '';
      const key = `${fn}@${where}`;
      const e = self.get(key) ?? { fn, where, ms: 0, area: areaOf(fn, url) };
      e.ms += ms;
      self.set(key, e);
      totalMs += ms;
      if (!url && !fn.startsWith('(')) {
        let id = parent.get(n.id);
        while (id !== undefined && !byId.get(id)!.callFrame.url) id = parent.get(id);
        const c = id !== undefined ? byId.get(id)!.callFrame : undefined;
        const ck = `${fn} ← ${c ? `${c.functionName || '(anonymous)'} ${c.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${c.lineNumber + 1}` : '?'}`;
        nativeCallers.set(ck, (nativeCallers.get(ck) ?? 0) + ms);
      }
    }
  }
  const entries = [...self.values()].sort((a, b) => b.ms - a.ms);
  const areas = new Map<string, number>();
  for (const e of entries) areas.set(e.area, (areas.get(e.area) ?? 0) + e.ms);
  return {
    durationS,
    totalMs,
    top: entries.slice(0, topN).map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.ms), pct: (100 * e.ms) / totalMs })),
    byArea: [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([area, ms]) => ({ area, selfMs: Math.round(ms), pct: (100 * ms) / totalMs })),
    nativeCallers: [...nativeCallers.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([what, ms]) => ({ what, selfMs: Math.round(ms), pct: (100 * ms) / totalMs })),
  };
}

/** Node names profiles CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile; thread 0 is the main thread. */
export function workerProfileFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .filter((f) => {
      const parts = f.split('.');
      return parts.length >= 6 && parts[parts.length - 3] !== '0';
    })
    .map((f) => join(dir, f));
}

export async function profileTidegate(o: { upstreamPort: number; workers: number; plan: CpuPlan; opts: Options; dir: string; workDir: string }): Promise<ProfileSummary> {
  mkdirSync(o.dir, { recursive: true });
  const ctx: TidegateContext = { upstreamPort: o.upstreamPort, workers: o.workers, cpus: o.plan.proxy, workDir: o.workDir, profileDir: o.dir };
  const peer = await tidegatePeer.start(ctx);
  try {
    const base = { port: peer.port, path: `/${o.opts.mainSize}`, threads: o.plan.loadCores, connections: o.opts.connections, close: false, cpus: o.plan.load };
    await wrk({ ...base, durationS: Math.max(1, o.opts.warmupS) });
    await wrk({ ...base, durationS: Math.max(5, o.opts.durationS) });
  } finally {
    await peer.stop();
  }
  const files = workerProfileFiles(o.dir);
  const s = summariseProfiles(files);
  return { durationS: s.durationS, workerThreads: files.length, top: s.top, byArea: s.byArea, nativeCallers: s.nativeCallers, files: files.map((f) => f.slice(o.dir.length + 1)) };
}
