// The request handler: head → framing checks → route → access policies → exchange.
// Everything here runs synchronously inside the uWS callback (docs/architecture.md, the hot path);
// the exchange takes over for what happens later.
import { randomUUID } from 'node:crypto';
import { Errors } from '../errors.js';
import { Exchange } from './exchange.js';
import { RequestHead, readRequestHead } from './request-head.js';
import type { Runtime } from './runtime.js';
import type { CompiledRoute } from './router.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import { LocalResponse, type AccessContext } from '../policies/policy.js';
import { requestStarted } from './worker-state.js';
import { applyTraceContext } from './trace-context.js';
import { normalizePath } from './path-normalize.js';
import { chooseSide } from './split-choice.js';
import type { ErrorSpec } from '../errors.js';
import type { ListenerScope } from './listener.js';

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/;

export type RuntimeRef = { current: Runtime };

/** `scope` is the listener the connection came in on (certificate reloads retire one). */
export function createHandler(ref: RuntimeRef, scope: ListenerScope): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const rt = ref.current;
    const head = new RequestHead();
    const bad = readRequestHead(req, head, rt.config.limits, rt.requestIdHeader);
    const ex = new Exchange(res, head, rt, scope);
    // Before anything that can outlive this callback: uWS aborts the process when a handler returns without responding or registering onAborted.
    res.onAborted(ex.onClientAborted);
    requestStarted();
    scope.inFlight++;
    scope.started++;
    ex.requestId = head.requestId !== null && REQUEST_ID.test(head.requestId) ? head.requestId : randomUUID();
    try {
      if (bad !== null) {
        // Framing and limit errors: the rest of the byte stream cannot be trusted.
        // Answering here, inside the handler, would not stop uWS: it goes on parsing
        // the bytes it already holds behind this head and calls the handler for them
        // (the smuggled request), and it forgets the close. A response still pending
        // when the next request is parsed makes uWS close the connection instead
        // ("denying async pipelining"), and an answer written later inside cork is
        // followed by the close. So the answer waits for the next turn of the loop:
        // either the client gets the 400 and the connection closes, or, when bytes
        // were pipelined behind the bad head, the connection closes unanswered.
        // Either way no byte after a rejected head is ever read as a request.
        setImmediate(rejectFraming, ex, bad);
        return;
      }
      const path = normalizePath(head.path, rt.pathOptions);
      if (typeof path !== 'string') {
        ex.fail(path, false);
        return;
      }
      head.path = path;
      const peer = decoder.decode(res.getRemoteAddressAsText());
      const route = rt.router.match(head.host, head.method, head.path, head, peer);
      if (route === null) {
        ex.fail(Errors.ROUTE_NOT_FOUND, false);
        return;
      }
      ex.route = route;
      ex.priority = route.route.priority;
      const split = route.route.split;
      // A `lua.content` route has no upstream (-1): its script answers below.
      if (split === null) ex.upstream = rt.upstreams[route.route.upstream] ?? null;
      else {
        // Before the forwarding headers are added: a rule or sticky header is the client's own.
        ex.side = chooseSide(rt.splits, split, head.headers, split.sticky?.on === 'client-ip' ? clientIp(peer, head.forwardedFor, rt) : peer);
        ex.upstream = rt.upstreams[split.sides[ex.side]!]!;
      }
      const maintenance = route.route.maintenance;
      if (maintenance !== null && rt.flags.on(maintenance, head, peer)) {
        ex.respondStatic(maintenance.response);
        return;
      }
      addForwardingHeaders(peer, head, rt, ex.requestId);
      applyTraceContext(head.headers, rt.config.observability.tracing);
      ex.headers = head.headers;
      const denied = accessPhase(rt, route, head, peer, ex.responseHeaders, ex);
      if (denied !== null) {
        if (denied instanceof LocalResponse) ex.respondLocal(denied.status, denied.body, denied.headers);
        else ex.fail(denied, false);
        return;
      }
      const content = rt.contents[route.index]!;
      if (content !== null) {
        const r = content.run((ex.access ??= requestContext(rt, route, head, peer, ex.responseHeaders, null)));
        if (r instanceof LocalResponse) ex.respondLocal(r.status, r.body, r.headers);
        else ex.fail(r, false);
        return;
      }
      const cache = rt.caches[route.index]!;
      if (cache !== null && cache.handle(ex)) return;
      ex.start();
    } catch (err) {
      process.emitWarning(err as Error);
      ex.fail(Errors.INTERNAL, true);
    }
  };
}

const decoder = new TextDecoder('latin1');

/** Who the access phase identified, and who wants the final status (kept by the exchange for the log phase). */
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

/**
 * The access phase: the route's policies in configured order; the first refusal wins.
 * Shared by HTTP requests and WebSocket upgrades, so both meet the same policies.
 */
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

function rejectFraming(ex: Exchange, spec: ErrorSpec): void {
  ex.fail(spec, true);
}

/** X-Forwarded-For is appended to, as nginx's $proxy_add_x_forwarded_for and Envoy do; Proto/Host from the client are kept only from a trusted proxy. */
export function addForwardingHeaders(peer: string, head: RequestHead, rt: Runtime, requestId: string): void {
  const trusted = rt.trusted.has(peer);
  const h = head.headers;
  h.push('x-forwarded-for', head.forwardedFor === null ? peer : `${head.forwardedFor}, ${peer}`);
  h.push('x-forwarded-proto', trusted && head.forwardedProto !== null ? head.forwardedProto : rt.scheme);
  h.push('x-forwarded-host', trusted && head.forwardedHost !== null ? head.forwardedHost : head.host);
  const via = rt.viaToken;
  if (via !== null) h.push('via', head.via === null ? via : `${head.via}, ${via}`);
  else if (head.via !== null) h.push('via', head.via);
  // RFC 7239: the same trust rule as X-Forwarded-For, so an untrusted client cannot
  // claim to be someone else to a backend that reads Forwarded.
  const prior = trusted ? head.forwarded : null;
  if (rt.config.proxy.forwarded === 'append') {
    const own = forwardedElement(peer, head.host, rt.scheme);
    h.push('forwarded', prior === null ? own : `${prior}, ${own}`);
  } else if (prior !== null) {
    h.push('forwarded', prior);
  }
  h.push(rt.requestIdHeader, requestId);
}

/** `for=…;host=…;proto=…` (RFC 7239 §4, §6): IPv6 nodes and non-token hosts are quoted. */
function forwardedElement(peer: string, host: string, proto: string): string {
  const node = peer.includes(':') ? `"[${peer}]"` : peer;
  const h = /^[A-Za-z0-9.-]+$/.test(host) ? host : `"${host}"`;
  return `for=${node};host=${h};proto=${proto}`;
}

/**
 * The client address for policies: walk X-Forwarded-For from the nearest hop while the
 * hop we got it from is a trusted proxy (nginx realip with `real_ip_recursive on`).
 * An untrusted peer's X-Forwarded-For is never believed.
 */
export function clientIp(peer: string, forwardedFor: string | null, rt: Runtime): string {
  if (forwardedFor === null || !rt.trusted.has(peer)) return peer;
  const hops = forwardedFor.split(',');
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim();
    if (hop.length === 0) break;
    client = hop;
    if (!rt.trusted.has(hop)) break;
  }
  return client;
}
