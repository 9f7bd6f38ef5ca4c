// GET /v1/shared/<name>[?key=<key>]: what a shared dictionary holds, for operators and
// for scripts whose counters live there. With `key`: that item (404 when missing or
// expired); without: the dictionary's figures and its keys (`limit`, default 100,
// most recently used first). Reads take the dictionary's lock like any worker.
import type { SharedDicts } from '../shm/shared-dicts.js';

type AdminAnswer = { status?: number; type: string; body: string };

function json(status: number, body: unknown): AdminAnswer {
  return { status, type: 'application/json', body: JSON.stringify(body, null, 2) };
}

export function sharedDictRoutes(dicts: SharedDicts): Record<string, (url: URL) => Promise<AdminAnswer>> {
  const routes: Record<string, (url: URL) => Promise<AdminAnswer>> = {};
  for (const name of dicts.names()) {
    const d = dicts.get(name)!;
    routes[`/v1/shared/${name}`] = async (url) => {
      const key = url.searchParams.get('key');
      if (key !== null) {
        const value = d.get(key);
        if (value === undefined) return json(404, { error: { code: 'TG_ERR_ADMIN_NOT_FOUND', message: d.err === null ? `no key ${JSON.stringify(key)} in shared dict ${name}` : `${d.err}` } });
        const flags = d.flags;
        return json(200, { dict: name, key, value, flags, ttl: d.ttl(key) ?? 0 });
      }
      const limit = Number(url.searchParams.get('limit') ?? '100');
      if (!Number.isInteger(limit) || limit < 0) return json(400, { error: { code: 'TG_ERR_ADMIN_BAD_QUERY', message: 'limit must be a whole number (0: all keys)' } });
      return json(200, { dict: name, ...d.stats(), keys: d.getKeys(limit) });
    };
  }
  return routes;
}
