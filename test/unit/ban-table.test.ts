// The shared ban table: counting to a threshold within a window, the window restarting,
// bans ending and slots being reused, lifting, operator bans, a full probe range failing
// open, four threads counting one key at once setting exactly one ban, and four threads
// racing to claim the same fresh keys losing none of each other's counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedState } from '../../src/shm/shared-state.js';
import { BanTable } from '../../src/shm/ban-table.js';
import { banHashes } from '../../src/policies/ban.js';
import { kBanMaxProbe } from '../../src/shm/layout.js';

const WORKER = new URL('../helpers/ban-worker.js', import.meta.url);

function table(banSlots = 64): { shm: SharedState; t: BanTable } {
  const shm = SharedState.create({ maxWorkers: 4, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, banSlots });
  return { shm, t: new BanTable(shm) };
}

test('ban table: count within the window bans for `for`; the window restarts; the ban ends; lift and operator bans', () => {
  const { t } = table();
  const h = banHashes('p', '203.0.113.7');
  const now = 1000;
  for (let i = 0; i < 4; i++) assert.equal(t.count(h.policy, h.a, h.b, '203.0.113.7', 5, 10, 50, now + i), false);
  assert.equal(t.bannedFor(h.policy, h.a, h.b, now + 4), 0);
  // The window (10 ticks) ran out: counting starts again.
  for (let i = 0; i < 4; i++) assert.equal(t.count(h.policy, h.a, h.b, '203.0.113.7', 5, 10, 50, now + 20), false);
  assert.equal(t.count(h.policy, h.a, h.b, '203.0.113.7', 5, 10, 50, now + 21), true, 'the fifth within the window bans');
  assert.equal(t.bannedFor(h.policy, h.a, h.b, now + 21), 50);
  assert.equal(t.bannedFor(h.policy, h.a, h.b, now + 70), 1);
  assert.equal(t.bannedFor(h.policy, h.a, h.b, now + 71), 0, 'over after `for`');
  const other = banHashes('other-policy', '203.0.113.7');
  assert.equal(t.bannedFor(other.policy, other.a, other.b, now + 30), 0, 'bans are per policy');
  const [e] = t.entries(now + 30);
  assert.equal(e!.key, '203.0.113.7');
  assert.equal(e!.source, 'automatic');
  assert.equal(e!.trips, 1);
  t.lift(e!.base);
  assert.equal(t.bannedFor(h.policy, h.a, h.b, now + 30), 0);
  assert.ok(t.ban(h.policy, h.a, h.b, '203.0.113.7', now + 500, now + 30));
  assert.equal(t.bannedFor(h.policy, h.a, h.b, now + 31), 469);
  assert.equal(t.entries(now + 31)[0]!.source, 'manual');
});

test('ban table: expired slots are reused; when every probed slot is live the refusal is not counted (fail open)', () => {
  const { t } = table(16);
  // Keys whose probe starts at the same slot: fill the probe range.
  const keys: string[] = [];
  const start = banHashes('p', 'k0').a & 15;
  for (let i = 0; keys.length < kBanMaxProbe + 1; i++) if ((banHashes('p', `k${i}`).a & 15) === start) keys.push(`k${i}`);
  const now = 100;
  for (const k of keys.slice(0, kBanMaxProbe)) {
    const h = banHashes('p', k);
    t.count(h.policy, h.a, h.b, k, 1, 10, 10, now);
  }
  const last = keys[kBanMaxProbe]!;
  const h = banHashes('p', last);
  assert.equal(t.count(h.policy, h.a, h.b, last, 1, 10, 10, now), false);
  assert.equal(t.overflow, 1);
  // Later every window and ban is over: the key takes an expired slot.
  assert.equal(t.count(h.policy, h.a, h.b, last, 1, 10, 10, now + 30), true);
  assert.equal(t.bannedFor(h.policy, h.a, h.b, now + 31), 9);
});

test('ban table: four threads counting one key at once set exactly one ban', async () => {
  const { shm, t } = table();
  const tick = 5000;
  const sets = await Promise.all(
    Array.from({ length: 4 }, () =>
      new Promise<number>((resolve, reject) => {
        const w = new Worker(WORKER, { workerData: { buffer: shm.buffer, maxWorkers: 4, key: 'mallory', n: 20_000, threshold: 1000, tick } });
        w.once('message', (m: { set: number }) => resolve(m.set));
        w.once('error', reject);
      }),
    ),
  );
  assert.equal(sets.reduce((a, b) => a + b, 0), 1, `bans set per thread: ${sets.join(', ')}`);
  const h = banHashes('stress', 'mallory');
  assert.equal(t.bannedFor(h.policy, h.a, h.b, tick), 600);
  assert.equal(t.entries(tick)[0]!.trips, 1);
});

test('ban table: four threads claiming the same fresh keys at once keep one slot per key and every count', async () => {
  const THREADS = 4;
  const keys = Array.from({ length: 3000 }, (_, i) => `198.51.100.${i}`);
  const { shm, t } = table(8192);
  const barrier = new SharedArrayBuffer(4);
  await Promise.all(
    Array.from({ length: THREADS }, () =>
      new Promise<number>((resolve, reject) => {
        const w = new Worker(WORKER, { workerData: { buffer: shm.buffer, maxWorkers: 4, key: '', n: 0, threshold: 1000, tick: 5000, keys, barrier, threads: THREADS } });
        w.once('message', (m: { set: number }) => resolve(m.set));
        w.once('error', reject);
      }),
    ),
  );
  const entries = t.entries(5000, true);
  const byKey = new Map<string, number[]>();
  for (const e of entries) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e.count]);
  const wrong = keys.filter((k) => JSON.stringify(byKey.get(k)) !== JSON.stringify([THREADS]));
  assert.deepEqual(wrong.slice(0, 5).map((k) => `${k}: ${JSON.stringify(byKey.get(k))}`), [], `${wrong.length} of ${keys.length} keys lost counts or took two slots`);
});
