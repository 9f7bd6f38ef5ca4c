// Cumulative latency histograms on the control plane: one per (key, worker slot) and
// one merged per key, fed by the workers' interval snapshots. It runs inside the
// piscina aggregation thread (aggregator-task.ts), off the primary's loop.
//
// Intervals are not decoded with hdr-histogram-js: its decode + add walks the whole
// 17 408-slot counts array (≈0.3 ms each, and a bucket scan ≈0.07 ms more; measured:
// 1.5 s to merge one round of 8 workers × 110 histograms). The V2 payload is a list
// of ZigZag-LEB128 counts with zero runs, so we read it straight into sparse
// (index, count) pairs and add only those — to the histograms and to the Prometheus
// bucket counts, which are kept incrementally.
//
// The merged histogram is the sum of the per-worker ones by construction (each
// interval is added to both), which the tests check count by count.
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import { HDR_DIGITS, HDR_HIGHEST_US, HDR_LOWEST_US, V2_ENCODING_COOKIE, conformCompressedBase64, type CountsView } from './hdr.js';

export interface IngestEntry {
  readonly key: string;
  readonly worker: number;
  /** V2 (uncompressed) HDR encoding of one interval, as WasmHistogram.encode() writes it */
  readonly bytes: Uint8Array;
  readonly sumUs: number;
}

/** What the exposition needs for one series; worker -1 is the merged histogram. */
export interface SeriesExport {
  readonly key: string;
  readonly worker: number;
  readonly count: number;
  readonly sumUs: number;
  /** cumulative counts at each configured bound (same order) */
  readonly buckets: number[];
}

export interface HistogramSummaryOut {
  readonly key: string;
  readonly worker: number | null;
  readonly count: number;
  readonly sumUs: number;
  readonly minUs: number;
  readonly maxUs: number;
  readonly meanUs: number;
  readonly percentilesUs: Record<string, number>;
}

interface Cumulative {
  readonly hist: Histogram & CountsView & HistogramInternals;
  sumUs: number;
  /** non-cumulative count per bound slot (slot k: index ≤ boundIndex[k]; last slot: above every bound) */
  slots: Float64Array;
}

/** JsHistogram members used to add sparse counts (public in its .d.ts). */
interface HistogramInternals {
  addToCountAtIndex(index: number, value: number): void;
  setTotalCount(value: number): void;
  updateMinAndMax(value: number): void;
  valueFromIndex(index: number): number;
}

const decode = (hdr.JsHistogram as unknown as { decode(data: Uint8Array, bitBucketSize?: 32 | 64): Histogram & CountsView }).decode;

/** An interval as sparse pairs; `total` is the sum of counts. */
interface Sparse {
  readonly idx: number[];
  readonly cnt: number[];
  readonly total: number;
}

/**
 * Reads a V2 (uncompressed) encoding into sparse pairs, or null when the header is
 * not one we wrote (other range/precision): the caller then takes the slow path.
 */
export function decodeV2Sparse(b: Uint8Array): Sparse | null {
  if (b.length < 40) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (dv.getUint32(0) !== V2_ENCODING_COOKIE) return null;
  const payload = dv.getInt32(4);
  if (dv.getInt32(12) !== HDR_DIGITS || Number(dv.getBigInt64(16)) !== HDR_LOWEST_US || Number(dv.getBigInt64(24)) !== HDR_HIGHEST_US) return null;
  const end = Math.min(b.length, 40 + payload);
  const idx: number[] = [];
  const cnt: number[] = [];
  let total = 0;
  let pos = 40;
  let dst = 0;
  while (pos < end) {
    // LEB128, up to 9 bytes (the 9th carries 8 bits), as HdrHistogram's ZigZagEncoding.
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 9; i++) {
      const byte = b[pos++]!;
      if (i === 8) {
        v += byte * mul;
        break;
      }
      v += (byte & 0x7f) * mul;
      mul *= 128;
      if ((byte & 0x80) === 0) break;
    }
    const value = v % 2 === 0 ? v / 2 : -(v + 1) / 2; // ZigZag
    if (value < 0) {
      dst += -value;
    } else {
      if (value > 0) {
        idx.push(dst);
        cnt.push(value);
        total += value;
      }
      dst++;
    }
  }
  return { idx, cnt, total };
}

