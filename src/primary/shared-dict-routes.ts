// GET /v1/shared/:name[?key=<key>] (scope `read`): what a shared dictionary holds, for
// operators and for scripts whose counters live there. With `key`: that item (404
// when missing or expired); without: the dictionary's figures and its keys (`limit`,
// default 100, 0 = all, most recently used first). Reads take the dictionary's lock
// like any worker.
import { AdminErrors } from '../errors.js';
import type { SharedDicts } from '../shm/shared-dicts.js';
import { ApiError, type ApiRoute } from './admin/api-router.js';

export function sharedDictRoute(dicts: SharedDicts): ApiRoute {
  return {
    method: 'GET',
    path: '/v1/shared/:name',
    scope: 'read',
    handle: ({ params, url }) => {
      const name = params.name!;
      const d = dicts.get(name);
      if (d === undefined) throw new ApiError(AdminErrors.NOT_FOUND, `no shared dict "${name}" (config \`shared\` defines: ${dicts.names().join(', ') || 'none'})`);
      const key = url.searchParams.get('key');
      if (key !== null) {
        const value = d.get(key);
        if (value === undefined) throw new ApiError(AdminErrors.NOT_FOUND, d.err === null ? `no key ${JSON.stringify(key)} in shared dict ${name}` : `key ${JSON.stringify(key)}: ${d.err}`);
        const flags = d.flags;
        return { body: { dict: name, key, value, flags, ttl: d.ttl(key) ?? 0 } };
      }
      const limit = Number(url.searchParams.get('limit') ?? '100');
      if (!Number.isInteger(limit) || limit < 0) throw new ApiError(AdminErrors.BAD_QUERY, 'limit must be a whole number (0: all keys)');
      return { body: { dict: name, ...d.stats(), keys: d.getKeys(limit) } };
    },
  };
}
