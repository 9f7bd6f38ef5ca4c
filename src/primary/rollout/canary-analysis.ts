// One canary check: the canary side against the stable side over the same interval,
// from the workers' per-side counters and HDR latency histograms. Pure functions.
//
// Errors: the canary fails when its error rate (5xx answers, the gateway's own 502/503/
// 504 for that side included) exceeds the stable side's by more than maxErrorRate.
// The point estimate is compared, as Kayenta and Argo's analysis do; minRequests per
// side is what keeps it from judging a handful of requests.
//
// Latency: a one-sided Mann-Whitney U test (is a canary request's latency stochastically
// larger than a stable one's?) with the normal approximation, tie correction and
// continuity correction, computed straight from HDR bucket counts. Why this test:
// latency distributions are skewed and often multi-modal, so a t-test's normality
// assumption fails and a single p99 from a few hundred samples has a wide confidence
// interval; U uses every sample's rank, needs no distribution, and HDR buckets give the
// ranks exactly up to bucket width (3 significant digits: values within 0.1 % tie, which
// the tie correction accounts for). The normal approximation is good once both sides
// have ≥ 20 samples; minRequests is at least 10 per side and defaults to 100. A check
// fails on latency only when the difference is significant (p < 0.01) AND large: the
// canary's median over the stable median above maxLatencyRatio. Significance alone would
// fail a canary that is 1 % slower on a big sample; a ratio alone would fail on noise.
import { round } from '../../controllers/decision.js';

export const LATENCY_ALPHA = 0.01;

/** One side's interval: counts per status class (CODE_CLASSES order) and sparse HDR buckets (index → count). */
export interface SideWindow {
  readonly counts: readonly number[];
  readonly buckets: ReadonlyMap<number, number>;
}

export interface AnalysisConfig {
  readonly minRequests: number;
  readonly maxErrorRate: number;
  readonly maxLatencyRatio: number;
}

export interface SideNumbers {
  readonly requests: number;
  readonly errors: number;
  readonly errorRate: number;
  /** from the histogram; null when it holds nothing */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

export interface LatencyTest {
  readonly test: 'mann-whitney-u';
  readonly u: number;
  readonly z: number;
  /** one-sided: the chance of a U this large if the canary were not slower */
  readonly pValue: number;
  readonly medianRatio: number | null;
  readonly significant: boolean;
}

export interface CheckNumbers {
  readonly verdict: 'pass' | 'fail' | 'inconclusive';
  readonly reasons: string[];
  readonly stable: SideNumbers;
  readonly canary: SideNumbers;
  /** canary error rate minus stable error rate */
  readonly errorRateDiff: number;
  readonly latency: LatencyTest | null;
}

const FIVE_XX = 5;

export function analyse(stable: SideWindow, canary: SideWindow, cfg: AnalysisConfig, valueUs: (index: number) => number): CheckNumbers {
  const s = sideNumbers(stable, valueUs);
  const c = sideNumbers(canary, valueUs);
  const errorRateDiff = round(c.errorRate - s.errorRate, 4);
  const reasons: string[] = [];
  if (s.requests < cfg.minRequests || c.requests < cfg.minRequests) {
    reasons.push(`too little traffic: stable ${s.requests}, canary ${c.requests} requests; ${cfg.minRequests} each needed`);
    return { verdict: 'inconclusive', reasons, stable: s, canary: c, errorRateDiff, latency: null };
  }
  if (c.errorRate - s.errorRate > cfg.maxErrorRate) reasons.push(`error rate ${pct(c.errorRate)} vs stable ${pct(s.errorRate)}: ${pct(c.errorRate - s.errorRate)} over, ${pct(cfg.maxErrorRate)} allowed`);
  let latency: LatencyTest | null = null;
  if (stable.buckets.size > 0 && canary.buckets.size > 0) {
    const t = mannWhitneyU(canary.buckets, stable.buckets);
    const medianRatio = s.p50Ms !== null && c.p50Ms !== null && s.p50Ms > 0 ? round(c.p50Ms / s.p50Ms, 3) : null;
    latency = { test: 'mann-whitney-u', u: t.u, z: round(t.z, 3), pValue: roundP(t.p), medianRatio, significant: t.p < LATENCY_ALPHA };
    if (latency.significant && medianRatio !== null && medianRatio > cfg.maxLatencyRatio) reasons.push(`median latency ${c.p50Ms} ms vs stable ${s.p50Ms} ms: ratio ${medianRatio} over ${cfg.maxLatencyRatio} (Mann-Whitney p = ${latency.pValue})`);
  }
  return { verdict: reasons.length > 0 ? 'fail' : 'pass', reasons, stable: s, canary: c, errorRateDiff, latency };
}

function sideNumbers(w: SideWindow, valueUs: (index: number) => number): SideNumbers {
  let requests = 0;
  for (const n of w.counts) requests += n;
  const errors = w.counts[FIVE_XX] ?? 0;
  const sorted = [...w.buckets.entries()].sort((a, b) => a[0] - b[0]);
  return { requests, errors, errorRate: requests > 0 ? round(errors / requests, 4) : 0, p50Ms: quantileMs(sorted, 0.5, valueUs), p99Ms: quantileMs(sorted, 0.99, valueUs) };
}

function quantileMs(sorted: readonly [number, number][], q: number, valueUs: (index: number) => number): number | null {
  let total = 0;
  for (const [, n] of sorted) total += n;
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [idx, n] of sorted) {
    seen += n;
    if (seen >= rank) return round(valueUs(idx) / 1000, 3);
  }
  return null;
}

/**
 * U of sample A against sample B from bucket counts (a bucket is a tie group), and the
 * one-sided p-value that A is stochastically larger, by the normal approximation with
 * tie and continuity correction.
 */
export function mannWhitneyU(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): { u: number; z: number; p: number; n1: number; n2: number } {
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y);
  let n1 = 0;
  let n2 = 0;
  for (const v of a.values()) n1 += v;
  for (const v of b.values()) n2 += v;
  let u = 0;
  let bBelow = 0;
  let ties = 0;
  for (const k of keys) {
    const ca = a.get(k) ?? 0;
    const cb = b.get(k) ?? 0;
    // each A value beats every B value below it and half of those it ties with
    u += ca * (bBelow + cb / 2);
    bBelow += cb;
    const t = ca + cb;
    ties += t * t * t - t;
  }
  const n = n1 + n2;
  const mean = (n1 * n2) / 2;
  const variance = n > 1 ? ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1))) : 0;
  if (!(variance > 0)) return { u, z: 0, p: 1, n1, n2 };
  const z = (u - mean - 0.5) / Math.sqrt(variance);
  return { u, z, p: 1 - normalCdf(z), n1, n2 };
}

/** Φ(z) from erfc (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

function pct(v: number): string {
  return `${round(v * 100, 2)}%`;
}

function roundP(p: number): number {
  return p < 1e-6 ? Number(p.toExponential(2)) : round(p, 6);
}
