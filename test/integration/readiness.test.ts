// /readyz and /healthz through a drain: after SIGTERM the gateway must tell load
// balancers to stop sending (readyz 503) while it still finishes what it accepted, and
// the liveness probe must stay 200 so an orchestrator does not kill it mid-drain. A
// request held open at the upstream keeps the drain window open for as long as the
// test needs it. At start, readiness also waits for each upstream's first discovery
// answer: until then the upstream has no endpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/log-capture.js';

async function probe(url: string): Promise<{ status: number; body: unknown }> {
  const r = await request(url);
  return { status: r.statusCode, body: await r.body.json() };
}

test('while draining after SIGTERM: /readyz 503, /healthz 200, the held request still completes', async () => {
  let release: (() => void) | null = null;
  const up = await startUpstream((req, res) => {
    req.resume();
    release = () => res.end('held');
  });
  const gw = await startGateway(baseConfig([up.address], { shutdown: { drainTimeout: '20s' } }));
  try {
    assert.deepEqual(await probe(`${gw.adminUrl}/readyz`), { status: 200, body: { status: 'ready' } });

    const held = request(`${gw.url}/held`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));
    await waitFor(() => release !== null, 5_000, 'the request to reach the upstream');

    gw.proc.kill('SIGTERM');
    await waitFor(() => gw.logs.some((l) => l.event === 'draining'), 5_000, 'the draining log event');
    // The admin API answers for the whole drain; poll until readiness flips.
    let ready = await probe(`${gw.adminUrl}/readyz`);
    const deadline = Date.now() + 5_000;
    while (ready.status !== 503 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      ready = await probe(`${gw.adminUrl}/readyz`);
    }
    assert.deepEqual(ready, { status: 503, body: { status: 'not-ready' } });
    assert.deepEqual(await probe(`${gw.adminUrl}/healthz`), { status: 200, body: { status: 'ok' } });
    const s = (await probe(`${gw.adminUrl}/status`)).body as { draining: boolean; totals: { inFlight: number } };
    assert.equal(s.draining, true);
    assert.equal(s.totals.inFlight, 1, 'the held request is what keeps the drain open');
    assert.equal(gw.proc.exitCode, null, 'still running while a request is in flight');

    release!();
    assert.deepEqual(await held, { status: 200, body: 'held' });
    assert.equal(await gw.exited, 0);
    assert.ok(gw.logs.some((l) => l.event === 'stopped'));
  } finally {
    await gw.stop();
    await up.close();
  }
});

test('at start: /readyz 503 until discovery has answered once, then 200 and traffic flows', async () => {
  const up = await startUpstream();
  // A replayed Consul health API that holds every query until the test answers.
  const held: ServerResponse[] = [];
  let answer: string | null = null;
  const consul = createServer((req, res) => {
    req.resume();
    if (answer !== null && !/[?&]index=[1-9]/.test(req.url ?? '')) {
      res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '5' }).end(answer);
      return;
    }
    held.push(res); // the blocking follow-up queries simply hang until the end
  });
  await new Promise<void>((r) => consul.listen(0, '127.0.0.1', r));
  const address = `http://127.0.0.1:${(consul.address() as AddressInfo).port}`;
  const gw = await startGateway(
    baseConfig([], { upstreams: { app: { discovery: { type: 'consul', address, service: 'api', wait: '5s', retry: '200ms' }, timeouts: { connect: '1s', response: '5s' } } } }),
  );
  try {
    await waitFor(() => held.length >= 1, 5_000, 'the first Consul query');
    assert.deepEqual(await probe(`${gw.adminUrl}/readyz`), { status: 503, body: { status: 'not-ready' } });
    // What readiness protects against: the upstream has nothing to send to yet.
    const early = await request(`${gw.url}/x`);
    assert.equal(early.statusCode, 503);
    assert.equal(((await early.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_UPSTREAM_NO_ENDPOINT');

    answer = JSON.stringify([{ Node: { Address: '127.0.0.1' }, Service: { Address: '127.0.0.1', Port: up.port } }]);
    const first = held.shift()!;
    first.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': '5' }).end(answer);
    await waitFor(() => gw.logs.some((l) => l.event === 'discovery-updated'), 5_000, 'the discovered set');
    assert.deepEqual(await probe(`${gw.adminUrl}/readyz`), { status: 200, body: { status: 'ready' } });
    const r = await request(`${gw.url}/x`);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    consul.closeAllConnections();
    await new Promise<void>((r) => consul.close(() => r()));
    await up.close();
  }
});
