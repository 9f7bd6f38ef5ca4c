// The console's protection panel in headless Chromium: a breaker that trips on a dead
// upstream shows as "open" (a word, not only a colour) with its trip count, the
// concurrency limit and the rate-limit policy with the share it admits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig } from '../helpers/gateway.js';
import { deadPort } from '../helpers/upstream.js';
import { launchBrowser } from '../helpers/browser.js';
import { until } from '../helpers/poll.js';

test('console: breaker state, concurrency limit and rate-limit multiplier are shown', { timeout: 120_000 }, async () => {
  const dead = await deadPort();
  const gw = await startGateway(
    baseConfig([`127.0.0.1:${dead}`], {
      upstreams: { app: { discovery: { type: 'static', endpoints: [`127.0.0.1:${dead}`] }, timeouts: { connect: '1s', response: '5s' }, breaker: { failureRate: '50%', minRequests: 5, openFor: '30s' }, concurrency: { limit: 'adaptive', min: 2, max: 40 } } },
      routes: [{ name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ 'rate-limit': { name: 'per-ip', rate: '100/s', burst: 20, key: 'client-ip' } }] }],
      shedding: {},
    }),
  );
  const browser = await launchBrowser();
  try {
    await until('breaker open', async () => {
      await fetch(`${gw.url}/x`).then((r) => r.arrayBuffer()).catch(() => undefined);
      const st = (await (await fetch(`${gw.adminUrl}/status`)).json()) as { protection: { upstreams: { breaker: { state: string } }[] } };
      return st.protection.upstreams[0]!.breaker.state;
    }, (s) => s === 'open', 15_000);
    const page = await browser.newPage();
    await page.goto(`${gw.adminUrl}/ui`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
    const cells = await page.$$eval('#protection tbody tr td', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.equal(cells[0], 'app');
    assert.equal(cells[1], 'open');
    assert.equal(cells[2], 'force openforce closed', 'the breaker actions, beside its state');
    assert.ok(Number(cells[4]) >= 1, `trips ${cells[4]}`);
    assert.match(cells[7]!, /^adaptive/);
    assert.ok(Number(cells[8]) >= 2 && Number(cells[8]) <= 40, `limit ${cells[8]}`);
    const rl = await page.$$eval('#ratelimits tbody tr td', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.deepEqual(rl.slice(0, 5), ['api', 'per-ip', '100/1s burst 20', '100 %', 'static']);
    assert.match(await page.textContent('#shedding') ?? '', /shed level 0/);
  } finally {
    await browser.close();
    await gw.stop();
  }
});
