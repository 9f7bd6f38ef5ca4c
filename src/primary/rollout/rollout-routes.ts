// Admin API v1 for splits and rollouts:
//   GET    /v1/routes/:route/split            weights in force, configured, and who set them   (read)
//   PUT    /v1/routes/:route/split            { "weights": { "<side>": percent, … } }            (traffic)
//   DELETE /v1/routes/:route/split            back to the configured weights                      (traffic)
//   GET    /v1/rollouts                       every rollout                                      (read)
//   GET    /v1/rollouts/:name                 { phase, step, weight, checks: [...] }             (read)
//   POST   /v1/rollouts/:name/:action         start | pause | resume | abort | promote           (traffic)
import { AdminErrors } from '../../errors.js';
import { parseSplitWeights } from '../../config/schema-split.js';
import { ApiError, type ApiRoute } from '../admin/api-router.js';
import type { Logger } from '../logger.js';
import { decision } from '../decisions/decision-log.js';
import { ACTIONS, type Action } from './rollout-controller.js';
import type { RolloutManager } from './rollout-manager.js';
import type { SplitWriter } from './split-writer.js';

export function rolloutRoutes(splits: SplitWriter, rollouts: RolloutManager, log: Logger): ApiRoute[] {
  const splitOf = (route: string) => {
    const s = splits.status().find((x) => x.route === route);
    if (s === undefined) throw new ApiError(AdminErrors.NOT_FOUND, `route "${route}" has no split (or does not exist)`);
    return s;
  };
  return [
    { method: 'GET', path: '/v1/routes/:route/split', scope: 'read', handle: ({ params }) => ({ body: splitOf(params.route!) }) },
    {
      method: 'PUT',
      path: '/v1/routes/:route/split',
      scope: 'traffic',
      handle: ({ params, body, caller }) => {
        const route = params.route!;
        const before = splitOf(route);
        const active = rollouts.activeOn(route);
        if (active !== null) throw new ApiError(AdminErrors.CONFLICT, `rollout ${active} is moving the weights of "${route}"; pause does not release them: abort or promote it first`);
        const sides = splits.sides(route)!;
        const parsed = parseSplitWeights(sides, (body as { weights?: unknown } | undefined)?.weights);
        if (!parsed.ok) throw new ApiError(AdminErrors.INVALID, 'invalid split weights', parsed.issues);
        splits.set(route, parsed.weights, `api:${caller.name}`);
        const after = splitOf(route);
        decision(log).info({ event: 'split-weights-set', route, weights: after.weights, previous: before.weights, by: caller.name }, `split weights of ${route} set to ${JSON.stringify(after.weights)}`);
        return { body: after };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/routes/:route/split',
      scope: 'traffic',
      handle: ({ params, caller }) => {
        const route = params.route!;
        const before = splitOf(route);
        const active = rollouts.activeOn(route);
        if (active !== null) throw new ApiError(AdminErrors.CONFLICT, `rollout ${active} is moving the weights of "${route}": abort or promote it first`);
        splits.restore(route);
        const after = splitOf(route);
        decision(log).info({ event: 'split-weights-restored', route, weights: after.weights, previous: before.weights, by: caller.name }, `split weights of ${route} back to the configured ${JSON.stringify(after.weights)}`);
        return { body: after };
      },
    },
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
