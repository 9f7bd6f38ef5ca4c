// A client that goes away aborts the upstream request, and nothing is left behind:
// many aborts, then the gateway's fd count and the upstream's open requests are back
// where they started.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { execSync } from 'node:child_process';
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
    if (req.url!.startsWith('/slow-body')) {
      // 10 MB trickled out: the client leaves early
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      const chunk = Buffer.alloc(16 * 1024, 97);
      const t = setInterval(() => res.write(chunk), 5);
      res.on('close', () => clearInterval(t));
      return;
    }
    req.resume();
    if (req.url!.startsWith('/hang')) return; // never answers
    res.end('ok');
  });
  gw = await startGateway(baseConfig([up.address], { upstreams: { app: { discovery: { type: 'static', endpoints: [up.address] }, timeouts: { response: '30s' } } } }));
});
after(async () => {
  await gw.stop();
  await up.close();
});

/** Sends `payload`, then destroys the socket once `ready()` holds (or after 5 s). */
function abortWhen(port: number, payload: string, ready: (gotBytes: boolean) => boolean): Promise<void> {
  return new Promise((resolve) => {
    let got = false;
    const s = connect(port, '127.0.0.1', () => s.write(payload));
    s.on('error', () => {});
    s.on('data', () => (got = true));
    const t0 = Date.now();
    const poll = setInterval(() => {
      if (ready(got) || Date.now() - t0 > 5000) {
        clearInterval(poll);
        s.destroy();
        resolve();
      }
    }, 10);
  });
}

function sockets(pid: number): string {
  try {
    return execSync(`ss -tanp | grep 'pid=${pid},' || true`).toString();
  } catch {
    return '(ss unavailable)';
  }
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
  const seen = (id: string) => () => up.requests.some((r) => r.url.endsWith(id));
  async function burst(tag: string): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < rounds; i++) {
      // waiting for the upstream's answer
      jobs.push(abortWhen(gw.port, `GET /hang?${tag}g${i} HTTP/1.1\r\nHost: t\r\n\r\n`, seen(`?${tag}g${i}`)));
      // halfway through a streamed request body
      jobs.push(abortWhen(gw.port, `POST /hang?${tag}p${i} HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(100_000)}`, seen(`?${tag}p${i}`)));
      // halfway through the response body
      jobs.push(abortWhen(gw.port, `GET /slow-body?${tag}s${i} HTTP/1.1\r\nHost: t\r\n\r\n`, (got) => got));
      if (jobs.length >= 30) await Promise.all(jobs.splice(0));
    }
    await Promise.all(jobs);
    await settle(() => open === 0);
  }
  await burst('a');
  assert.equal(open, 0, 'every upstream request ended');
  // Some aborts land before the request was dispatched; every one that reached the
  // upstream must have been aborted there (none of these URLs completes in time).
  const reached = up.requests.filter((r) => r.url.startsWith('/hang') || r.url.startsWith('/slow-body')).length;
  assert.ok(reached >= rounds * 2, `only ${reached} requests reached the upstream`);
  assert.equal(upstreamAborts, reached, 'every upstream request the client abandoned was aborted');
  await new Promise((r) => setTimeout(r, 1000));
  const fds1 = openFds(gw.proc.pid!);
  // Connections a pool opened for requests that were abandoned while queued stay in the
  // pool as idle keep-alive sockets (bounded by pool.connections per worker); that is
  // reuse, not a leak. A leak grows with every burst: a second burst must not.
  await burst('b');
  await settle(() => openFds(gw.proc.pid!) <= fds1 + 4, 15_000);
  const fds2 = openFds(gw.proc.pid!);
  console.log(`fds: ${fds0} before, ${fds1} after ${rounds * 3} aborts, ${fds2} after ${rounds * 3} more`);
  assert.ok(fds2 <= fds1 + 4, `fds grew from ${fds1} to ${fds2} with the second burst; gateway sockets:\n${sockets(gw.proc.pid!)}`);
  assert.ok(fds1 - fds0 <= 2 * 64, 'idle pooled sockets stay within pool.connections per worker');
  const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { totals: { inFlight: number }; workers: { clientAborts: number }[] };
  assert.equal(s.totals.inFlight, 0);
  assert.ok(s.workers.reduce((n, w) => n + w.clientAborts, 0) >= rounds * 2);
});
