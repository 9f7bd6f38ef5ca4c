// The cache's admin endpoints: GET /v1/cache (statistics, optionally some keys) and
// POST /v1/cache/purge (by key, prefix or tag; scope `traffic`). A purge is a decision
// like any other change of traffic: logged as an event and counted.
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { AdminErrors } from '../../errors.js';
import { ApiError, type ApiRoute } from '../admin/api-router.js';
import { decision } from '../decisions/decision-log.js';
import type { CacheAdmin, PurgeRequest } from './cache-admin.js';

const MAX_KEYS = 1000;

export function cacheRoutes(cache: CacheAdmin, config: () => Config, log: Logger): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/cache',
      scope: 'read',
      handle: ({ url }) => {
        const raw = url.searchParams.get('keys');
        let keys: string[] | undefined;
        if (raw !== null) {
          const n = Number(raw === '' ? 100 : raw);
          if (!Number.isInteger(n) || n < 1 || n > MAX_KEYS) throw new ApiError(AdminErrors.BAD_QUERY, `keys must be a whole number from 1 to ${MAX_KEYS}`);
          keys = cache.keys(n);
        }
        return { body: { ...cache.stats(config()), ...(keys ? { keys } : {}) } };
      },
    },
    {
      method: 'POST',
      path: '/v1/cache/purge',
      scope: 'traffic',
      handle: ({ body, caller }) => {
        const req = purgeRequest(body);
        if (cache.store === null) throw new ApiError(AdminErrors.CONFLICT, 'no route caches: there is nothing to purge');
        const t0 = performance.now();
        const purged = cache.purge(req);
        const ms = Math.round((performance.now() - t0) * 10) / 10;
        decision(log).info({ event: 'cache-purged', ...req, purged, by: caller.name, ms }, `cache purge removed ${purged} entries`);
        return { body: { purged, ...req } };
      },
    },
  ];
}

function purgeRequest(body: unknown): PurgeRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(AdminErrors.INVALID, 'expected {"key": …}, {"prefix": …} or {"tag": …}');
  const b = body as Record<string, unknown>;
  const known = ['key', 'prefix', 'tag'];
  const issues: string[] = [];
  for (const k of Object.keys(b)) if (!known.includes(k)) issues.push(`${k}: unknown field (expected key, prefix or tag)`);
  const given = known.filter((k) => b[k] !== undefined);
  if (given.length !== 1) issues.push('exactly one of key, prefix, tag is required');
  for (const k of given) if (typeof b[k] !== 'string' || (b[k] as string).length === 0) issues.push(`${k}: expected a non-empty string`);
  if (issues.length > 0) throw new ApiError(AdminErrors.INVALID, 'invalid purge request', issues);
  const k = given[0]!;
  return { [k]: b[k] as string } as PurgeRequest;
}
