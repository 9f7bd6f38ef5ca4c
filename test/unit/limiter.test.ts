import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { SharedState } from '../../src/shm/shared-state.js';
import { LimiterTable, type LimitResult } from '../../src/shm/limiter-table.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import { hash32, SEED_A, SEED_B } from '../../src/balancers/hash.js';
import { rateLimitPolicy } from '../../src/policies/rate-limit.js';
import { tierMultiplier, tierRanks } from '../../src/policies/tier-cut.js';
import { TenantDirectory } from '../../src/policies/tenant-directory.js';
import type { AccessContext } from '../../src/policies/policy.js';
import { Errors } from '../../src/errors.js';

const WORKER = new URL('../helpers/limiter-worker.js', import.meta.url);
const S = 1_000_000_000n;

function table(slots = 1024, policies = 4): { shm: SharedState; t: LimiterTable } {
  const shm = SharedState.create({ maxWorkers: 4, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: slots, limiterPolicies: policies });
  return { shm, t: new LimiterTable(shm) };
}

test('GCRA: burst at once, then one per interval; reset and retry times', () => {
  const { t } = table();
  t.setPolicy(0, 10, 3); // 10/s, burst 3
  const out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };
  const now = 1000n * S;
  const h1 = hash32('k', SEED_A);
  const h2 = hash32('k', SEED_B);
  assert.equal(t.acquire(0, h1, h2, now, out), true);
  assert.equal(out.remaining, 2);
  assert.equal(t.acquire(0, h1, h2, now, out), true);
  assert.equal(t.acquire(0, h1, h2, now, out), true);
  assert.equal(out.remaining, 0);
  assert.ok(Math.abs(out.resetSeconds - 0.3) < 1e-6, `full again in 0.3 s, got ${out.resetSeconds}`);
  assert.equal(t.acquire(0, h1, h2, now, out), false);
  assert.ok(Math.abs(out.resetSeconds - 0.1) < 1e-6, `next token in 0.1 s, got ${out.resetSeconds}`);
  // 100 ms later exactly one more passes.
  assert.equal(t.acquire(0, h1, h2, now + S / 10n, out), true);
  assert.equal(t.acquire(0, h1, h2, now + S / 10n, out), false);
  // Another key is independent; another policy row too.
  assert.equal(t.acquire(0, hash32('other', SEED_A), hash32('other', SEED_B), now, out), true);
  assert.equal(t.acquire(1, h1, h2, now, out), true, 'row 1 has no policy: admits');
  const p = t.policy(0);
  assert.equal(p.allowed, 5);
  assert.equal(p.denied, 2);
  // The primary changes the rate at run time (workers read it per request): at
  // 1000/s a drained key gets a token back every millisecond.
  t.setPolicy(0, 1000, 3);
  const later = now + S;
  for (let i = 0; i < 3; i++) assert.equal(t.acquire(0, h1, h2, later, out), true);
  assert.equal(t.acquire(0, h1, h2, later, out), false);
  assert.equal(t.acquire(0, h1, h2, later + S / 1000n, out), true);
  // Raising the rate does not make a key serve out the old policy's debt: one at
  // 1/min is a minute ahead; after the switch to 1000/s it recovers in 3 ms (its burst).
  t.setPolicy(3, 1 / 60, 1);
  const hk = hash32('debtor', SEED_A);
  const hk2 = hash32('debtor', SEED_B);
  assert.equal(t.acquire(3, hk, hk2, now, out), true);
  assert.equal(t.acquire(3, hk, hk2, now + S, out), false);
  t.clock = () => now + S;
  t.setPolicy(3, 1000, 3);
  assert.equal(t.acquire(3, hk, hk2, now + S, out), false, 'restated as burst used up when the policy changed');
  assert.ok(out.resetSeconds <= 0.001 + 1e-9, `next token within 1 ms, not a minute: ${out.resetSeconds}`);
  assert.equal(t.acquire(3, hk, hk2, now + S + (3n * S) / 1000n, out), true);
});

test('expired keys are evicted; a table full of live keys fails open and counts it', () => {
  const { t } = table(16);
  t.setPolicy(0, 1, 1); // 1/s, burst 1: every key stays live for a second after use
  const out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };
  const now = 5000n * S;
  let overflow = 0;
  for (let i = 0; i < 40; i++) {
    const k = `key-${i}`;
    if (!t.acquire(0, hash32(k, SEED_A), hash32(k, SEED_B), now, out)) assert.fail('first request of a key must pass');
  }
  overflow = t.policy(0).overflow;
  assert.equal(overflow, 40 - 16, 'only 16 slots: the rest are admitted unmetered and counted');
  assert.equal(t.liveKeys(now), 16);
  // Two seconds later every bucket is full again, so new keys take the slots over.
  const later = now + 2n * S;
  assert.equal(t.liveKeys(later), 0);
  for (let i = 100; i < 116; i++) {
    const k = `key-${i}`;
    t.acquire(0, hash32(k, SEED_A), hash32(k, SEED_B), later, out);
  }
  assert.equal(t.policy(0).overflow, overflow, 'expired slots were reused, no new overflow');
  assert.equal(t.liveKeys(later), 16);
});

