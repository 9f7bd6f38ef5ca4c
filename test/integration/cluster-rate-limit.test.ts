// `scope: cluster` rate limits against a real Redis: two gateways (two instances of one
// fleet, two worker threads each) share one bucket per key through leases; Redis killed
// mid-load switches every instance to redis.onFailure, and its return brings leases back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { startRedis } from '../helpers/redis.js';
import { until } from '../helpers/poll.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';

const CONNECTIONS = 12;

interface ClusterStatus {
  reachable: boolean;
  mode: string;
  transitions: number;
  scriptReloads: number;
  hotKeys: number;
  reservedTokens: number;
  commands: Record<string, number>;
  exchanges: { grant: number; reserve: number; wait: number; settle: number };
  tokens: { granted: number; returned: number; expired: number; charged: number };
  policies: { route: string; mode: string; lease: { batch: number; low: number; fleetOutstanding: number }; leased: number; bridged: number; local: number; failOpen: number; failClosed: number }[];
}

async function cluster(gw: RunningGateway): Promise<ClusterStatus> {
  const r = await request(`${gw.adminUrl}/status`);
  return ((await r.body.json()) as { cluster: ClusterStatus }).cluster;
}

function fleetConfig(upstream: string, redisUrl: string, redis: Record<string, unknown>, limit: { rate: number; burst: number }): Record<string, unknown> {
  return baseConfig([upstream], {
    workers: 2,
    // commandTimeout: a loaded 2-core machine answers a healthy Redis late at times; the
    // failover tests kill Redis (the connection closes), they do not need a short timeout.
    redis: { url: redisUrl, instances: 2, syncInterval: '20ms', commandTimeout: '2s', connectTimeout: '500ms', ...redis },
    routes: [{ name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ 'rate-limit': { name: 'fleet', key: 'header:x-tenant', rate: `${limit.rate}/s`, burst: limit.burst, scope: 'cluster' } }] }],
  });
}

interface Tally {
  ok: number;
  limited: number;
  unavailable: number;
  other: number;
}