function sparseOf(h: Histogram & CountsView): Sparse {
  const idx: number[] = [];
  const cnt: number[] = [];
  let total = 0;
  for (let i = 0; i < h.countsArrayLength; i++) {
    const c = h.getCountAtIndex(i);
    if (c !== 0) {
      idx.push(i);
      cnt.push(c);
      total += c;
    }
  }
  return { idx, cnt, total };
}

function newCumulative(slots: number): Cumulative {
  // Float64 counts: a long-lived gateway overflows 32-bit buckets within weeks.
  // XXX: ≈140 KB per series (17 408 counts); packed arrays would save memory but add
  // and percentile are ≈5× slower (measured), so we pay memory for CPU.
  const hist = hdr.build({
    lowestDiscernibleValue: HDR_LOWEST_US,
    highestTrackableValue: HDR_HIGHEST_US,
    numberOfSignificantValueDigits: HDR_DIGITS,
    autoResize: false,
    bitBucketSize: 64,
    useWebAssembly: false, // JS gives per-index access for the Prometheus buckets
  }) as Histogram & CountsView & HistogramInternals;
  return { hist, sumUs: 0, slots: new Float64Array(slots) };
}

export const PERCENTILES = [50, 90, 95, 99, 99.9, 100] as const;

export class HistogramStore {
  private readonly perWorker = new Map<string, Map<number, Cumulative>>();
  private readonly merged = new Map<string, Cumulative>();
  /** merged intervals since the last takeWindow(), for scaling decisions on recent latency */
  private readonly window = new Map<string, Cumulative>();
  /** the same for the console's history (its own window: taking one must not reset the other) */
  private readonly historyWindow = new Map<string, Cumulative>();
  private bounds: number[];
  /** intervals that could not be decoded (skipped), since start */
  rejected = 0;
  /** counts-array index of each bound (same for every histogram: one shared structure) */
  private boundIndex: number[];

  constructor(boundsSeconds: readonly number[]) {
    this.bounds = [...boundsSeconds];
    this.boundIndex = this.indexesOf(this.bounds);
  }

  private indexesOf(bounds: readonly number[]): number[] {
    const probe = newCumulative(0).hist;
    return bounds.map((b) => Math.min(probe.countsArrayLength - 1, probe.countsArrayIndex(Math.round(b * 1e6))));
  }

  /** New bounds: every series' bucket slots are rebuilt from its full counts (rare: a reload). */
  setBounds(boundsSeconds: readonly number[]): void {
    this.bounds = [...boundsSeconds];
    this.boundIndex = this.indexesOf(this.bounds);
    const all = [...this.merged.values(), ...this.window.values(), ...this.historyWindow.values()];
    for (const m of this.perWorker.values()) all.push(...m.values());
    for (const c of all) {
      c.slots = new Float64Array(this.bounds.length + 1);
      const sp = sparseOf(c.hist);
      this.addSlots(c, sp);
    }
  }

  private cum(map: Map<string, Cumulative>, key: string): Cumulative {
    let c = map.get(key);
    if (c === undefined) map.set(key, (c = newCumulative(this.bounds.length + 1)));
    return c;
  }

  private workerCum(key: string, worker: number): Cumulative {
    let m = this.perWorker.get(key);
    if (m === undefined) this.perWorker.set(key, (m = new Map()));
    let c = m.get(worker);
    if (c === undefined) m.set(worker, (c = newCumulative(this.bounds.length + 1)));
    return c;
  }

  private addSlots(c: Cumulative, sp: Sparse): void {
    const bi = this.boundIndex;
    // idx is ascending, so one pass with a moving slot pointer.
    let k = 0;
    for (let i = 0; i < sp.idx.length; i++) {
      const ix = sp.idx[i]!;
      while (k < bi.length && ix > bi[k]!) k++;
      c.slots[k]! += sp.cnt[i]!;
    }
  }

  private addSparse(c: Cumulative, sp: Sparse, sumUs: number): void {
    const h = c.hist;
    const n = sp.idx.length;
    if (n === 0) return;
    for (let i = 0; i < n; i++) h.addToCountAtIndex(sp.idx[i]!, sp.cnt[i]!);
    h.setTotalCount(h.totalCount + sp.total);
    h.updateMinAndMax(h.valueFromIndex(sp.idx[0]!));
    h.updateMinAndMax(h.valueFromIndex(sp.idx[n - 1]!));
    c.sumUs += sumUs;
    this.addSlots(c, sp);
  }

