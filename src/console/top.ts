// `tidegate top`: polls a running gateway's admin API and redraws one screen in
// place (requests/s, errors, p99 per route; endpoints and their states; breakers and
// concurrency limits; the last decisions). `--once` prints the same text once,
// without escape codes, for scripts.
//
// It reads only the admin HTTP API (/status, /v1/history, /v1/decisions), so it
// works against any gateway it can reach and needs nothing from this process.
import { parseDuration } from '../units/units.js';
import { renderTop, type TopDecision, type TopHistory, type TopSnapshot, type TopStatus } from './top-render.js';

export const TOP_USAGE = `usage: tidegate top [--admin URL] [--token TOKEN] [--interval 2s] [--decisions N] [--once] [--frames N]
  --admin URL      the gateway's admin address (default http://127.0.0.1:9901)
  --token TOKEN    admin bearer token (default: $TIDEGATE_ADMIN_TOKEN)
  --interval D     refresh period, e.g. 1s, 500ms (default 2s)
  --decisions N    how many recent decisions to show (default 8)
  --once           print one plain-text snapshot and exit (0, or 1 if the admin API failed)
  --frames N       stop after N refreshes (for recordings); q or Ctrl-C quits anyway`;

interface TopArgs {
  admin: string;
  token: string | undefined;
  intervalMs: number;
  decisions: number;
  once: boolean;
  frames: number;
}

class UsageError extends Error {}

function parseTopArgs(argv: readonly string[]): TopArgs {
  const a: TopArgs = { admin: 'http://127.0.0.1:9901', token: process.env.TIDEGATE_ADMIN_TOKEN || undefined, intervalMs: 2000, decisions: 8, once: false, frames: Infinity };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      if (raw.startsWith('--') && eq > 0) return raw.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const count = (name: string, v: string): number => {
      if (!/^\d{1,6}$/.test(v) || Number(v) < 1) throw new UsageError(`${name} must be a whole number ≥ 1, got "${v}"`);
      return Number(v);
    };
    if (flag === '--admin') a.admin = value().replace(/\/+$/, '');
    else if (flag === '--token') a.token = value();
    else if (flag === '--interval') {
      const v = value();
      const d = parseDuration(v);
      if (!d.ok || d.value < 100) throw new UsageError(`--interval: ${d.ok ? 'at least 100ms' : d.expected}, got "${v}"`);
      a.intervalMs = d.value;
    } else if (flag === '--decisions') a.decisions = count('--decisions', value());
    else if (flag === '--frames') a.frames = count('--frames', value());
    else if (flag === '--once') a.once = true;
    else if (flag === '--help' || flag === '-h') {
      console.log(TOP_USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown argument "${raw}"`);
  }
  if (!/^https?:\/\/[^/]+$/.test(a.admin)) throw new UsageError(`--admin must be an http(s) URL like http://127.0.0.1:9901, got "${a.admin}"`);
  return a;
}

async function getJson<T>(args: TopArgs, path: string): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (args.token) headers.authorization = `Bearer ${args.token}`;
  let res: Response;
  try {
    res = await fetch(args.admin + path, { headers, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, a timeout) is its cause.
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    throw new Error(cause?.code ?? cause?.message ?? (err as Error).message);
  }
  if (res.status === 401) throw new Error('the admin API wants a token: pass --token or set TIDEGATE_ADMIN_TOKEN');
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

async function snapshot(args: TopArgs): Promise<TopSnapshot> {
  // A few intervals back is enough for "the latest point" and keeps the answer small.
  const since = Date.now() - 60_000;
  const [status, history, decisions] = await Promise.all([
    getJson<TopStatus>(args, '/status'),
    getJson<TopHistory>(args, `/v1/history?kind=route&since=${since}`),
    getJson<{ decisions: TopDecision[] }>(args, `/v1/decisions?limit=${args.decisions}`),
  ]);
  return { admin: args.admin, at: new Date(), status, history, decisions: decisions.decisions };
}

const ESC = '\u001b[';

async function live(args: TopArgs): Promise<void> {
  const out = process.stdout;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopped = true;
    if (timer) clearTimeout(timer);
    wake?.();
  };
  // Alternate screen and hidden cursor while running; both restored however it ends.
  out.write(`${ESC}?1049h${ESC}?25l`);
  const restore = (): void => {
    out.write(`${ESC}?25h${ESC}?1049l`);
  };
  process.once('exit', restore);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const stdin = process.stdin;
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', (b: Buffer) => {
      const k = b.toString();
      if (k === 'q' || k === '\u0003') stop();
    });
  }
  let frames = 0;
  let lastError = '';
  while (!stopped && frames < args.frames) {
    const width = out.columns || 80;
    const height = out.rows || 24;
    let lines: string[];
    try {
      lines = renderTop(await snapshot(args), { width, height: height - 1 });
      lastError = '';
    } catch (err) {
      lastError = (err as Error).message;
      lines = [`tidegate top · ${args.admin}`, '', `cannot read the admin API: ${lastError}`, '', 'retrying every ' + args.intervalMs + ' ms; q quits'];
    }
    if (stopped) break;
    // Home, each line cleared to its end, then the rest of the screen: no flicker.
    out.write(`${ESC}H` + lines.slice(0, height - 1).map((l) => l + `${ESC}K`).join('\r\n') + `\r\n${ESC}J` + `${ESC}7m q quit · every ${args.intervalMs} ms ${ESC}0m`);
    frames++;
    if (frames >= args.frames) break;
    await new Promise<void>((r) => {
      wake = r;
      timer = setTimeout(r, args.intervalMs);
    });
  }
  if (stdin.isTTY) {
    stdin.setRawMode(false);
    stdin.pause();
  }
  restore();
  process.removeListener('exit', restore);
}

export async function runTop(argv: readonly string[]): Promise<number> {
  let args: TopArgs;
  try {
    args = parseTopArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`tidegate top: ${err.message}\n\n${TOP_USAGE}`);
    return 2;
  }
  if (args.once) {
    try {
      const lines = renderTop(await snapshot(args), { width: process.stdout.columns || 80 });
      process.stdout.write(lines.join('\n') + '\n');
      return 0;
    } catch (err) {
      console.error(`tidegate top: cannot read ${args.admin}: ${(err as Error).message}`);
      return 1;
    }
  }
  await live(args);
  return 0;
}
