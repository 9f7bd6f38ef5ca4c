// The shared per-endpoint in-flight counts balancers read and draining rows wait on:
// every pick must be matched by exactly one release, whatever happens to the request
// (a retry after a response head, a worker that crashes with requests in flight).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startRawUpstream } from '../helpers/upstream.js';

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

/** Polls until `check` returns true; fails with the last value seen after `ms`. */
async function until<T>(what: string, read: () => Promise<T>, check: (v: T) => boolean, ms = 5000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    if (Date.now() - t0 > ms) assert.fail(`${what}: not reached in ${ms} ms; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
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
