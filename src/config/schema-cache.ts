// The response cache's settings: the shared store (top-level `cache:`) and what each
// route caches (`routes[].cache`). See README "Caching".
import { z } from 'zod';
import { durationMs, sizeBytes } from '../units/zod-units.js';
import { parseSize } from '../units/units.js';

const fieldName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header field name')
  .transform((h) => h.toLowerCase());

/** The one store every worker shares, allocated at start when any route caches. */
export const cacheStoreSchema = z
  .strictObject({
    /** the arena; about 8 % more, plus 128 KiB, is used for the index, records, sketch and counters. Fixed at start */
    size: sizeBytes.pipe(z.number().int().min(64 * 1024).max(16 * 1024 * 1024 * 1024)).default(64 * 1024 * 1024),
    /** larger bodies (or ones of unknown length that grow past it) stream through uncached */
    maxObjectSize: sizeBytes.pipe(z.number().int().min(1).max(256 * 1024 * 1024)).default(1024 * 1024),
    /** concurrent misses for one key wait this long for the first one's response, then go upstream themselves */
    lockTimeout: durationMs.default(5_000),
    /** TinyLFU: when full, admit a key only if it is requested more often than the eviction victim */
    admission: z.boolean().default(true),
  });

/**
 * maxObjectSize against size, on the raw input: a zod refinement would be skipped
 * whenever another field of the section has an error, and every error must be reported.
 */
export function cacheIssues(raw: unknown): { path: (string | number)[]; message: string }[] {
  const c = (raw as { cache?: { size?: unknown; maxObjectSize?: unknown } } | null)?.cache;
  if (typeof c !== 'object' || c === null) return [];
  const size = c.size === undefined ? { ok: true as const, value: 64 * 1024 * 1024 } : parseSize(c.size);
  const max = c.maxObjectSize === undefined ? { ok: true as const, value: 1024 * 1024 } : parseSize(c.maxObjectSize);
  if (!size.ok || !max.ok || max.value <= size.value / 4) return [];
  return [{ path: ['cache', 'maxObjectSize'], message: `must be at most a quarter of cache.size (${Math.floor(size.value / 4)} bytes)` }];
}

export const routeCacheSchema = z
  .strictObject({
    /**
     * Lifetime of a response with no explicit freshness (no max-age, s-maxage or
     * Expires): starts at `default` and adapts per key between `min` and `max`
     * (longer while revalidations return 304, shorter when the content changed).
     * `default: 0` stores such responses only to revalidate them.
     */
    ttl: z
      .strictObject({
        default: durationMs.default(10_000),
        min: durationMs.default(1_000),
        max: durationMs.default(300_000),
      })
      .refine((t) => t.min <= t.max, { message: 'min must not exceed max', path: ['min'] })
      .prefault({}),
    /** serve a stale entry while one background request refreshes it, at most this long past its freshness (RFC 5861); the response's own value wins when smaller */
    staleWhileRevalidate: durationMs.default(0),
    /** serve a stale entry when the upstream fails, times out, answers 5xx or its breaker is open, at most this long (RFC 5861) */
    staleIfError: durationMs.default(0),
    /** serve a stale entry while the upstream is at its concurrency limit or its breaker is half-open, at most this long */
    staleIfBusy: durationMs.default(0),
    /** request header fields whose values are part of the cache key */
    keyHeaders: z.array(fieldName).default([]),
    /** requests carrying this header (any value) or cookie skip the cache both ways */
    bypass: z.strictObject({ header: fieldName.optional(), cookie: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a cookie name').optional() }).prefault({}),
    /** a response with Set-Cookie: not stored (`no-store`, as nginx and Varnish), or stored without the field (`strip`) */
    setCookie: z.enum(['no-store', 'strip']).default('no-store'),
  });

export type CacheStoreConfig = z.output<typeof cacheStoreSchema>;
export type RouteCacheConfig = z.output<typeof routeCacheSchema>;