  /** Adds intervals; returns fresh exports of every series it touched (per worker and merged). */
  ingest(entries: readonly IngestEntry[]): SeriesExport[] {
    const touched = new Set<string>();
    for (const e of entries) {
      let sp: Sparse;
      try {
        sp = decodeV2Sparse(e.bytes) ?? sparseOf(decode(e.bytes, 64));
      } catch {
        // One unreadable interval must not cost the rest of the batch.
        this.rejected++;
        continue;
      }
      this.addSparse(this.workerCum(e.key, e.worker), sp, e.sumUs);
      this.addSparse(this.cum(this.merged, e.key), sp, e.sumUs);
      this.addSparse(this.cum(this.window, e.key), sp, e.sumUs);
      this.addSparse(this.cum(this.historyWindow, e.key), sp, e.sumUs);
      touched.add(`${e.worker}\u0000${e.key}`);
      touched.add(`-1\u0000${e.key}`);
    }
    const out: SeriesExport[] = [];
    for (const t of touched) {
      const i = t.indexOf('\u0000');
      const worker = Number(t.slice(0, i));
      const key = t.slice(i + 1);
      const c = worker < 0 ? this.merged.get(key) : this.perWorker.get(key)?.get(worker);
      if (c !== undefined) out.push(this.exportOf(key, worker, c));
    }
    return out;
  }

  private exportOf(key: string, worker: number, c: Cumulative): SeriesExport {
    const buckets = new Array<number>(this.bounds.length);
    let acc = 0;
    for (let k = 0; k < buckets.length; k++) buckets[k] = acc += c.slots[k]!;
    return { key, worker, count: c.hist.totalCount, sumUs: c.sumUs, buckets };
  }

  /** Every series (after a bucket change, or for a cold cache). */
  exportAll(): SeriesExport[] {
    const out: SeriesExport[] = [];
    for (const [key, m] of this.perWorker) for (const [worker, c] of m) out.push(this.exportOf(key, worker, c));
    for (const [key, c] of this.merged) out.push(this.exportOf(key, -1, c));
    return out;
  }

  private find(key: string, worker: number | null): Cumulative | undefined {
    return worker === null ? this.merged.get(key) : this.perWorker.get(key)?.get(worker);
  }

  /** The standard compressed base64 encoding ("HISTFAAA…"), readable by HdrHistogram in any language. */
  encode(key: string, worker: number | null): string | null {
    const c = this.find(key, worker);
    return c === undefined ? null : conformCompressedBase64(hdr.encodeIntoCompressedBase64(c.hist));
  }

  summary(key: string, worker: number | null): HistogramSummaryOut | null {
    const c = this.find(key, worker);
    if (c === undefined) return null;
    const h = c.hist;
    const percentilesUs: Record<string, number> = {};
    for (const p of PERCENTILES) percentilesUs[`p${p}`] = h.totalCount === 0 ? 0 : h.getValueAtPercentile(p);
    return { key, worker, count: h.totalCount, sumUs: c.sumUs, minUs: h.totalCount === 0 ? 0 : h.minNonZeroValue, maxUs: h.maxValue, meanUs: h.mean, percentilesUs };
  }

  keys(): string[] {
    return [...this.merged.keys()];
  }

  workersOf(key: string): number[] {
    return [...(this.perWorker.get(key)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** Percentile of each key's recent window (since the previous call), then starts a new window. */
  takeWindow(percentile: number): Record<string, { valueUs: number; count: number }> {
    const out: Record<string, { valueUs: number; count: number }> = {};
    for (const [key, c] of this.window) {
      out[key] = { valueUs: c.hist.totalCount === 0 ? 0 : c.hist.getValueAtPercentile(percentile), count: c.hist.totalCount };
      c.hist.reset();
      c.sumUs = 0;
      c.slots.fill(0);
    }
    return out;
  }

  /** Several percentiles of each key's history window (since the previous call), then starts a new one. */
  takeHistoryWindow(percentiles: readonly number[]): Record<string, { valuesUs: number[]; count: number }> {
    const out: Record<string, { valuesUs: number[]; count: number }> = {};
    for (const [key, c] of this.historyWindow) {
      const n = c.hist.totalCount;
      out[key] = { valuesUs: percentiles.map((p) => (n === 0 ? 0 : c.hist.getValueAtPercentile(p))), count: n };
      c.hist.reset();
      c.sumUs = 0;
      c.slots.fill(0);
    }
    return out;
  }
}
