// Replica recommendations per upstream, the way the Kubernetes HPA computes them
// (https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details):
//   desired = ceil(current × observed / target)
// no change while observed/target is within 1 ± tolerance (10 % by default), and a
// scale-down only to the highest recommendation seen in the stabilisation window, so
// a dip in traffic does not shed replicas that the next minute needs again.
import type { ScalingTarget } from './config.js';

export interface Recommendation {
  readonly current: number;
  readonly recommended: number;
  /** the unstabilised HPA result, before min/max and the downscale window */
  readonly raw: number;
  readonly observed: number | null;
  readonly target: number;
  readonly metric: ScalingTarget['metric'];
  readonly reason: string;
}

/** HPA's core formula with its tolerance band; `current` 0 scales from 1 (as HPA treats a scaled-to-zero target). */
export function hpaDesired(current: number, observed: number, target: number, tolerance: number): number {
  const base = Math.max(current, 1);
  const ratio = observed / target;
  if (Math.abs(ratio - 1) <= tolerance) return current;
  return Math.ceil(base * ratio);
}

export class Recommender {
  private readonly history: { at: number; desired: number }[] = [];
  private last: Recommendation | null = null;

  constructor(private target: ScalingTarget) {}

  setTarget(t: ScalingTarget): void {
    this.target = t;
  }

  get latest(): Recommendation | null {
    return this.last;
  }

  /**
   * `observed` is the metric per endpoint (rps, in-flight) or the latency (p99, seconds);
   * null when there is nothing to go on (no traffic for a latency target).
   */
  update(now: number, current: number, observed: number | null): Recommendation {
    const t = this.target;
    let raw: number;
    let reason: string;
    if (observed === null) {
      raw = current;
      reason = `no ${t.metric} data; keeping ${current}`;
    } else {
      raw = hpaDesired(current, observed, t.target, t.tolerance);
      const ratio = observed / t.target;
      reason =
        raw === current
          ? `${t.metric} ${fmt(observed)} within ±${Math.round(t.tolerance * 100)}% of target ${fmt(t.target)}`
          : `${t.metric} ${fmt(observed)} vs target ${fmt(t.target)} (ratio ${ratio.toFixed(2)}): ceil(${Math.max(current, 1)} × ${ratio.toFixed(2)}) = ${raw}`;
    }
    let desired = Math.min(t.maxReplicas, Math.max(t.minReplicas, raw));
    if (desired !== raw) reason += `; clamped to [${t.minReplicas}, ${t.maxReplicas}]`;
    this.history.push({ at: now, desired });
    while (this.history.length > 0 && this.history[0]!.at < now - t.scaleDownStabilization) this.history.shift();
    if (desired < current) {
      let highest = desired;
      for (const h of this.history) highest = Math.max(highest, h.desired);
      const stabilised = Math.min(current, highest);
      if (stabilised !== desired) {
        reason += `; scale-down held at ${stabilised} by the ${Math.round(t.scaleDownStabilization / 1000)}s stabilisation window`;
        desired = stabilised;
      }
    }
    this.last = { current, recommended: desired, raw, observed, target: t.target, metric: t.metric, reason };
    return this.last;
  }
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}
