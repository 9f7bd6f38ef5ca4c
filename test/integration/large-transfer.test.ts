// 1 GiB up and 1 GiB down through the gateway with its RSS staying flat: bodies are
// streamed with backpressure, never buffered. TIDEGATE_BIG_MB shrinks it for a quick run.
// The upload is chunked: uWS 20.30 refuses a Content-Length of 10^9 bytes or more
// (measured; README "Known limitations"), so a 1 GiB body can only arrive chunked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rss, sampleRss } from '../helpers/proc.js';

const MB = 1024 * 1024;
const TOTAL = Number(process.env.TIDEGATE_BIG_MB ?? 1024) * MB;
const CHUNK = Buffer.alloc(256 * 1024, 120);

function source(total: number): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: CHUNK.length,
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(CHUNK.length, total - sent);
      sent += n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

let up: TestUpstream;
let gw: RunningGateway;
before(async () => {
  up = await startUpstream((req, res) => {
    if (req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(String(n)));
      return;
    }
    res.writeHead(200, { 'content-length': String(TOTAL) });
    source(TOTAL).pipe(res);
  });
  gw = await startGateway(baseConfig([up.address], { limits: { maxBodyBytes: '2gb' }, upstreams: { app: { discovery: { type: 'static', endpoints: [up.address] }, timeouts: { response: '60s', read: '60s' } } } }));
});
after(async () => {
  await gw.stop();
  await up.close();
});

test(`uploads ${TOTAL / MB} MiB (chunked) with flat gateway RSS`, async () => {
  const base = rss(gw.proc.pid!);
  const s = sampleRss(gw.proc.pid!);
  const r = await request(`${gw.url}/up`, { method: 'POST', body: source(TOTAL) });
  assert.equal(await r.body.text(), String(TOTAL));
  const samples = s.stop();
  const peak = Math.max(base, ...samples);
  console.log(`upload ${TOTAL / MB} MiB: gateway RSS ${(base / MB).toFixed(0)} MiB before, peak ${(peak / MB).toFixed(0)} MiB`);
  assert.ok(peak - base < 96 * MB, `RSS grew ${((peak - base) / MB).toFixed(0)} MiB`);
});

test(`downloads ${TOTAL / MB} MiB with flat gateway RSS`, async () => {
  const base = rss(gw.proc.pid!);
  const s = sampleRss(gw.proc.pid!);
  const r = await request(`${gw.url}/down`);
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  assert.equal(n, TOTAL);
  const samples = s.stop();
  const peak = Math.max(base, ...samples);
  console.log(`download ${TOTAL / MB} MiB: gateway RSS ${(base / MB).toFixed(0)} MiB before, peak ${(peak / MB).toFixed(0)} MiB`);
  assert.ok(peak - base < 96 * MB, `RSS grew ${((peak - base) / MB).toFixed(0)} MiB`);
});
