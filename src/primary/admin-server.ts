// The admin API, on its own port (127.0.0.1 by default). /healthz and /readyz are
// open so orchestrator probes need no secret; everything else needs a bearer token
// when any is configured, and the token's scopes decide what it may do: reading
// needs `read`, a reload `admin`, and each /v1 endpoint names its own scope.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AdminErrors } from '../errors.js';
import type { ApiRouter, AuditSink } from './admin/api-router.js';
import type { Caller, Scope, TokenStore } from './admin/tokens.js';

export interface AdminRoutes {
  ready(): boolean;
  status(): unknown;
  /** re-reads the config file; resolves with the applied generation or rejects with ConfigError */
  reload(): Promise<{ generation: number }>;
  /** test hook, present only with TIDEGATE_ENABLE_TEST_HOOKS=1: makes a worker crash */
  crashWorker?(slot: number, abrupt: boolean): boolean;
  /** extra GET handlers by exact path, answering a body and content type */
  extra?: Record<string, (url: URL) => Promise<{ status?: number; type: string; body: string | Buffer }>>;
  /** long-lived GET handlers by exact path (Server-Sent Events) that write the response themselves; may throw an error with status/code before writing */
  streams?: Record<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void>;
  /** the /v1 route table: JSON endpoints of every method, each with its scope */
  api?: ApiRouter;
  /** where the changes outside the route table (reload, test hooks) are audited */
  audit?: AuditSink;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

function refuse(res: ServerResponse, caller: Caller, scope: Scope, what: string): void {
  send(res, AdminErrors.FORBIDDEN.status, { error: { code: AdminErrors.FORBIDDEN.code, message: `token "${caller.name}" lacks the "${scope}" scope that ${what} needs` } });
}

type ExtraHandler = NonNullable<AdminRoutes['extra']>[string];

function serveExtra(res: ServerResponse, extra: ExtraHandler, url: URL): void {
  extra(url).then(
    (r) => {
      res.writeHead(r.status ?? 200, { 'content-type': r.type, 'cache-control': 'no-store' });
      res.end(r.body);
    },
    (err: Error & { status?: number; code?: string }) => send(res, err.status ?? 500, { error: { code: err.code ?? AdminErrors.INTERNAL.code, message: err.message } }),
  );
}

export function startAdminServer(host: string, port: number, tokens: TokenStore, routes: AdminRoutes): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    if (path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path === '/readyz') return routes.ready() ? send(res, 200, { status: 'ready' }) : send(res, 503, { status: 'not-ready' });
    // The console's page holds no data (it fetches everything with the token the user
    // types), and a browser cannot send a bearer header on a navigation.
    if (path === '/ui' && req.method === 'GET' && routes.extra?.['/ui']) return void serveExtra(res, routes.extra['/ui'], url);
    const caller = tokens.identifyRequest(req.headers.authorization, req.socket.remoteAddress, req.method);
    if (caller === null) {
      res.setHeader('www-authenticate', 'Bearer');
      return send(res, AdminErrors.UNAUTHORIZED.status, { error: { code: AdminErrors.UNAUTHORIZED.code, message: AdminErrors.UNAUTHORIZED.message } });
    }
    if (routes.api?.handles(path)) {
      void routes.api.dispatch(req, url, caller).then((r) => send(res, r.status, r.body));
      return;
    }
    const needs: Scope = req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'admin';
    if (!caller.scopes.has(needs)) return refuse(res, caller, needs, `${req.method} ${path}`);
    if (path === '/status' && req.method === 'GET') return send(res, 200, routes.status());
    if (req.method !== 'GET' && req.method !== 'HEAD') res.once('finish', () => routes.audit?.({ caller: caller.name, method: req.method ?? '', path, status: res.statusCode }));
    if (path === '/reload' && req.method === 'POST') {
      routes.reload().then(
        (r) => send(res, 200, { status: 'applied', generation: r.generation }),
        (err: Error & { code?: string; issues?: readonly string[] }) =>
          send(res, 400, { error: { code: err.code ?? AdminErrors.CONFIG_REJECTED.code, message: AdminErrors.CONFIG_REJECTED.message, issues: err.issues ?? [err.message] } }),
      );
      return;
    }
    if (path === '/debug/crash-worker' && req.method === 'POST' && routes.crashWorker) {
      const slot = Number(url.searchParams.get('slot') ?? '0');
      return routes.crashWorker(slot, url.searchParams.get('abrupt') === '1') ? send(res, 202, { status: 'crashing', slot }) : send(res, 404, { error: { code: AdminErrors.NOT_FOUND.code, message: `no worker in slot ${slot}` } });
    }
    const stream = routes.streams?.[path];
    if (stream && req.method === 'GET') {
      try {
        stream(req, res, url);
      } catch (e) {
        const err = e as Error & { status?: number; code?: string };
        if (!res.headersSent) send(res, err.status ?? 500, { error: { code: err.code ?? AdminErrors.INTERNAL.code, message: err.message } });
        else res.destroy();
      }
      return;
    }
    const extra = routes.extra?.[path];
    if (extra && req.method === 'GET') return void serveExtra(res, extra, url);
    send(res, 404, { error: { code: AdminErrors.NOT_FOUND.code, message: `no admin endpoint ${req.method} ${path}` } });
  });
  // Probes and scrapes are short; never let a slow client hold the control plane.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
