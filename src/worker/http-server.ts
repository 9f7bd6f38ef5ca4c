// The request handler: head → framing checks → route → access policies → exchange.
// Everything here runs synchronously inside the uWS callback (DESIGN.md §3 steps 1-4);
// the exchange takes over for what happens later.
import { randomUUID } from 'node:crypto';
import { Errors } from '../errors.js';
import { Exchange } from './exchange.js';
import { RequestHead, readRequestHead } from './request-head.js';
import type { Runtime } from './runtime.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import type { AccessContext } from '../policies/policy.js';
import { requestStarted } from './worker-state.js';
import { applyTraceContext } from './trace-context.js';
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
    // Before anything that can outlive this callback (FIELD-NOTES: uWS terminates otherwise).
    res.onAborted(ex.onClientAborted);
    requestStarted();
    scope.inFlight++;
    scope.started++;
    ex.requestId = head.requestId !== null && REQUEST_ID.test(head.requestId) ? head.requestId : randomUUID();
    try {
      if (bad !== null) {
        // Framing and limit errors: the rest of the byte stream cannot be trusted.
        ex.fail(bad, true);
        return;
      }
      const route = rt.router.match(head.host, head.method, head.path);
      if (route === null) {
        ex.fail(Errors.ROUTE_NOT_FOUND, false);
        return;
      }
      ex.route = route;
      ex.upstream = rt.upstreams[route.route.upstream]!;
      const peer = decoder.decode(res.getRemoteAddressAsText());
      addForwardingHeaders(peer, head, rt, ex.requestId);
      applyTraceContext(head.headers, rt.config.observability.tracing);
      ex.headers = head.headers;
      const policies = rt.policies[route.index]!;
      if (policies.length > 0) {
        const ctx: AccessContext = {
          method: head.method,
          path: head.path,
          host: head.host,
          headers: head.headers,
          peer,
          clientIp: clientIp(peer, head.forwardedFor, rt),
          routeIndex: route.index,
          routeName: route.route.name,
          responseHeaders: ex.responseHeaders,
        };
        for (let i = 0; i < policies.length; i++) {
          const denied = policies[i]!.access(ctx);
          if (denied !== null) {
            ex.fail(denied, false);
            return;
          }
        }
      }
      ex.start();
    } catch (err) {
      process.emitWarning(err as Error);
      ex.fail(Errors.INTERNAL, true);
    }
  };
}

const decoder = new TextDecoder('latin1');

/** X-Forwarded-For is appended to, as nginx's $proxy_add_x_forwarded_for and Envoy do; Proto/Host from the client are kept only from a trusted proxy. */
function addForwardingHeaders(peer: string, head: RequestHead, rt: Runtime, requestId: string): void {
  const trusted = rt.trusted.has(peer);
  const h = head.headers;
  h.push('x-forwarded-for', head.forwardedFor === null ? peer : `${head.forwardedFor}, ${peer}`);
  h.push('x-forwarded-proto', trusted && head.forwardedProto !== null ? head.forwardedProto : rt.scheme);
  h.push('x-forwarded-host', trusted && head.forwardedHost !== null ? head.forwardedHost : head.host);
  const via = rt.viaToken;
  if (via !== null) h.push('via', head.via === null ? via : `${head.via}, ${via}`);
  else if (head.via !== null) h.push('via', head.via);
  h.push(rt.requestIdHeader, requestId);
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
