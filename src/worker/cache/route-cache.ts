// A route's cache, compiled once per config generation: the lookup that runs before
// the upstream call (RFC 9111 §4: key, Vary, freshness, Age, conditional requests,
// stale serving) and the choice of what the exchange does on a miss (fill, with
// coalescing across workers; revalidate; bypass). Everything here is synchronous; a
// request that waits for another's fill resumes from an Atomics.waitAsync callback.
import type { WorkerRouteCache } from '../../messages.js';
import { kHashSeedA, kHashSeedB, type CacheStore } from '../../shm/cache-store.js';
import { CacheResult, RecordFlag, RecordState, kCacheCoalesceTimeoutsField, kCacheCoalesceWaitsField } from '../../shm/cache-layout.js';
import { Errors } from '../../errors.js';
import type { Exchange } from '../exchange.js';
import { normaliseHost } from '../router.js';
import { newDirectives, parseCacheControl } from './cache-control.js';
import { heldHeads, kMetaEtag, kMetaLastModified, kMetaVary, notModified, serveEntry, storedHead } from './cache-serve.js';
import { CacheFill, Invalidation, type StaleEntry } from './cache-fill.js';
import { cacheScratch } from './worker-cache.js';
import { startRefresh } from './cache-refresh.js';
import { passMarked, rememberPass } from './pass-marks.js';

const UNSAFE: ReadonlySet<string> = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

