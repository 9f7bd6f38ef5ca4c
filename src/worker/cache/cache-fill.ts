// What the cache does with an upstream response (RFC 9111 §3, §4.2, §4.3.3, §4.4):
// decide whether it may be stored, compute its freshness (explicit, or the adaptive
// heuristic lifetime), collect its body while the exchange streams it to the client,
// and publish it — waking every request that waits for this key — or refresh a stale
// entry on a 304, or answer from the stale entry when the upstream fails.
import type { CacheStore } from '../../shm/cache-store.js';
import { newEntryFields, type EntryFields } from '../../shm/cache-store.js';
import { CacheResult, RecordFlag, kCacheInvalidatedField, kCacheTooLargeField, kCacheTtlGrewField, kCacheTtlShrankField } from '../../shm/cache-layout.js';
import type { Exchange } from '../exchange.js';
import { Errors } from '../../errors.js';
import { heuristicStatus, storableStatus, newDirectives, parseCacheControl, parseHttpDate, parseHttpDateBytes } from './cache-control.js';
import { addConnectionTokens, fieldIs, type ResponseFields } from '../response-fields.js';
import { HeadVerdict, type CacheHook } from './cache-hook.js';
import { heldHeads, notModified, serveEntry, storedHead } from './cache-serve.js';
import type { RequestFacts, RouteCache } from './route-cache.js';
import { variantKey } from './route-cache.js';
import { cacheScratch, kMaxMetaBytes } from './worker-cache.js';

/** The stored entry a request found stale (for revalidation, stale-if-error, stale-if-busy). */
export interface StaleEntry {
  /** the key it is stored under (the variant key for a Vary variant) */
  readonly key: string;
  readonly record: number;
  readonly seq: number;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** the adaptive heuristic lifetime it was stored with (0: explicit freshness) */
  readonly heuristic: number;
  readonly freshUntil: number;
  /** 0 when it may not be served stale at all */
  readonly sieUntil: number;
  readonly status: number;
  readonly flags: number;
}

const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection', 'transfer-encoding', 'via', 'date', 'age', 'content-length', 'etag', 'last-modified']);

const NO_FIELDS: Readonly<ResponseFields> = { respHeaders: null, respVia: null, total: -1, respDate: null };

/**
 * The response fields the cache reads, and the ones it stores, from one pass over the
 * head. One per worker is filled for each response (onHead is synchronous); a fill
 * that collects the body keeps a copy (most responses through a caching route are not
 * collected).
 */
class ResponseFacts {
  // Every field is set by reset(), the one list of their starting values.
  cacheControl!: string | null;
  expires!: string | null;
  age!: number;
  etag!: string;
  lastModified!: string;
  vary!: string;
  setCookie!: boolean;
  tags!: string;
  /** Content-Length as the request path read it, -1 when absent */
  contentLength!: number;
  /** the upstream's Date: a view of the head, decoded only for freshness */
  date!: Buffer | null;
  /** the upstream's head fields: views of the head's own copy (response-parser.ts), valid while the fill lives */
  private raw!: readonly Buffer[];
  private stripSetCookie!: boolean;

  constructor() {
    this.reset([], false, NO_FIELDS);
  }

  reset(raw: readonly Buffer[], stripSetCookie: boolean, fields: Readonly<ResponseFields>): this {
    this.cacheControl = null;
    this.expires = null;
    this.age = 0;
    this.etag = '';
    this.lastModified = '';
    this.vary = '';
    this.setCookie = false;
    this.tags = '';
    this.contentLength = fields.total;
    this.date = fields.respDate;
    this.raw = raw;
    this.stripSetCookie = stripSetCookie;
    return this;
  }

  copy(): ResponseFacts {
    return Object.assign(new ResponseFacts(), this);
  }

