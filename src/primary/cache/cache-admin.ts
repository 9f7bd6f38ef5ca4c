// The primary's side of the response cache: it allocates the shared store at start
// (when any route caches), reports it (GET /v1/cache, /status, metrics) and purges it.
// Workers read and fill the store; the primary never serves from it.
import type { Config } from '../../config/schema.js';
import { StartupCodes, StartupError } from '../../errors.js';
import { CacheStore } from '../../shm/cache-store.js';
import {
  cacheResultNames,
  kCacheAdmissionRefusedField,
  kCacheBodyBytesField,
  kCacheCoalesceTimeoutsField,
  kCacheCoalesceWaitsField,
  kCacheEntriesField,
  kCacheEvictionsField,
  kCacheInvalidatedField,
  kCacheNoSpaceField,
  kCachePurgedField,
  kCacheStoredField,
  kCacheTooLargeField,
  kCacheTtlGrewField,
  kCacheTtlShrankField,
  kCacheReclaimWaitsField,
  kCacheResetsField,
} from '../../shm/cache-layout.js';

export interface CacheStats {
  readonly enabled: boolean;
  readonly sizeBytes: number;
  readonly usedBytes: number;
  readonly bodyBytes: number;
  readonly entries: number;
  readonly maxEntries: number;
  readonly maxObjectSize: number;
  readonly stored: number;
  readonly evictions: number;
  readonly admissionsRefused: number;
  readonly tooLarge: number;
  readonly noSpace: number;
  readonly purged: number;
  readonly invalidated: number;
  readonly coalesceWaits: number;
  readonly coalesceTimeouts: number;
  readonly ttlLengthened: number;
  readonly ttlShortened: number;
  /** writes that waited for a worker to finish sending the bytes of chunks they needed */
  readonly reclaimWaits: number;
  /** times the store was emptied because a worker ended holding its writer lock */
  readonly resets: number;
  /** hits (fresh, coalesced and stale) over all cache-route requests */
  readonly hitRatio: number | null;
  readonly routes: readonly { readonly route: string; readonly requests: Record<(typeof cacheResultNames)[number], number> }[];
}

export interface PurgeRequest {
  /** a cache key as GET /v1/cache?keys lists it (host + path + ?query): that entry, its Vary variants and its key-header variants */
  readonly key?: string;
  /** every key starting with this */
  readonly prefix?: string;
  /** every entry whose Cache-Tag or Surrogate-Key listed this tag */
  readonly tag?: string;
}

export class CacheAdmin {
  readonly store: CacheStore | null;

  constructor(config: Config) {
    this.store = config.routes.some((r) => r.cache !== undefined) ? CacheStore.create(config.cache.size, config.cache.maxObjectSize) : null;
  }

  get buffer(): SharedArrayBuffer | null {
    return this.store?.buffer ?? null;
  }

  /** A reload that adds caching when no store was allocated at start is refused whole. */
  checkReload(next: Config): void {
    if (this.store === null && next.routes.some((r) => r.cache !== undefined)) {
      throw new StartupError(StartupCodes.SHM_CAPACITY, 'routes[].cache: the cache store is allocated at start and this process started without any caching route; restart to enable caching');
    }
  }

  stats(config: Config): CacheStats {
    const s = this.store;
    const routes = config.routes.flatMap((r, i) => (r.cache === undefined || s === null ? [] : [{ route: r.name ?? `route-${i}`, requests: Object.fromEntries(cacheResultNames.map((n, k) => [n, s.routeResult(i, k)])) as Record<(typeof cacheResultNames)[number], number> }]));
    let hits = 0;
    let all = 0;
    for (const r of routes) {
      hits += r.requests.hit + r.requests.coalesced + r.requests.stale + r.requests.stale_if_busy + r.requests.revalidated;
      for (const n of cacheResultNames) all += r.requests[n];
    }
    const c = (f: number): number => (s === null ? 0 : s.counter(f));
    return {
      enabled: s !== null,
      sizeBytes: s === null ? 0 : s.layout.chunks * 1024,
      usedBytes: s === null ? 0 : s.usedBytes(),
      bodyBytes: c(kCacheBodyBytesField),
      entries: c(kCacheEntriesField),
      maxEntries: s?.layout.records ?? 0,
      maxObjectSize: s?.maxObjectSize ?? 0,
      stored: c(kCacheStoredField),
      evictions: c(kCacheEvictionsField),
      admissionsRefused: c(kCacheAdmissionRefusedField),
      tooLarge: c(kCacheTooLargeField),
      noSpace: c(kCacheNoSpaceField),
      purged: c(kCachePurgedField),
      invalidated: c(kCacheInvalidatedField),
      coalesceWaits: c(kCacheCoalesceWaitsField),
      coalesceTimeouts: c(kCacheCoalesceTimeoutsField),
      ttlLengthened: c(kCacheTtlGrewField),
      ttlShortened: c(kCacheTtlShrankField),
      reclaimWaits: c(kCacheReclaimWaitsField),
      resets: c(kCacheResetsField),
      hitRatio: all === 0 ? null : Math.round((hits / all) * 10_000) / 10_000,
      routes,
    };
  }

  /**
   * Worker slot `slot` has exited: its reader line is cleared, and if it held the
   * writer lock the store is reset (see recoverIfStuck). Resolves with the entries a
   * reset dropped, or null when none was needed.
   */
  workerExited(slot: number): Promise<number | null> {
    const s = this.store;
    if (s === null) return Promise.resolve(null);
    s.clearReader(slot);
    return recoverIfStuck(s, slot);
  }

  /** Up to `limit` stored keys (Vary markers and variants included), for inspection. */
  keys(limit: number): string[] {
    return this.store?.keys(limit).map((k) => k.replace(/\n/g, ' ')) ?? [];
  }

  /** Removes what the request names; returns how many entries went. */
  purge(req: PurgeRequest): number {
    const s = this.store;
    if (s === null) return 0;
    const { key, prefix, tag } = req;
    return s.removeWhere((k, meta) => {
      if (key !== undefined && (k === key || k.startsWith(`${key}\n`))) return true;
      if (prefix !== undefined && k.startsWith(prefix)) return true;
      if (tag !== undefined) {
        const nl = meta.indexOf('\n');
        const tags = nl < 0 ? meta : meta.slice(0, nl);
        if (` ${tags} `.includes(` ${tag} `)) return true;
      }
      return false;
    });
  }
}

/**
 * Resets the store when worker slot `slot` (exited) held its writer lock: only if the
 * lock stays held with that slot's name (or none yet) at every one of `samples` looks
 * `everyMs` apart, since a live thread holds it for microseconds and names itself at
 * once. Resolves with the entries dropped, or null.
 */
export async function recoverIfStuck(store: CacheStore, slot: number, samples = 20, everyMs = 10): Promise<number | null> {
  for (let n = 0; n < samples; n++) {
    if (!store.heldBy(slot)) return null;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return store.heldBy(slot) ? store.recoverFrom(slot) : null;
}
