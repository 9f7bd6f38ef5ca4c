// The console with a token configured, in headless Chromium: the page itself loads
// without a token, asks for one, keeps it in session storage, sends it as a header
// (never in a URL) and shows whose token it is; a wrong token is refused and said so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { launchBrowser } from '../helpers/browser.js';

const TOKEN = 'console-admin-token-0000001';

test('console: token typed once, sent as a header, refused token said so', async () => {
  const up = await startUpstream();
  const gw = await startGateway(baseConfig([up.address], { admin: { host: '127.0.0.1', port: 0, token: TOKEN } }));
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    const urls: { url: string; auth: string | undefined }[] = [];
    page.on('request', (r) => urls.push({ url: r.url(), auth: r.headers().authorization }));
    const nav = await page.goto(`${gw.adminUrl}/ui`);
    assert.equal(nav?.status(), 200, 'the page loads without a token');
    await page.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.getAttribute('body', 'data-ready'), '0', 'no data without a token');

    await page.fill('#token', 'wrong-token-000000000000');
    await page.click('#login button[type=submit]');
    await page.locator('#error').filter({ hasText: 'refused' }).waitFor({ timeout: 10_000 });

    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.locator('#who-name').filter({ hasText: 'admin-token' }).waitFor({ timeout: 10_000 });
    await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
    assert.equal(await page.isHidden('#login'), true);
    assert.equal(await page.evaluate('sessionStorage.getItem("tidegate-admin-token")'), TOKEN);
    const data = urls.filter((u) => /\/(status|metrics|v1\/)/.test(u.url));
    assert.ok(data.some((u) => u.auth === `Bearer ${TOKEN}`), 'data requests carry the token as a header');
    assert.ok(urls.every((u) => !u.url.includes(TOKEN)), 'the token never appears in a URL');

    // A reload of the tab keeps the token (session storage); "forget" drops it.
    await page.reload();
    await page.waitForSelector('body[data-ready="1"]', { timeout: 15_000 });
    await page.click('#forget');
    await page.locator('#login').waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await page.evaluate('sessionStorage.getItem("tidegate-admin-token")'), null);
  } finally {
    await browser.close();
    await gw.stop();
    await up.close();
  }
});
