// RFC 9111 field parsing for the cache: Cache-Control directives (§5.2), HTTP dates
// (RFC 9110 §5.6.7), entity-tag comparison (RFC 9110 §8.8.3.2, §13.1.2). Runs on the
// miss path and for conditional hits; a parse fills a reused object.

export interface Directives {
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  onlyIfCached: boolean;
  /** seconds, -1 when absent */
  maxAge: number;
  sMaxAge: number;
  staleWhileRevalidate: number;
  staleIfError: number;
  /** the value these directives were parsed from (see parseCacheControl) */
  source: string | null;
}

export function newDirectives(): Directives {
  return { noStore: false, noCache: false, private: false, public: false, mustRevalidate: false, proxyRevalidate: false, onlyIfCached: false, maxAge: -1, sMaxAge: -1, staleWhileRevalidate: -1, staleIfError: -1, source: null };
}

function reset(d: Directives): void {
  d.noStore = d.noCache = d.private = d.public = d.mustRevalidate = d.proxyRevalidate = d.onlyIfCached = false;
  d.maxAge = d.sMaxAge = d.staleWhileRevalidate = d.staleIfError = -1;
}

/** delta-seconds (§1.2.2): digits only; an invalid value is -2 (treated as stale, §4.2.1). */
function seconds(v: string): number {
  const t = v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v;
  if (!/^\d{1,10}$/.test(t)) return -2;
  return Math.min(Number(t), 2 ** 31 - 1);
}

/**
 * Parses every Cache-Control value (comma lists, possibly several fields joined by ",")
 * into `d`, each caller's own object. A route's responses nearly all repeat one value,
 * so `d` keeps the value it was parsed from and a repeat is answered as it stands.
 * The list is walked with indexOf: String.prototype.split with a string separator
 * leaves optimised code for a runtime lookup of Symbol.split (measured: the largest
 * part of a parse, ≈ 0.2 µs of a miss).
 */
export function parseCacheControl(value: string | null, d: Directives): Directives {
  if (value === d.source) return d;
  reset(d);
  d.source = value;
  if (value === null) return d;
  for (let from = 0; from <= value.length; ) {
    let end = value.indexOf(',', from);
    if (end < 0) end = value.length;
    directive(value.slice(from, end), d);
    from = end + 1;
  }
  return d;
}

function directive(part: string, d: Directives): void {
  const eq = part.indexOf('=');
  const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
  const arg = eq < 0 ? '' : part.slice(eq + 1).trim();
  switch (name) {
    case 'no-store':
      d.noStore = true;
      break;
    case 'no-cache':
      // With field names (no-cache="set-cookie") it only forbids reusing those fields
      // unvalidated; we do not store partial responses, so it means the same here.
      d.noCache = true;
      break;
    case 'private':
      d.private = true;
      break;
    case 'public':
      d.public = true;
      break;
    case 'must-revalidate':
      d.mustRevalidate = true;
      break;
    case 'proxy-revalidate':
      d.proxyRevalidate = true;
      break;
    case 'only-if-cached':
      d.onlyIfCached = true;
      break;
    case 'max-age':
      // §4.2.1: a cache may treat a response with an invalid max-age as stale
      d.maxAge = d.maxAge === -1 ? Math.max(0, seconds(arg)) : Math.min(d.maxAge, Math.max(0, seconds(arg)));
      break;
    case 's-maxage':
      d.sMaxAge = Math.max(0, seconds(arg));
      break;
    case 'stale-while-revalidate':
      d.staleWhileRevalidate = Math.max(0, seconds(arg));
      break;
    case 'stale-if-error':
      d.staleIfError = Math.max(0, seconds(arg));
      break;
  }
}

// The last value parsed: an upstream's Date changes once a second, so nearly every
// response through a caching route repeats the previous one (Date.parse ≈ 1 µs).
let lastDate = '';
let lastDateMs = NaN;

/** An HTTP-date as ms since the epoch, NaN when invalid (an invalid Expires means already expired, §5.3). */
export function parseHttpDate(v: string | null): number {
  if (v === null) return NaN;
  if (v === lastDate) return lastDateMs;
  lastDateMs = Date.parse(v);
  lastDate = v;
  return lastDateMs;
}

// The upstream's Date as bytes, compared before anything is decoded: a repeat (nearly
// every response) costs a 29-byte loop, not a string and a parse.
const lastDateBytes = Buffer.alloc(64);
let lastDateLen = -1;
let lastDateBytesMs = NaN;

/** parseHttpDate of a field value still in bytes (a view of the response head). */
export function parseHttpDateBytes(b: Buffer | null): number {
  if (b === null) return NaN;
  const n = b.length;
  if (n === lastDateLen) {
    let i = 0;
    while (i < n && b[i] === lastDateBytes[i]) i++;
    if (i === n) return lastDateBytesMs;
  }
  lastDateBytesMs = Date.parse(b.toString('latin1'));
  if (n <= lastDateBytes.length) {
    b.copy(lastDateBytes, 0, 0, n);
    lastDateLen = n;
  } else {
    lastDateLen = -1;
  }
  return lastDateBytesMs;
}

/**
 * If-None-Match against a stored entity-tag, weak comparison (RFC 9110 §13.1.2: a
 * cache answering a GET uses the weak function). `*` matches any stored response.
 */
export function noneMatch(header: string, etag: string | null): boolean {
  if (header.trim() === '*') return true;
  if (etag === null) return false;
  const want = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const t of header.split(',')) {
    const s = t.trim();
    if ((s.startsWith('W/') ? s.slice(2) : s) === want) return true;
  }
  return false;
}

// By status code, a table rather than a Set: every response through a caching route asks.
const kStorable = 1;
const kHeuristic = 2;
const statusKinds = new Uint8Array(1000); // every three-digit status the parser accepts
// Statuses stored at all (with explicit freshness); 206 is not: ranges are not cached.
for (const s of [200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]) statusKinds[s] = kStorable;
// Statuses a cache may store with heuristic freshness (RFC 9110 §15.1).
for (const s of [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]) statusKinds[s] = statusKinds[s]! | kHeuristic;

/** Whether a response of `status` may be stored at all (with explicit freshness). */
export function storableStatus(status: number): boolean {
  return (statusKinds[status]! & kStorable) !== 0;
}

/** Whether a response of `status` may be stored with heuristic freshness. */
export function heuristicStatus(status: number): boolean {
  return (statusKinds[status]! & kHeuristic) !== 0;
}
