// The console's panels in headless Chromium against a real gateway: the upstreams'
// forecast and recommendation say "learning" / "no target" before they have figures
// and show figures once the forecast is fit; the cache (hit ratio, store entries and
// bytes), plugins and shared dictionaries (names, sizes, use), ip-access lists (from
// the config, then changed at run time and restored from the page) and bans (a ban
// override with its reason, lifted from the page). Every table has a caption and
// column headers with a scope. Screenshots at 1280 px and 390 px go to the artifacts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { Page } from 'playwright-core';
import { startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { launchBrowser } from '../helpers/browser.js';
import { until } from '../helpers/poll.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url)); // dist/test-artifacts
const EXAMPLES = fileURLToPath(new URL('../../../examples/plugins/', import.meta.url));
// The first forecast is fit one interval after start: long enough for the page to render before it.
const FORECAST_INTERVAL_MS = 20_000;

const cellsOf = (page: Page, table: string, text: string): Promise<string[]> => page.locator(`#${table} tbody tr`, { hasText: text }).first().locator('td').allTextContents();

async function press(page: Page, selector: string): Promise<string> {
  await page.evaluate("document.getElementById('action-result').dataset.outcome = 'none'");
  await page.locator(selector).first().click({ timeout: 10_000 });
  await page.waitForSelector('#action-result[data-outcome="done"]', { timeout: 10_000 });
  return (await page.textContent('#action-result')) ?? '';
}

test('console panels: forecast and recommendation, cache, plugins and shared dicts, access lists and bans', { timeout: 180_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const up = await startUpstream((req, res) => {
    res.setHeader('cache-control', 'max-age=60');
    res.end(`ok ${req.url}`);
  });
  const spare = await startUpstream();
  const t0 = Date.now();
  const gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    admin: { host: '127.0.0.1', port: 0 },
    shared: { tenants: { size: '64kb' } },
    plugins: [`${EXAMPLES}tenant-header.mjs`],
    upstreams: {
      app: { discovery: { type: 'static', endpoints: [up.address] } },
      spare: { discovery: { type: 'static', endpoints: [spare.address] } },
    },
    routes: [
      { name: 'tenant', match: { path: '/t' }, upstream: 'app', policies: [{ plugin: { name: 'tenant-header', config: { header: 'x-tenant', dict: 'tenants' } } }] },
      { name: 'cached', match: { path: '/c' }, upstream: 'app', cache: {} },
      { name: 'edge', match: { path: '/e' }, upstream: 'app', policies: [{ 'ip-access': { name: 'edge', allow: ['127.0.0.0/8', '::1'] } }] },
      { name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ ban: { name: 'abuse', when: { statuses: [401], count: 100, window: '30s' }, for: '10m', key: 'client-ip' } }] },
    ],
    observability: { snapshotInterval: '200ms', forecast: { interval: `${FORECAST_INTERVAL_MS}ms` }, scaling: { interval: '500ms', upstreams: { app: { metric: 'rps', target: 1000 } } } },
  });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${gw.adminUrl}/ui`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });

    // Before the first fit: words, not "-".
    assert.ok(Date.now() - t0 < FORECAST_INTERVAL_MS, `the page rendered ${Date.now() - t0} ms after start: too late to see the forecast learning`);
    const spareRow = await cellsOf(page, 'scaling', 'spare');
    assert.equal(spareRow[2], 'learning');
    assert.equal(spareRow[3], 'no target');
    assert.equal(spareRow[4], 'no target');
    assert.equal((await cellsOf(page, 'scaling', 'app'))[2], 'learning');

    // Accessible tables: each has a caption and scoped column headers.
    const tables = await page.$$eval('table', (ts) => ts.map((t) => ({ id: t.id, caption: t.caption?.textContent?.trim() ?? '', unscoped: [...t.querySelectorAll('th')].filter((th) => !th.getAttribute('scope')).length })));
    assert.ok(tables.length >= 14, `${tables.length} tables`);
    for (const t of tables) {
      assert.ok(t.caption.length > 0, `table ${t.id} has a caption`);
      assert.equal(t.unscoped, 0, `table ${t.id}: every th has a scope`);
    }

    // Traffic for each panel.
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const r = await request(`${gw.url}${path}`, { headers });
      await r.body.dump();
      return r.statusCode;
    };
    for (let i = 0; i < 5; i++) assert.equal(await get('/t/x', { 'x-tenant': 'acme' }), 200);
    // The first response's last byte can reach the client before its worker has
    // published the entry: the next request, on the other worker, would miss too. The
    // panel is what is under test, so the hits start once the entry is in the store.
    assert.equal(await get('/c/page'), 200);
    const entries = async (): Promise<number> => ((await (await request(`${gw.adminUrl}/v1/cache`)).body.json()) as { entries: number }).entries;
    await until('the entry is stored', entries, (n) => n === 1, 10_000);
    for (let i = 0; i < 4; i++) assert.equal(await get('/c/page'), 200);
    for (let i = 0; i < 3; i++) assert.equal(await get('/e/x'), 200);
    for (let i = 0; i < 20; i++) assert.equal(await get(`/x/${i}`), 200);

    // Plugins and shared dictionaries.
    await until('the dictionary holds the tenant', () => cellsOf(page, 'dicts', 'tenants'), (c) => c[4] === '1', 10_000);
    const dict = await cellsOf(page, 'dicts', 'tenants');
    assert.match(dict[1]!, /^6\d\.\d KiB$/, 'the 64 KiB dictionary, less its header');
    assert.match(dict[2]!, /^\d+(\.\d)? (B|KiB) \(\d+\.\d %\)$/);
    assert.match(dict[3]!, /^\d+\.\d KiB$/);
    assert.deepEqual(await cellsOf(page, 'plugins', 'tenant-header'), ['tenant-header', 'tenant']);
    assert.match((await page.textContent('#plugins-summary')) ?? '', /1 plugin module loaded: \S*tenant-header\.mjs\. Plugin calls that threw, all workers: 0\./);

    // The API the panel reads.
    const plugins = (await (await request(`${gw.adminUrl}/v1/plugins`)).body.json()) as { modules: string[]; plugins: unknown[]; shared: { name: string; capacityBytes: number; usedBytes: number; freeBytes: number; items: number }[] };
    assert.equal(plugins.modules.length, 1);
    assert.match(plugins.modules[0]!, /tenant-header\.mjs$/);
    assert.deepEqual(plugins.plugins, [{ name: 'tenant-header', routes: ['tenant'] }]);
    const d = plugins.shared[0]!;
    assert.deepEqual([plugins.shared.length, d.name, d.items, d.usedBytes + d.freeBytes], [1, 'tenants', 1, d.capacityBytes]);
    assert.ok(d.capacityBytes > 60 * 1024 && d.capacityBytes <= 64 * 1024, `capacity ${d.capacityBytes}`);
    const shared = (await (await request(`${gw.adminUrl}/v1/shared`)).body.json()) as { shared: unknown[] };
    assert.deepEqual(shared.shared, plugins.shared);

    // Cache: one miss then hits on one entry.
    // The cells come from each worker's snapshot and the page's next poll: wait for all of them.
    await until('cache figures', () => cellsOf(page, 'cache', 'cached'), (c) => c[1] === '5' && c[3] === '4' && c[7] === '1', 10_000);
    const cache = await cellsOf(page, 'cache', 'cached');
    assert.deepEqual([cache[2], cache[3], cache[7]], ['80.0 %', '4', '1']);
    assert.match((await page.textContent('#cache-summary')) ?? '', /^Store: 1 of \d+ entries, \d+(\.\d)? (B|KiB) of \d+\.\d MiB used .*Hit ratio of every caching route: 80\.0 %\.$/);

    // ip-access: from the config; changed at run time (shown as such, since when); restored from the page.
    assert.deepEqual((await cellsOf(page, 'ipaccess', 'edge')).slice(0, 5), ['edge', 'edge', 'config', '127.0.0.0/8, ::1', 'none']);
    const put = await request(`${gw.adminUrl}/v1/access/edge`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ deny: ['203.0.113.0/24'] }) });
    assert.equal(put.statusCode, 200, await put.body.text());
    await until('run-time lists shown', () => cellsOf(page, 'ipaccess', 'edge'), (c) => c[2] === 'run-time', 10_000);
    assert.deepEqual((await cellsOf(page, 'ipaccess', 'edge')).slice(3, 6).map((c, i) => (i === 2 ? /^\d+ s ago$/.test(c) : c)), ['127.0.0.0/8, ::1', '203.0.113.0/24', true]);
    assert.equal(await press(page, '#ipaccess button[data-act="restore-access"]'), 'done: put the configured lists of edge back');
    await until('config lists again', () => cellsOf(page, 'ipaccess', 'edge'), (c) => c[2] === 'config', 10_000);

    // A ban made as an override carries its reason; lifting it from the page deletes that override.
    const ov = await request(`${gw.adminUrl}/v1/overrides`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'ban', target: '198.51.100.9', value: { for: '10m' }, reason: 'scraper' }) });
    assert.equal(ov.statusCode, 201, await ov.body.text());
    await until('the ban row', () => cellsOf(page, 'bans', '198.51.100.9'), (c) => c.length > 0, 10_000);
    const ban = await cellsOf(page, 'bans', '198.51.100.9');
    assert.deepEqual([ban[1], ban[4], ban[5]], ['abuse', 'scraper (by anonymous)', 'manual']);
    assert.match(await press(page, '#bans button[data-act="delete-override"]'), /^done: lift the ban on 198\.51\.100\.9 \(delete override [0-9a-f-]+\)$/);
    const after = (await (await request(`${gw.adminUrl}/v1/bans`)).body.json()) as { bans: unknown[] };
    assert.deepEqual(after.bans, []);
    const left = (await (await request(`${gw.adminUrl}/v1/overrides`)).body.json()) as { overrides: unknown[] };
    assert.deepEqual(left.overrides, []);

    // The forecast, once fit: a figure with its unit, horizon and model; the recommendation a number.
    await until('a forecast figure', () => cellsOf(page, 'scaling', 'app'), (c) => /^\d+\.\d req\/s in 60 s \(holt(-winters)?\)$/.test(c[2] ?? ''), FORECAST_INTERVAL_MS + 20_000);
    const app = await cellsOf(page, 'scaling', 'app');
    assert.equal(app[3], '1', 'one endpoint serves');
    assert.match(app[4]!, /^\d+( \((up|down)\))?$/);
    assert.equal((await cellsOf(page, 'scaling', 'spare'))[4], 'no target');

    await page.screenshot({ path: `${ARTIFACTS}console-panels-1280.png`, fullPage: true });
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`${gw.adminUrl}/ui`);
    await phone.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
    const width = Number(await phone.evaluate('document.documentElement.scrollWidth'));
    assert.ok(width <= 390, `the page is ${width} px wide at a 390 px screen`);
    await phone.screenshot({ path: `${ARTIFACTS}console-panels-390.png`, fullPage: true });
  } finally {
    await browser.close();
    await gw.stop();
    await up.close();
    await spare.close();
  }
});
