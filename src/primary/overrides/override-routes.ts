// /v1 endpoints of the override store, and convenience routes that create the same
// overrides with a path instead of a { kind, target, value } body. Reading needs
// `read`; creating or deleting needs the target's scope (`traffic` for endpoints,
// rate limits, breakers, flags and splits), checked here because one route serves every
// kind. A split's PUT and DELETE (/v1/routes/:route/split) live here too: a run-time
// weight change is an override like every other knob (expiry, reason, identity,
// persisted), and deleting it puts back what is beneath.
import { AdminErrors } from '../../errors.js';
import { ApiError, type ApiRequest, type ApiRoute } from '../admin/api-router.js';
import type { Caller, Scope } from '../admin/tokens.js';
import type { FlagWriter } from '../flag-writer.js';
import type { SplitStatus } from '../rollout/split-writer.js';
import { splitKey } from './split-target.js';
import type { OverrideInput, OverrideStore } from './store.js';

function object(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(AdminErrors.INVALID, 'the body must be a JSON object', ['(body): expected an object']);
  return body as Record<string, unknown>;
}

export function overrideRoutes(store: OverrideStore, flags: FlagWriter, scopeOf: (kind: string) => Scope, splitOf: (route: string) => SplitStatus | undefined): ApiRoute[] {
  const allow = (caller: Caller, kind: unknown): void => {
    const scope: Scope = typeof kind === 'string' ? scopeOf(kind) : 'traffic';
    if (!caller.scopes.has(scope)) throw new ApiError(AdminErrors.FORBIDDEN, `token "${caller.name}" lacks the "${scope}" scope that a ${String(kind)} override needs`);
  };
  const create = (req: ApiRequest, input: OverrideInput) => {
    allow(req.caller, input.kind);
    return { status: 201, body: store.create(input, req.caller.name) };
  };
  /** `for` and `reason` from a convenience route's body; the rest is the value */
  const split = (b: Record<string, unknown>): { value: Record<string, unknown>; for: unknown; reason: unknown } => {
    const { for: f, reason, ...value } = b;
    return { value, for: f, reason };
  };
  return [
    { method: 'GET', path: '/v1/overrides', scope: 'read', handle: () => ({ body: { overrides: store.list() } }) },
    {
      method: 'POST',
      path: '/v1/overrides',
      scope: 'read',
      handle: (req) => {
        const b = object(req.body);
        return create(req, { kind: b.kind, target: b.target, value: b.value, for: b.for, reason: b.reason });
      },
    },
    {
      method: 'GET',
      path: '/v1/overrides/:id',
      scope: 'read',
      handle: (req) => {
        const r = store.get(req.params.id!);
        if (r === undefined) throw new ApiError(AdminErrors.NOT_FOUND, `no override ${req.params.id}`);
        return { body: r };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/overrides/:id',
      scope: 'read',
      handle: (req) => {
        const r = store.get(req.params.id!);
        if (r === undefined) throw new ApiError(AdminErrors.NOT_FOUND, `no override ${req.params.id}`);
        allow(req.caller, r.kind);
        store.remove(r.id, req.caller.name, 'deleted');
        return { body: { deleted: r.id, restored: { kind: r.kind, key: r.key } } };
      },
    },
    {
      method: 'PUT',
      path: '/v1/upstreams/:upstream/endpoints/:endpoint',
      scope: 'traffic',
      handle: (req) => {
        const s = split(object(req.body));
        return create(req, { kind: 'endpoint', target: { upstream: req.params.upstream, endpoint: req.params.endpoint }, value: s.value, for: s.for, reason: s.reason });
      },
    },
    {
      method: 'PUT',
      path: '/v1/upstreams/:upstream/breaker',
      scope: 'traffic',
      handle: (req) => {
        const s = split(object(req.body));
        // `auto` as a convenience means "stop forcing": the override that forces it is deleted.
        if (s.value.state === 'auto' && s.for === undefined) {
          const existing = store.findByKey('breaker', req.params.upstream!);
          if (existing !== undefined) store.remove(existing.record.id, req.caller.name, 'deleted');
          return { body: { upstream: req.params.upstream, state: 'auto', deleted: existing?.record.id ?? null } };
        }
        return create(req, { kind: 'breaker', target: { upstream: req.params.upstream }, value: s.value.state, for: s.for, reason: s.reason });
      },
    },
    {
      method: 'PUT',
      path: '/v1/routes/:route/rate-limit',
      scope: 'traffic',
      handle: (req) => {
        const s = split(object(req.body));
        const { policy, ...value } = s.value;
        return create(req, { kind: 'rate-limit', target: { route: req.params.route, ...(policy === undefined ? {} : { policy }) }, value, for: s.for, reason: s.reason });
      },
    },
    {
      method: 'PUT',
      path: '/v1/routes/:route/split',
      scope: 'traffic',
      handle: (req) => {
        const route = req.params.route!;
        if (splitOf(route) === undefined) throw new ApiError(AdminErrors.NOT_FOUND, `route "${route}" has no split (or does not exist)`);
        const s = split(object(req.body));
        const out = create(req, { kind: 'split', target: route, value: s.value, for: s.for, reason: s.reason });
        return { status: out.status, body: { ...out.body, split: splitOf(route) } };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/routes/:route/split',
      scope: 'traffic',
      handle: (req) => {
        const route = req.params.route!;
        if (splitOf(route) === undefined) throw new ApiError(AdminErrors.NOT_FOUND, `route "${route}" has no split (or does not exist)`);
        const existing = store.findByKey('split', splitKey(route));
        if (existing !== undefined) store.remove(existing.record.id, req.caller.name, 'deleted');
        return { body: { deleted: existing?.record.id ?? null, split: splitOf(route) } };
      },
    },
    { method: 'GET', path: '/v1/flags', scope: 'read', handle: () => ({ body: { flags: flags.status() } }) },
    {
      method: 'PUT',
      path: '/v1/flags/:flag',
      scope: 'traffic',
      handle: (req) => {
        const s = split(object(req.body));
        return create(req, { kind: 'flag', target: req.params.flag, value: s.value.value, for: s.for, reason: s.reason });
      },
    },
  ];
}
