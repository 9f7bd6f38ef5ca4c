// The console's actions in headless Chromium against a real gateway with tokens: a
// `read` token and no token at all are refused by the admin API (status and code shown
// in the page) and nothing changes; with the admin token the page drains an endpoint
// (its state changes in the page and in /status), re-enables it, forces a breaker and
// deletes that override, drives a rollout, and lifts a ban. Screenshots of the page at
// 1280 px and at 390 px go to the test artifacts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { launchBrowser } from '../helpers/browser.js';
import { until } from '../helpers/poll.js';
import { api, READER, tokenFile } from '../helpers/admin-api.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url)); // dist/test-artifacts
const ADMIN = 'console-actions-admin-token-01';

interface Status {
  balancing: { name: string; endpoints: { address: string; stateName: string }[] }[];
  overrides: { active: { id: string; kind: string; key: string; reason: string | null; createdBy: string }[] };
  protection: { upstreams: { upstream: string; breaker: { state: string; forced: string | null } | null }[] };
  rollouts: { rollouts: { name: string; phase: string }[] };
}

async function login(page: Page, token: string): Promise<void> {
  await page.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  await page.locator('#who').waitFor({ state: 'visible', timeout: 10_000 });
}

/** Clicks an action button and waits for the page to report the API's answer. */
async function press(page: Page, selector: string, outcome: 'done' | 'refused'): Promise<string> {
  // A fresh outcome each time: the previous one is cleared before the click.
  await page.evaluate("document.getElementById('action-result').dataset.outcome = 'none'; document.getElementById('action-result').textContent = ''");
  await page.locator(selector).first().click({ timeout: 10_000 });
  await page.waitForSelector(`#action-result[data-outcome="${outcome}"]`, { timeout: 10_000 });
  return (await page.textContent('#action-result')) ?? '';
}

