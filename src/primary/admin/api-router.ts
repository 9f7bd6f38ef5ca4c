// The admin API's route table. Every capability that can be read or changed at run
// time registers its endpoints here (one module each), with the scope a token needs;
// the router parses JSON bodies, enforces scopes, and writes the audit line for every
// change, so no handler can forget either.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { AdminErrors, type ErrorSpec } from '../../errors.js';
import type { Caller, Scope } from './tokens.js';

export type ApiMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface ApiRequest {
  readonly method: ApiMethod;
  readonly url: URL;
  /** `:name` segments of the route's path, decoded */
  readonly params: Readonly<Record<string, string>>;
  /** the parsed JSON body (undefined when there was none) */
  readonly body: unknown;
  readonly caller: Caller;
  readonly headers: IncomingHttpHeaders;
}

export interface ApiReply {
  readonly status?: number;
  readonly body: unknown;
}

export interface ApiRoute {
  readonly method: ApiMethod;
  /** `/v1/overrides/:id`: literal segments and `:param` segments */
  readonly path: string;
  readonly scope: Scope;
  handle(req: ApiRequest): ApiReply | Promise<ApiReply>;
}

/** An error a handler throws to answer a specific status and stable code. */
export class ApiError extends Error {
  constructor(
    readonly spec: ErrorSpec,
    message?: string,
    readonly details?: readonly string[],
  ) {
    super(message ?? spec.message);
  }
  get status(): number {
    return this.spec.status;
  }
  get code(): string {
    return this.spec.code;
  }
}

interface Compiled {
  readonly route: ApiRoute;
  readonly segments: readonly string[];
}

export interface AuditSink {
  (line: { caller: string; method: string; path: string; status: number; body?: unknown }): void;
}

const MAX_BODY_BYTES = 1024 * 1024;
const METHODS: ReadonlySet<string> = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

export class ApiRouter {
  private readonly routes: Compiled[] = [];

  constructor(private readonly audit: AuditSink) {}

  add(...routes: readonly ApiRoute[]): void {
    for (const route of routes) {
      const segments = route.path.split('/').slice(1);
      if (this.routes.some((c) => c.route.method === route.method && c.route.path === route.path)) throw new Error(`admin route ${route.method} ${route.path} registered twice`);
      this.routes.push({ route, segments });
    }
  }

  /** Every route whose path matches, whatever its method: a path known under another method is a 405, not a 404. */
  private match(path: string): { hits: { c: Compiled; params: Record<string, string> }[] } {
    const parts = path.split('/').slice(1);
    const hits: { c: Compiled; params: Record<string, string> }[] = [];
    for (const c of this.routes) {
      if (c.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const s = c.segments[i]!;
        const p = parts[i]!;
        if (s.startsWith(':')) {
          if (p === '') {
            ok = false;
            break;
          }
          try {
            params[s.slice(1)] = decodeURIComponent(p);
          } catch {
            ok = false;
            break;
          }
        } else if (s !== p) {
          ok = false;
          break;
        }
      }
      if (ok) hits.push({ c, params });
    }
    return { hits };
  }

  /** Whether this router answers the path at all (so the server can fall through to its other handlers). */
  handles(path: string): boolean {
    return this.match(path).hits.length > 0;
  }

  /** Answers one request; never rejects. */
  async dispatch(req: IncomingMessage, url: URL, caller: Caller): Promise<{ status: number; body: unknown }> {
    const method = req.method ?? 'GET';
    const { hits } = this.match(url.pathname);
    const hit = hits.find((h) => h.c.route.method === method);
    if (!hit || !METHODS.has(method)) {
      return errorReply(new ApiError(AdminErrors.METHOD_NOT_ALLOWED, `${method} is not allowed on ${url.pathname} (allowed: ${hits.map((h) => h.c.route.method).join(', ')})`));
    }
    const route = hit.c.route;
    if (!caller.scopes.has(route.scope)) {
      const out = errorReply(new ApiError(AdminErrors.FORBIDDEN, `token "${caller.name}" lacks the "${route.scope}" scope that ${method} ${route.path} needs`));
      if (method !== 'GET') this.audit({ caller: caller.name, method, path: url.pathname, status: out.status });
      return out;
    }
    let body: unknown;
    let out: { status: number; body: unknown };
    try {
      body = await readJson(req);
      const r = await route.handle({ method: method as ApiMethod, url, params: hit.params, body, caller, headers: req.headers });
      out = { status: r.status ?? 200, body: r.body };
    } catch (e) {
      out = errorReply(e);
    }
    if (method !== 'GET') this.audit({ caller: caller.name, method, path: url.pathname, status: out.status, ...(body === undefined ? {} : { body }) });
    return out;
  }
}

export function errorReply(e: unknown): { status: number; body: unknown } {
  if (e instanceof ApiError) return { status: e.status, body: { error: { code: e.code, message: e.message, ...(e.details ? { issues: e.details } : {}) } } };
  const err = e as Error & { status?: number; code?: string };
  if (typeof err?.status === 'number' && typeof err.code === 'string') return { status: err.status, body: { error: { code: err.code, message: err.message } } };
  return { status: 500, body: { error: { code: AdminErrors.INTERNAL.code, message: err instanceof Error ? err.message : String(e) } } };
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ApiError(AdminErrors.BODY_TOO_LARGE, `admin request bodies are limited to ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size === 0) return resolve(undefined);
      const type = String(req.headers['content-type'] ?? 'application/json');
      if (!/^application\/(json|[a-z0-9.+-]*\+json)\b/i.test(type)) return reject(new ApiError(AdminErrors.BAD_JSON, `the body must be application/json, got ${type}`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
      } catch (e) {
        reject(new ApiError(AdminErrors.BAD_JSON, `the body is not valid JSON: ${(e as Error).message}`));
      }
    });
  });
}
