// The admin status page (GET /ui) rendered by a real headless Chromium: the page's
// script must fetch /status and /metrics and fill its tables. Needs the Debian
// `chromium` package: scripts/install-test-deps-ui.sh installs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { findChromium, dumpDom } from '../helpers/chromium.js';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

test('status page renders workers, routes and scaling from /status and /metrics in headless Chromium', async () => {
  const chromium = findChromium();
  assert.ok(chromium !== null, 'chromium not found on PATH: run scripts/install-test-deps-ui.sh (apt-get install chromium) before this test');
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      routes: [{ name: 'api', match: { path: '/' }, upstream: 'app' }],
      observability: { snapshotInterval: '100ms', scaling: { interval: '200ms', upstreams: { app: { metric: 'rps', target: 1000 } } } },
    }),
  );
  try {
    for (let i = 0; i < 10; i++) await (await request(`${gw.url}/x/${i}`)).body.dump();
    await new Promise((r) => setTimeout(r, 500)); // a snapshot and a scaling round
    const dom = await dumpDom(chromium, `${gw.adminUrl}/ui`);
    assert.match(dom, /<body data-ready="1"/, 'the page script rendered at least once');
    assert.match(dom, /<div id="error"><\/div>/, 'no poll error shown');
    // workers table: two rows, both listening
    const workers = /<table id="workers">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(dom)![1]!;
    assert.equal((workers.match(/<tr>/g) ?? []).length, 2);
    assert.equal((workers.match(/listening/g) ?? []).length, 2);
    // routes table: the api route with its 10 requests (from tidegate_route_requests_total)
    const routes = /<table id="routes">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(dom)![1]!;
    assert.match(routes, /<td>api<\/td><td>app<\/td><td class="n">10<\/td>/);
    const scaling = /<table id="scaling">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(dom)![1]!;
    assert.match(scaling, /<td>app<\/td>/);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
