// The shared rate limiter through the real gateway: two worker threads, one bucket
// (key: route + a header), clients on several connections so both workers take requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pool, request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed } from '../helpers/workers.js';

const RATE = 20;
const BURST = 5;
const WINDOW_MS = 2000;
// Enough connections that SO_REUSEPORT gives each worker some (see helpers/workers.ts).
const CONNECTIONS = 16;

interface Status {
  workers: { requests: number }[];
  rateLimits: { route: string; name: string; allowed: number; denied: number; ratePerSecond: number; burst: number }[];
  balancing: { name: string; balancer: string; endpoints: { address: string; stateName: string; inFlight: number; requests: number; ewmaUs: number; weight: number; effectiveWeight: number }[] }[];
}

test('rate-limit holds across workers: admitted = burst + rate x time; 429 carries RateLimit fields and Retry-After', async () => {
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      routes: [{ name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ 'rate-limit': { name: 'api', key: ['route', 'header:x-bucket'], rate: `${RATE}/s`, burst: BURST } }] }],
    }),
  );
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
  try {
    let ok = 0;
    let limited = 0;
    let first = 0;
    let last = 0;
    let sample429: { headers: Record<string, unknown>; body: unknown } | null = null;
    let sample200: Record<string, unknown> | null = null;
    // Open all connections (and warm both workers) on another bucket first, so the
    // measured window is not shortened by connection set-up.
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => (await pool.request({ path: '/warm', method: 'GET', headers: { 'x-bucket': 'warm-up' } })).body.text()));
    const until = performance.now() + WINDOW_MS;
    const loop = async (): Promise<void> => {
      while (performance.now() < until) {
        const t = performance.now();
        if (first === 0) first = t;
        const r = await pool.request({ path: '/x', method: 'GET', headers: { 'x-bucket': 'measured' } });
        const body = await r.body.text();
        last = Math.max(last, t);
        if (r.statusCode === 200) {
          ok++;
          sample200 ??= r.headers;
        } else if (r.statusCode === 429) {
          limited++;
          sample429 ??= { headers: r.headers, body: JSON.parse(body) };
        } else {
          assert.fail(`unexpected status ${r.statusCode}: ${body}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONNECTIONS }, loop));
    const seconds = (last - first) / 1000;
    const expected = BURST + RATE * seconds;
    console.log(`gateway rate-limit: ${ok} admitted, ${limited} limited over ${seconds.toFixed(3)}s; expected ${expected.toFixed(1)}`);
    // ±1 token of clock skew between client and gateway at each end of the window.
    assert.ok(Math.abs(ok - expected) <= Math.max(2, expected * 0.01), `admitted ${ok}, expected ${expected.toFixed(1)}`);
    assert.ok(limited > 0);

    const h429 = sample429!.headers;
    assert.deepEqual(sample429!.body, { error: { code: 'TG_ERR_RATE_LIMITED', message: 'rate limit exceeded' } });
    assert.equal(h429['ratelimit-policy'], `"api";q=${RATE};w=1`);
    assert.match(String(h429['ratelimit']), /^"api";r=0;t=\d+$/);
    const retry = Number(h429['retry-after']);
    assert.ok(retry >= 1);
    assert.equal(String(h429['ratelimit']), `"api";r=0;t=${retry}`, 't points at the same moment as Retry-After');
    assert.equal(sample200!['ratelimit-policy'], `"api";q=${RATE};w=1`);
    assert.match(String(sample200!['ratelimit']), /^"api";r=\d+;t=\d+$/);

    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as Status;
    const rl = s.rateLimits.find((p) => p.route === 'api')!;
    assert.equal(rl.allowed + rl.denied, ok + limited + CONNECTIONS, 'every request was counted by the shared policy row');
    assert.equal(rl.ratePerSecond, RATE);
    assert.equal(rl.burst, BURST);
    const perWorker = await assertEveryWorkerServed(gw.adminUrl, 2);
    console.log(`per-worker requests: ${perWorker.join(', ')}`);
    const app = s.balancing.find((b) => b.name === 'app')!;
    assert.equal(app.balancer, 'round-robin');
    assert.equal(app.endpoints.length, 1);
    assert.equal(app.endpoints[0]!.address, up.address);
    assert.equal(app.endpoints[0]!.stateName, 'healthy');
    assert.equal(app.endpoints[0]!.requests, rl.allowed, 'only admitted requests reach the balancer');
    assert.equal(app.endpoints[0]!.inFlight, 0);
    assert.ok(app.endpoints[0]!.ewmaUs > 0);
  } finally {
    await pool.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
