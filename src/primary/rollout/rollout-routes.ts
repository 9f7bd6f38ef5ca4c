// Admin API v1 for splits and rollouts:
//   GET    /v1/routes/:route/split            weights in force, configured, and who set them   (read)
//   (PUT and DELETE of a split are overrides: src/primary/overrides/override-routes.ts)
//   GET    /v1/rollouts                       every rollout                                      (read)
//   GET    /v1/rollouts/:name                 { phase, step, weight, checks: [...] }             (read)
//   POST   /v1/rollouts/:name/:action         start | pause | resume | abort | promote           (traffic)
import { AdminErrors } from '../../errors.js';
import { ApiError, type ApiRoute } from '../admin/api-router.js';
import { ACTIONS, type Action } from './rollout-controller.js';
import type { RolloutManager } from './rollout-manager.js';
import type { SplitWriter } from './split-writer.js';

export function rolloutRoutes(splits: SplitWriter, rollouts: RolloutManager): ApiRoute[] {
  const splitOf = (route: string) => {
    const s = splits.status().find((x) => x.route === route);
    if (s === undefined) throw new ApiError(AdminErrors.NOT_FOUND, `route "${route}" has no split (or does not exist)`);
    return s;
  };
  return [
    { method: 'GET', path: '/v1/routes/:route/split', scope: 'read', handle: ({ params }) => ({ body: splitOf(params.route!) }) },
    { method: 'GET', path: '/v1/rollouts', scope: 'read', handle: () => ({ body: rollouts.status() }) },
    {
      method: 'GET',
      path: '/v1/rollouts/:name',
      scope: 'read',
      handle: ({ params }) => {
        const v = rollouts.view(params.name!);
        if (v === null) throw new ApiError(AdminErrors.NOT_FOUND, `no rollout "${params.name}"`);
        return { body: v };
      },
    },
    {
      method: 'POST',
      path: '/v1/rollouts/:name/:action',
      scope: 'traffic',
      handle: ({ params }) => {
        const name = params.name!;
        if (!rollouts.has(name)) throw new ApiError(AdminErrors.NOT_FOUND, `no rollout "${name}"`);
        const action = params.action!;
        if (!(ACTIONS as readonly string[]).includes(action)) throw new ApiError(AdminErrors.NOT_FOUND, `no rollout action "${action}" (actions: ${ACTIONS.join(', ')})`);
        const out = rollouts.action(name, action as Action);
        if (!out.ok) throw new ApiError(AdminErrors.CONFLICT, out.message);
        return { body: rollouts.view(name) };
      },
    },
  ];
}
