import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

test('proxies a GET through two workers and reports them in /status', async () => {
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address]));
  try {
    const r = await request(`${gw.url}/hello?x=1`);
    assert.equal(r.statusCode, 200);
    const body = (await r.body.json()) as { url: string };
    assert.equal(body.url, '/hello?x=1');
    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: unknown[]; totals: { requests: number } };
    assert.equal(s.workers.length, 2);
    assert.equal(s.totals.requests, 1);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
