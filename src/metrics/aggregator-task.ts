// The piscina aggregation thread: holds the cumulative histograms (HistogramStore)
// and fits forecasts. The pool has exactly one thread and never retires it
// (aggregator.ts), so this module's state lives as long as the gateway; tasks run
// one at a time, in submission order.
import { HistogramStore, type HistogramSummaryOut, type IngestEntry, type SeriesExport } from './histogram-store.js';
import { getHeapStatistics } from 'node:v8';
// not ./config.js: that is the zod schema, which this thread has no use for
import { DEFAULT_BUCKETS_SECONDS } from './buckets.js';
import { forecast, type ForecastResult } from './forecast.js';

const store = new HistogramStore(DEFAULT_BUCKETS_SECONDS);

export function ingest(req: { entries: IngestEntry[] }): { exports: SeriesExport[]; rejected: number } {
  const before = store.rejected;
  const exports = store.ingest(req.entries);
  return { exports, rejected: store.rejected - before };
}

export function setBounds(req: { bounds: number[] }): SeriesExport[] {
  store.setBounds(req.bounds);
  return store.exportAll();
}

export function encode(req: { key: string; worker: number | null }): string | null {
  return store.encode(req.key, req.worker);
}

export function summary(req: { key: string; worker: number | null }): HistogramSummaryOut | null {
  return store.summary(req.key, req.worker);
}

export function takeWindow(req: { percentile: number }): Record<string, { valueUs: number; count: number }> {
  return store.takeWindow(req.percentile);
}

export function takeHistoryWindow(req: { percentiles: number[] }): Record<string, { valuesUs: number[]; count: number }> {
  return store.takeHistoryWindow(req.percentiles);
}

export function fitForecasts(req: { series: { name: string; values: number[] }[]; seasonLength: number; horizon: number }): { name: string; result: ForecastResult }[] {
  return req.series.map((s) => ({ name: s.name, result: forecast(s.values, req.seasonLength, req.horizon) }));
}

/** this thread's V8 heap, for the tidegate_aggregator_heap_* gauges */
export function heap(): { usedBytes: number; totalBytes: number } {
  const h = getHeapStatistics();
  return { usedBytes: h.used_heap_size, totalBytes: h.total_heap_size };
}
