// Query parameters shared by GET /v1/decisions and its stream: since=<id>,
// kind=<k>[,<k>…] (or repeated), limit=<n>. Bad values are a 400, never ignored.
import type { DecisionQuery } from './decision-feed.js';

export const MAX_DECISION_LIMIT = 10_000;

export function adminQueryError(message: string): Error {
  return Object.assign(new Error(message), { status: 400, code: 'TG_ERR_ADMIN_BAD_QUERY' });
}

function nonNegativeInt(name: string, v: string | null, max: number): number | undefined {
  if (v === null || v === '') return undefined;
  if (!/^\d{1,15}$/.test(v) || Number(v) > max) throw adminQueryError(`${name} must be a whole number from 0 to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function parseDecisionQuery(url: URL): DecisionQuery {
  const since = nonNegativeInt('since', url.searchParams.get('since'), Number.MAX_SAFE_INTEGER);
  const limit = nonNegativeInt('limit', url.searchParams.get('limit'), MAX_DECISION_LIMIT);
  const kinds = url.searchParams
    .getAll('kind')
    .flatMap((k) => k.split(','))
    .map((k) => k.trim())
    .filter((k) => k !== '');
  for (const k of kinds) if (!/^[a-z][a-z0-9-]{0,63}$/.test(k)) throw adminQueryError(`kind must be an event name like "endpoint-ejected", got ${JSON.stringify(k)}`);
  return { ...(since !== undefined ? { since } : {}), ...(limit !== undefined ? { limit } : {}), ...(kinds.length > 0 ? { kinds } : {}) };
}
