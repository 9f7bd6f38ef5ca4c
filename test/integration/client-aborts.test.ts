// A client that goes away aborts the upstream request, and nothing is left behind:
// many aborts, then the gateway's fd count and the upstream's open requests are back
// where they started.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { openFds } from '../helpers/proc.js';

let up: TestUpstream;
let gw: RunningGateway;
let upstreamAborts = 0;
let open = 0;

before(async () => {
  up = await startUpstream((req, res) => {
    open++;
    let finished = false;
    res.on('finish', () => (finished = true));
    res.on('close', () => {
      open--;
      if (!finished) upstreamAborts++;
    });
    if (req.url === '/slow-body') {
      // 10 MB trickled out: the client leaves early
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      const chunk = Buffer.alloc(16 * 1024, 97);
      const t = setInterval(() => res.write(chunk), 5);
      res.on('close', () => clearInterval(t));
      return;
    }
    req.resume();
    if (req.url === '/hang') return; // never answers
  });
  gw = await startGateway(baseConfig([up.address], { upstreams: { app: { discovery: { type: 'static', endpoints: [up.address] }, timeouts: { response: '30s' } } } }));
});
after(async () => {
  await gw.stop();
  await up.close();
});

function abortAfter(port: number, payload: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(payload));
    s.on('error', () => {});
    s.on('data', () => {});
    setTimeout(() => {
      s.destroy();
      resolve();
    }, ms);
  });
}

async function settle(check: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!check() && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 50));
}

test('aborts mid-request and mid-response release the upstream request and every fd', async () => {
  // warm up: let pools and both workers open what they keep open anyway
  for (let i = 0; i < 20; i++) await (await request(`${gw.url}/warm`)).body.dump();
  const fds0 = openFds(gw.proc.pid!);
  const rounds = 40;
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < rounds; i++) {
    // waiting for the upstream's answer
    jobs.push(abortAfter(gw.port, 'GET /hang HTTP/1.1\r\nHost: t\r\n\r\n', 150));
    // halfway through a streamed request body
    jobs.push(abortAfter(gw.port, `POST /hang HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(100_000)}`, 150));
    // halfway through the response body
    jobs.push(abortAfter(gw.port, 'GET /slow-body HTTP/1.1\r\nHost: t\r\n\r\n', 150));
    if (jobs.length >= 30) await Promise.all(jobs.splice(0));
  }
  await Promise.all(jobs);
  await settle(() => open === 0);
  assert.equal(open, 0, 'every upstream request ended');
  assert.ok(upstreamAborts >= rounds * 2, `upstream saw ${upstreamAborts} aborted requests`);
  await settle(() => openFds(gw.proc.pid!) <= fds0 + 4);
  const fds1 = openFds(gw.proc.pid!);
  assert.ok(fds1 <= fds0 + 4, `fds before ${fds0}, after ${fds1}`);
  const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { totals: { inFlight: number }; workers: { clientAborts: number }[] };
  assert.equal(s.totals.inFlight, 0);
  assert.ok(s.workers.reduce((n, w) => n + w.clientAborts, 0) >= rounds * 2);
});
