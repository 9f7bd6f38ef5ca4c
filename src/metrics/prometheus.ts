// Prometheus text exposition for the histogram families. prom-client's Histogram
// observes values one by one; ours arrive pre-aggregated from HDR histograms, so the
// `_bucket`/`_sum`/`_count` lines are written here (text format 0.0.4).

/** Escapes a label value per the exposition format (backslash, quote, newline). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Formats a bound the way Prometheus client libraries do ("0.005", "1", "+Inf"). */
export function formatBound(b: number): string {
  return Number.isFinite(b) ? String(b) : '+Inf';
}

export interface HistogramSeries {
  /** label pairs, already in output order */
  readonly labels: readonly (readonly [string, string])[];
  /** cumulative counts at each bound */
  readonly buckets: readonly number[];
  readonly count: number;
  /** in the family's unit (seconds) */
  readonly sum: number;
}

export function renderHistogram(name: string, help: string, boundsSeconds: readonly number[], series: readonly HistogramSeries[]): string {
  if (series.length === 0) return '';
  const les = boundsSeconds.map(formatBound);
  const parts: string[] = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const s of series) {
    let base = '';
    for (const [k, v] of s.labels) base += `${k}="${escapeLabel(v)}",`;
    for (let i = 0; i < les.length; i++) parts.push(`${name}_bucket{${base}le="${les[i]}"} ${s.buckets[i] ?? 0}`);
    parts.push(`${name}_bucket{${base}le="+Inf"} ${s.count}`);
    const lbl = base.length > 0 ? `{${base.slice(0, -1)}}` : '';
    parts.push(`${name}_sum${lbl} ${s.sum}`);
    parts.push(`${name}_count${lbl} ${s.count}`);
  }
  return parts.join('\n') + '\n';
}
