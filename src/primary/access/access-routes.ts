// /v1/access: the ip-access lists in force and their direct change (scope `access`).
//   GET    /v1/access            every ip-access policy, its lists and where they come from; api-key files
//   PUT    /v1/access/:policy    { allow?, deny? }: replaces the lists on every worker (a list left out keeps the configured one)
//   DELETE /v1/access/:policy    puts the configured lists back
// A run-time list lasts until deleted or until a reload drops the policy.
import { AdminErrors } from '../../errors.js';
import type { Config } from '../../config/schema.js';
import { ApiError, type ApiRoute } from '../admin/api-router.js';
import { parseIpLists } from '../overrides/ip-access-target.js';
import type { AccessControl } from './access-control.js';

export function accessRoutes(access: AccessControl, config: () => Config): ApiRoute[] {
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
  ];
}
