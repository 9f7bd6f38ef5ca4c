// Traffic splitting through the real gateway (two workers, two real upstreams): the
// share each side gets is within a binomial bound; a header rule overrides the
// weights; a sticky caller stays on its side, and on the canary as its weight rises;
// a blue/green flip through PUT /v1/routes/<route>/split (an override) moves every
// request at once and DELETE puts the configured weights back; per-side metrics and /status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, request } from 'undici';
import { startGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed } from '../helpers/workers.js';

/** n requests over `connections` connections (≥ 12, so both workers get some); returns the bodies (side names). */
async function send(pool: Pool, n: number, connections: number, headers: (i: number) => Record<string, string> = () => ({})): Promise<string[]> {
  const out: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let i = next++; i < n; i = next++) {
        const r = await pool.request({ path: '/', method: 'GET', headers: headers(i) });
        assert.equal(r.statusCode, 200);
        out[i] = await r.body.text();
      }
    }),
  );
  return out;
}

function count(bodies: readonly string[], side: string): number {
  return bodies.filter((b) => b === side).length;
}

/**
 * 5 standard deviations either side of n·p: a correct split falls outside with
 * probability below 6e-7, and a split off by 10 points (p 0.2 vs 0.3, n 1000) lands
 * 8 σ away, so the bound still tells a wrong split from a right one.
 */
function binomialBound(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [Math.floor(n * p - 5 * sd), Math.ceil(n * p + 5 * sd)];
}

async function admin(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await request(url + path, { method: method as 'GET', headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
}

async function sides(): Promise<[TestUpstream, TestUpstream]> {
  return [await startUpstream((_q, s) => s.end('blue')), await startUpstream((_q, s) => s.end('green'))];
}

function config(blue: TestUpstream, green: TestUpstream, route: Record<string, unknown>): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    admin: { host: '127.0.0.1', port: 0 },
    observability: { snapshotInterval: '100ms' },
    upstreams: { blue: { discovery: { type: 'static', endpoints: [blue.address] } }, green: { discovery: { type: 'static', endpoints: [green.address] } } },
    routes: [{ name: 'api', ...route }],
  };
}