  /**
   * The name/value pairs an entry stores: end-to-end fields, less those the entry
   * keeps apart (ETag, Last-Modified, tags). Built only for a response that is stored:
   * most responses through a caching route are not (uncacheable, or hits elsewhere).
   */
  storedFields(): string[] {
    const out: string[] = [];
    const raw = this.raw;
    // Fields Connection names are hop-by-hop too (read here: few responses are stored).
    let listed: Set<string> | null = null;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (fieldIs(raw[i]!, 'connection')) addConnectionTokens(raw[i + 1]!, (listed ??= new Set()));
    }
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1').toLowerCase();
      if (HOP_BY_HOP.has(name) || NOT_STORED.has(name) || (name === 'set-cookie' && this.stripSetCookie)) continue;
      if (listed !== null && listed.has(name)) continue;
      out.push(name, raw[i + 1]!.toString('latin1'));
    }
    return out;
  }
}

/** Fields the entry keeps elsewhere (tags) or never passes to clients. */
const NOT_STORED: ReadonlySet<string> = new Set(['cache-tag', 'surrogate-key']);

const enum Field {
  Other,
  CacheControl,
  Expires,
  Age,
  Etag,
  LastModified,
  Vary,
  SetCookie,
  CacheTag,
  SurrogateKey,
}

/**
 * Which field a name is, from its bytes: most names of a response are none of these
 * and are never decoded. Framing and Date come read already (ResponseFields).
 */
function fieldOf(b: Buffer): Field {
  switch (b.length) {
    case 3:
      return fieldIs(b, 'age') ? Field.Age : Field.Other;
    case 4:
      return fieldIs(b, 'etag') ? Field.Etag : fieldIs(b, 'vary') ? Field.Vary : Field.Other;
    case 7:
      return fieldIs(b, 'expires') ? Field.Expires : Field.Other;
    case 9:
      return fieldIs(b, 'cache-tag') ? Field.CacheTag : Field.Other;
    case 10:
      return fieldIs(b, 'set-cookie') ? Field.SetCookie : Field.Other;
    case 13:
      return fieldIs(b, 'cache-control') ? Field.CacheControl : fieldIs(b, 'last-modified') ? Field.LastModified : fieldIs(b, 'surrogate-key') ? Field.SurrogateKey : Field.Other;
    default:
      return Field.Other;
  }
}

/**
 * One pass over the head for the fields the cache decides by. Names are matched as
 * bytes and only those fields' values are decoded: a caching route sees many responses
 * it does not store, and decoding every field of each was a measurable part of a miss.
 */
const respFacts = new ResponseFacts();

function readResponse(raw: readonly Buffer[], stripSetCookie: boolean, fields: Readonly<ResponseFields>): ResponseFacts {
  const p = respFacts.reset(raw, stripSetCookie, fields);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const f = fieldOf(raw[i]!);
    if (f === Field.Other) continue;
    const value = raw[i + 1]!.toString('latin1');
    switch (f) {
      case Field.CacheControl:
        p.cacheControl = p.cacheControl === null ? value : `${p.cacheControl},${value}`;
        break;
      case Field.Expires:
        p.expires = value;
        break;
      case Field.Age: {
        const n = Number(value);
        p.age = Number.isFinite(n) && n > 0 ? n : 0;
        break;
      }
      case Field.Etag:
        p.etag = value;
        break;
      case Field.LastModified:
        p.lastModified = value;
        break;
      case Field.Vary:
        p.vary = p.vary.length === 0 ? value : `${p.vary},${value}`;
        break;
      case Field.SetCookie:
        p.setCookie = true;
        break;
      case Field.CacheTag:
        p.tags += ` ${value.replace(/,/g, ' ')}`;
        break;
      case Field.SurrogateKey:
        p.tags += ` ${value}`;
        break;
    }
  }
  if (p.tags.length > 0) p.tags = p.tags.trim().replace(/\s+/g, ' ');
  return p;
}

const enum Mode {
  Forward = 0,
  Collect = 1,
  Revalidated = 2,
  StaleIfError = 3,
}

