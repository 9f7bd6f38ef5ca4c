// ip-access and api-key through the real gateway: two workers, a real upstream, clients
// on enough connections that both workers answer (helpers/workers.ts); lists changed at
// run time through the admin API, the key file edited while the gateway runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';
import { until } from '../helpers/poll.js';

const CONNECTIONS = 16;
const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdef0000';
const CAROL = 'carol-key-0123456789abcdef000';
const OPS = 'ops-token-0123456789abcdef';
const VIEWER = 'viewer-token-0123456789abcdef';

function writeKeys(file: string, keys: unknown[]): void {
  // Written beside and renamed, as a deploy would: a reader never sees half a file.
  writeFileSync(`${file}.tmp`, stringify({ keys }));
  renameSync(`${file}.tmp`, file);
}

/** Statuses of `n` requests spread over the pool's connections. */
async function statuses(pool: Pool, path: string, headers: Record<string, string>, n = CONNECTIONS * 2): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const r = await pool.request({ path, method: 'GET', headers });
      await r.body.text();
      return r.statusCode;
    }),
  );
}

test('ip-access and api-key: 401/403 with stable codes, lists changed at run time on every worker, key file reloaded', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-access-'));
  const keys = join(dir, 'keys.yaml');
  writeKeys(keys, [
    { consumer: 'alice', tenant: 'acme', key: ALICE },
    { consumer: 'bob', tenant: 'globex', sha256: createHash('sha256').update(BOB).digest('hex') },
  ]);
  const tokens = join(dir, 'tokens.yaml');
  writeFileSync(tokens, stringify({ tokens: [{ name: 'ops', token: OPS, scopes: ['read', 'access'] }, { name: 'viewer', token: VIEWER, scopes: ['read'] }] }));
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      admin: { host: '127.0.0.1', port: 0, tokens },
      observability: { snapshotInterval: '100ms', accessLog: { sampleRate: 1 } },
      routes: [
        { name: 'bob-only', match: { path: '/bob' }, upstream: 'app', policies: [{ 'api-key': { file: keys, consumers: ['bob'] } }] },
        { name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ 'ip-access': { name: 'edge', allow: ['127.0.0.0/8', '::1'] } }, { 'api-key': { file: keys } }] },
      ],
    }),
  );
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
  const admin = (method: 'GET' | 'PUT' | 'DELETE', path: string, token: string, body?: unknown) =>
    request(`${gw.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) }).then(async (r) => ({ status: r.statusCode, body: (await r.body.json()) as Record<string, unknown> }));
  try {
    // No key, a wrong key: 401 with a challenge; the upstream sees nothing.
    const none = await pool.request({ path: '/x', method: 'GET' });
    assert.equal(none.statusCode, 401);
    assert.equal(none.headers['www-authenticate'], 'ApiKey header="x-api-key"');
    assert.deepEqual(await none.body.json(), { error: { code: 'TG_ERR_AUTH_REQUIRED', message: 'a valid credential is required (API key or bearer token)' } });
    const wrong = await pool.request({ path: '/x', method: 'GET', headers: { 'x-api-key': 'not-a-key-of-anyone-at-all' } });
    assert.equal(wrong.statusCode, 401);
    await wrong.body.text();
    assert.equal(up.requests.length, 0, 'refused requests never reach the upstream');

    // A known key (plain in the file, or as SHA-256) passes on both workers.
    const before = await workerRequests(gw.adminUrl, VIEWER);
    assert.deepEqual(new Set(await statuses(pool, '/x', { 'x-api-key': ALICE })), new Set([200]));
    assert.deepEqual(new Set(await statuses(pool, '/x', { 'x-api-key': BOB })), new Set([200]));
    await assertEveryWorkerServed(gw.adminUrl, 2, before, VIEWER);
    // A known consumer that the route does not list: 403.
    const forbidden = await pool.request({ path: '/bob', method: 'GET', headers: { 'x-api-key': ALICE } });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(((await forbidden.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_FORBIDDEN');
    assert.equal((await pool.request({ path: '/bob', method: 'GET', headers: { 'x-api-key': BOB } })).statusCode, 200);

    // The consumer and tenant reach the access log.
    const logged = await until('access log lines for alice', () => gw.logs.filter((l) => l.event === 'access' && l.consumer === 'alice'), (l) => l.length > 0);
    assert.equal(logged[0]!.tenant, 'acme');

    // A read token cannot change access lists; an access token can.
    const refused = await admin('PUT', '/v1/access/edge', VIEWER, { deny: ['127.0.0.1'] });
    assert.equal(refused.status, 403);
    assert.equal((refused.body.error as { code: string }).code, 'TG_ERR_ADMIN_FORBIDDEN');
    const bad = await admin('PUT', '/v1/access/edge', OPS, { deny: ['127.0.0.300'] });
    assert.equal(bad.status, 422);
    assert.equal((await admin('PUT', '/v1/access/nope', OPS, { deny: ['127.0.0.1'] })).status, 404);
    const put = await admin('PUT', '/v1/access/edge', OPS, { deny: ['127.0.0.1/32'] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(put.body.deny, ['127.0.0.1/32']);
    assert.deepEqual(put.body.allow, ['127.0.0.0/8', '::1'], 'a list left out keeps the configured one');
    // Every worker refuses from its next requests (the change is one message to each).
    const denyBefore = await workerRequests(gw.adminUrl, VIEWER);
    await until('every request refused by the run-time deny list', () => statuses(pool, '/x', { 'x-api-key': ALICE }), (s) => s.every((c) => c === 403), 2000);
    await assertEveryWorkerServed(gw.adminUrl, 2, denyBefore, VIEWER);
    const denied = await pool.request({ path: '/x', method: 'GET', headers: { 'x-api-key': ALICE } });
    assert.equal(((await denied.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_FORBIDDEN');
    const listed = await admin('GET', '/v1/access', VIEWER);
    const edge = (listed.body.ipAccess as { name: string; source: string; routes: string[] }[]).find((p) => p.name === 'edge')!;
    assert.equal(edge.source, 'run-time');
    assert.deepEqual(edge.routes, ['api']);
    // Deleting it restores the configured lists.
    const del = await admin('DELETE', '/v1/access/edge', OPS);
    assert.equal(del.status, 200);
    assert.equal(del.body.source, 'config');
    await until('requests admitted again after the restore', () => statuses(pool, '/x', { 'x-api-key': ALICE }), (s) => s.every((c) => c === 200), 2000);
    // The audit log names who changed what.
    assert.ok(gw.logs.some((l) => l.event === 'admin-audit' && l.caller === 'ops' && l.method === 'PUT' && l.path === '/v1/access/edge' && l.status === 200));

    // The key file changes while the gateway runs: carol is added, alice removed.
    writeKeys(keys, [
      { consumer: 'bob', tenant: 'globex', sha256: createHash('sha256').update(BOB).digest('hex') },
      { consumer: 'carol', key: CAROL },
    ]);
    await until('carol admitted on every connection after the key file changed', () => statuses(pool, '/x', { 'x-api-key': CAROL }), (s) => s.every((c) => c === 200), 5000);
    assert.deepEqual(new Set(await statuses(pool, '/x', { 'x-api-key': ALICE })), new Set([401]));
    // A broken file is refused and the keys loaded before stay.
    writeFileSync(keys, 'keys: [ { consumer: "x" } ]');
    await until('the bad key file rejected', () => gw.logs.filter((l) => l.event === 'api-keys-rejected'), (l) => l.length > 0, 5000);
    assert.deepEqual(new Set(await statuses(pool, '/x', { 'x-api-key': CAROL })), new Set([200]));
  } finally {
    await pool.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