test('accuracy across worker threads: admitted within 1% of burst + rate x time', async () => {
  const THREADS = 3;
  const RATE = 2000;
  const BURST = 200;
  const WINDOW_MS = 1500;
  const { shm, t } = table(1024);
  t.setPolicy(2, RATE, BURST);
  // Start slightly in the future so thread start-up is not part of the window.
  const deadline = process.hrtime.bigint() + BigInt(WINDOW_MS + 300) * 1_000_000n;
  const runs = Array.from({ length: THREADS }, () => {
    const w = new Worker(WORKER, { workerData: { buffer: shm.buffer, maxWorkers: 4, row: 2, key: 'hot', deadline: String(deadline) } });
    return new Promise<{ admitted: number; denied: number; first: string; last: string }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  });
  const r = await Promise.all(runs);
  const admitted = r.reduce((s, x) => s + x.admitted, 0);
  const denied = r.reduce((s, x) => s + x.denied, 0);
  const first = r.map((x) => BigInt(x.first)).reduce((a, b) => (a < b ? a : b));
  const last = r.map((x) => BigInt(x.last)).reduce((a, b) => (a > b ? a : b));
  const seconds = Number(last - first) / 1e9;
  const expected = BURST + RATE * seconds;
  const err = (admitted - expected) / expected;
  console.log(`limiter accuracy: ${THREADS} threads, ${(admitted + denied).toLocaleString()} attempts over ${seconds.toFixed(3)}s, admitted ${admitted}, expected ${expected.toFixed(1)} (${(err * 100).toFixed(3)}%)`);
  assert.ok(admitted <= Math.floor(expected) + 1, `never more than burst + rate x time: ${admitted} > ${expected}`);
  assert.ok(Math.abs(err) <= 0.01, `within 1%: admitted ${admitted}, expected ${expected.toFixed(1)}`);
  assert.equal(t.policy(2).allowed, admitted);
});

test('rate-limit policy: 429 with RateLimit-Policy, RateLimit and Retry-After; headers on admitted responses', () => {
  const shm = SharedState.create({ maxWorkers: 2, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 64, limiterPolicies: 2 });
  const parsed = rateLimitPolicy.schema(z).parse({ key: ['header:x-user-id', 'route'], rate: '2/s', burst: 2, name: 'per-user' });
  const t = new LimiterTable(shm);
  const cfg = parsed as { rate: { perSecond: number }; burst: number };
  t.setPolicy(1, cfg.rate.perSecond, cfg.burst);
  const policy = rateLimitPolicy.create(parsed, { shm: shm.buffer, maxWorkers: 2, routeIndex: 0, routeName: 'r', policyIndex: 0, kindIndex: 1, tenants: null, plugins: new Map(), dicts: SharedDicts.format(shm, []) });
  const ctx = (user: string, out: string[]): AccessContext => ({
    method: 'GET', path: '/', query: '', host: 'h', headers: ['host', 'h', 'x-user-id', user], peer: '10.0.0.1', clientIp: '10.0.0.1', routeIndex: 0, routeName: 'r', responseHeaders: out, consumer: null, tenant: null, watched: null,
  });
  let h: string[] = [];
  assert.equal(policy.access(ctx('alice', h)), null);
  assert.deepEqual(h.slice(0, 4), ['ratelimit-policy', '"per-user";q=2;w=1', 'ratelimit', '"per-user";r=1;t=1']);
  h = [];
  assert.equal(policy.access(ctx('alice', h)), null);
  h = [];
  assert.equal(policy.access(ctx('alice', h)), Errors.RATE_LIMITED);
  assert.deepEqual(h, ['ratelimit-policy', '"per-user";q=2;w=1', 'ratelimit', '"per-user";r=0;t=1', 'retry-after', '1']);
  h = [];
  assert.equal(policy.access(ctx('bob', h)), null, 'another user has its own bucket');
  assert.throws(() => rateLimitPolicy.schema(z).parse({ rate: '10 per second' }), /<n>\/<unit>/);
});

