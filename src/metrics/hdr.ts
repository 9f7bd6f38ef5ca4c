// HDR histogram settings shared by workers (recording) and the aggregator (merging,
// export). Both sides must build histograms with the same range and precision, or
// adding one into another would misplace counts, so the numbers live only here.
import { deflateSync, inflateSync } from 'node:zlib';
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

/** HdrHistogram V2 cookies (HdrHistogram/HdrHistogram AbstractHistogramBase): base | 0x10 (LEB128 word size). */
export const V2_ENCODING_COOKIE = 0x1c849313;
export const V2_COMPRESSED_ENCODING_COOKIE = 0x1c849314;

/**
 * Rewrites two header fields that hdr-histogram-js 3.0.1 gets wrong, so other
 * implementations read our export exactly. The V2 header is: cookie (i32), payload
 * length (i32), normalizingIndexOffset (i32), significant digits (i32), lowest (i64),
 * highest (i64), integerToDoubleValueConversionRatio (f64). The JS encoder writes
 * normalizingIndexOffset = 1 (Java's decoder applies it and shifts every count by one
 * index) and the ratio as the integer 1 (a denormal double); we write 0 and 1.0.
 */
export function conformCompressedBase64(b64: string): string {
  const outer = Buffer.from(b64, 'base64');
  if (outer.length < 8 || outer.readUInt32BE(0) !== V2_COMPRESSED_ENCODING_COOKIE) return b64;
  const inner = Buffer.from(inflateSync(outer.subarray(8, 8 + outer.readUInt32BE(4))));
  if (inner.length < 40 || inner.readUInt32BE(0) !== V2_ENCODING_COOKIE) return b64;
  inner.writeInt32BE(0, 8);
  inner.writeDoubleBE(1.0, 32);
  const compressed = deflateSync(inner);
  const out = Buffer.alloc(8 + compressed.length);
  out.writeUInt32BE(V2_COMPRESSED_ENCODING_COOKIE, 0);
  out.writeUInt32BE(compressed.length, 4);
  compressed.copy(out, 8);
  return out.toString('base64');
}
