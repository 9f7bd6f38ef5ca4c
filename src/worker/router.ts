// Route matching, rebuilt once per config generation. Routes are tried in the order
// the config lists them and the first whose host, path and method all match wins
// (Envoy's route-table semantics: predictable, and the operator controls priority).
//
// path, pathType prefix: matches the path itself and anything below it on a segment
//   boundary ("/v1/users" matches "/v1/users", "/v1/users/7", not "/v1/usersx"),
//   as the Kubernetes Gateway API's PathPrefix does. "/" matches everything.
// path, pathType exact: the path only (the query string is never part of matching).
// host: exact name, or "*.example.com" for any subdomain (not the apex), case-insensitive,
//   port ignored.
//
// match.flag: a route that names a flag matches only while the flag is on for the
// request (src/worker/flag-gate.ts); otherwise the next route is tried.
import type { WorkerRoute } from '../messages.js';
import type { FlagGate } from './flag-gate.js';
import type { RequestHead } from './request-head.js';

export interface CompiledRoute {
  readonly index: number;
  readonly route: WorkerRoute;
  readonly exactHosts: ReadonlySet<string> | null;
  readonly suffixHosts: readonly string[] | null; // ".example.com"
  readonly methods: ReadonlySet<string> | null; // upper-case
  readonly path: string;
  readonly prefix: boolean;
}

export class Router {
  private readonly routes: readonly CompiledRoute[];
  /** some route matches on a flag, whose share may be keyed by the client address */
  readonly flagged: boolean;

  constructor(
    routes: readonly WorkerRoute[],
    private readonly flags: FlagGate | null = null,
  ) {
    this.flagged = routes.some((r) => r.flag !== null);
    this.routes = routes.map((route, index) => {
      let exactHosts: Set<string> | null = null;
      let suffixHosts: string[] | null = null;
      if (route.hosts) {
        exactHosts = new Set();
        suffixHosts = [];
        for (const h of route.hosts) {
          if (h.startsWith('*.')) suffixHosts.push(h.slice(1));
          else exactHosts.add(h);
        }
      }
      // A trailing slash on a prefix adds nothing on a segment boundary: "/a/" ≡ "/a".
      const path = route.pathType === 'prefix' && route.path.length > 1 && route.path.endsWith('/') ? route.path.slice(0, -1) : route.path;
      return {
        index,
        route,
        exactHosts,
        suffixHosts,
        methods: route.methods ? new Set(route.methods) : null,
        path,
        prefix: route.pathType === 'prefix',
      };
    });
  }

  /**
   * `host` is the Host header as received; `method` upper-case; `path` without query.
   * `head` and `peer` decide routes with a flag; without them such a route never matches.
   */
  match(host: string, method: string, path: string, head: RequestHead | null = null, peer = ''): CompiledRoute | null {
    let hostName: string | null = null;
    for (let i = 0; i < this.routes.length; i++) {
      const r = this.routes[i]!;
      if (r.methods !== null && !r.methods.has(method)) continue;
      if (!pathMatches(r, path)) continue;
      if (r.exactHosts !== null) {
        if (hostName === null) hostName = normaliseHost(host);
        if (!r.exactHosts.has(hostName) && !suffixMatches(r.suffixHosts!, hostName)) continue;
      }
      const flag = r.route.flag;
      if (flag !== null && (head === null || this.flags === null || !this.flags.on(flag, head, peer))) continue;
      return r;
    }
    return null;
  }
}

function pathMatches(r: CompiledRoute, path: string): boolean {
  if (!r.prefix) return path === r.path;
  if (r.path === '/') return true;
  if (!path.startsWith(r.path)) return false;
  return path.length === r.path.length || path.charCodeAt(r.path.length) === 47 /* / */;
}

function suffixMatches(suffixes: readonly string[], host: string): boolean {
  for (const s of suffixes) if (host.length > s.length && host.endsWith(s)) return true;
  return false;
}

/** Lower-cases and strips the port ("API.example.com:8080" → "api.example.com", "[::1]:80" → "[::1]"). */
export function normaliseHost(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    end = close === -1 ? end : close + 1;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) end = colon;
  }
  return host.slice(0, end).toLowerCase();
}
