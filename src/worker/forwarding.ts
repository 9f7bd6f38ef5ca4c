// The forwarding fields a proxy adds (X-Forwarded-*, Via, Forwarded, the request id)
// and the client address policies see. Shared by proxied requests and WebSocket
// upgrades. Trust follows `proxy.trustedProxies`: what a client says about earlier
// hops is believed only when the peer is a trusted proxy.
import type { RequestHead } from './request-head.js';
import type { Runtime } from './runtime.js';

// RFC 7230 token characters in a Host (anything else is quoted in Forwarded).
const TOKEN_HOST = /^[A-Za-z0-9.-]+$/;

/** X-Forwarded-For is appended to, as nginx's $proxy_add_x_forwarded_for and Envoy do; Proto/Host from the client are kept only from a trusted proxy. */
export function addForwardingHeaders(peer: string, head: RequestHead, rt: Runtime, requestId: string): void {
  const trusted = rt.trusted.has(peer);
  const h = head.headers;
  h.push('x-forwarded-for', head.forwardedFor === null ? peer : head.forwardedFor + ', ' + peer);
  h.push('x-forwarded-proto', trusted && head.forwardedProto !== null ? head.forwardedProto : rt.scheme);
  h.push('x-forwarded-host', trusted && head.forwardedHost !== null ? head.forwardedHost : head.host);
  const via = rt.viaToken;
  if (via !== null) h.push('via', head.via === null ? via : head.via + ', ' + via);
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
  const h = TOKEN_HOST.test(host) ? host : `"${host}"`;
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