const MAX_ENTRY_MS = 10 * 365 * 24 * 3600 * 1000;
/**
 * How long a key whose response was not storable is passed (no coalescing, no fill).
 * Long enough that a hot uncacheable URL is not serialised behind one request at a
 * time, short enough that a URL which becomes cacheable is stored again soon
 * (Varnish: 120 s).
 */
const HIT_FOR_PASS_MS = 10_000;

const STORED = '';
// Cache-Status values a fill sends, by fwd, outcome (a refusal, or stored) and status:
// a handful of distinct strings, otherwise built anew for every response of a caching
// route. Keyed by the (constant) strings themselves, so nothing is built to look one up.
const fillStatusMemo = new Map<string, Map<string, string[]>>();

function fillStatus(fwd: string, why: string, status: number): string {
  let byWhy = fillStatusMemo.get(fwd);
  if (byWhy === undefined) fillStatusMemo.set(fwd, (byWhy = new Map()));
  let byStatus = byWhy.get(why);
  if (byStatus === undefined) byWhy.set(why, (byStatus = []));
  return (byStatus[status - 100] ??= `tidegate; fwd=${fwd}; fwd-status=${status}; ${why === STORED ? 'stored' : `detail=${why}`}`);
}

/** The response's Cache-Control, parsed in onHead and read only there (synchronous): one per worker. */
const respCc = newDirectives();

export class CacheFill implements CacheHook {
  private mode = Mode.Forward;
  private chunks: Buffer[] | null = null;
  private bytes = 0;
  private fields: EntryFields | null = null;
  private resp: ResponseFacts | null = null;
  private readonly st: CacheStore;

  constructor(
    private readonly rc: RouteCache,
    /** null for a background refresh (no client waits on it) */
    private readonly ex: Exchange | null,
    private readonly key: string,
    private readonly hA: number,
    private readonly hB: number,
    /** the reservation (Filling record) this request holds, -1 none */
    private reserved: number,
    private readonly token: number,
    private readonly stale: StaleEntry | null,
    private readonly facts: RequestFacts,
    /** Cache-Status fwd value: uri-miss, vary-miss, stale, request */
    private readonly fwd: string,
    /** the Vary marker the lookup found (names, id), or null */
    private readonly varyNames: string | null,
    private readonly markerId: string,
    /**
     * false when admission refused the key's reservation (every record in use, the
     * CLOCK's victim as frequent): its response is not collected, since the store would
     * refuse it again (on a stream of one-time URLs into a full cache, collecting and
     * offering each response cost more than the rest of the miss)
     */
    private readonly admitted = true,
    private readonly requestHeaders: readonly string[] = ex === null ? [] : ex.head.headers,
  ) {
    this.st = rc.store;
  }

  /**
   * Forwarded fields for a fill: the client's own validators are dropped, so the
   * upstream sends a whole response to store (the client's conditional is answered
   * from the entry later, RFC 9111 §4.3.2); a stale entry's validators are sent instead.
   */
  prepareRequest(headers: string[]): void {
    for (let i = headers.length - 2; i >= 2; i -= 2) {
      if (headers[i] === 'if-none-match' || headers[i] === 'if-modified-since') headers.splice(i, 2);
    }
    const s = this.stale;
    if (s === null) return;
    if (s.etag !== null) headers.push('if-none-match', s.etag);
    if (s.lastModified !== null) headers.push('if-modified-since', s.lastModified);
  }

  private status(value: string): void {
    this.ex?.responseHeaders.push('cache-status', value);
  }

  private count(result: CacheResult): void {
    if (this.ex !== null) this.rc.count(result);
  }

