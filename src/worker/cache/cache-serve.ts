// Writing a stored response to the client: hits, stale answers, answers after a
// revalidation, and 304s to conditional requests. The entry's metadata and body were
// just copied into the worker's scratch buffer by CacheStore.read (see route-cache.ts).
import type { Exchange } from '../exchange.js';
import { statusLine } from '../status-lines.js';
import { noneMatch, parseHttpDate } from './cache-control.js';

/** Metadata lines: tags, vary names, ETag, Last-Modified, then header name/value pairs. */
export const kMetaTags = 0;
export const kMetaVary = 1;
export const kMetaEtag = 2;
export const kMetaLastModified = 3;
export const kMetaHeaders = 4;

/** Header fields a 304 carries from the stored response (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS: ReadonlySet<string> = new Set(['cache-control', 'content-location', 'expires', 'vary', 'etag', 'last-modified']);

/**
 * Whether the client's conditional (If-None-Match, else If-Modified-Since) is satisfied
 * by the stored response, so it gets 304 (RFC 9111 §4.3.2). Only 200 entries answer 304.
 */
export function notModified(status: number, meta: readonly string[], inm: string | null, ims: string | null): boolean {
  if (status !== 200) return false;
  if (inm !== null) return noneMatch(inm, meta[kMetaEtag] || null);
  if (ims === null) return false;
  const lm = parseHttpDate(meta[kMetaLastModified] || null);
  const since = parseHttpDate(ims);
  return !Number.isNaN(lm) && !Number.isNaN(since) && lm <= since;
}

/**
 * Answers from the entry: `meta` its metadata lines, the body at scratch[bodyAt, bodyAt + bodyLen).
 * `age` in seconds; `cacheStatus` the Cache-Status field value (RFC 9211).
 */
export function serveEntry(ex: Exchange, status: number, meta: readonly string[], scratch: Buffer, bodyAt: number, bodyLen: number, age: number, cacheStatus: string, conditional304: boolean): void {
  if (ex.aborted) return;
  const res = ex.res;
  const rt = ex.rt;
  const head = ex.head.method === 'HEAD';
  const out = conditional304 ? 304 : status;
  const close = ex.closeAfter();
  const clientClose = ex.clientClose;
  res.cork(() => {
    res.writeStatus(statusLine(out));
    for (let i = kMetaHeaders; i + 1 < meta.length; i += 2) {
      if (conditional304 && !NOT_MODIFIED_FIELDS.has(meta[i]!)) continue;
      res.writeHeader(meta[i]!, meta[i + 1]!);
    }
    if (meta[kMetaEtag]) res.writeHeader('etag', meta[kMetaEtag]);
    if (meta[kMetaLastModified]) res.writeHeader('last-modified', meta[kMetaLastModified]);
    res.writeHeader('age', String(age));
    res.writeHeader('cache-status', cacheStatus);
    if (rt.viaToken !== null) res.writeHeader('via', rt.viaToken);
    res.writeHeader(rt.requestIdHeader, ex.requestId);
    if (clientClose) res.writeHeader('connection', 'close');
    const extra = ex.responseHeaders;
    for (let i = 0; i < extra.length; i += 2) {
      if (extra[i] === 'cache-status') continue; // ours replaces what the lookup noted
      res.writeHeader(extra[i]!, extra[i + 1]!);
    }
    if (head || out === 304 || out === 204) {
      // See exchange.ts: uWS 20.30's endWithoutBody(n) would wait for n body bytes.
      if (head && out !== 204 && out !== 304) res.writeHeader('content-length', String(bodyLen));
      if (close && !clientClose) res.writeHeader('connection', 'close');
      res.endWithoutBody();
      return;
    }
    res.end(scratch.subarray(bodyAt, bodyAt + bodyLen), close);
  });
  ex.answered(out, head || out === 304 || out === 204 ? 0 : bodyLen);
}
