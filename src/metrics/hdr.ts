// HDR histogram settings shared by workers (recording) and the aggregator (merging,
// export). Both sides must build histograms with the same range and precision, or
// adding one into another would misplace counts, so the numbers live only here.
import type { Histogram } from 'hdr-histogram-js';

/** Values are integer microseconds: 1 µs … 60 s at 3 significant digits (≤ 0.1 % error). */
export const HDR_LOWEST_US = 1;
export const HDR_HIGHEST_US = 60_000_000;
export const HDR_DIGITS = 3;

/** What a histogram tracks; a key names one series family member. */
export type HistogramKind = 'request' | 'upstream';

/** A histogram key: "request:<route name>" or "upstream:<upstream name>". */
export function histogramKey(kind: HistogramKind, name: string): string {
  return `${kind}:${name}`;
}

export function splitHistogramKey(key: string): { kind: HistogramKind; name: string } {
  const i = key.indexOf(':');
  return { kind: key.slice(0, i) as HistogramKind, name: key.slice(i + 1) };
}

/** Minimal view of the JS histogram the aggregator keeps (hdr-histogram-js JsHistogram). */
export interface CountsView extends Histogram {
  readonly countsArrayLength: number;
  countsArrayIndex(value: number): number;
  getCountAtIndex(index: number): number;
}

/**
 * Cumulative counts at each bound (`le`, in seconds), the Prometheus way. A value counts
 * under a bound when its HDR bucket index is at or below the bound's index — the same
 * rule as HdrHistogram's getCountBetweenValues, so bucket edges are exact up to the
 * histogram's 0.1 % precision.
 */
export function bucketCounts(h: CountsView, boundsSeconds: readonly number[]): number[] {
  const idx = boundsSeconds.map((b) => Math.min(h.countsArrayLength - 1, h.countsArrayIndex(Math.round(b * 1e6))));
  const out = new Array<number>(idx.length).fill(0);
  const n = h.countsArrayLength;
  let k = 0;
  let acc = 0;
  for (let j = 0; j < n && k < idx.length; j++) {
    acc += h.getCountAtIndex(j);
    while (k < idx.length && j === idx[k]) out[k++] = acc;
  }
  while (k < idx.length) out[k++] = acc;
  return out;
}
