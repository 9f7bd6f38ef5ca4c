// Automatic abuse blocking through the real gateway: two workers count one client's
// refusals (401s from an api-key policy behind the ban) in the shared ban table until it
// is banned on both; the ban is listed and lifted through the admin API; an operator ban
// and its lift; the ban expires on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';
import { until } from '../helpers/poll.js';

const CONNECTIONS = 16;
const KEY = 'good-key-0123456789abcdef';
const THRESHOLD = 10;

interface BanView {
  policy: string;
  key: string;
  remainingSeconds: number;
  source: string;
}

test('ban: refusals on both workers add up to a shared ban (403 TG_ERR_BANNED + Retry-After), listed, lifted, set by an operator, expiring', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-ban-'));
  const keys = join(dir, 'keys.yaml');
  writeFileSync(keys, stringify({ keys: [{ consumer: 'alice', key: KEY }] }));
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      routes: [
        {
          name: 'api',
          match: { path: '/' },
          upstream: 'app',
          policies: [{ ban: { name: 'abuse', when: { statuses: [401], count: THRESHOLD, window: '30s' }, for: '3s', key: 'header:x-client' } }, { 'api-key': { file: keys } }],
        },
      ],
    }),
  );
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
  const get = async (client: string, key?: string): Promise<{ status: number; code: string | null; retryAfter: string | null }> => {
    const r = await pool.request({ path: '/x', method: 'GET', headers: { 'x-client': client, ...(key ? { 'x-api-key': key } : {}) } });
    const text = await r.body.text();
    return { status: r.statusCode, code: r.statusCode >= 400 ? ((JSON.parse(text) as { error: { code: string } }).error.code) : null, retryAfter: (r.headers['retry-after'] as string | undefined) ?? null };
  };
  const bans = async (): Promise<BanView[]> => ((await (await request(`${gw.adminUrl}/v1/bans`)).body.json()) as { bans: BanView[] }).bans;
  try {
    // THRESHOLD - 1 refusals spread over both workers: not banned yet.
    const before = await workerRequests(gw.adminUrl);
    const first = await Promise.all(Array.from({ length: THRESHOLD - 1 }, () => get('mallory')));
    assert.deepEqual(new Set(first.map((r) => r.code)), new Set(['TG_ERR_AUTH_REQUIRED']));
    assert.deepEqual(await bans(), []);
    // The good key still passes for this client (a ban needs the refusals first).
    assert.equal((await get('mallory', KEY)).status, 200);
    // One more refusal on whichever worker: banned on every worker, even with a good key.
    assert.equal((await get('mallory')).status, 401);
    const banned = await Promise.all(Array.from({ length: CONNECTIONS * 2 }, () => get('mallory', KEY)));
    assert.deepEqual(new Set(banned.map((r) => r.code)), new Set(['TG_ERR_BANNED']));
    assert.ok(banned.every((r) => Number(r.retryAfter) >= 1 && Number(r.retryAfter) <= 3), `Retry-After within the ban: ${banned.map((r) => r.retryAfter).join(',')}`);
    await assertEveryWorkerServed(gw.adminUrl, 2, before);
    // Another client is untouched.
    assert.equal((await get('alice', KEY)).status, 200);
    const listed = await bans();
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.policy, 'abuse');
    assert.equal(listed[0]!.key, 'mallory');
    assert.equal(listed[0]!.source, 'automatic');
    await until('the client-banned decision', () => gw.logs.filter((l) => l.event === 'client-banned' && l.key === 'mallory'), (l) => l.length === 1);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /tidegate_bans_active\{policy="abuse"\} 1/);

    // Lifted through the API: admitted again at once.
    const del = await request(`${gw.adminUrl}/v1/bans/mallory`, { method: 'DELETE' });
    assert.equal(del.statusCode, 200);
    assert.deepEqual(((await del.body.json()) as { lifted: string[] }).lifted, ['abuse']);
    assert.deepEqual(new Set((await Promise.all(Array.from({ length: CONNECTIONS }, () => get('mallory', KEY)))).map((r) => r.status)), new Set([200]));
    assert.equal((await request(`${gw.adminUrl}/v1/bans/mallory`, { method: 'DELETE' })).statusCode, 404);

    // An operator ban, then its own expiry.
    const post = await request(`${gw.adminUrl}/v1/bans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'eve', for: '1500ms' }) });
    assert.equal(post.statusCode, 201, await post.body.text());
    assert.deepEqual(new Set((await Promise.all(Array.from({ length: CONNECTIONS }, () => get('eve', KEY)))).map((r) => r.code)), new Set(['TG_ERR_BANNED']));
    assert.equal((await bans()).find((b) => b.key === 'eve')!.source, 'manual');
    const bad = await request(`${gw.adminUrl}/v1/bans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'eve', policy: 'nope' }) });
    assert.equal(bad.statusCode, 422);
    await bad.body.text();
    await until('the operator ban expired', () => get('eve', KEY), (r) => r.status === 200, 5000);
    assert.deepEqual(await bans(), []);
  } finally {
    await pool.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
