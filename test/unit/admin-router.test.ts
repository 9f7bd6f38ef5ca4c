// The admin route table on a real loopback HTTP server: path parameters, JSON bodies
// (missing, malformed, wrong type, too large), scope refusal before the handler runs,
// and an audit line for every change whatever its answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiRouter, ApiError, type AuditSink } from '../../src/primary/admin/api-router.js';
import { AdminErrors } from '../../src/errors.js';
import type { Caller } from '../../src/primary/admin/tokens.js';

test('the router parses, checks scopes, answers stable errors and audits changes', async () => {
  const audit: Parameters<AuditSink>[0][] = [];
  const router = new ApiRouter((l) => audit.push(l));
  const seen: unknown[] = [];
  router.add(
    { method: 'PUT', path: '/v1/things/:name', scope: 'traffic', handle: ({ params, body }) => (seen.push({ params, body }), { status: 201, body: { ok: params.name } }) },
    { method: 'DELETE', path: '/v1/things/:name', scope: 'traffic', handle: () => { throw new ApiError(AdminErrors.NOT_FOUND, 'no thing "x"'); } },
  );
  assert.throws(() => router.add({ method: 'PUT', path: '/v1/things/:name', scope: 'read', handle: () => ({ body: null }) }), /registered twice/);
  const callers: Record<string, Caller> = { ops: { name: 'ops', scopes: new Set(['read', 'traffic']) }, reader: { name: 'reader', scopes: new Set(['read']) } };
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    void router.dispatch(req, url, callers[String(req.headers['x-who'])]!).then((r) => {
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, who: string, body?: string | Buffer, type = 'application/json') => {
    const res = await fetch(base + path, { method, headers: { 'x-who': who, ...(body !== undefined ? { 'content-type': type } : {}) }, ...(body !== undefined ? { body } : {}) });
    return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string }; ok?: string } };
  };
  try {
    assert.equal(router.handles('/v1/things/a'), true);
    assert.equal(router.handles('/v1/things'), false);
    const ok = await call('PUT', '/v1/things/a%20b', 'ops', '{"weight":3}');
    assert.deepEqual(ok, { status: 201, json: { ok: 'a b' } });
    assert.deepEqual(seen, [{ params: { name: 'a b' }, body: { weight: 3 } }]);
    assert.equal((await call('PUT', '/v1/things/a', 'ops', '{"weight":')).json.error?.code, 'TG_ERR_ADMIN_BAD_JSON');
    assert.equal((await call('PUT', '/v1/things/a', 'ops', 'weight=3', 'application/x-www-form-urlencoded')).json.error?.code, 'TG_ERR_ADMIN_BAD_JSON');
    const big = await call('PUT', '/v1/things/a', 'ops', Buffer.alloc(1024 * 1024 + 10, 0x20)).catch(() => ({ status: 413, json: { error: { code: 'TG_ERR_ADMIN_BODY_TOO_LARGE', message: '' } } }));
    assert.equal(big.status, 413);
    const forbidden = await call('PUT', '/v1/things/a', 'reader', '{}');
    assert.equal(forbidden.status, 403);
    assert.equal(seen.length, 1, 'the handler must not run without the scope');
    assert.deepEqual(await call('DELETE', '/v1/things/x', 'ops'), { status: 404, json: { error: { code: 'TG_ERR_ADMIN_NOT_FOUND', message: 'no thing "x"' } } });
    assert.equal((await call('GET', '/v1/things/x', 'ops')).status, 405);
    assert.deepEqual(
      audit.map((a) => [a.caller, a.method, a.status]),
      [['ops', 'PUT', 201], ['ops', 'PUT', 400], ['ops', 'PUT', 400], ['ops', 'PUT', 413], ['reader', 'PUT', 403], ['ops', 'DELETE', 404]],
    );
  } finally {
    server.close();
  }
});
