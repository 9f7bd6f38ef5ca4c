// The primary's handle on the aggregation thread (aggregator-task.ts in a one-thread
// piscina pool). Interval snapshots are queued and handed over in batches; the
// latest per-series exports are cached here so a scrape never waits on the pool.
import { Piscina } from 'piscina';
import type { HistogramSummaryOut, IngestEntry, SeriesExport } from './histogram-store.js';
import type { ForecastResult } from './forecast.js';

const TASK_URL = new URL('./aggregator-task.js', import.meta.url).href;
/** batch window: snapshots from all workers of one tick usually land within it */
const FLUSH_DELAY_MS = 20;

export class Aggregator {
  /**
   * Started by the first task that has work for it (an interval histogram to merge, a
   * forecast to fit): a gateway without traffic, or with `histograms.enabled: false` and
   * forecasts off, never starts the thread.
   */
  private pool: Piscina | null = null;
  private bounds: number[];
  private heap: { usedBytes: number; totalBytes: number } | null = null;
  private queue: IngestEntry[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  /** every task goes through this chain, so reads see every snapshot queued before them */
  private chain: Promise<unknown> = Promise.resolve();
  /** latest export per `${worker}\0${key}` (worker -1 = merged) */
  readonly series = new Map<string, SeriesExport>();
  private closed = false;

  constructor(
    bounds: readonly number[],
    private readonly onError: (err: Error) => void,
  ) {
    this.bounds = [...bounds];
  }

  /** The pool, started on first use with the bounds in force; only called inside the task chain. */
  private async started(): Promise<Piscina> {
    if (this.pool !== null) return this.pool;
    // One thread, never retired: the cumulative histograms live in it (see aggregator-task.ts).
    const pool = new Piscina({ filename: TASK_URL, minThreads: 1, maxThreads: 1, idleTimeout: 2 ** 31 - 1, concurrentTasksPerWorker: 1 });
    this.pool = pool;
    this.store((await pool.run({ bounds: this.bounds }, { name: 'setBounds' })) as SeriesExport[]);
    return pool;
  }

  /** whether the aggregation thread runs (it starts with the first work for it) */
  get running(): boolean {
    return this.pool !== null;
  }

  /** the aggregation thread's V8 heap as of the last refreshHeap(); null while it does not run */
  heapStats(): { usedBytes: number; totalBytes: number } | null {
    return this.heap;
  }

  /** Asks the running thread for its heap figures (never starts it). */
  refreshHeap(): Promise<void> {
    return this.enqueue(async () => {
      if (this.pool !== null) this.heap = (await this.pool.run({}, { name: 'heap' })) as { usedBytes: number; totalBytes: number };
    });
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch((err: Error) => this.onError(err));
    return p;
  }

  private store(exports: readonly SeriesExport[]): void {
    for (const e of exports) this.series.set(`${e.worker}\u0000${e.key}`, e);
  }

  setBounds(bounds: readonly number[]): Promise<void> {
    return this.enqueue(async () => {
      this.bounds = [...bounds];
      this.series.clear();
      // Not running: nothing is recorded yet, and the thread starts with these bounds.
      if (this.pool !== null) this.store((await this.pool.run({ bounds: this.bounds }, { name: 'setBounds' })) as SeriesExport[]);
    });
  }

  push(entries: readonly IngestEntry[]): void {
    if (this.closed || entries.length === 0) return;
    for (const e of entries) this.queue.push(e);
    // A failed merge is reported through onError; it must not become an unhandled rejection.
    this.flushTimer ??= setTimeout(() => this.flush().catch(() => {}), FLUSH_DELAY_MS);
  }

  /** Hands every queued interval to the pool; resolves when they are merged. */
  flush(): Promise<void> {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    const entries = this.queue;
    this.queue = [];
    if (entries.length === 0) return this.enqueue(async () => {});
    return this.enqueue(async () => {
      const r = (await (await this.started()).run({ entries }, { name: 'ingest' })) as { exports: SeriesExport[]; rejected: number };
      this.store(r.exports);
      if (r.rejected > 0) this.onError(new Error(`${r.rejected} of ${entries.length} interval histograms could not be decoded and were skipped`));
    });
  }

  async encode(key: string, worker: number | null): Promise<string | null> {
    await this.flush();
    return this.enqueue(async () => (this.pool === null ? null : ((await this.pool.run({ key, worker }, { name: 'encode' })) as string | null)));
  }

  async summary(key: string, worker: number | null): Promise<HistogramSummaryOut | null> {
    await this.flush();
    return this.enqueue(async () => (this.pool === null ? null : ((await this.pool.run({ key, worker }, { name: 'summary' })) as HistogramSummaryOut | null)));
  }

  async takeWindow(percentile: number): Promise<Record<string, { valueUs: number; count: number }>> {
    await this.flush();
    return this.enqueue(async () => (this.pool === null ? {} : ((await this.pool.run({ percentile }, { name: 'takeWindow' })) as Record<string, { valueUs: number; count: number }>)));
  }

  async takeHistoryWindow(percentiles: readonly number[]): Promise<Record<string, { valuesUs: number[]; count: number }>> {
    await this.flush();
    return this.enqueue(async () => (this.pool === null ? {} : ((await this.pool.run({ percentiles: [...percentiles] }, { name: 'takeHistoryWindow' })) as Record<string, { valuesUs: number[]; count: number }>)));
  }

  fitForecasts(series: { name: string; values: number[] }[], seasonLength: number, horizon: number): Promise<{ name: string; result: ForecastResult }[]> {
    return this.enqueue(async () => (await this.started()).run({ series, seasonLength, horizon }, { name: 'fitForecasts' }) as Promise<{ name: string; result: ForecastResult }[]>);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    await this.chain.catch(() => {});
    await this.pool?.destroy();
  }
}
