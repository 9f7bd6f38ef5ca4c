// Strict parsers for the unit-bearing values in config. Each returns a number or a
// message that says what was expected; nothing is guessed ("10" is not a duration:
// nginx reads it as seconds, Envoy as an error; we follow Envoy).

export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string };

const DURATION_UNITS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/;

/** "250ms", "2s", "1.5m", "1h" → milliseconds. */
export function parseDuration(input: unknown): Parsed<number> {
  const expected = 'expected a duration like "250ms", "2s", "1m" (units: us, ms, s, m, h)';
  if (typeof input !== 'string') return { ok: false, expected };
  const m = DURATION_RE.exec(input.trim());
  if (!m) return { ok: false, expected };
  const value = Number(m[1]) * DURATION_UNITS[m[2]!]!;
  if (!Number.isFinite(value)) return { ok: false, expected };
  return { ok: true, value };
}

const SIZE_UNITS: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };
const SIZE_RE = /^(\d+)(b|kb|mb|gb)$/i;

/** "512b", "16kb", "1mb", "2gb" → bytes (binary multiples, as nginx reads k and m). A bare integer is bytes. */
export function parseSize(input: unknown): Parsed<number> {
  const expected = 'expected a size like "16kb", "1mb" (units: b, kb, mb, gb) or a whole number of bytes';
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0 ? { ok: true, value: input } : { ok: false, expected };
  }
  if (typeof input !== 'string') return { ok: false, expected };
  const m = SIZE_RE.exec(input.trim());
  if (!m) return { ok: false, expected };
  const value = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(value) ? { ok: true, value } : { ok: false, expected };
}

const RATE_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
const RATE_RE = /^(\d+(?:\.\d+)?)\/(s|m|h|d)$/;

export interface Rate {
  /** events allowed per `periodSeconds` */
  readonly count: number;
  readonly periodSeconds: number;
  /** events per second */
  readonly perSecond: number;
}

/** "100/s", "6000/m" → a rate. */
export function parseRate(input: unknown): Parsed<Rate> {
  const expected = 'expected "<n>/<unit>" like "100/s" (units: s, m, h, d)';
  if (typeof input !== 'string') return { ok: false, expected };
  const m = RATE_RE.exec(input.trim());
  if (!m) return { ok: false, expected };
  const count = Number(m[1]);
  const periodSeconds = RATE_UNITS[m[2]!]!;
  if (!(count > 0)) return { ok: false, expected: 'expected a rate above zero' };
  return { ok: true, value: { count, periodSeconds, perSecond: count / periodSeconds } };
}

/** "127.0.0.1:9001", "[::1]:9001", "backend.local:80" → host and port. */
export function parseHostPort(input: unknown): Parsed<{ host: string; port: number }> {
  const expected = 'expected "host:port" (IPv6 as "[::1]:port")';
  if (typeof input !== 'string') return { ok: false, expected };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(input.trim());
  if (!m) return { ok: false, expected };
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return { ok: false, expected: 'expected a port between 1 and 65535' };
  return { ok: true, value: { host: m[1] ?? m[2]!, port } };
}
