// Writing a stored response to the client: hits, stale answers, answers after a
// revalidation, and 304s to conditional requests. CacheStore.lookupShared found the
// entry inside a read section (see route-cache.ts): the metadata is copied and decoded
// once per entry version and worker (StoredHead), and the body goes to uWS as a view of
// the arena when its chunks are one run (uWS copies or sends it before end() returns,
// inside the section), else copied into the worker's scratch buffer.
import type { Exchange } from '../exchange.js';
import { statusLine } from '../status-lines.js';
import { noneMatch, parseHttpDate } from './cache-control.js';
import type { CacheStore, HeldHeads } from '../../shm/cache-store.js';

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

/** Worker-side decoded heads: a direct-mapped table by record index (a collision only costs a decode). */
const kHeadSlots = 4096;

/**
 * One entry version's metadata, decoded once per worker and shared by its hits: the
 * lines, the status line with the stored header fields serialised for one writeStatus
 * call, and the Age and Cache-Status values while they stay the same. A version is a
 * record's seqlock word: every change to a record moves it (and it never goes back), and
 * a hit's copy was checked against it, so a head found under the same record and word
 * was decoded from the same bytes.
 */
export class StoredHead {
  readonly record: number;
  readonly seq: number;
  readonly meta: readonly string[];
  /** the body in the arena, when its chunks are one run (only used inside a read section) */
  readonly arena: Buffer | null;
  /** `${status line}\r\n${name}: ${value}…` of the full answer, built at the first one */
  private block: Buffer | null = null;
  /** the same for a 304 to a conditional request: the fields RFC 9110 §15.4.5 names */
  private block304: Buffer | null = null;
  private copied: Buffer | null = null;
  private ageSeconds = -1;
  private ageValue = '';
  private statusTtl = Number.NaN;
  private statusValue = '';

  constructor(record: number, seq: number, meta: readonly string[], arena: Buffer | null) {
    this.record = record;
    this.seq = seq;
    this.meta = meta;
    this.arena = arena;
  }

  /** What writeStatus writes for a full answer with `status`: the status line and every stored field, ETag and Last-Modified last. */
  headBlock(status: number): Buffer {
    return (this.block ??= this.serialise(status, null));
  }

  /**
   * The body of the answer lookupShared() just read: the arena's bytes, or those it
   * copied into `scratch` (every hit of this version copies them to the same offset, so
   * the view is kept for the next hit instead of one per answer).
   */
  body(st: CacheStore, scratch: Buffer): Buffer {
    return this.arena ?? this.bodyView(scratch, st.metaAt + st.metaLen, st.bodyLen);
  }

  bodyView(scratch: Buffer, at: number, len: number): Buffer {
    const v = this.copied;
    if (v !== null && v.buffer === scratch.buffer && v.byteOffset === scratch.byteOffset + at && v.length === len) return v;
    this.copied = scratch.subarray(at, at + len);
    return this.copied;
  }

  /** What writeStatus writes for a 304: the status line and the stored fields a 304 carries. */
  notModifiedBlock(): Buffer {
    return (this.block304 ??= this.serialise(304, NOT_MODIFIED_FIELDS));
  }

  /** `${status line}\r\n${name}: ${value}…` of the stored fields (those in `only`, if given), ETag and Last-Modified last. */
  private serialise(status: number, only: ReadonlySet<string> | null): Buffer {
    const meta = this.meta;
    let s = statusLine(status);
    for (let i = kMetaHeaders; i + 1 < meta.length; i += 2) if (only === null || only.has(meta[i]!)) s += `\r\n${meta[i]}: ${meta[i + 1]}`;
    if (meta[kMetaEtag]) s += `\r\netag: ${meta[kMetaEtag]}`;
    if (meta[kMetaLastModified]) s += `\r\nlast-modified: ${meta[kMetaLastModified]}`;
    // latin1: the stored fields are the upstream's bytes one char each (obs-text
    // included), so they go out exactly as they came in, as on a miss.
    return Buffer.from(s, 'latin1');
  }

  age(seconds: number): string {
    if (seconds !== this.ageSeconds) {
      this.ageSeconds = seconds;
      this.ageValue = String(seconds);
    }
    return this.ageValue;
  }

  /** The Cache-Status value of a fresh hit with `ttl` seconds left (RFC 9211). */
  hitStatus(ttl: number): string {
    if (ttl !== this.statusTtl) {
      this.statusTtl = ttl;
      this.statusValue = `tidegate; hit; ttl=${ttl}`;
    }
    return this.statusValue;
  }
}

let headsOf: CacheStore | null = null;
const heads: (StoredHead | null)[] = new Array<StoredHead | null>(kHeadSlots).fill(null);

/** This worker's decoded heads, as CacheStore.lookupShared asks after them. */
export const heldHeads: HeldHeads = {
  held(r: number, seq: number): number {
    const h = heads[r & (kHeadSlots - 1)]!;
    if (h === null || h.record !== r || h.seq !== seq) return 0;
    return h.arena !== null ? 1 : 2;
  },
};

/**
 * The head of the entry the last CacheStore.lookupShared() read (record `r`, at the
 * store's `seq`): this worker's decoded one when it has it, else decoded from what the
 * lookup copied into `scratch` and kept.
 */
