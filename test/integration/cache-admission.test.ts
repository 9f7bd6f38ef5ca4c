// TinyLFU admission through the real gateway (2 workers): a cache of the smallest size
// (64 KiB: 32 records) full of keys asked for several times, then a scan of one-time
// keys. A scan key's reservation needs an eviction, admission refuses it (the CLOCK's
// victim is more frequent), and its response is then not collected or offered to the
// store at all (`Cache-Status: …; detail=not-admitted`); the frequent keys stay hits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

test('a full cache refuses a one-time key at its reservation and does not collect its response; the frequent keys stay hits', async () => {
  const upstreamHits = new Map<string, number>();
  const up = await startUpstream((req, res) => {
    upstreamHits.set(req.url!, (upstreamHits.get(req.url!) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
    res.end(`body of ${req.url}`);
  });
  const gw = await startGateway(baseConfig([up.address], { cache: { size: '64kb', maxObjectSize: '16kb' }, routes: [{ match: { path: '/' }, upstream: 'app', cache: {} }] }));
  try {
    const get = async (path: string): Promise<string> => {
      const r = await request(`${gw.url}${path}`);
      assert.equal(await r.body.text(), `body of ${path}`);
      return String(r.headers['cache-status']);
    };
    const hot = Array.from({ length: 24 }, (_, n) => `/hot/${n}`);
    // Each hot key: stored, then asked for four more times (the sketch counts them).
    for (const p of hot) assert.match(await get(p), /stored/, p);
    for (let round = 0; round < 4; round++) for (const p of hot) assert.match(await get(p), /hit/, `${p} round ${round}`);
    // Fill the remaining records with one-time keys, then scan: from some point on every
    // scan key is refused (which one first depends on the CLOCK hand).
    const statuses: string[] = [];
    for (let n = 0; n < 40; n++) statuses.push(await get(`/scan/${n}`));
    const refused = statuses.filter((s) => /detail=not-admitted/.test(s)).length;
    assert.ok(refused >= 20, `scan keys refused admission: ${refused} of 40 (${statuses.slice(-3).join(' | ')})`);
    for (const s of statuses) assert.match(s, /stored|detail=not-admitted/);
    // The refused keys were not stored: asked again, they go upstream again.
    const last = '/scan/39';
    assert.match(await get(last), /fwd=uri-miss/);
    assert.equal(upstreamHits.get(last), 2);
    // The frequent set survived the scan.
    let stillHits = 0;
    for (const p of hot) if (/hit/.test(await get(p))) stillHits++;
    assert.ok(stillHits >= 20, `hot keys still hits after the scan: ${stillHits} of ${hot.length}`);
    const stats = (await (await request(`${gw.adminUrl}/v1/cache`)).body.json()) as { admissionsRefused: number };
    assert.ok(stats.admissionsRefused >= refused, `admission refusals counted: ${stats.admissionsRefused}`);
  } finally {
    await gw.stop();
    await up.close();
  }
});
