// The shared per-endpoint in-flight counts balancers read and draining rows wait on:
// every pick must be matched by exactly one release, whatever happens to the request
// (a retry after a response head, a worker that crashes with requests in flight).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request } from 'undici';
import { stringify } from 'yaml';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startRawUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/poll.js';

interface Row {
  address: string;
  stateName: string;
  inFlight: number;
}

async function rows(gw: RunningGateway, upstream = 'app'): Promise<Row[]> {
  const r = await request(`${gw.adminUrl}/status`);
  const s = (await r.body.json()) as { balancing: { name: string; endpoints: Row[] }[] };
  return s.balancing.find((u) => u.name === upstream)!.endpoints;
}

test('a retry after an attempt that got a response head releases its in-flight count', async () => {
  // Whichever endpoint the first attempt lands on answers a head and closes before the
  // body (undici fails the request after onHeaders; nothing went to the client, so a
  // GET is retried); the second attempt is reset before any head.
  let n = 0;
  const behave = (s: import('node:net').Socket): void => {
    s.once('data', () => {
      if (n++ === 0) s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n');
      else s.resetAndDestroy();
    });
  };
  const a = await startRawUpstream(behave);
  const b = await startRawUpstream(behave);
  const gw = await startGateway(baseConfig([a.address, b.address], { workers: 1 }));
  try {
    const r = await request(`${gw.url}/x`);
    assert.equal(r.statusCode, 502);
    await r.body.dump();
    assert.equal(n, 2, 'two attempts reached the upstreams');
    await until('both rows back to 0 in flight', () => rows(gw), (rs) => rs.length === 2 && rs.every((e) => e.inFlight === 0));
  } finally {
    await gw.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

test("a crashed worker's in-flight counts are reconciled, so a draining row is freed", async () => {
  // Stalled: accepts and reads, never answers. One connection, so of 4 requests one is
  // on the wire and 3 wait in the worker's pool queue when the worker dies.
  const stalled = await startRawUpstream((s) => s.resume());
  const spare = await startRawUpstream((s) => s.resume());
  const cfg = baseConfig([stalled.address], { workers: 1 });
  (cfg.upstreams as { app: Record<string, unknown> }).app.pool = { connections: 1 };
  const gw = await startGateway(cfg, { env: { TIDEGATE_ENABLE_TEST_HOOKS: '1' } });
  const held = Array.from({ length: 4 }, () => request(`${gw.url}/held`).then((r) => r.body.dump().then(() => r.statusCode), () => 0));
  try {
    await until('4 requests in flight', () => rows(gw), (rs) => rs[0]?.inFlight === 4);
    // Remove the stalled endpoint: its row drains, to be freed when nothing is in flight.
    const next = baseConfig([spare.address], { workers: 1 });
    (next.upstreams as { app: Record<string, unknown> }).app.pool = { connections: 1 };
    writeFileSync(gw.configPath, stringify(next));
    const rl = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(rl.statusCode, 200);
    await rl.body.dump();
    const draining = await rows(gw);
    assert.deepEqual(
      draining.map((e) => [e.address, e.stateName, e.inFlight]),
      [
        [stalled.address, 'draining', 4],
        [spare.address, 'healthy', 0],
      ],
    );
    const c = await request(`${gw.adminUrl}/debug/crash-worker?slot=0&abrupt=1`, { method: 'POST' });
    assert.equal(c.statusCode, 202);
    await c.body.dump();
    await until('worker restarted', async () => gw.logs.some((l) => l.event === 'worker-restart'), Boolean);
    await until('the drained row is freed', () => rows(gw), (rs) => rs.length === 1 && rs[0]!.address === spare.address);
    const rec = gw.logs.find((l) => l.event === 'worker-in-flight-reconciled');
    assert.ok(rec, 'the reconciliation is logged');
    // Closing the app aborts the request on the wire (released at once, by the worker,
    // once it is connected); the 3 queued in its pool die with the thread and only the
    // reconciliation frees them.
    assert.ok(rec.released === 3 || rec.released === 4, `released ${String(rec.released)}`);
  } finally {
    await gw.stop();
    await Promise.all([stalled.close(), spare.close()]);
    await Promise.all(held);
  }
});
