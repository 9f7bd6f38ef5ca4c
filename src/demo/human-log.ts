// Log lines for a person at a terminal: one line per event — time, level, event name,
// then its fields as key=value, then the message. pino still produces the JSON (so the
// fields are exactly those a log pipeline sees); this only re-renders each line before
// it reaches the terminal. A dozen lines of our own instead of pino-pretty: by default it
// prints each field on a line of its own (one decision fills a screen), and its
// singleLine mode appends the fields as a JSON object; here every event gets
// `event key=value …` with no new dependency.
import type { DestinationStream } from 'pino';

const SKIP = new Set(['level', 'time', 'svc', 'pid', 'hostname', 'msg', 'event']);
const LEVEL_COLOR: Readonly<Record<string, string>> = { trace: '90', debug: '90', info: '36', warn: '33', error: '31', fatal: '41' };

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(+v.toFixed(3));
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** One JSON log line → one human line (without the newline). Lines that are not JSON pass unchanged. */
export function humanLine(json: string, color = false): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  if (typeof rec !== 'object' || rec === null) return json;
  const t = typeof rec.time === 'string' ? rec.time.slice(11, 23) : typeof rec.time === 'number' ? new Date(rec.time).toISOString().slice(11, 23) : '';
  const level = String(rec.level ?? 'info');
  const lv = level.toUpperCase().padEnd(5);
  const head = color ? `\x1b[${LEVEL_COLOR[level] ?? '0'}m${lv}\x1b[0m` : lv;
  const event = typeof rec.event === 'string' ? rec.event : '-';
  const fields: string[] = [];
  for (const [k, v] of Object.entries(rec)) if (!SKIP.has(k) && v !== undefined) fields.push(`${k}=${value(v)}`);
  const msg = typeof rec.msg === 'string' && rec.msg !== event ? `  — ${rec.msg}` : '';
  return `${t} ${head} ${color ? `\x1b[1m${event}\x1b[0m` : event}${fields.length ? ` ${fields.join(' ')}` : ''}${msg}`;
}

/** A pino destination that writes human lines to `out` (a terminal). */
export function humanDestination(out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): DestinationStream {
  const color = Boolean(out.isTTY) && !process.env.NO_COLOR;
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) out.write(`${humanLine(line, color)}\n`);
    },
  };
}

/**
 * JSON unless stdout is a terminal; TIDEGATE_LOG_FORMAT=json|human overrides either way
 * (a person piping to less can still ask for human lines, a terminal for JSON).
 */
export function wantHumanLogs(out: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  const f = env.TIDEGATE_LOG_FORMAT;
  if (f === 'json') return false;
  if (f === 'human') return true;
  return Boolean(out.isTTY);
}
