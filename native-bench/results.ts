// The shape of results.json: every raw number of a run, plus what it ran on.
import type { SizeName } from './bodies.js';
import type { OpenLoopResult } from './load/h2load.js';
import type { WrkResult } from './load/wrk.js';
import type { CpuPlan, Machine } from './machine.js';
import type { Options } from './options.js';
import type { Spread } from './stats.js';
import type { Verification } from './verify.js';

export type PeerState = 'ok' | 'pending' | 'unavailable' | 'failed';

export interface PeerStatus {
  name: string;
  description: string;
  version: string;
  state: PeerState;
  reason?: string;
  verification: Partial<Record<SizeName, Verification>>;
}

export interface ClosedRun {
  wrk: WrkResult;
  /** CPU seconds (user+system) of the proxy's process tree during the run */
  cpuSeconds: number | null;
  cpuMsPer1k: number | null;
  rssBytes: number | null;
  /** per-worker requests served during the run (tidegate only) */
  workerRequests?: number[];
}

export interface ClosedPoint {
  peer: string;
  size: SizeName;
  mode: 'keepalive' | 'close';
  workers: number;
  runs: ClosedRun[];
  rps: Spread;
  cpuMsPer1k: Spread;
  rssMiB: number | null;
  errors: number;
  non2xx: number;
  p99Us: Spread;
}

export interface OpenPoint {
  peer: string;
  size: SizeName;
  ratePct: number;
  targetRps: number;
  runs: OpenLoopResult[];
  p50Us: Spread;
  p90Us: Spread;
  p99Us: Spread;
  p999Us: Spread;
  maxUs: Spread;
  achievedRps: Spread;
  fellBehind: boolean;
  errors: number;
}

export interface ProfileSummary {
  durationS: number;
  workerThreads: number;
  /** top self-time functions over all worker threads */
  top: { fn: string; where: string; selfMs: number; pct: number }[];
  /** self time by area (uWS, undici, tidegate src, node internals, GC, idle …) */
  byArea: { area: string; selfMs: number; pct: number }[];
  /** native leaf functions with the nearest JS frame that called them */
  nativeCallers: { what: string; selfMs: number; pct: number }[];
  files: string[];
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  /** 1/5/15-minute load average when the run ended (the start is in machine) */
  loadAverageAtEnd: number[];
  command: string;
  options: Options;
  machine: Machine;
  cpuPlan: CpuPlan;
  upstream: { workers: number; cpus: string | undefined };
  /** which tidegate build ran, and the commit of the checkout that build is in */
  tidegate: { cli: string; commit: string };
  peers: PeerStatus[];
  throughput: ClosedPoint[];
  latency: OpenPoint[];
  /** the base of the open-loop rates: the lowest peer's keep-alive max (direct excluded) */
  latencyBase: { peer: string; rps: number } | null;
  sweep: ClosedPoint[];
  profile: ProfileSummary | null;
}