  onHead(status: number, rawHeaders: readonly Buffer[], read: Readonly<ResponseFields>): HeadVerdict {
    const now = Date.now();
    const cfg = this.rc.cfg;
    const p = readResponse(rawHeaders, cfg.stripSetCookie, read);
    const s = this.stale;
    if (status === 304 && s !== null) {
      // RFC 9111 §4.3.4: the stored response is fresh again, with the 304's freshness.
      const f = this.freshness(s.status, p, now, true);
      f.flags = (f.flags & ~RecordFlag.Marker) | (s.flags & RecordFlag.Validator);
      const ok = this.st.refresh(s.record, s.seq, f);
      this.releaseReservation();
      if (!ok) {
        this.status(`tidegate; fwd=stale; fwd-status=304; detail=entry-changed`);
        return HeadVerdict.Pass;
      }
      this.count(CacheResult.Revalidated);
      this.mode = Mode.Revalidated;
      return HeadVerdict.Absorb;
    }
    if (status >= 500 && s !== null && now < s.sieUntil && this.ex !== null) {
      this.releaseReservation();
      this.mode = Mode.StaleIfError;
      return HeadVerdict.Absorb;
    }
    // Freshness is computed only for a response nothing else refuses; a route that
    // stores only what the upstream gives a lifetime (ttl.default 0, no stale windows)
    // refuses a response without one before anything else.
    let why = this.neverFresh(status, p) ? 'no-freshness' : this.refusal(status, p);
    if (why === null) {
      const fields = this.freshness(status, p, now, false);
      why = this.unfresh(status, p, fields);
      if (why === null) return this.collect(status, p, fields);
    }
    // The waiters wake now and go upstream themselves, and so do later requests for a
    // while, without waiting on a fill (see RecordFlag.Uncacheable).
    this.markUncacheable(status, now);
    if (s !== null && this.ex === null) this.st.endRefresh(s.record);
    this.status(fillStatus(this.fwd, why, status));
    this.count(CacheResult.Uncacheable);
    return HeadVerdict.Pass;
  }

  /** A storable response: its body is collected, unless admission refused the key. */
  private collect(status: number, p: ResponseFacts, fields: EntryFields): HeadVerdict {
    // (A stale entry's replacement frees the old one: it is offered whatever the sketch says.)
    if (!this.admitted && this.stale === null) {
      this.status(fillStatus(this.fwd, 'not-admitted', status));
      this.count(CacheResult.Miss);
      return HeadVerdict.Pass;
    }
    this.mode = Mode.Collect;
    this.fields = fields;
    this.resp = p.copy();
    this.chunks = [];
    // XXX: said before the body is read; a body of unknown length that grows past
    // maxObjectSize (or loses admission) is then not stored after all.
    this.status(fillStatus(this.fwd, STORED, status));
    this.count(CacheResult.Miss);
    return HeadVerdict.Pass;
  }

  /**
   * True when the response could only be refused for want of freshness, whatever its
   * Date: no explicit lifetime, a heuristic one of 0 (ttl.default 0, no entry to adapt
   * from), no validator, and no stale window on the route. Storable statuses only, so
   * that the refusal's reason is the one refusal() and unfresh() would give.
   */
  private neverFresh(status: number, p: ResponseFacts): boolean {
    const cfg = this.rc.cfg;
    if (cfg.ttlDefault !== 0 || this.stale !== null || cfg.staleWhileRevalidate !== 0 || cfg.staleIfError !== 0 || cfg.staleIfBusy !== 0) return false;
    if (p.cacheControl !== null || p.expires !== null || p.etag.length > 0 || p.lastModified.length > 0) return false;
    return storableStatus(status) && !this.facts.authorization && !p.setCookie && p.vary.trim() !== '*' && !(p.contentLength > this.st.maxObjectSize);
  }

  /**
   * Why the response may not be stored whatever its freshness, or null (RFC 9111 §3,
   * plus the route's Set-Cookie rule); unfresh() says the rest.
   */
  private refusal(status: number, p: ResponseFacts): string | null {
    const cc = parseCacheControl(p.cacheControl, respCc);
    if (!storableStatus(status)) return 'status';
    if (cc.noStore) return 'no-store';
    if (cc.private) return 'private';
    // §3.5: a response to an authorised request only with public, s-maxage or must-revalidate.
    if (this.facts.authorization && !cc.public && cc.sMaxAge < 0 && !cc.mustRevalidate) return 'authorization';
    if (p.setCookie && !this.rc.cfg.stripSetCookie) return 'set-cookie';
    if (p.vary.trim() === '*') return 'vary-star';
    if (p.contentLength > this.st.maxObjectSize) {
      this.st.count(kCacheTooLargeField);
      return 'too-large';
    }
    return null;
  }