/** Closed-loop load on every gateway at once for `ms` (far above the limit); counts by outcome per gateway. */
async function hammer(gws: readonly RunningGateway[], tenant: string, ms: number): Promise<Tally[]> {
  const pools = gws.map((g) => new Pool(g.url, { connections: CONNECTIONS, pipelining: 1 }));
  const tallies = gws.map(() => ({ ok: 0, limited: 0, unavailable: 0, other: 0 }));
  const end = performance.now() + ms;
  try {
    await Promise.all(
      pools.flatMap((pool, i) =>
        Array.from({ length: CONNECTIONS }, async () => {
          const t = tallies[i]!;
          while (performance.now() < end) {
            const r = await pool.request({ path: '/x', method: 'GET', headers: { 'x-tenant': tenant } });
            const body = await r.body.text();
            if (r.statusCode === 200) t.ok++;
            else if (r.statusCode === 429) t.limited++;
            else if (r.statusCode === 503 && body.includes('TG_ERR_RATE_LIMIT_UNAVAILABLE')) t.unavailable++;
            else t.other++;
          }
        }),
      ),
    );
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
  return tallies;
}

/** Gateways one after another, with time to start on a loaded machine. */
async function startFleet(configs: Record<string, unknown>[]): Promise<RunningGateway[]> {
  const out: RunningGateway[] = [];
  for (const c of configs) out.push(await startGateway(c, { timeoutMs: 60_000 }));
  return out;
}

const sum = (ts: Tally[], k: keyof Tally): number => ts.reduce((s, t) => s + t[k], 0);

test('cluster rate limit: two instances share one Redis bucket; admitted ≈ rate × t + burst with fewer Redis commands than admitted requests (batches reserved in turn at the limit), and Redis counts exactly what was admitted', async () => {
  const redis = await startRedis();
  const up = await startUpstream();
  // Low enough that the load stays far above it on a loaded 2-core machine.
  const RATE = 5;
  const BURST = 3;
  const MS = 5000;
  const gws = await startFleet([0, 1].map(() => fleetConfig(up.address, redis.url, {}, { rate: RATE, burst: BURST })));
  try {
    for (const gw of gws) await until('Redis reachable', () => cluster(gw), (c) => c.reachable && c.mode === 'lease');
    const before = await Promise.all(gws.map((g) => workerRequests(g.adminUrl)));
    const evalBefore = await redis.commands('evalsha');
    const t0 = performance.now();
    const tallies = await hammer(gws, 'acme', MS);
    const elapsed = (performance.now() - t0) / 1000;
    const ok = sum(tallies, 'ok');
    const expected = RATE * elapsed + BURST;
    const evals = (await redis.commands('evalsha')) - evalBefore;
    console.log(`admitted ${ok} (per instance ${tallies.map((t) => t.ok).join(' + ')}), limited ${sum(tallies, 'limited')}, expected ${expected.toFixed(0)} over ${elapsed.toFixed(2)} s; ${evals} EVALSHA = ${((1000 * evals) / ok).toFixed(0)} per 1,000 admitted`);
    assert.equal(sum(tallies, 'other') + sum(tallies, 'unavailable'), 0);
    const requests = ok + sum(tallies, 'limited');
    assert.ok(requests > 1.5 * expected, `the load must be well above the limit: ${requests} requests`);
    // The bound (src/fleet/cluster-limiter.ts) plus room for a loaded 2-core machine.
    // Below: tokens still held when the load stops, N × (batch + low): the batch is the
    // burst (3, under lease.min), the low-water mark 1, so 2 × 4.
    const status = await Promise.all(gws.map(cluster));
    const bound = status[0]!.policies[0]!.lease;
    assert.deepEqual(bound, { batch: BURST, low: 1, fleetOutstanding: 2 * (BURST + 1) }, 'the stated bound in /status');
    assert.ok(ok >= expected - bound.fleetOutstanding - 5 && ok <= expected * 1.1 + 2 + 5, `admitted ${ok}, expected ${expected.toFixed(0)}`);
    for (const t of tallies) assert.ok(t.ok > 0, `every instance admits some: ${tallies.map((x) => x.ok).join(', ')}`);
    for (let i = 0; i < gws.length; i++) await assertEveryWorkerServed(gws[i]!.adminUrl, 2, before[i]);
    // At the limit each instance reserves a whole batch and waits its turn: fewer commands
    // than admitted requests, let alone requests.
    assert.ok(evals > 0 && evals < ok, `leases, not a round trip per request: ${evals} EVALSHA for ${ok} admitted of ${requests} requests`);
    const reserves = status.reduce((a, c) => a + c.exchanges.reserve, 0);
    assert.ok(reserves > 0, `batches reserved at the limit: ${JSON.stringify(status.map((c) => c.exchanges))}`);
    // An idle key gives its lease back (lease.idle, 1 s) and has its credit charged; then
    // Redis has counted exactly what was admitted: tokens granted − returned = admitted
    // from leases, credit charged = admitted on credit.
    for (const gw of gws) {
      const c = await until('leases returned when idle', () => cluster(gw), (s) => s.hotKeys === 0, 8000);
      const p = c.policies[0]!;
      assert.ok(p.leased > 0, `requests spend leases: ${JSON.stringify(p)}`);
      assert.equal(c.tokens.granted - c.tokens.returned, p.leased, `every leased token spent or returned: ${JSON.stringify(c.tokens)} ${JSON.stringify(p)}`);
      assert.equal(c.tokens.charged, p.bridged, 'every request admitted on credit charged to Redis');
    }
  } finally {
    await Promise.all(gws.map((g) => g.stop()));
    await up.close();
    await redis.stop();
  }
});

test('cluster rate limit: Redis killed mid-load → onFailure local (rate / instances each), logged and in /status; restarted → leases again', async () => {
  const redis = await startRedis();
  const up = await startUpstream();
  const RATE = 30;
  const BURST = 5;
  const gws = await startFleet([0, 1].map(() => fleetConfig(up.address, redis.url, { onFailure: 'local' }, { rate: RATE, burst: BURST })));
  try {
    for (const gw of gws) await until('Redis reachable', () => cluster(gw), (c) => c.reachable);
    const load = hammer(gws, 'kill-me', 6000);
    await new Promise((r) => setTimeout(r, 1500));
    await redis.kill();
    for (const gw of gws) await until('local mode after the kill', () => cluster(gw), (c) => !c.reachable && c.mode === 'local' && c.policies[0]!.mode === 'local', 5000);
    const localBefore = (await Promise.all(gws.map(cluster))).map((c) => c.policies[0]!.local);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    const local = (await Promise.all(gws.map(cluster))).map((c, i) => c.policies[0]!.local - localBefore[i]!);
    const secs = (performance.now() - t0) / 1000;
    // Each instance enforces RATE / 2 on its own; both together about RATE.
    console.log(`local mode: admitted ${local.join(' + ')} in ${secs.toFixed(2)} s (limit ${RATE}/s for the fleet)`);
    const both = local[0]! + local[1]!;
    assert.ok(both >= RATE * secs * 0.6 && both <= RATE * secs * 1.3 + BURST, `local share admitted ${both} in ${secs.toFixed(2)} s`);
    await redis.restart();
    for (const gw of gws) await until('lease mode after the restart', () => cluster(gw), (c) => c.reachable && c.mode === 'lease' && c.policies[0]!.mode === 'lease', 8000);
    const tallies = await load;
    assert.equal(sum(tallies, 'other'), 0);
    for (const gw of gws) {
      const down = gw.logs.find((l) => l.event === 'redis-unreachable');
      const back = gw.logs.find((l) => l.event === 'redis-reachable' && gw.logs.indexOf(l) > gw.logs.indexOf(down!));
      assert.ok(down && down.mode === 'local' && typeof down.decision === 'number', `redis-unreachable logged as a decision: ${JSON.stringify(down)}`);
      assert.ok(back, 'redis-reachable logged after the restart');
      const c = await cluster(gw);
      assert.ok(c.transitions >= 3, `up, down, up: ${c.transitions}`);
      const m = await (await request(`${gw.adminUrl}/metrics`)).body.text();
      assert.match(m, /tidegate_redis_up 1/);
      assert.match(m, /tidegate_redis_transitions_total [3-9]/);
      assert.match(m, /tidegate_cluster_ratelimit_admissions_total\{route="api",policy="fleet",path="local"\} [1-9]/);
    }
    // Leases work again after the restart (a new key, so the old bucket's state does not matter).
    const after = await hammer(gws, 'after-restart', 1000);
    assert.ok(sum(after, 'ok') > 0 && sum(after, 'limited') > 0);
    assert.ok((await cluster(gws[0]!)).tokens.granted > 0);
  } finally {
    await Promise.all(gws.map((g) => g.stop()));
    await up.close();
    await redis.stop();
  }
});

test('cluster rate limit: onFailure deny answers 503 TG_ERR_RATE_LIMIT_UNAVAILABLE, allow admits everything; SCRIPT FLUSH is survived (NOSCRIPT → reload)', async () => {
  const redis = await startRedis({ password: 'fleet-secret-123' });
  const up = await startUpstream();
  const limit = { rate: 2, burst: 1 };
  const [deny, allow, wrong] = (await startFleet([
    fleetConfig(up.address, redis.url, { onFailure: 'deny', password: redis.password, instances: 1 }, limit),
    fleetConfig(up.address, redis.url, { onFailure: 'allow', password: redis.password, instances: 1 }, limit),
    fleetConfig(up.address, redis.url, { onFailure: 'deny', password: 'not-the-password', instances: 1 }, limit),
  ])) as [RunningGateway, RunningGateway, RunningGateway];
  try {
    for (const gw of [deny, allow]) await until('Redis reachable with the password', () => cluster(gw), (c) => c.reachable);
    // A wrong password never reaches Redis: the failure mode is in force from the start, and said so.
    await until('wrong password: unreachable, logged', () => wrong.logs.find((l) => l.event === 'redis-unreachable') ?? null, (l) => l !== null, 5000);
    assert.equal((await cluster(wrong)).mode, 'deny');
    const refused = await request(`${wrong.url}/x`, { headers: { 'x-tenant': 'a' } });
    assert.equal(refused.statusCode, 503);
    assert.deepEqual(refused.headers['retry-after'], '1');
    assert.match(await refused.body.text(), /TG_ERR_RATE_LIMIT_UNAVAILABLE/);

    await redis.command('SCRIPT', 'FLUSH');
    const flushed = await hammer([deny], 'flush', 500);
    assert.ok(flushed[0]!.ok > 0 && flushed[0]!.limited > 0);
    const c = await cluster(deny);
    assert.ok(c.scriptReloads >= 1 && c.reachable, `NOSCRIPT reloaded the script without a failover: ${JSON.stringify(c)}`);

    await redis.kill();
    await until('deny mode', () => cluster(deny), (s) => s.mode === 'deny');
    await until('allow mode', () => cluster(allow), (s) => s.mode === 'allow');
    const [d] = await hammer([deny], 'down', 1000);
    const [a] = await hammer([allow], 'down', 1000);
    assert.ok(d!.unavailable > 0 && d!.ok === 0, `deny: ${JSON.stringify(d)}`);
    // 1 s at 2/s + 1 would admit about 3; allow admits everything.
    assert.ok(a!.ok > 6 && a!.limited === 0, `allow: ${JSON.stringify(a)}`);
    assert.ok((await cluster(allow)).policies[0]!.failOpen >= a!.ok);
  } finally {
    await Promise.all([deny, allow, wrong].map((g) => g.stop()));
    await up.close();
    await redis.stop();
  }
});
