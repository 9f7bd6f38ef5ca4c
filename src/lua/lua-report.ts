// What a failing Lua script costs, and where ngx.log goes. A failure (a Lua error, the
// instruction limit, ngx.exit(ngx.ERROR)) is counted with the plugins' failures
// (tidegate_plugin_errors_total) and logged as a `lua-error` event with the script's
// file, phase, route, message and line: the first at once, then at most one per script
// per worker every LOG_INTERVAL_MS with the number suppressed in between. ngx.log lines
// become `lua-log` events at the mapped level, at most LOG_LINES_PER_SECOND per worker
// (the rest counted and reported with the next line), so a script logging on every
// request cannot flood the primary.
import { kWorkerPluginErrorsField } from '../shm/layout.js';
import { PHASE_NAMES, type LuaScript } from './lua-call.js';

export const LOG_INTERVAL_MS = 10_000;
export const LOG_LINES_PER_SECOND = 100;

export type LuaLogSink = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown>) => void;

let sink: LuaLogSink = () => {};
let counters: Float64Array | null = null;
const lastFailure = new Map<string, { at: number; suppressed: number }>();
let windowStart = 0;
let windowLines = 0;
let droppedLines = 0;

/** The worker's log (to the primary) and its counter slice; set once per thread. */
export function attachLuaReporting(log: LuaLogSink, workerCounters: Float64Array | null): void {
  sink = log;
  counters = workerCounters;
}

/** The line of `file` a Lua message names ("/path/a.lua:12: attempt to …" → 12). */
export function errorLine(file: string, message: string): number | null {
  const at = message.indexOf(`${file}:`);
  if (at < 0) return null;
  const m = /^(\d+):/.exec(message.slice(at + file.length + 1));
  return m === null ? null : Number(m[1]);
}

/** Counts and (rate-limited) logs one failed script call. */
export function luaFailed(script: LuaScript, message: string, runaway: boolean): void {
  if (counters !== null) counters[kWorkerPluginErrorsField]! += 1;
  const now = Date.now();
  const key = `${script.file}\0${script.phase}`;
  const last = lastFailure.get(key);
  if (last !== undefined && now - last.at < LOG_INTERVAL_MS) {
    last.suppressed++;
    return;
  }
  lastFailure.set(key, { at: now, suppressed: 0 });
  sink('error', 'lua-error', {
    script: script.file,
    phase: PHASE_NAMES[script.phase],
    route: script.route,
    error: message,
    line: errorLine(script.file, message),
    runaway,
    suppressed: last?.suppressed ?? 0,
  });
}

/** ngx.log(level, …): ngx.ERR and above → error, WARN → warn, NOTICE and INFO → info, DEBUG dropped (nginx's default error_log level keeps none of it either). */
export function luaLog(script: LuaScript | null, route: string, level: number, at: string, message: string): void {
  if (level > 7) return;
  const now = Date.now();
  if (now - windowStart >= 1000) {
    windowStart = now;
    windowLines = 0;
  }
  if (++windowLines > LOG_LINES_PER_SECOND) {
    droppedLines++;
    return;
  }
  const mapped = level <= 4 ? 'error' : level === 5 ? 'warn' : 'info';
  const fields: Record<string, unknown> = { script: script?.file ?? null, route, ngxLevel: NGX_LEVELS[level] ?? level, at, message };
  if (droppedLines > 0) {
    fields.suppressed = droppedLines;
    droppedLines = 0;
  }
  sink(mapped, 'lua-log', fields);
}

const NGX_LEVELS = ['stderr', 'emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'];