test('an 80/20 split sends 20 % to green within the binomial bound, on both workers; a header rule overrides the weights', async () => {
  const [blue, green] = await sides();
  const gw = await startGateway(config(blue, green, { split: [{ upstream: 'blue', weight: 80 }, { upstream: 'green', weight: 20, match: { header: { 'x-canary': 'always' } } }] }), { timeoutMs: 45_000 });
  const pool = new Pool(gw.url, { connections: 16 });
  try {
    const n = 1000;
    const bodies = await send(pool, n, 16);
    const [lo, hi] = binomialBound(n, 0.2);
    const g = count(bodies, 'green');
    assert.ok(g >= lo && g <= hi, `green got ${g} of ${n}; expected ${lo}..${hi} (20 % ± 5 σ)`);
    assert.equal(count(bodies, 'blue'), n - g);
    await assertEveryWorkerServed(gw.adminUrl, 2);

    const ruled = await send(pool, 50, 16, () => ({ 'x-canary': 'always' }));
    assert.equal(count(ruled, 'green'), 50, 'x-canary: always goes to green whatever the weights');
    // Only the exact value matches.
    const other = await send(pool, 200, 16, () => ({ 'x-canary': 'sometimes' }));
    assert.ok(count(other, 'blue') > 125, `a non-matching value follows the weights (blue ${count(other, 'blue')} of 200)`);

    // Per-side counters reach the metrics (snapshots every 100 ms).
    const t0 = Date.now();
    for (;;) {
      const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
      const m = /tidegate_split_requests_total\{route="api",upstream="green",code_class="2xx"\} (\d+)/.exec(text);
      if (m && Number(m[1]) === g + 50 + count(other, 'green')) {
        assert.match(text, /tidegate_split_weight_percent\{route="api",upstream="green"\} 20/);
        break;
      }
      if (Date.now() - t0 > 5000) assert.fail(`split metrics did not reach the green count: ${m?.[1]}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await pool.close();
    await gw.stop();
    await blue.close();
    await green.close();
  }
});

test('sticky on a header: each caller keeps its side, and callers on green stay there as its weight rises', async () => {
  const [blue, green] = await sides();
  const gw = await startGateway(config(blue, green, { split: [{ upstream: 'blue', weight: 80 }, { upstream: 'green', weight: 20 }], sticky: { on: 'header', name: 'x-user' } }), { timeoutMs: 45_000 });
  const pool = new Pool(gw.url, { connections: 16 });
  const users = 200;
  const ask = async (): Promise<string[]> => {
    // every user twice, on different connections (so through both workers)
    const b = await send(pool, users * 2, 16, (i) => ({ 'x-user': `user-${i % users}` }));
    for (let u = 0; u < users; u++) assert.equal(b[u], b[u + users], `user-${u} changed side while the weights held`);
    return b.slice(0, users);
  };
  try {
    const at20 = await ask();
    const [lo, hi] = binomialBound(users, 0.2);
    const g20 = count(at20, 'green');
    assert.ok(g20 >= lo && g20 <= hi, `green holds ${g20} of ${users} users at 20 %; expected ${lo}..${hi}`);
    await assertEveryWorkerServed(gw.adminUrl, 2);

    for (const w of [50, 90]) {
      const put = await admin(gw.adminUrl, 'PUT', '/v1/routes/api/split', { weights: { blue: 100 - w, green: w } });
      assert.equal(put.status, 201);
      const now = await ask();
      for (let u = 0; u < users; u++) if (at20[u] === 'green') assert.equal(now[u], 'green', `user-${u} left green when its weight rose to ${w} %`);
      const [l, h] = binomialBound(users, w / 100);
      const g = count(now, 'green');
      assert.ok(g >= l && g <= h, `green holds ${g} of ${users} users at ${w} %; expected ${l}..${h}`);
    }
  } finally {
    await pool.close();
    await gw.stop();
    await blue.close();
    await green.close();
  }
});

test('blue/green: PUT (a split override) flips every request to green at once, DELETE rolls back to the configured weights; bad weights are refused with every issue', async () => {
  const [blue, green] = await sides();
  const gw = await startGateway(config(blue, green, { split: [{ upstream: 'blue', weight: 100 }, { upstream: 'green', weight: 0 }] }), { timeoutMs: 45_000 });
  const pool = new Pool(gw.url, { connections: 16 });
  try {
    assert.equal(count(await send(pool, 100, 16), 'blue'), 100);

    // Load in flight while the flip lands: once the PUT has answered, no request may reach blue.
    let flipped = false;
    let afterFlipOnBlue = 0;
    let afterFlip = 0;
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 12 }, async () => {
        while (!stop) {
          const seenFlip = flipped;
          const r = await pool.request({ path: '/', method: 'GET' });
          const b = await r.body.text();
          if (seenFlip) {
            afterFlip++;
            if (b === 'blue') afterFlipOnBlue++;
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    const put = await admin(gw.adminUrl, 'PUT', '/v1/routes/api/split', { weights: { blue: 0, green: 100 } });
    flipped = true;
    assert.equal(put.status, 201, JSON.stringify(put.json));
    assert.equal(put.json.kind, 'split');
    assert.deepEqual((put.json.split as { weights: unknown }).weights, { blue: 0, green: 100 });
    const t0 = Date.now();
    while (afterFlip < 150 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await load;
    assert.ok(afterFlip >= 150, `only ${afterFlip} requests after the flip`);
    assert.equal(afterFlipOnBlue, 0, `${afterFlipOnBlue} of ${afterFlip} requests sent after the flip reached blue`);
    await assertEveryWorkerServed(gw.adminUrl, 2);

    const st = await admin(gw.adminUrl, 'GET', '/status');
    const split = (st.json.splits as { route: string; weights: Record<string, number>; source: string }[])[0]!;
    assert.deepEqual(split.weights, { blue: 0, green: 100 });
    assert.equal(split.source, 'override');
    assert.ok(gw.logs.some((l) => l.event === 'override-applied' && l.kind === 'split' && l.route === 'api'), 'the flip is a decision event');
    const listed = (await admin(gw.adminUrl, 'GET', '/v1/overrides')).json.overrides as { id: string; kind: string; key: string }[];
    assert.deepEqual(listed.map((o) => [o.id, o.kind, o.key]), [[put.json.id, 'split', 'split:api']]);

    const del = await admin(gw.adminUrl, 'DELETE', '/v1/routes/api/split');
    assert.equal(del.status, 200);
    assert.equal(del.json.deleted, put.json.id);
    assert.deepEqual((del.json.split as { weights: unknown }).weights, { blue: 100, green: 0 });
    assert.equal((del.json.split as { source: unknown }).source, 'config');
    assert.deepEqual((await admin(gw.adminUrl, 'GET', '/v1/overrides')).json.overrides, []);
    assert.equal(count(await send(pool, 100, 16), 'blue'), 100, 'rolled back: every request on blue again');

    const bad = await admin(gw.adminUrl, 'PUT', '/v1/routes/api/split', { weights: { blue: 70, green: 20, red: 10 } });
    assert.equal(bad.status, 422);
    const issues = (bad.json.error as { issues: string[] }).issues;
    assert.ok(issues.some((i) => /weights\.red: not a side/.test(i)), issues.join('; '));
    const sum = await admin(gw.adminUrl, 'PUT', '/v1/routes/api/split', { weights: { blue: 70, green: 20 } });
    assert.equal(sum.status, 422);
    assert.match((sum.json.error as { issues: string[] }).issues.join(), /sum to 100 \(they sum to 90\)/);
    assert.equal((await admin(gw.adminUrl, 'GET', '/v1/routes/nope/split')).status, 404);
    assert.equal((await admin(gw.adminUrl, 'PUT', '/v1/routes/nope/split', { weights: { blue: 100 } })).status, 404);
  } finally {
    await pool.close();
    await gw.stop();
    await blue.close();
    await green.close();
  }
});
