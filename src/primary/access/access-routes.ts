// /v1/access: the ip-access lists in force and their direct change (scope `access`).
//   GET    /v1/access            every ip-access policy, its lists and where they come from; api-key files
//   PUT    /v1/access/:policy    { allow?, deny? }: replaces the lists on every worker (a list left out keeps the configured one)
//   DELETE /v1/access/:policy    puts the configured lists back
// A run-time list lasts until deleted or until a reload drops the policy.
//
// /v1/bans: the shared ban table (scope `access` to change).
//   GET    /v1/bans              bans in force: policy, key, until, remaining seconds, source
//   POST   /v1/bans              { key, policy?, for? }: ban a key (default: under every ban policy, for 1h)
//   DELETE /v1/bans/:key         lift every ban on the key
import { AdminErrors } from '../../errors.js';
import type { Config } from '../../config/schema.js';
import { ApiError, type ApiRoute } from '../admin/api-router.js';
import { parseIpLists } from '../overrides/ip-access-target.js';
import { parseBan } from '../overrides/ban-target.js';
import type { AccessControl } from './access-control.js';
import type { BanWriter } from './ban-writer.js';

export function accessRoutes(access: AccessControl, bans: BanWriter, config: () => Config): ApiRoute[] {
  const known = (name: string): void => {
    if (!access.ipPolicy(name)) throw new ApiError(AdminErrors.NOT_FOUND, `no ip-access policy "${name}"`);
  };
  return [
    { method: 'GET', path: '/v1/access', scope: 'read', handle: () => ({ body: access.status() }) },
    {
      method: 'PUT',
      path: '/v1/access/:policy',
      scope: 'access',
      handle: ({ params, body }) => {
        known(params.policy!);
        const r = parseIpLists(params.policy, body, config());
        if (!r.ok) throw new ApiError(AdminErrors.INVALID, r.issues.join('; '), r.issues);
        access.setIpLists(r.spec.name, r.spec.lists);
        return { body: { policy: r.spec.name, ...access.effective(r.spec.name) } };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/access/:policy',
      scope: 'access',
      handle: ({ params }) => {
        known(params.policy!);
        const restored = access.clearIpLists(params.policy!);
        return { body: { policy: params.policy, restored, ...access.effective(params.policy!) } };
      },
    },
    { method: 'GET', path: '/v1/bans', scope: 'read', handle: () => ({ body: { bans: bans.list() } }) },
    {
      method: 'POST',
      path: '/v1/bans',
      scope: 'access',
      handle: ({ body }) => {
        const b = (body ?? {}) as Record<string, unknown>;
        const { key, ...value } = typeof b === 'object' && b !== null ? b : {};
        const r = parseBan(key, value, config());
        if (!r.ok) throw new ApiError(AdminErrors.INVALID, r.issues.join('; '), r.issues);
        const set = bans.ban(r.spec.key, r.spec.forMs, r.spec.policies);
        if (set.length === 0) throw new ApiError(AdminErrors.CONFLICT, 'the ban table has no free slot for this key (raise capacity.banKeys)');
        return { status: 201, body: { key: r.spec.key, policies: set, bans: bans.list().filter((x) => x.key === r.spec.key) } };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/bans/:key',
      scope: 'access',
      handle: ({ params }) => {
        const lifted = bans.lift(params.key!);
        if (lifted.length === 0) throw new ApiError(AdminErrors.NOT_FOUND, `no ban in force on "${params.key}"`);
        return { body: { key: params.key, lifted } };
      },
    },
  ];
}
