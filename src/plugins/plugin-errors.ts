// What a failing plugin costs: its request answers 500 TG_ERR_PLUGIN, the worker's
// counter goes up (tidegate_plugin_errors_total), and a `plugin-error` event is logged
// with the plugin's name — the first at once, then at most one per plugin per
// LOG_INTERVAL_MS with the number suppressed in between, so a plugin failing on every
// request cannot flood the log (or the message port to the primary).
import { kWorkerPluginErrorsField } from '../shm/layout.js';

export const LOG_INTERVAL_MS = 10_000;

export type PluginLogSink = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown>) => void;

let sink: PluginLogSink = () => {};
let counters: Float64Array | null = null;
const lastLogged = new Map<string, { at: number; suppressed: number }>();

/** The worker's log (to the primary) and its counter slice; set once per thread. */
export function attachPluginReporting(log: PluginLogSink, workerCounters: Float64Array | null): void {
  sink = log;
  counters = workerCounters;
}

export function pluginLog(plugin: string, level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> | undefined): void {
  sink(level, 'plugin-log', { plugin, message, ...fields });
}

/** Counts and (rate-limited) logs one failure. `err` is whatever was thrown. */
export function pluginFailed(plugin: string, phase: string, route: string, err: unknown): void {
  if (counters !== null) counters[kWorkerPluginErrorsField]! += 1;
  const now = Date.now();
  const last = lastLogged.get(plugin);
  if (last !== undefined && now - last.at < LOG_INTERVAL_MS) {
    last.suppressed++;
    return;
  }
  const suppressed = last?.suppressed ?? 0;
  lastLogged.set(plugin, { at: now, suppressed: 0 });
  const e = err instanceof Error ? err : null;
  sink('error', 'plugin-error', {
    plugin,
    phase,
    route,
    error: e !== null ? e.message : String(err),
    // The frame that threw: enough to find the line without a full stack per event.
    at: e?.stack?.split('\n').find((l) => l.trimStart().startsWith('at '))?.trim(),
    suppressed,
  });
}