type WaitAsync = (a: Int32Array, i: number, v: number, t: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

let lastHost = '';
let lastNormalHost = '';
/** the key hash's lanes after lastNormalHost (see CacheStore.hashStart) */
let hostLaneA = kHashSeedA;
let hostLaneB = kHashSeedB;

/** What the lookup needs of the request head, gathered in one pass over its fields. */
export class RequestFacts {
  cacheControl: string | null = null;
  pragmaNoCache = false;
  authorization = false;
  ifNoneMatch: string | null = null;
  ifModifiedSince: string | null = null;
  range = false;
  cookie: string | null = null;
  bypassHeader = false;
}

export class RouteCache {
  readonly cfg: WorkerRouteCache;
  readonly store: CacheStore;
  readonly routeIndex: number;
  readonly lockTimeout: number;
  readonly admission: boolean;
  private readonly reqCc = newDirectives();

  constructor(cfg: WorkerRouteCache, store: CacheStore, routeIndex: number, lockTimeout: number, admission: boolean) {
    this.cfg = cfg;
    this.store = store;
    this.routeIndex = routeIndex;
    this.lockTimeout = lockTimeout;
    this.admission = admission;
  }

  count(result: CacheResult): void {
    this.store.countResult(this.routeIndex, result);
  }

  private facts(ex: Exchange): RequestFacts {
    const f = new RequestFacts();
    const h = ex.head.headers;
    const bypass = this.cfg.bypassHeader;
    for (let i = 2; i < h.length; i += 2) {
      const n = h[i]!;
      switch (n) {
        case 'cache-control':
          f.cacheControl = f.cacheControl === null ? h[i + 1]! : `${f.cacheControl},${h[i + 1]}`;
          break;
        case 'pragma':
          if (/no-cache/i.test(h[i + 1]!)) f.pragmaNoCache = true;
          break;
        case 'authorization':
          f.authorization = true;
          break;
        case 'if-none-match':
          f.ifNoneMatch = h[i + 1]!;
          break;
        case 'if-modified-since':
          f.ifModifiedSince = h[i + 1]!;
          break;
        case 'range':
          f.range = true;
          break;
        case 'cookie':
          f.cookie = f.cookie === null ? h[i + 1]! : `${f.cookie}; ${h[i + 1]}`;
          break;
      }
      if (n === bypass) f.bypassHeader = true;
    }
    return f;
  }

  /**
   * The primary cache key: normalised host, path, query, and the route's key headers.
   * Also hashes it (the store's hA, hB, as CacheStore.hash(key) would) from its pieces.
   */
  primaryKey(ex: Exchange): string {
    const h = ex.head;
    const st = this.store;
    // Nearly every request of a worker names the same Host: its normal form, and the
    // hash's state after it, are kept.
    if (h.host !== lastHost) {
      lastHost = h.host;
      lastNormalHost = normaliseHost(h.host);
      st.hashStart(kHashSeedA, kHashSeedB);
      st.hashAdd(lastNormalHost);
      hostLaneA = st.laneA;
      hostLaneB = st.laneB;
    }
    st.hashStart(hostLaneA, hostLaneB);
    st.hashAdd(h.path);
    let key: string;
    if (h.query.length > 0) {
      st.hashAdd('?');
      st.hashAdd(h.query);
      key = `${lastNormalHost}${h.path}?${h.query}`;
    } else key = `${lastNormalHost}${h.path}`;
    const kh = this.cfg.keyHeaders;
    for (let i = 0; i < kh.length; i++) {
      const v = `\n${headerValue(h.headers, kh[i]!) ?? ''}`;
      st.hashAdd(v);
      key += v;
    }
    st.hashEnd(key.length);
    return key;
  }

  /**
   * Runs before the upstream call. True: the request was answered here or waits for
   * another request's fill (and resumes by itself); false: the exchange goes upstream,
   * with `ex.cache` set when the response matters to the cache. `resumed`: called again
   * after waiting for another request's fill; otherwise it runs inside the uWS request
   * handler, where an answer is written without res.cork (the socket is corked there).
   */
  handle(ex: Exchange, resumed = false): boolean {
    const m = ex.head.method;
    const facts = this.facts(ex);
    if (m !== 'GET' && m !== 'HEAD') {
      // RFC 9111 §4.4: a non-error response to an unsafe method invalidates the URI.
      if (UNSAFE.has(m)) ex.cache = new Invalidation(this, this.primaryKey(ex));
      ex.responseHeaders.push('cache-status', 'tidegate; fwd=method');
      this.count(CacheResult.Bypass);
      return false;
    }
    if (facts.range || ex.head.contentLength > 0 || ex.head.chunked || facts.bypassHeader || (this.cfg.bypassCookie !== null && facts.cookie !== null && hasCookie(facts.cookie, this.cfg.bypassCookie))) {
      ex.responseHeaders.push('cache-status', 'tidegate; fwd=bypass');
      this.count(CacheResult.Bypass);
      return false;
    }
    const st = this.store;
    const key = this.primaryKey(ex);
    const hA = st.hA;
    const hB = st.hB;
    const cc = parseCacheControl(facts.cacheControl, this.reqCc);
    if (cc.noStore) {
      ex.responseHeaders.push('cache-status', 'tidegate; fwd=request; detail=no-store');
      this.count(CacheResult.Bypass);
      return false;
    }
    const force = cc.noCache || cc.maxAge === 0 || (facts.pragmaNoCache && facts.cacheControl === null);
    const scratch = cacheScratch();
    const now = Date.now();
    let stale: StaleEntry | null = null;
    let varyNames: string | null = null;
    let markerId = '';
    let fwd = 'uri-miss';
    let pass = false;
    // The lookup and the answer are one read section: the answer's body may be the
    // arena's own bytes. No lock is taken inside it (see CacheStore.enterRead).
    let refresh: StaleEntry | null = null;
    if (passMarked(st, hA, hB, now)) pass = true;
    else {
      st.enterRead();
      try {
        let r = st.lookupShared(key, hA, hB, scratch, heldHeads);
        let got = r >= 0;
        if (got && (st.fields.flags & RecordFlag.Uncacheable) !== 0) {
          pass = now < st.fields.freshUntil;
          if (pass) rememberPass(hA, hB, r, st.seq, st.fields.freshUntil);
          r = -1;
          got = false;
        }
        // Admission counts the requests that could be stored: a key passed for now is not
        // one (and its counters would be a random line of the sketch touched for nothing).
        if (!resumed && !pass) st.touch(hA, hB);
        if (got) {
          let head = storedHead(st, r, scratch);
          let meta = head.meta;
          let seq = st.seq;
          let ok = true;
          let entryKey = key;
          if ((st.fields.flags & RecordFlag.Marker) !== 0) {
            // A Vary marker: the variants live under keys made of its id and the request's
            // values of the fields it names.
            markerId = meta[0]!;
            varyNames = meta[kMetaVary]!;
            const vk = variantKey(key, markerId, varyNames, ex.head.headers);
            entryKey = vk;
            st.hash(vk);
            r = st.lookupShared(vk, st.hA, st.hB, scratch, heldHeads);
            seq = st.seq;
            ok = r >= 0;
            if (ok) {
              head = storedHead(st, r, scratch);
              meta = head.meta;
            }
            else fwd = 'vary-miss';
          }
          if (ok) {
            const f = st.fields;
            const ageMs = Math.max(0, now - f.bornAt);
            const age = Math.floor(ageMs / 1000);
            const fresh = now < f.freshUntil && (f.flags & RecordFlag.NoCache) === 0 && !force && (cc.maxAge < 0 || ageMs <= cc.maxAge * 1000);
            if (fresh) {
              const ttl = Math.floor((f.freshUntil - now) / 1000);
              serveEntry(ex, f.status, head, head.body(st, scratch), age, resumed ? `tidegate; hit; ttl=${ttl}; collapsed` : head.hitStatus(ttl), notModified(f.status, meta, facts.ifNoneMatch, facts.ifModifiedSince), !resumed);
              this.count(resumed ? CacheResult.Coalesced : CacheResult.Hit);
              return true;
            }
            const noStale = (f.flags & (RecordFlag.NoStale | RecordFlag.NoCache)) !== 0 || force;
            if (!noStale && now < f.swrUntil) {
              // RFC 5861 §3: serve it, and let one request (on any worker) refresh it in the background.
              // The refresh forwards this request's fields, built while its response is alive.
              ex.forward();
              const ttl = Math.floor((f.freshUntil - now) / 1000);
              const entry: StaleEntry = { key: entryKey, record: r, seq, etag: meta[kMetaEtag] || null, lastModified: meta[kMetaLastModified] || null, heuristic: f.heuristic, freshUntil: f.freshUntil, sieUntil: f.sieUntil, status: f.status, flags: f.flags };
              serveEntry(ex, f.status, head, head.body(st, scratch), age, `tidegate; hit; ttl=${ttl}; detail=stale-while-revalidate`, notModified(f.status, meta, facts.ifNoneMatch, facts.ifModifiedSince), !resumed);
              this.count(CacheResult.Stale);
              if (st.takeRefresh(entry.record, seq)) refresh = entry;
              return true;
            }
            stale = { key: entryKey, record: r, seq, etag: meta[kMetaEtag] || null, lastModified: meta[kMetaLastModified] || null, heuristic: f.heuristic, freshUntil: f.freshUntil, sieUntil: noStale ? 0 : f.sieUntil, status: f.status, flags: f.flags };
            fwd = 'stale';
          }
        }
      } finally {
        st.leaveRead();
        // Outside the section: the refresh's request may take the writer lock.
        if (refresh !== null) startRefresh(this, ex, key, hA, hB, refresh, facts, varyNames, markerId);
      }
    }
    if (cc.onlyIfCached) {
      // RFC 9111 §5.2.1.7
      ex.responseHeaders.push('cache-status', `tidegate; fwd=${fwd}; detail=only-if-cached`);
      ex.fail(Errors.CACHE_NOT_CACHED, false);
      return true;
    }
    if (m === 'HEAD') {
      // Only GET responses are stored; a HEAD miss is forwarded as it is.
      ex.responseHeaders.push('cache-status', `tidegate; fwd=${fwd}`);
      this.count(CacheResult.Miss);
      return false;
    }
    if (pass) {
      // Hit-for-pass: the key's last response was not storable, so until the mark runs
      // out this one goes upstream without the fill's evaluation (measured: about half
      // of what a caching route cost a request whose response it could not store).
      ex.responseHeaders.push('cache-status', 'tidegate; fwd=uri-miss; detail=hit-for-pass');
      this.count(CacheResult.Uncacheable);
      return false;
    }
    // One request per key fetches it; the others (any worker) wait for its response.
    let reserved = -1;
    let admitted = true;
    if (!force) {
      const freq = this.admission ? st.frequency(hA, hB) : -1;
      reserved = st.reserve(hA, hB, now, this.lockTimeout, freq);
      if (reserved <= -2) {
        if (!resumed) {
          this.wait(ex, -2 - reserved);
          return true;
        }
        reserved = -1; // waited once already: go upstream (nginx proxy_cache_lock_timeout)
      }
      admitted = !st.refused;
    }
    const fill = new CacheFill(this, ex, key, hA, hB, reserved, reserved >= 0 ? st.token : 0, stale, facts, force ? 'request' : fwd, varyNames, markerId, admitted);
    ex.cache = fill;
    // The head's fields are what forward() completes and sends (see Exchange.forward).
    fill.prepareRequest(ex.head.headers);
    return false;
  }

  private wait(ex: Exchange, record: number): void {
    const st = this.store;
    st.count(kCacheCoalesceWaitsField);
    const resume = (outcome: string): void => {
      if (ex.aborted) return;
      if (outcome === 'timed-out') st.count(kCacheCoalesceTimeoutsField);
      if (!this.handle(ex, true)) ex.start();
    };
    const w = waitAsync(st.i32, st.stateIndex(record), RecordState.Filling, this.lockTimeout);
    if (w.async) void w.value.then(resume);
    else resume(w.value);
  }
}

/** The first value of request field `name` (lower-case) in a name/value list. */
export function headerValue(h: readonly string[], name: string): string | null {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1]!;
  return null;
}

/** Secondary key of a Vary variant (RFC 9111 §4.1): the marker id keeps variants of a replaced marker apart. */
export function variantKey(primary: string, markerId: string, varyNames: string, headers: readonly string[]): string {
  let k = `${primary}\n#${markerId}`;
  if (varyNames.length === 0) return k;
  for (const n of varyNames.split(',')) k += `\n${normaliseFieldValue(headerValue(headers, n))}`;
  return k;
}

/** Vary compares values after whitespace normalisation (RFC 9111 §4.1). */
function normaliseFieldValue(v: string | null): string {
  if (v === null) return '';
  return v.replace(/\s*,\s*/g, ',').trim();
}

function hasCookie(cookies: string, name: string): boolean {
  for (const c of cookies.split(';')) {
    const eq = c.indexOf('=');
    if ((eq < 0 ? c : c.slice(0, eq)).trim() === name) return true;
  }
  return false;
}
