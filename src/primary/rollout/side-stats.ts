// The primary's intake of the workers' per-side telemetry (SideDelta in each snapshot):
// running totals for the split metrics, and per (route, side) windows that a canary
// check takes and resets, so both sides of a check cover the same snapshots — the same
// interval. Histograms are read straight into sparse bucket counts (decodeV2Sparse),
// which is what the Mann-Whitney test ranks.
import * as hdr from 'hdr-histogram-js';
import { HDR_DIGITS, HDR_HIGHEST_US, HDR_LOWEST_US } from '../../metrics/hdr.js';
import { decodeV2Sparse } from '../../metrics/histogram-store.js';
import { CODE_CLASSES, isTelemetrySnapshot } from '../../metrics/snapshot.js';
import type { SideWindow } from './canary-analysis.js';

interface Window {
  counts: number[];
  buckets: Map<number, number>;
}

const key = (route: string, upstream: string): string => `${route}\u0000${upstream}`;

export class SideStats {
  /** route\0side → requests per status class since start */
  readonly totals = new Map<string, number[]>();
  private readonly windows = new Map<string, Window>();
  /** histograms that could not be read (skipped) */
  rejected = 0;
  private readonly ref = hdr.build({ lowestDiscernibleValue: HDR_LOWEST_US, highestTrackableValue: HDR_HIGHEST_US, numberOfSignificantValueDigits: HDR_DIGITS, useWebAssembly: false }) as unknown as { valueFromIndex(i: number): number };

  onTelemetry(payload: unknown): void {
    if (!isTelemetrySnapshot(payload) || payload.sides === undefined) return;
    for (const d of payload.sides) {
      const k = key(d.route, d.upstream);
      let t = this.totals.get(k);
      if (t === undefined) this.totals.set(k, (t = CODE_CLASSES.map(() => 0)));
      let w = this.windows.get(k);
      if (w === undefined) this.windows.set(k, (w = { counts: CODE_CLASSES.map(() => 0), buckets: new Map() }));
      for (let i = 0; i < t.length; i++) {
        t[i]! += d.counts[i] ?? 0;
        w.counts[i]! += d.counts[i] ?? 0;
      }
      if (d.hist === null) continue;
      const sp = decodeV2Sparse(d.hist);
      if (sp === null) {
        this.rejected++;
        continue;
      }
      for (let i = 0; i < sp.idx.length; i++) w.buckets.set(sp.idx[i]!, (w.buckets.get(sp.idx[i]!) ?? 0) + sp.cnt[i]!);
    }
  }

  /** What the side received since the last take (or reset), and a fresh window. */
  take(route: string, upstream: string): SideWindow {
    const k = key(route, upstream);
    const w = this.windows.get(k) ?? { counts: CODE_CLASSES.map(() => 0), buckets: new Map() };
    this.windows.delete(k);
    return w;
  }

  /** Forgets what the route's sides received so far (a weight change starts a new interval). */
  reset(route: string, sides: readonly string[]): void {
    for (const s of sides) this.windows.delete(key(route, s));
  }

  /** Microseconds at an HDR bucket index (its lowest value). */
  valueUs = (index: number): number => this.ref.valueFromIndex(index);

  /** Running totals as [route, side, counts]. */
  *entries(): Iterable<[string, string, readonly number[]]> {
    for (const [k, v] of this.totals) {
      const [route, side] = k.split('\u0000') as [string, string];
      yield [route, side, v];
    }
  }
}
