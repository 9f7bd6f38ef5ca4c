// The workers' side of cluster rate limits in shared memory (LimiterTable + LeaseTable),
// with a synthetic clock, and the `redis` config section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SharedState } from '../../src/shm/shared-state.js';
import { LimiterTable, type LimitResult } from '../../src/shm/limiter-table.js';
import { LeaseTable } from '../../src/shm/lease-table.js';
import { ClusterMode } from '../../src/shm/layout.js';
import { hash32, SEED_A, SEED_B } from '../../src/balancers/hash.js';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const S = 1_000_000_000n;

function tables(slots = 64): { t: LimiterTable; l: LeaseTable } {
  const shm = SharedState.create({ maxWorkers: 2, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: slots, limiterPolicies: 2 });
  return { t: new LimiterTable(shm), l: new LeaseTable(shm) };
}

function slotOf(l: LeaseTable, row: number): number {
  let found = -1;
  l.scan(new Set([row]), (s) => (found = s));
  return found;
}

test('lease mode: a fresh key is admitted on credit (bridgeBurst), then only from the lease; Redis "empty" refuses until cleared', () => {
  const { t, l } = tables();
  t.setPolicy(0, 100, 50); // the fleet's limit: 100/s, burst 50
  l.setPolicy(0, ClusterMode.Lease, 10, 5, 1); // share 10/s, credit 1 at once
  const out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };
  const h1 = hash32('tenant', SEED_A);
  const h2 = hash32('tenant', SEED_B);
  const now = 1000n * S;
  assert.equal(t.acquire(0, h1, h2, now, out), true, 'first request on credit');
  assert.equal(t.acquire(0, h1, h2, now, out), false, 'credit is bridgeBurst (1) at once');
  const slot = slotOf(l, 0);
  assert.ok(slot >= 0);
  assert.deepEqual(l.takeUsage(slot), { used: 1, debt: 1, refused: 1 });
  l.addTokens(slot, 3);
  for (let i = 0; i < 3; i++) assert.equal(t.acquire(0, h1, h2, now, out), true, `lease token ${i}`);
  assert.equal(l.tokens(slot), 0);
  assert.deepEqual(l.takeUsage(slot), { used: 3, debt: 0, refused: 0 });
  // Redis said empty: refused past that time too, until the primary answers again or the
  // grace (100 ms here) has also passed.
  l.setPolicy(0, ClusterMode.Lease, 10, 5, 1, 100_000_000);
  l.setDenyUntil(slot, Number(now + S / 10n));
  assert.equal(t.acquire(0, h1, h2, now + S / 10n + S / 20n, out), false);
  assert.ok(out.resetSeconds > 0);
  assert.equal(t.acquire(0, h1, h2, now + S, out), true, 'the answer is later than the grace: credit');
  l.setDenyUntil(slot, 0);
  assert.equal(t.acquire(0, h1, h2, now + 2n * S, out), true, 'credit again once the refusal is lifted');
  const c = l.counters(0);
  assert.deepEqual({ leased: c.leased, bridged: c.bridged }, { leased: 3, bridged: 3 });
});

test('failure modes: local enforces the share, allow admits, deny refuses as unavailable', () => {
  const { t, l } = tables();
  t.setPolicy(0, 100, 50);
  const out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };
  const h1 = hash32('k', SEED_A);
  const h2 = hash32('k', SEED_B);
  const now = 2000n * S;
  l.setPolicy(0, ClusterMode.Local, 10, 5, 1);
  let ok = 0;
  for (let i = 0; i < 20; i++) if (t.acquire(0, h1, h2, now, out)) ok++;
  assert.equal(ok, 5, 'the local share of the burst');
  l.setMode(0, ClusterMode.Allow);
  for (let i = 0; i < 20; i++) assert.equal(t.acquire(0, h1, h2, now, out), true);
  l.setMode(0, ClusterMode.Deny);
  assert.equal(t.acquire(0, h1, h2, now, out), false);
  assert.equal(out.unavailable, true);
  assert.deepEqual(l.counters(0), { leased: 0, bridged: 0, local: 5, failOpen: 20, failClosed: 1 });
});

test('a slot holding a lease is never taken over by another key', () => {
  const { t, l } = tables(16);
  t.setPolicy(0, 1000, 10);
  l.setPolicy(0, ClusterMode.Lease, 1000, 10, 1);
  const out: LimitResult = { remaining: 0, resetSeconds: 0, multiplier: 1, unavailable: false };
  const now = 3000n * S;
  // Fill all 16 slots with keys, each holding one lease token.
  const keys: [number, number][] = [];
  for (let i = 0; keys.length < 16 && i < 10_000; i++) {
    const h = [hash32(`k${i}`, SEED_A), hash32(`k${i}`, SEED_B)] as [number, number];
    if (!t.acquire(0, h[0], h[1], now, out)) continue;
    keys.push(h);
  }
  l.scan(new Set([0]), (s) => {
    l.takeUsage(s);
    l.addTokens(s, 1);
  });
  // Long after: every TAT is in the past, but every slot holds a lease.
  const later = now + 3600n * S;
  const fresh = [hash32('newcomer', SEED_A), hash32('newcomer', SEED_B)] as const;
  assert.equal(t.acquire(0, fresh[0], fresh[1], later, out), true);
  assert.equal(t.policy(0).overflow, 1, 'admitted unmetered: no slot could be taken');
  let tokens = 0;
  l.scan(new Set([0]), (s) => (tokens += l.tokens(s)));
  assert.equal(tokens, 16, 'no lease was handed to another key');
});

test('redis config: defaults, scope: cluster needs a redis section, adaptive is refused with it', () => {
  const up = { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } };
  const cluster = { 'rate-limit': { rate: '10/s', scope: 'cluster' } };
  const cfg = validateConfig({ redis: { url: 'redis://127.0.0.1:6379' }, upstreams: up, routes: [{ upstream: 'a', policies: [cluster] }] });
  assert.equal(cfg.redis!.onFailure, 'local');
  assert.equal(cfg.redis!.syncInterval, 50);
  assert.equal(cfg.redis!.lease.ahead, 250);
  assert.equal(cfg.redis!.lease.min, 8);
  assert.throws(
    () => validateConfig({ redis: { url: 'http://x', onFailure: 'maybe', lease: { min: 0 } }, upstreams: up, routes: [{ upstream: 'a', policies: [{ 'rate-limit': { rate: '10/s', scope: 'cluster', adaptive: {} } }] }] }),
    (e: unknown) => {
      const issues = (e as ConfigError).issues;
      assert.ok(issues.some((i) => i.startsWith('redis.url:')), issues.join('\n'));
      assert.ok(issues.some((i) => i.startsWith('redis.onFailure:')), issues.join('\n'));
      assert.ok(issues.some((i) => i.startsWith('redis.lease.min:')), issues.join('\n'));
      assert.ok(issues.some((i) => i.includes('adaptive is not supported with scope: cluster')), issues.join('\n'));
      return true;
    },
  );
  assert.throws(
    () => validateConfig({ upstreams: up, routes: [{ upstream: 'a', policies: [cluster] }] }),
    (e: unknown) => (e as ConfigError).issues.some((i) => i === 'routes[0].policies[0].rate-limit.scope: scope: cluster needs a top-level redis section'),
  );
});