  /** 'no-freshness' when the response has no lifetime, validator or stale window to be stored for. */
  private unfresh(status: number, p: ResponseFacts, f: EntryFields): string | null {
    const cc = respCc; // parsed by refusal()
    const explicit = cc.sMaxAge >= 0 || cc.maxAge >= 0 || p.expires !== null;
    if (!explicit && !heuristicStatus(status) && !cc.public) return 'no-freshness';
    if (f.freshUntil <= f.bornAt && (f.flags & RecordFlag.Validator) === 0 && f.swrUntil <= f.freshUntil && f.sieUntil <= f.freshUntil) return 'no-freshness';
    return null;
  }

  /** RFC 9111 §4.2: age at receipt, freshness lifetime (explicit or adaptive heuristic), stale windows. */
  private freshness(status: number, p: ResponseFacts, now: number, revalidated: boolean): EntryFields {
    const cfg = this.rc.cfg;
    const cc = parseCacheControl(p.cacheControl, respCc);
    const f = newEntryFields();
    f.status = status;
    let date = parseHttpDateBytes(p.date);
    if (Number.isNaN(date)) date = now;
    const initialAge = Math.max(now - date, p.age * 1000, 0);
    f.bornAt = now - initialAge;
    let lifetime: number;
    if (cc.sMaxAge >= 0) {
      lifetime = cc.sMaxAge * 1000;
      f.flags |= RecordFlag.NoStale; // §5.2.2.10: s-maxage implies proxy-revalidate
    } else if (cc.maxAge >= 0) {
      lifetime = cc.maxAge * 1000;
    } else if (p.expires !== null) {
      const e = parseHttpDate(p.expires);
      lifetime = Number.isNaN(e) ? 0 : Math.max(0, e - date); // §5.3: an invalid Expires is in the past
    } else {
      f.heuristic = this.heuristic(p, revalidated);
      lifetime = f.heuristic;
    }
    lifetime = Math.min(lifetime, MAX_ENTRY_MS);
    if (cc.mustRevalidate || cc.proxyRevalidate) f.flags |= RecordFlag.NoStale;
    if (cc.noCache) f.flags |= RecordFlag.NoCache;
    if (p.etag.length > 0 || p.lastModified.length > 0) f.flags |= RecordFlag.Validator;
    f.freshUntil = f.bornAt + lifetime;
    if ((f.flags & RecordFlag.NoStale) === 0) {
      const swr = cc.staleWhileRevalidate >= 0 ? Math.min(cc.staleWhileRevalidate * 1000, cfg.staleWhileRevalidate) : cfg.staleWhileRevalidate;
      const sie = cc.staleIfError >= 0 ? Math.min(cc.staleIfError * 1000, cfg.staleIfError) : cfg.staleIfError;
      f.swrUntil = f.freshUntil + swr;
      f.sieUntil = f.freshUntil + Math.max(sie, cfg.staleIfBusy);
    } else {
      f.swrUntil = f.sieUntil = f.freshUntil;
    }
    return f;
  }