export function storedHead(st: CacheStore, r: number, scratch: Buffer): StoredHead {
  if (headsOf !== st) {
    heads.fill(null);
    headsOf = st;
  }
  const slot = r & (kHeadSlots - 1);
  const h = heads[slot]!;
  if (h !== null && h.record === r && h.seq === st.seq) return h;
  const arena = st.bodyAt >= 0 ? st.bytes.subarray(st.bodyAt, st.bodyAt + st.bodyLen) : null;
  const n = new StoredHead(r, st.seq, scratch.toString('latin1', st.metaAt, st.metaAt + st.metaLen).split('\n'), arena);
  heads[slot] = n;
  return n;
}

/** Where answerHead() writes; grown when a stored head does not fit. */
let headOut = Buffer.allocUnsafe(8192);

/**
 * `block` (status line and stored fields, see StoredHead.headBlock) followed by Age,
 * Cache-Status, Via, the request id and Connection, as writeStatus writes them (uWS puts
 * the CRLF after). Our values are ASCII (the request id was checked, or is a UUID).
 */
export function answerHead(block: Buffer, age: string, cacheStatus: string, via: string | null, idName: string, id: string, close: boolean): Buffer {
  // Hits of one entry within a second differ only in the request id: what comes before
  // it is still in headOut from the last answer, so only the id is written. Building and
  // encoding the whole tail was about 2 % of a hit's CPU (perf).
  let at: number;
  if (block === lastBlock && age === lastAge && cacheStatus === lastCacheStatus && via === lastVia && idName === lastIdName) at = idAt;
  else {
    let tail = `\r\nage: ${age}\r\ncache-status: ${cacheStatus}`;
    if (via !== null) tail += `\r\nvia: ${via}`;
    tail += `\r\n${idName}: `;
    const need = block.length + tail.length + kIdRoom;
    if (need > headOut.length) headOut = Buffer.allocUnsafe(Math.max(need, 2 * headOut.length));
    block.copy(headOut, 0);
    at = idAt = block.length + headOut.write(tail, block.length, 'latin1');
    lastBlock = block;
    lastAge = age;
    lastCacheStatus = cacheStatus;
    lastVia = via;
    lastIdName = idName;
  }
  if (at + id.length + kCloseField.length > headOut.length) {
    const grown = Buffer.allocUnsafe(2 * (at + id.length + kCloseField.length));
    headOut.copy(grown, 0, 0, at);
    headOut = grown;
  }
  let n = at + headOut.write(id, at, 'latin1');
  if (close) n += headOut.write(kCloseField, n, 'latin1');
  return headOut.subarray(0, n);
}

const kCloseField = '\r\nconnection: close';
/** room left after the tail for a request id as tidegate makes them (a UUID; longer ones grow headOut) */
const kIdRoom = 64;
// what headOut holds up to idAt (see answerHead)
let lastBlock: Buffer | null = null;
let lastAge = '';
let lastCacheStatus = '';
let lastVia: string | null = null;
let lastIdName = '';
let idAt = 0;

// One response being written (serveEntry's arguments), so that writing it inside
// res.cork needs no closure per answer.
let wEx: Exchange | null = null;
let wHead: StoredHead | null = null;
let wStatus = 0;
let wOut = 0;
let wBody: Buffer | null = null;
let wAge = 0;
let wCacheStatus = '';
let wConditional = false;

/**
 * Answers from the entry: `head` its decoded metadata, `body` its body (see
 * StoredHead.body: inside the read section it was found in). `age` in seconds;
 * `cacheStatus` the Cache-Status field value (RFC 9211). `corked`: called synchronously
 * from the uWS request handler, where uWS has corked the socket already (everything
 * written goes out in one send when the handler returns), so no res.cork.
 */
export function serveEntry(ex: Exchange, status: number, head: StoredHead, body: Buffer, age: number, cacheStatus: string, conditional304: boolean, corked: boolean): void {
  if (ex.aborted) return;
  const out = conditional304 ? 304 : status;
  const bodyLen = body.length;
  wEx = ex;
  wHead = head;
  wStatus = status;
  wOut = out;
  wBody = body;
  wAge = age;
  wCacheStatus = cacheStatus;
  wConditional = conditional304;
  try {
    if (corked) writeEntry();
    else ex.res.cork(writeEntry);
  } finally {
    wEx = null;
    wHead = null;
    wBody = null;
  }
  ex.answered(out, ex.head.method === 'HEAD' || out === 304 || out === 204 ? 0 : bodyLen);
}

function writeEntry(): void {
  const ex = wEx!;
  const h = wHead!;
  const res = ex.res;
  const rt = ex.rt;
  const out = wOut;
  const headOnly = ex.head.method === 'HEAD';
  const close = ex.closeAfter();
  const clientClose = ex.clientClose;
  // The stored block and this answer's own fields in one writeStatus call: each
  // writeHeader turns its two JS strings into UTF-8 with a malloc apiece inside uWS.
  const block = wConditional ? h.notModifiedBlock() : h.headBlock(wStatus);
  res.writeStatus(answerHead(block, h.age(wAge), wCacheStatus, rt.viaToken, rt.requestIdHeader, ex.requestId, clientClose));
  const extra = ex.responseHeaders;
  for (let i = 0; i < extra.length; i += 2) {
    if (extra[i] === 'cache-status') continue; // ours replaces what the lookup noted
    res.writeHeader(extra[i]!, extra[i + 1]!);
  }
  if (headOnly || out === 304 || out === 204) {
    // See exchange.ts: uWS 20.30's endWithoutBody(n) would wait for n body bytes.
    if (headOnly && out !== 204 && out !== 304) res.writeHeader('content-length', String(wBody!.length));
    if (close && !clientClose) res.writeHeader('connection', 'close');
    res.endWithoutBody();
    return;
  }
  res.end(wBody!, close);
}
