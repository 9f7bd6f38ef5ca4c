// The admin API's route table and token scopes, through the real gateway: a token
// file with named, scoped tokens; the router's answers for a missing token, a missing
// scope, a wrong method and a bad body; the audit line of a change; and a token
// revoked by editing the file, without a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { stringify } from 'yaml';
import { startGateway, baseConfig, writeConfig, CLI } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/poll.js';

const ADMIN = 'all-scopes-admin-token-0001';
const READER = 'read-only-token-000000001';
const OPS = 'traffic-token-00000000001';

function tokenFile(tokens: unknown[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-tokens-'));
  const file = join(dir, 'tokens.yaml');
  writeFileSync(file, stringify({ tokens }));
  return file;
}

async function call(base: string, method: string, path: string, token?: string, body?: string, type = 'application/json') {
  const res = await fetch(base + path, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': type } : {}) }, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as { error?: { code: string; message: string }; name?: string; scopes?: string[] }) : null };
}

test('token scopes decide what each token may do; a reload needs "admin"; the file is re-read when it changes', async () => {
  const up = await startUpstream();
  const file = tokenFile([
    { name: 'reader', token: READER, scopes: ['read'] },
    // stored as a digest: the file need not hold the secret
    { name: 'ops', sha256: (await import('node:crypto')).createHash('sha256').update(OPS).digest('hex'), scopes: ['read', 'traffic'] },
  ]);
  const gw = await startGateway(baseConfig([up.address], { admin: { host: '127.0.0.1', port: 0, token: ADMIN, tokens: file } }));
  try {
    const base = gw.adminUrl;
    assert.equal((await call(base, 'GET', '/status')).status, 401);
    assert.equal((await call(base, 'GET', '/status', 'not-a-token-at-all-xx')).json?.error?.code, 'TG_ERR_ADMIN_UNAUTHORIZED');
    assert.equal((await call(base, 'GET', '/status', READER)).status, 200);
    assert.deepEqual((await call(base, 'GET', '/v1/tokens/self', READER)).json, { name: 'reader', scopes: ['read'] });
    assert.deepEqual((await call(base, 'GET', '/v1/tokens/self', OPS)).json, { name: 'ops', scopes: ['read', 'traffic'] });
    assert.deepEqual((await call(base, 'GET', '/v1/tokens/self', ADMIN)).json, { name: 'admin-token', scopes: ['read', 'traffic', 'access', 'events', 'admin'] });

    const refused = await call(base, 'POST', '/reload', OPS);
    assert.equal(refused.status, 403);
    assert.equal(refused.json?.error?.code, 'TG_ERR_ADMIN_FORBIDDEN');
    assert.match(refused.json!.error!.message, /"ops" lacks the "admin" scope/);
    assert.equal((await call(base, 'POST', '/reload', ADMIN)).status, 200);

    const wrongMethod = await call(base, 'DELETE', '/v1/tokens/self', ADMIN);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.json?.error?.code, 'TG_ERR_ADMIN_METHOD');

    // Revoke "reader" by rewriting the file: refused within the re-read interval, no reload.
    writeFileSync(file, stringify({ tokens: [{ name: 'ops', token: OPS, scopes: ['read', 'traffic'] }] }));
    await until('reader revoked', async () => (await call(base, 'GET', '/status', READER)).status, (s) => s === 401, 5000);
    assert.equal((await call(base, 'GET', '/status', OPS)).status, 200);
    // A broken file keeps the tokens that worked, and says why in the log.
    writeFileSync(file, 'tokens: [ { name: ops, scopes: [fly] } ]\n');
    // (the file is checked on use, so each poll makes a request)
    await until('rejection logged', async () => ((await call(base, 'GET', '/status', OPS)), gw.logs.filter((l) => l.event === 'admin-tokens-rejected').length), (n) => n > 0, 5000);
    assert.equal((await call(base, 'GET', '/status', OPS)).status, 200);
    const rejected = gw.logs.find((l) => l.event === 'admin-tokens-rejected') as { issues: string[] };
    assert.ok(rejected.issues.some((i) => /scopes\[0\]: unknown scope "fly"/.test(i)), JSON.stringify(rejected.issues));
    // Every change is audited with the caller's name: the refused reload and the applied one.
    const audit = gw.logs.filter((l) => l.event === 'admin-audit');
    assert.ok(audit.some((l) => l.caller === 'admin-token' && l.path === '/reload' && l.status === 200), JSON.stringify(audit));
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('a token file with errors is rejected at config check with every error and its path', () => {
  const file = tokenFile([
    { name: 'a', token: 'short', scopes: ['read'] },
    { name: 'a', sha256: 'xyz', scopes: [] },
  ]);
  const cfg = writeConfig(baseConfig(['127.0.0.1:1'], { admin: { host: '127.0.0.1', port: 0, tokens: file } }));
  const r = spawnSync(process.execPath, [CLI, '--check', cfg], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  const out = r.stdout + r.stderr;
  for (const want of ['tokens[0].token: must be at least 16 characters', 'tokens[1].name: "a" appears twice', 'tokens[1].sha256: must be 64 hexadecimal digits', 'tokens[1].scopes: must be a non-empty list']) {
    assert.ok(out.includes(`admin.tokens: ${file}: ${want}`), `missing "${want}" in:\n${out}`);
  }
});

test('admin.loopbackRead: a loopback caller without a token reads, never changes; a wrong token is still refused', async () => {
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address], { admin: { host: '127.0.0.1', port: 0, token: ADMIN, loopbackRead: true } }));
  try {
    const base = gw.adminUrl;
    assert.equal((await call(base, 'GET', '/status')).status, 200, 'GET /status without a token from loopback');
    assert.deepEqual((await call(base, 'GET', '/v1/tokens/self')).json, { name: 'loopback', scopes: ['read'] });
    assert.equal((await call(base, 'GET', '/v1/overrides')).status, 200);
    const change = await call(base, 'POST', '/reload');
    assert.equal(change.status, 401, 'a change without a token is refused');
    assert.equal(change.json?.error?.code, 'TG_ERR_ADMIN_UNAUTHORIZED');
    const flag = await call(base, 'PUT', '/v1/flags/anything', undefined, '{"value":true}');
    assert.equal(flag.status, 401);
    assert.equal((await call(base, 'GET', '/status', 'not-a-token-at-all-xx')).status, 401, 'a wrong token is not downgraded to a reader');
    assert.equal((await call(base, 'POST', '/reload', ADMIN)).status, 200);
    const audit = gw.logs.filter((l) => l.event === 'admin-audit');
    assert.ok(audit.every((l) => l.caller !== 'loopback' || l.method === 'GET'), 'nothing changed as the loopback reader');
  } finally {
    await gw.stop();
    await up.close();
  }
});
