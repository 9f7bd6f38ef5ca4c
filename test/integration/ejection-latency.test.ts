// "Decision → last request to the old endpoint": how long after the primary ejects an
// endpoint do workers stop sending to it? Measured under continuous load through two
// workers; the figure is printed, and the assertion is generous (shared 2-core CI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed } from '../helpers/workers.js';

test('an ejected endpoint stops receiving requests within milliseconds of the decision', async () => {
  let failHealth = false;
  const arrivals: number[] = [];
  const sick = await startUpstream((req, res) => {
    if (req.url === '/health') {
      res.statusCode = failHealth ? 500 : 200;
      return res.end();
    }
    arrivals.push(Date.now());
    req.resume();
    res.end('sick');
  });
  const well = await startUpstream((req, res) => {
    req.resume();
    res.end('well');
  });
  const gw = await startGateway(
    baseConfig([], {
      upstreams: {
        app: {
          discovery: { type: 'static', endpoints: [sick.address, well.address] },
          health: { active: { type: 'http', path: '/health', interval: '100ms', timeout: '100ms', healthy: 1, unhealthy: 1 } },
        },
      },
    }),
  );
  // 16 connections, so both workers carry the load (see helpers/workers.ts).
  const clients = Array.from({ length: 16 }, () => new Client(gw.url));
  let stop = false;
  const load = clients.map(async (c) => {
    while (!stop) {
      const r = await c.request({ path: '/x', method: 'GET' });
      await r.body.dump();
    }
  });
  try {
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(arrivals.length > 0, 'both endpoints take traffic before the ejection');
    await assertEveryWorkerServed(gw.adminUrl, 2);
    failHealth = true;
    const t0 = Date.now();
    while (!gw.logs.some((l) => l.event === 'endpoint-ejected') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    const ejected = gw.logs.find((l) => l.event === 'endpoint-ejected');
    assert.ok(ejected, 'the endpoint was ejected');
    await new Promise((r) => setTimeout(r, 700)); // keep the load on after the decision
    stop = true;
    await Promise.all(load);
    const decidedAt = Date.parse(String(ejected.time));
    const after = arrivals.filter((t) => t > decidedAt);
    const last = arrivals.length ? Math.max(...arrivals) : 0;
    const lag = Math.max(0, last - decidedAt);
    console.log(`decision → last request to the ejected endpoint: ${lag} ms (${after.length} arrivals after the decision's log timestamp; log time has 1 ms resolution)`);
    assert.ok(lag < 250, `requests kept arriving ${lag} ms after the ejection`);
  } finally {
    stop = true;
    await Promise.all(clients.map((c) => c.close()));
    await gw.stop();
    await sick.close();
    await well.close();
  }
});
