// The console's run-time control panel in headless Chromium: an override made through
// the admin API (a flag forced on, with an expiry and a reason) and a configured canary
// rollout appear with their state as words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { launchBrowser } from '../helpers/browser.js';

test('console: overrides in force and rollouts are shown', { timeout: 120_000 }, async () => {
  const stable = await startUpstream((_q, s) => s.end('stable'));
  const canary = await startUpstream((_q, s) => s.end('canary'));
  const gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    admin: { host: '127.0.0.1', port: 0 },
    flags: { beta: { value: false } },
    upstreams: { stable: { discovery: { type: 'static', endpoints: [stable.address] } }, canary: { discovery: { type: 'static', endpoints: [canary.address] } } },
    routes: [{ name: 'api', match: { path: '/' }, split: [{ upstream: 'stable', weight: 100 }, { upstream: 'canary', weight: 0 }] }],
    rollouts: { web: { route: 'api', stable: 'stable', canary: 'canary' } },
  });
  const browser = await launchBrowser();
  try {
    const put = await fetch(`${gw.adminUrl}/v1/flags/beta`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: true, for: '10m', reason: 'try the beta' }) });
    assert.equal(put.status, 201, await put.text());
    const page = await browser.newPage();
    await page.goto(`${gw.adminUrl}/ui`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
    const ov = await page.$$eval('#overrides tbody tr td', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.equal(ov[1], 'flag');
    assert.match(ov[2]!, /beta/);
    assert.equal(ov[4], 'anonymous');
    assert.equal(ov[5], 'try the beta');
    assert.match(ov[6]!, /^in (\d+ min|\d+ s)$/);
    const ro = await page.$$eval('#rollouts tbody tr td', (tds) => tds.map((td) => td.textContent ?? ''));
    assert.deepEqual(ro.slice(0, 3), ['web', 'api', 'pending']);
    assert.equal(ro[4], '0 %');
  } finally {
    await browser.close();
    await gw.stop();
    await stable.close();
    await canary.close();
  }
});