  /**
   * The adaptive heuristic lifetime (no explicit freshness): doubles while the upstream
   * confirms the entry unchanged (a 304, or the same validator again), halves when the
   * content changed, within the route's ttl.min..ttl.max.
   */
  private heuristic(p: ResponseFacts, revalidated: boolean): number {
    const cfg = this.rc.cfg;
    const s = this.stale;
    const clamp = (v: number): number => Math.min(cfg.ttlMax, Math.max(cfg.ttlMin, v));
    if (s === null || s.heuristic <= 0) return cfg.ttlDefault === 0 ? 0 : clamp(cfg.ttlDefault);
    const unchanged = revalidated || (p.etag.length > 0 && p.etag === s.etag) || (p.etag.length === 0 && p.lastModified.length > 0 && p.lastModified === s.lastModified);
    const next = clamp(unchanged ? s.heuristic * 2 : s.heuristic / 2);
    if (next > s.heuristic) this.st.count(kCacheTtlGrewField);
    else if (next < s.heuristic) this.st.count(kCacheTtlShrankField);
    return next;
  }

  onBody(chunk: Buffer): void {
    if (this.mode !== Mode.Collect) return;
    this.bytes += chunk.length;
    if (this.bytes > this.st.maxObjectSize) {
      // Unknown length that grew past the limit: it streams on, uncached, unbuffered.
      this.st.count(kCacheTooLargeField);
      this.mode = Mode.Forward;
      this.chunks = null;
      this.releaseReservation();
      return;
    }
    // a view of the upstream read buffer, reused by the next read (upstream-handler.ts)
    this.chunks!.push(Buffer.from(chunk));
    // The last byte of a known length (the parser has checked that nothing follows it):
    // stored now, before the exchange writes it, so a request that the client sends
    // once it has the whole response finds the entry on any worker.
    if (this.bytes === this.resp!.contentLength) {
      this.mode = Mode.Forward;
      this.publish();
    }
  }

  onComplete(): void {
    if (this.mode === Mode.Revalidated) {
      if (!this.serveStored(`tidegate; fwd=stale; fwd-status=304`)) this.ex?.fail(Errors.INTERNAL, false);
      return;
    }
    if (this.mode === Mode.StaleIfError) {
      this.count(CacheResult.Stale);
      this.serveStored(null);
      return;
    }
    if (this.mode !== Mode.Collect) return;
    this.mode = Mode.Forward;
    this.publish();
  }

  private publish(): void {
    const st = this.st;
    const p = this.resp!;
    const f = this.fields!;
    const meta = buildMeta(p);
    if (meta.length > kMaxMetaBytes) {
      this.releaseReservation();
      return;
    }
    const freq = this.rc.admission ? st.frequency(this.hA, this.hB) : -1;
    const names = normaliseVary(p.vary);
    if (names.length === 0) {
      st.publish(this.reserved, this.token, this.key, this.hA, this.hB, meta, this.chunks, this.bytes, f, freq);
      this.reserved = -1;
      return;
    }
    // Vary: the variant under its secondary key first, then the marker under the
    // primary key (with this request's reservation, which wakes the waiters: they find
    // the marker and then, if their fields match, the variant).
    const reuse = this.varyNames === names && this.markerId.length > 0;
    const id = reuse ? this.markerId : String(st.newToken());
    const vk = variantKey(this.key, id, names, this.requestHeaders);
    st.hash(vk);
    st.publish(-1, 0, vk, st.hA, st.hB, meta, this.chunks, this.bytes, f, freq);
    if (reuse) {
      this.releaseReservation();
      return;
    }
    const mf = newEntryFields();
    mf.flags = RecordFlag.Marker;
    mf.status = f.status;
    mf.bornAt = f.bornAt;
    mf.freshUntil = mf.swrUntil = mf.sieUntil = f.bornAt + MAX_ENTRY_MS;
    st.publish(this.reserved, this.token, this.key, this.hA, this.hB, `${id}\n${names}`, null, 0, mf, freq);
    this.reserved = -1;
  }

  onFailure(): boolean {
    this.releaseReservation();
    const s = this.stale;
    if (s === null || this.ex === null || !(Date.now() < s.sieUntil)) return false;
    this.count(CacheResult.Stale);
    return this.serveStored(null);
  }

