// The access phase: who the request is (tenant, consumer) and whether the route's
// policies let it through. Shared by HTTP requests and WebSocket upgrades, so both
// meet the same policies.
import type { ErrorSpec } from '../errors.js';
import type { AccessContext, LocalResponse } from '../policies/policy.js';
import { clientIp } from './forwarding.js';
import type { RequestHead } from './request-head.js';
import type { CompiledRoute } from './router.js';
import type { Runtime } from './runtime.js';

/** Who the access phase identified, and who wants the final status (kept for the log phase). */
export interface AccessOutcome {
  consumer: string | null;
  tenant: string | null;
  /** the tenant's tier name (with a tenants section) */
  tier: string | null;
  /** the priority the request is shed as: the route's, or its tier's */
  priority: number;
  watched: unknown[] | null;
  /** the access phase's view of the request, when the route has policies (the response and log phases read it) */
  access: AccessContext | null;
}

/** The route's policies in configured order; the first refusal wins. Null: admitted. */
export function accessPhase(rt: Runtime, route: CompiledRoute, head: RequestHead, peer: string, responseHeaders: string[], out: AccessOutcome): ErrorSpec | LocalResponse | null {
  const policies = rt.policies[route.index]!;
  const dir = rt.tenants;
  if (policies.length === 0 && dir === null) return null;
  let tenant: string | null = null;
  if (dir !== null && dir.header !== null) {
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === dir.header) {
        tenant = h[i + 1]!;
        break;
      }
    }
  }
  const ctx = requestContext(rt, route, head, peer, responseHeaders, tenant);
  // Later phases (response, log) see the same request.
  out.access = ctx;
  let denied: ErrorSpec | LocalResponse | null = null;
  for (let i = 0; i < policies.length; i++) {
    denied = policies[i]!.access(ctx);
    if (denied !== null) break;
  }
  out.consumer = ctx.consumer;
  out.tenant = ctx.tenant;
  out.watched = ctx.watched;
  if (dir !== null) {
    const tier = dir.tiers[dir.tierOf(ctx.tenant)]!;
    out.tier = tier.name;
    if (tier.priority >= 0) out.priority = tier.priority;
  }
  return denied;
}

/** What policies and scripts see of the request. */
export function requestContext(rt: Runtime, route: CompiledRoute, head: RequestHead, peer: string, responseHeaders: string[], tenant: string | null): AccessContext {
  return {
    method: head.method,
    path: head.path,
    query: head.query,
    host: head.host,
    headers: head.headers,
    peer,
    clientIp: clientIp(peer, head.forwardedFor, rt),
    routeIndex: route.index,
    routeName: route.route.name,
    responseHeaders,
    consumer: null,
    tenant,
    watched: null,
  };
}