test('console actions: refused without a token and with a read token; drain, re-enable, breaker, rollout and ban with the admin token', { timeout: 180_000 }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const a = await startUpstream();
  const b = await startUpstream();
  const stable = await startUpstream((_q, s) => s.end('stable'));
  const canary = await startUpstream((_q, s) => s.end('canary'));
  const gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    admin: { host: '127.0.0.1', port: 0, token: ADMIN, tokens: tokenFile() },
    upstreams: {
      app: { discovery: { type: 'static', endpoints: [a.address, b.address] }, timeouts: { connect: '1s', response: '5s' }, breaker: { failureRate: '50%', minRequests: 5, openFor: '30s' } },
      stable: { discovery: { type: 'static', endpoints: [stable.address] } },
      canary: { discovery: { type: 'static', endpoints: [canary.address] } },
    },
    routes: [
      { name: 'web', match: { path: '/web' }, split: [{ upstream: 'stable', weight: 100 }, { upstream: 'canary', weight: 0 }] },
      { name: 'api', match: { path: '/' }, upstream: 'app', policies: [{ ban: { name: 'abuse', when: { statuses: [401], count: 100, window: '30s' }, for: '10m', key: 'client-ip' } }] },
    ],
    rollouts: { web: { route: 'web', stable: 'stable', canary: 'canary' } },
  });
  const status = async (): Promise<Status> => (await api(gw.adminUrl, 'GET', '/status', ADMIN)).json as unknown as Status;
  const stateOf = async (addr: string): Promise<string | undefined> => (await status()).balancing.find((u) => u.name === 'app')!.endpoints.find((e) => e.address === addr)?.stateName;
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const drainB = `#endpoints button[data-act="drain"][data-endpoint="${b.address}"]`;
    const stateCell = (addr: string) => page.locator('#endpoints tbody tr', { hasText: addr }).locator('td').nth(2);
    await page.goto(`${gw.adminUrl}/ui`);

    // A read token: the page shows the data and says what the token lacks; the API refuses the drain.
    await login(page, READER);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
    assert.match((await page.textContent('#act-scope')) ?? '', /lacks the traffic and access scope/);
    assert.equal(await stateCell(b.address).textContent(), 'healthy');
    const readOnly = await press(page, drainB, 'refused');
    assert.match(readOnly, /^refused: drain app 127\.0\.0\.1:\d+: HTTP 403 TG_ERR_ADMIN_FORBIDDEN: token "reader" lacks the "traffic" scope/);
    assert.equal(await stateOf(b.address), 'healthy', 'nothing changed');
    assert.deepEqual((await status()).overrides.active, []);

    // No token (forgotten): the rows are still on screen, the API answers 401.
    await page.click('#forget');
    const anonymous = await press(page, drainB, 'refused');
    assert.match(anonymous, /HTTP 401 TG_ERR_ADMIN_UNAUTHORIZED/);
    assert.equal(await stateOf(b.address), 'healthy', 'nothing changed');
    assert.deepEqual((await status()).overrides.active, []);

    // The admin token: drain with a reason; the page and /status both show it draining.
    await login(page, ADMIN);
    await page.fill('#reason', 'kernel upgrade');
    const drained = await press(page, drainB, 'done');
    assert.match(drained, /^done: drain app 127\.0\.0\.1:\d+ \(override [0-9a-f-]+\)$/);
    await until('draining in /status', () => stateOf(b.address), (s) => s === 'draining', 5000);
    await page.locator('#endpoints tbody tr', { hasText: b.address }).locator('td.state', { hasText: 'draining' }).waitFor({ timeout: 10_000 });
    assert.equal(await stateCell(a.address).textContent(), 'healthy', 'only that endpoint');
    const ov = (await status()).overrides.active;
    assert.equal(ov.length, 1);
    assert.deepEqual({ kind: ov[0]!.kind, key: ov[0]!.key, reason: ov[0]!.reason, by: ov[0]!.createdBy }, { kind: 'endpoint', key: `app/${b.address}`, reason: 'kernel upgrade', by: 'admin-token' });
    assert.equal(await page.inputValue('#reason'), '', 'the reason went with that change');
    assert.match((await page.locator('#overrides tbody tr').first().textContent()) ?? '', /kernel upgrade/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}console-actions-1280.png`, fullPage: true });

    // Re-enable: the drain override is deleted and the endpoint takes traffic again.
    await press(page, `#endpoints button[data-act="delete-override"]`, 'done');
    await until('healthy in /status', () => stateOf(b.address), (s) => s === 'healthy', 5000);
    await page.locator('#endpoints tbody tr', { hasText: b.address }).locator('td.state', { hasText: 'healthy' }).waitFor({ timeout: 10_000 });
    assert.deepEqual((await status()).overrides.active, []);

    // Breaker forced open, shown as such, then that override deleted from the overrides table.
    await press(page, '#protection button[data-act="breaker"][data-state="open"]', 'done');
    await page.locator('#protection tbody tr td', { hasText: 'open (forced)' }).waitFor({ timeout: 10_000 });
    assert.equal((await status()).protection.upstreams.find((u) => u.upstream === 'app')!.breaker!.forced, 'open');
    await press(page, '#overrides button[data-act="delete-override"]', 'done');
    await until('breaker not forced', async () => (await status()).protection.upstreams.find((u) => u.upstream === 'app')!.breaker!.forced, (f) => f === null, 5000);
    await page.locator('#protection tbody tr td:nth-child(2)', { hasText: /^closed$/ }).waitFor({ timeout: 10_000 });

    // The rollout: start, pause, abort; each phase a word in the page and in /status.
    const phase = async () => (await status()).rollouts.rollouts.find((r) => r.name === 'web')!.phase;
    const phaseCell = page.locator('#rollouts tbody tr', { hasText: 'web' }).locator('td').nth(2);
    for (const [action, want] of [['start', 'progressing'], ['pause', 'paused'], ['abort', 'rolled-back']] as const) {
      const out = await press(page, `#rollouts button[data-action="${action}"]`, 'done');
      assert.equal(out, `done: ${action} rollout web`);
      assert.equal(await phase(), want);
      await until(`the page shows ${want}`, () => phaseCell.textContent(), (t) => t === want, 10_000);
    }
    // The API's refusal of an action its phase does not allow is shown as it came (409).
    const conflict = await page.evaluate("fetch('v1/rollouts/web/pause', { method: 'POST', headers: { authorization: 'Bearer ' + sessionStorage.getItem('tidegate-admin-token') } }).then((r) => r.status)");
    assert.equal(conflict, 409);

    // A ban set through the API is listed with since/until/reason, and lifted from the page.
    const ban = await api(gw.adminUrl, 'POST', '/v1/bans', ADMIN, { key: '203.0.113.7', for: '10m' });
    assert.equal(ban.status, 201, JSON.stringify(ban.json));
    const banRow = page.locator('#bans tbody tr', { hasText: '203.0.113.7' });
    await banRow.waitFor({ timeout: 10_000 });
    const cells = await banRow.locator('td').allTextContents();
    assert.equal(cells[1], 'abuse');
    assert.match(cells[2]!, /^\d+ s ago$/);
    assert.match(cells[3]!, /^in (10 min|\d+ s)$/);
    assert.equal(cells[4], 'banned through the admin API');
    assert.equal(cells[5], 'manual');
    await press(page, '#bans button[data-act="lift"]', 'done');
    assert.deepEqual((await api(gw.adminUrl, 'GET', '/v1/bans', ADMIN)).json.bans, []);
    await page.locator('#bans tbody td.empty', { hasText: 'none' }).waitFor({ timeout: 10_000 });

    // Phone width: the same page, tables scrolling inside their boxes, the page itself not wider than the screen.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await phone.goto(`${gw.adminUrl}/ui`);
    await login(phone, ADMIN);
    await phone.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
    const width = Number(await phone.evaluate('document.documentElement.scrollWidth'));
    assert.ok(width <= 390, `the page is ${width} px wide at a 390 px screen`);
    await phone.screenshot({ path: `${ARTIFACTS}console-actions-390.png`, fullPage: true });
  } finally {
    await browser.close();
    await gw.stop();
    await a.close();
    await b.close();
    await stable.close();
    await canary.close();
  }
});