  onRefused(busy: boolean): boolean {
    this.releaseReservation();
    const s = this.stale;
    if (s === null || this.ex === null || s.sieUntil === 0) return false;
    const now = Date.now();
    const cfg = this.rc.cfg;
    const until = busy ? s.freshUntil + cfg.staleIfBusy : s.freshUntil + cfg.staleIfError;
    if (!(now < until) || !(now < s.sieUntil)) return false;
    this.count(busy ? CacheResult.StaleIfBusy : CacheResult.Stale);
    return this.serveStored(null, busy ? 'stale-if-busy' : 'stale-if-error');
  }

  onFinish(): void {
    this.releaseReservation();
    this.chunks = null;
  }

  private markUncacheable(status: number, now: number): void {
    if (this.reserved < 0) return;
    // A key refused once gains nothing from a mark, and a mark takes a record: a stream of
    // distinct uncacheable URLs would evict stored entries (see CacheStore.refusedBefore).
    if (!this.st.refusedBefore(this.hA, this.hB)) {
      this.releaseReservation();
      return;
    }
    const f = newEntryFields();
    f.flags = RecordFlag.Uncacheable;
    f.status = status;
    f.bornAt = now;
    f.freshUntil = f.swrUntil = f.sieUntil = now + HIT_FOR_PASS_MS;
    this.st.publish(this.reserved, this.token, this.key, this.hA, this.hB, '', null, 0, f, -1);
    this.reserved = -1;
  }

  private releaseReservation(): void {
    if (this.reserved < 0) return;
    this.st.release(this.reserved, this.token);
    this.reserved = -1;
  }

  /** Answers the client from the stale (or just revalidated) entry; false when it is gone. */
  private serveStored(cacheStatus: string | null, detail = 'stale-if-error'): boolean {
    const ex = this.ex;
    const s = this.stale;
    if (ex === null || s === null || ex.aborted) return false;
    const st = this.st;
    const scratch = cacheScratch();
    // Found again by key: after a refresh its seqlock word moved on, and the record
    // may have been reused for another key since the lookup.
    st.hash(s.key);
    st.enterRead();
    try {
      const r = st.lookupShared(s.key, st.hA, st.hB, scratch, heldHeads);
      if (r < 0) return false;
      const head = storedHead(st, r, scratch);
      const meta = head.meta;
      const f = st.fields;
      const now = Date.now();
      const age = Math.floor(Math.max(0, now - f.bornAt) / 1000);
      const ttl = Math.floor((f.freshUntil - now) / 1000);
      serveEntry(ex, f.status, head, head.body(st, scratch), age, cacheStatus ?? `tidegate; hit; ttl=${ttl}; detail=${detail}`, notModified(f.status, meta, this.facts.ifNoneMatch, this.facts.ifModifiedSince), false);
      return true;
    } finally {
      st.leaveRead();
    }
  }
}

function normaliseVary(v: string): string {
  if (v.length === 0) return '';
  const names: string[] = [];
  for (const n of v.split(',')) {
    const t = n.trim().toLowerCase();
    if (t.length > 0 && !names.includes(t)) names.push(t);
  }
  return names.join(',');
}

function buildMeta(p: ResponseFacts): string {
  let m = `${p.tags}\n${normaliseVary(p.vary)}\n${p.etag}\n${p.lastModified}`;
  const h = p.storedFields();
  for (let i = 0; i < h.length; i++) m += `\n${h[i]}`;
  return m;
}

/** RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI's entry. */
export class Invalidation implements CacheHook {
  constructor(
    private readonly rc: RouteCache,
    private readonly key: string,
  ) {}

  onHead(status: number): HeadVerdict {
    if (status < 400) {
      const st = this.rc.store;
      st.hash(this.key);
      if (st.remove(this.key, st.hA, st.hB)) st.count(kCacheInvalidatedField);
    }
    return HeadVerdict.Pass;
  }

  onBody(): void {}
  onComplete(): void {}
  onFailure(): boolean {
    return false;
  }
  onRefused(): boolean {
    return false;
  }
  onFinish(): void {}
}
