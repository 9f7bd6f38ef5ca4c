// Cumulative latency histograms on the control plane: one per (key, worker slot) and
// one merged per key, fed by the workers' interval snapshots. It runs inside the
// piscina aggregation thread (aggregator-task.ts), because decoding and adding an
// interval costs ≈0.3 ms each (measured, hdr-histogram-js 3.0.1): 8 workers × 100
// routes at a 1 s interval would otherwise take a quarter of the primary's loop.
//
// The merged histogram is the sum of the per-worker ones by construction (each
// interval is added to both), which the tests check count by count.
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import { HDR_DIGITS, HDR_HIGHEST_US, HDR_LOWEST_US, bucketCounts, conformCompressedBase64, type CountsView } from './hdr.js';

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
  readonly hist: Histogram & CountsView;
  sumUs: number;
}

const decode = (hdr.JsHistogram as unknown as { decode(data: Uint8Array, bitBucketSize?: 32 | 64): Histogram }).decode;

function newCumulative(): Cumulative {
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
  }) as Histogram & CountsView;
  return { hist, sumUs: 0 };
}

export const PERCENTILES = [50, 90, 95, 99, 99.9, 100] as const;

export class HistogramStore {
  private readonly perWorker = new Map<string, Map<number, Cumulative>>();
  private readonly merged = new Map<string, Cumulative>();
  /** merged intervals since the last takeWindow(), for scaling decisions on recent latency */
  private readonly window = new Map<string, Cumulative>();
  private bounds: number[];

  constructor(boundsSeconds: readonly number[]) {
    this.bounds = [...boundsSeconds];
  }

  setBounds(boundsSeconds: readonly number[]): void {
    this.bounds = [...boundsSeconds];
  }

  private cum(map: Map<string, Cumulative>, key: string): Cumulative {
    let c = map.get(key);
    if (c === undefined) map.set(key, (c = newCumulative()));
    return c;
  }

  private workerCum(key: string, worker: number): Cumulative {
    let m = this.perWorker.get(key);
    if (m === undefined) this.perWorker.set(key, (m = new Map()));
    let c = m.get(worker);
    if (c === undefined) m.set(worker, (c = newCumulative()));
    return c;
  }

  /** Adds intervals; returns fresh exports of every series it touched (per worker and merged). */
  ingest(entries: readonly IngestEntry[]): SeriesExport[] {
    const touched = new Set<string>();
    for (const e of entries) {
      const interval = decode(e.bytes, 64);
      const w = this.workerCum(e.key, e.worker);
      const m = this.cum(this.merged, e.key);
      const win = this.cum(this.window, e.key);
      w.hist.add(interval);
      m.hist.add(interval);
      win.hist.add(interval);
      w.sumUs += e.sumUs;
      m.sumUs += e.sumUs;
      win.sumUs += e.sumUs;
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
    return { key, worker, count: c.hist.totalCount, sumUs: c.sumUs, buckets: bucketCounts(c.hist, this.bounds) };
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
    }
    return out;
  }
}
