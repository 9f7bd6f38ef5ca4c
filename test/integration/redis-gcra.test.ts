// The cluster rate-limit script (src/fleet/redis-gcra.ts) run by a real Redis: grants
// at once, reservations of a whole batch for when it conforms, the horizon past which
// it answers "not yet", returns and credit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { GCRA_SCRIPT, GCRA_SHA1, gcraReply, type GcraReply } from '../../src/fleet/redis-gcra.js';
import { startRedis } from '../helpers/redis.js';

// 10 tokens a second, burst 10.
const T = 100_000;
const TAU = 10 * T;

/** Within `slack` µs of `want` (Redis' clock moves between two calls; a loaded host is slow). */
function near(actual: number, want: number, slack: number, what: string): void {
  assert.ok(actual >= want - slack && actual <= want + 1000, `${what}: ${actual} µs, expected about ${want} (≥ ${want - slack})`);
}

test('GCRA script: a batch at once, then whole batches reserved for when they conform, up to the horizon; returns and credit move the TAT', async () => {
  const redis = await startRedis();
  const c = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await c.connect();
    assert.equal(await c.script('LOAD', GCRA_SCRIPT), GCRA_SHA1);
    const call = async (key: string, want: number, min: number, debt: number, back: number, horizonUs: number): Promise<GcraReply> => gcraReply(await c.evalsha(GCRA_SHA1, 1, key, String(T), String(TAU), String(want), String(min), String(debt), String(back), String(horizonUs)));

    // A full bucket: the first batch at once, 6 left; then what is left (6, or 7 if a
    // slow host let a tenth of a second pass), as that is ≥ min.
    assert.deepEqual(await call('k', 4, 2, 0, 0, 1e6), { granted: 4, waitUs: 0, available: 6, validUs: 0 });
    const rest = await call('k', 20, 3, 0, 0, 1e6);
    assert.ok(rest.granted >= 6 && rest.granted <= 7 && rest.available === 0 && rest.validUs === 0, JSON.stringify(rest));
    // Empty: a batch of 4 is granted, valid once its last token conforms (4 × T from now),
    // and the next one queues behind it (8 × T).
    const r1 = await call('k', 4, 2, 0, 0, 1e6);
    assert.deepEqual([r1.granted, r1.waitUs, r1.available], [4, 0, 0]);
    near(r1.validUs, 4 * T, 150_000, 'first reservation');
    const r2 = await call('k', 4, 2, 0, 0, 1e6);
    assert.equal(r2.granted, 4);
    near(r2.validUs, 8 * T, 150_000, 'second reservation');
    // A third would be 12 × T ahead, past the 1 s horizon: nothing, and how long until it is within.
    const r3 = await call('k', 4, 2, 0, 0, 1e6);
    assert.deepEqual([r3.granted, r3.validUs], [0, 0]);
    near(r3.waitUs, 2 * T, 150_000, 'wait until within the horizon');
    // Returning the second reservation's 4 tokens brings the next one forward again.
    const r4 = await call('k', 4, 2, 0, 4, 1e6);
    assert.equal(r4.granted, 4);
    near(r4.validUs, 8 * T, 150_000, 'reservation after a return');

    // Credit is charged even past the burst: 15 admitted on credit from a full bucket put
    // the TAT 15 × T ahead, 5 past the burst, so one more token conforms after 6 × T.
    const d = await call('credit', 1, 1, 15, 0, 0);
    assert.equal(d.granted, 0, 'no reservation with horizon 0');
    near(d.waitUs, 6 * T, 150_000, 'the debt waited off');
    const ttl = await c.pttl('credit');
    assert.ok(ttl > 1000 && ttl <= 1500, `the key lives until the bucket is full again: ${ttl} ms`);
    // A settling call (want 0) grants nothing and says nothing about waiting.
    assert.deepEqual(await call('idle', 0, 0, 0, 3, 0), { granted: 0, waitUs: 0, available: 10, validUs: 0 });
    assert.equal(await c.exists('idle'), 0, 'a full bucket costs Redis nothing');
  } finally {
    c.disconnect();
    await redis.stop();
  }
});
