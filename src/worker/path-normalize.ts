// Path normalisation before routing (RFC 3986 §6.2.2 and §5.2.4), so that a
// route-scoped policy cannot be bypassed by spelling the same resource differently:
// `/public/../admin`, `/public/%2e%2e/admin` and `/admin` are one path here, as they
// are to any upstream that normalises (Envoy `normalize_path`, nginx's merge of
// `..` before location matching). What routing, policies and the upstream see is the
// result of this function.
//
// Always on: percent-encoded unreserved characters are decoded (%41 → A, %2e → .),
// the hex of every other percent-encoding is upper-cased, and dot segments are
// removed. `%00` and malformed percent-encodings are refused.
// Configurable: merging of repeated slashes, and what to do with %2F / %5C (an
// escaped slash that a backend may or may not treat as a separator).
import { Errors, type ErrorSpec } from '../errors.js';

export type EscapedSlashes = 'keep' | 'reject' | 'decode';

export interface PathOptions {
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashes;
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~"
function unreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === DOT || c === 0x5f || c === 0x7e;
}

const HEX = '0123456789ABCDEF';

/**
 * Returns the normalised path, or the error to answer with. Most paths need no work:
 * one scan finds that out without allocating.
 */
export function normalizePath(path: string, opts: PathOptions): string | ErrorSpec {
  if (!needsWork(path, opts.mergeSlashes)) return path;
  let decoded = '';
  let changed = false;
  let runStart = 0;
  for (let i = 0; i < path.length; i++) {
    if (path.charCodeAt(i) !== PERCENT) continue;
    const hi = i + 2 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hexValue(path.charCodeAt(i + 2)) : -1;
    if (lo < 0) return Errors.PATH_INVALID_ENCODING;
    const byte = hi * 16 + lo;
    if (byte === 0) return Errors.PATH_NUL;
    let replacement: string;
    if (byte === SLASH || byte === BACKSLASH) {
      if (opts.escapedSlashes === 'reject') return Errors.PATH_ESCAPED_SLASH;
      replacement = opts.escapedSlashes === 'decode' ? String.fromCharCode(byte) : `%${HEX[hi]}${HEX[lo]}`;
    } else if (unreserved(byte)) {
      replacement = String.fromCharCode(byte);
    } else {
      replacement = `%${HEX[hi]}${HEX[lo]}`;
    }
    if (replacement !== path.slice(i, i + 3)) changed = true;
    decoded += path.slice(runStart, i) + replacement;
    i += 2;
    runStart = i + 1;
  }
  let p = changed ? decoded + path.slice(runStart) : path;
  if (opts.mergeSlashes) p = p.replace(/\/{2,}/g, '/');
  return removeDotSegments(p);
}

/** Whether the path holds a percent sign, a dot segment, or (when merging) a double slash. */
function needsWork(path: string, mergeSlashes: boolean): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) return true;
    if (c === SLASH && i + 1 < path.length) {
      const n = path.charCodeAt(i + 1);
      if (n === DOT) return true;
      if (n === SLASH && mergeSlashes) return true;
    }
  }
  return false;
}

/**
 * RFC 3986 §5.2.4 on an absolute path, segment by segment. A `..` above the root
 * stays at the root, as the RFC's algorithm does; a trailing `.` or `..` leaves a
 * trailing slash ("/a/b/.." → "/a/").
 */
export function removeDotSegments(path: string): string {
  const segments = path.split('/'); // path starts with "/", so segments[0] === ''
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '.') {
      trailingSlash = last;
    } else if (s === '..') {
      out.pop();
      trailingSlash = last;
    } else {
      out.push(s);
      trailingSlash = false;
    }
  }
  const joined = '/' + out.join('/');
  return trailingSlash && joined.length > 1 ? joined + '/' : joined;
}
