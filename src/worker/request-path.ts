// The request path, in the order a request runs it. Everything in this file runs
// synchronously inside the uWS callback (a uWS request object is dead once the handler
// returns); the exchange (exchange.ts) takes over for what happens later, in its own
// order. Each phase owns its state:
//
//   1. read head   request-head.ts   RequestHead: method, target, fields; framing and limits
//   2. route       router.ts         the route, its upstream or split side, maintenance
//   3. forward     forwarding.ts     X-Forwarded-*, Via, Forwarded, request id, traceparent
//                                    (Exchange.forward: here when the route has policies,
//                                    else when the request goes upstream; a cache hit
//                                    never builds them)
//   4. access      access-phase.ts   tenant, consumer, the route's policies; then a Lua
//                                    content script or the response cache may answer
//   5. admit       exchange.ts       connection limit, load shedding, breaker, concurrency
//   6. balance     exchange.ts       the endpoint (upstream-set.ts, src/balancers)
//   7. upstream    exchange.ts       the endpoint's pool (upstream/h1-pool.ts) and its callbacks
//   8. respond     exchange.ts       the response to the client, with backpressure
//   9. log         request-log.ts    metrics and the access log (telemetry.ts installs it)
import { randomUUID } from 'node:crypto';
import { Errors, type ErrorSpec } from '../errors.js';
import { LocalResponse } from '../policies/policy.js';
import { accessPhase, requestContext } from './access-phase.js';
import { Exchange } from './exchange.js';
import { clientIp } from './forwarding.js';
import type { ListenerScope } from './listener.js';
import { normalizePath } from './path-normalize.js';
import { RequestHead, readRequestHead } from './request-head.js';
import type { Runtime } from './runtime.js';
import { chooseSide } from './split-choice.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import { requestStarted } from './worker-state.js';

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/;

export type RuntimeRef = { current: Runtime };

/** `scope` is the listener the connection came in on (certificate reloads retire one). */
export function createHandler(ref: RuntimeRef, scope: ListenerScope): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const rt = ref.current;
    // 1. read head
    const head = new RequestHead();
    const bad = readRequestHead(req, head, rt.config.limits, rt.requestIdHeader);
    const ex = new Exchange(res, head, rt, scope);
    requestStarted();
    scope.inFlight++;
    scope.started++;
    ex.requestId = head.requestId !== null && REQUEST_ID.test(head.requestId) ? head.requestId : randomUUID();
    try {
      if (bad !== null) {
        rejectFraming(ex, bad);
        return;
      }
      const path = normalizePath(head.path, rt.pathOptions);
      if (typeof path !== 'string') {
        ex.fail(path, false);
        return;
      }
      head.path = path;
      // 2. route
      if (!route(ex, rt, head)) return;
      // 3. forward: now when policies or a script see the request, else when it goes upstream (ex.start)
      const i = ex.route!.index;
      const policies = rt.policies[i]!.length > 0 || rt.tenants !== null;
      if (policies || rt.contents[i] !== null) ex.forward();
      // 4. access
      if (!access(ex, rt, head, policies)) return;
      // 5–9: the exchange
      ex.start();
    } catch (err) {
      process.emitWarning(err as Error);
      ex.fail(Errors.INTERNAL, true);
    } finally {
      // uWS aborts the process when a handler returns without responding or registering
      // onAborted, and refuses a response touched after it ended. Registered only for a
      // request that outlives this callback: nothing can abort while it runs, and a
      // request answered here (a cache hit, a 404, a 429) is spared the persistent
      // handle uWS makes for the callback.
      if (!ex.responded) res.onAborted(ex.onClientAborted);
    }
  };
}

/**
 * Framing and limit errors: the rest of the byte stream cannot be trusted. Answering
 * here, inside the handler, would not stop uWS: it goes on parsing the bytes it already
 * holds behind this head and calls the handler for them (the smuggled request), and it
 * forgets the close. A response still pending when the next request is parsed makes
 * uWS close the connection instead ("denying async pipelining"), and an answer written
 * later inside cork is followed by the close. So the answer waits for the next turn of
 * the loop: either the client gets the 400 and the connection closes, or, when bytes
 * were pipelined behind the bad head, the connection closes unanswered. Either way no
 * byte after a rejected head is ever read as a request.
 */
function rejectFraming(ex: Exchange, spec: ErrorSpec): void {
  setImmediate(failAndClose, ex, spec);
}

function failAndClose(ex: Exchange, spec: ErrorSpec): void {
  ex.fail(spec, true);
}

/** The route, its upstream (or the split side), and a maintenance answer. False: answered. */
function route(ex: Exchange, rt: Runtime, head: RequestHead): boolean {
  // The peer only when a flag can decide the route (reading it costs a system call).
  const route = rt.router.match(head.host, head.method, head.path, head, rt.router.flagged ? ex.peer : '');
  if (route === null) {
    ex.fail(Errors.ROUTE_NOT_FOUND, false);
    return false;
  }
  ex.route = route;
  ex.priority = route.route.priority;
  const split = route.route.split;
  // A `lua.content` route has no upstream (-1): its script answers in the access step.
  if (split === null) ex.upstream = rt.upstreams[route.route.upstream] ?? null;
  else {
    // Before the forwarding headers are added: a rule or sticky header is the client's own.
    ex.side = chooseSide(rt.splits, split, head.headers, split.sticky?.on === 'client-ip' ? clientIp(ex.peer, head.forwardedFor, rt) : ex.peer);
    ex.upstream = rt.upstreams[split.sides[ex.side]!]!;
  }
  const maintenance = route.route.maintenance;
  if (maintenance !== null && rt.flags.on(maintenance, head, ex.peer)) {
    ex.respondStatic(maintenance.response);
    return false;
  }
  return true;
}

/** The route's policies (`policies`: it has some, or there are tenants), then a Lua content script or the response cache. False: answered (or the cache took the request over). */
function access(ex: Exchange, rt: Runtime, head: RequestHead, policies: boolean): boolean {
  const route = ex.route!;
  // Without policies or tenants there is nothing to run (and no peer to read).
  const denied = policies ? accessPhase(rt, route, head, ex.peer, ex.responseHeaders, ex) : null;
  if (denied !== null) {
    if (denied instanceof LocalResponse) ex.respondLocal(denied.status, denied.body, denied.headers);
    else ex.fail(denied, false);
    return false;
  }
  const content = rt.contents[route.index]!;
  if (content !== null) {
    const r = content.run((ex.access ??= requestContext(rt, route, head, ex.peer, ex.responseHeaders, null)));
    if (r instanceof LocalResponse) ex.respondLocal(r.status, r.body, r.headers);
    else ex.fail(r, false);
    return false;
  }
  const cache = rt.caches[route.index]!;
  return cache === null || !cache.handle(ex);
}