test('tier cut: the lowest tier priority takes an adaptive cut first, then the next; one tier is the multiplier itself', () => {
  // gold high, silver without a priority (ranked normal), bronze low: three levels.
  const r = tierRanks([1, -1, 3]);
  assert.deepEqual(r, { ranks: [2, 1, 0], levels: 3 });
  assert.deepEqual(tierRanks([3, 3]), { ranks: [0, 0], levels: 1 }, 'tiers of one priority share a rank');
  const at = (m: number) => r.ranks.map((rank) => +tierMultiplier(m, 0.2, rank, r.levels).toFixed(3));
  assert.deepEqual(at(1), [1, 1, 1]);
  // The cut (1 − m)/(1 − min) split in thirds: bronze takes the first third alone.
  assert.deepEqual(at(1 - 0.8 / 6), [1, 1, 0.6], 'a sixth of the way: bronze halfway to its floor');
  assert.deepEqual(at(1 - 0.8 / 3), [1, 1, 0.2], 'a third: bronze at the floor, the others untouched');
  assert.deepEqual(at(1 - 0.8 / 2), [1, 0.6, 0.2]);
  assert.deepEqual(at(0.2), [0.2, 0.2, 0.2], 'at the floor every tier is at it');
  for (let m = 0.2; m <= 1; m += 0.05) {
    const [g, s, b] = at(m);
    assert.ok(b! <= s! && s! <= g!, `never a higher tier cut more (m ${m.toFixed(2)}: ${g}, ${s}, ${b})`);
  }
  assert.equal(tierMultiplier(0.55, 0.2, 0, 1), 0.55, 'one level: the policy multiplier');
});

test('rate-limit policy with tiers and an adaptive multiplier: the low tier quota shrinks first, stated in RateLimit-Policy', async () => {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 64, limiterPolicies: 1 });
  const parsed = rateLimitPolicy.schema(z).parse({ key: 'tenant', rate: 'tier', name: 'tiered', adaptive: { min: '20%' } });
  const t = new LimiterTable(shm);
  t.setPolicy(0, 1, 1);
  const tenants = new TenantDirectory({
    header: 'x-tenant',
    tiers: [
      { name: 'gold', ratePerSecond: 100, count: 100, periodSeconds: 1, burst: 100, priority: 1 },
      { name: 'bronze', ratePerSecond: 100, count: 100, periodSeconds: 1, burst: 100, priority: 3 },
    ],
    assign: { acme: 0, globex: 1 },
    defaultTier: 1,
  });
  const policy = rateLimitPolicy.create(parsed, { shm: shm.buffer, maxWorkers: 1, routeIndex: 0, routeName: 'r', policyIndex: 0, kindIndex: 0, tenants, plugins: new Map(), dicts: SharedDicts.format(shm, []) });
  const ctx = (tenant: string, out: string[]): AccessContext => ({
    method: 'GET', path: '/', query: '', host: 'h', headers: ['host', 'h'], peer: '10.0.0.1', clientIp: '10.0.0.1', routeIndex: 0, routeName: 'r', responseHeaders: out, consumer: null, tenant, watched: null,
  });
  /** Requests admitted out of `n` sent at once (the burst is 100 at the full rate). */
  const admitted = (tenant: string, n: number): { ok: number; policy: string } => {
    let ok = 0;
    let header = '';
    for (let i = 0; i < n; i++) {
      const h: string[] = [];
      if (policy.access(ctx(tenant, h)) === null) ok++;
      header = h[1]!;
    }
    return { ok, policy: header };
  };
  // Half the way to the floor with two levels: bronze takes the whole cut (×0.2), gold none.
  t.setMultiplier(0, 0.6);
  admitted('acme', 1); // the first request after a change reads the new multiplier; from the next on its tier's share applies
  admitted('globex', 1);
  assert.equal(admitted('acme', 1).policy, '"tiered";q=100;w=1');
  assert.equal(admitted('globex', 1).policy, '"tiered";q=20;w=1');
  // The refill rates follow: drain both bursts, wait, and count what came back.
  admitted('acme', 200);
  admitted('globex', 200);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, 300));
  const gold = admitted('acme', 200).ok;
  const bronze = admitted('globex', 200).ok;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  assert.ok(gold >= 100 * s * 0.8 && gold <= 100 * s + 2, `gold refills at its full 100/s (${gold} in ${s.toFixed(3)} s)`);
  assert.ok(bronze >= 20 * s * 0.6 - 1 && bronze <= 20 * s + 2, `bronze refills at ×0.2, 20/s (${bronze} in ${s.toFixed(3)} s)`);
  // Near the floor: bronze at it, gold cut as well; at the floor both.
  t.setMultiplier(0, 0.2);
  admitted('acme', 1);
  assert.equal(admitted('acme', 1).policy, '"tiered";q=20;w=1', 'at the floor gold is cut too');
});
