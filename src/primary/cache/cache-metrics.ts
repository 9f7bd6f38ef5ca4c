// Prometheus families of the response cache, read at scrape time from the counters in
// the cache's shared memory (src/shm/cache-layout.ts) through the primary's CacheAdmin.
import type { CacheStats } from './cache-admin.js';
import { cacheResultNames } from '../../shm/cache-layout.js';

type Emit = (labels: Record<string, string>, v: number) => void;
type Family = (name: string, help: string, labelNames: readonly string[], fill: (emit: Emit) => void) => void;

export function registerCacheMetrics(counter: Family, gauge: Family, stats: () => CacheStats | null): void {
  const each = (fill: (s: CacheStats, emit: Emit) => void) => (emit: Emit) => {
    const s = stats();
    if (s !== null && s.enabled) fill(s, emit);
  };
  counter('tidegate_cache_requests_total', 'Requests on caching routes by cache result: hit, miss, stale (stale-while-revalidate or stale-if-error), stale_if_busy, revalidated (a 304 refreshed the entry), coalesced (answered by another request\'s fill), bypass, uncacheable.', ['route', 'result'], each((s, emit) => {
    for (const r of s.routes) for (const n of cacheResultNames) emit({ route: r.route, result: n }, r.requests[n]);
  }));
  gauge('tidegate_cache_used_bytes', 'Bytes of the cache arena in use (whole 1 KiB chunks: key, stored fields and body).', [], each((s, emit) => emit({}, s.usedBytes)));
  gauge('tidegate_cache_size_bytes', 'The cache arena (cache.size).', [], each((s, emit) => emit({}, s.sizeBytes)));
  gauge('tidegate_cache_entries', 'Entries stored (Vary markers included).', [], each((s, emit) => emit({}, s.entries)));
  counter('tidegate_cache_stored_total', 'Responses stored.', [], each((s, emit) => emit({}, s.stored)));
  counter('tidegate_cache_evictions_total', 'Entries evicted by CLOCK to make room.', [], each((s, emit) => emit({}, s.evictions)));
  counter('tidegate_cache_admissions_refused_total', 'New keys refused by TinyLFU admission (less frequent than the eviction victim).', [], each((s, emit) => emit({}, s.admissionsRefused)));
  counter('tidegate_cache_not_stored_total', 'Responses not stored for their size (over cache.maxObjectSize) or for want of an index slot (or of chunks a worker went on sending from for 50 ms).', ['reason'], each((s, emit) => {
    emit({ reason: 'too_large' }, s.tooLarge);
    emit({ reason: 'no_space' }, s.noSpace);
  }));
  counter('tidegate_cache_removed_total', 'Entries removed by purges (admin API) and by unsafe-method invalidation.', ['reason'], each((s, emit) => {
    emit({ reason: 'purge' }, s.purged);
    emit({ reason: 'invalidation' }, s.invalidated);
  }));
  counter('tidegate_cache_coalesce_waits_total', 'Requests that waited for another request\'s fill of the same key ("timed_out": past cache.lockTimeout).', ['outcome'], each((s, emit) => {
    emit({ outcome: 'waited' }, s.coalesceWaits);
    emit({ outcome: 'timed_out' }, s.coalesceTimeouts);
  }));
  counter('tidegate_cache_reclaim_waits_total', 'Writes that waited for a worker to finish sending a hit from chunks the write needed (freed chunks are reused only after every worker has moved past them).', [], each((s, emit) => emit({}, s.reclaimWaits)));
  counter('tidegate_cache_resets_total', 'Times the store was emptied and rebuilt because a worker ended while it held the store\'s writer lock.', [], each((s, emit) => emit({}, s.resets)));
  counter('tidegate_cache_ttl_adjustments_total', 'Adaptive heuristic lifetimes lengthened (unchanged on revalidation) or shortened (content changed).', ['direction'], each((s, emit) => {
    emit({ direction: 'longer' }, s.ttlLengthened);
    emit({ direction: 'shorter' }, s.ttlShortened);
  }));
}
