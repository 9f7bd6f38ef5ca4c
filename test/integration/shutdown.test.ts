// Graceful shutdown under load: SIGTERM stops accepting, finishes what was accepted,
// tells keep-alive clients to close, and exits 0. No accepted request is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, errors } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

test('SIGTERM under load: every request sent on an open connection gets its full response', async () => {
  const up = await startUpstream((req, res) => {
    req.resume();
    setTimeout(() => res.end('x'.repeat(2048)), 40 + Math.random() * 80);
  });
  const gw = await startGateway(baseConfig([up.address], { shutdown: { drainTimeout: '8s' } }));
  const clients = Array.from({ length: 24 }, () => new Client(gw.url, { pipelining: 1 }));
  let ok = 0;
  let closedAfter = 0;
  let refused = 0;
  const failures: string[] = [];
  let signalled = false;
  const loops = clients.map(async (c) => {
    // Until the gateway refuses it (bounded): a fixed 200 let a fast machine finish a
    // client's loop before the signal, and that client then never saw the refusal.
    for (let i = 0; i < 100_000; i++) {
      try {
        const r = await c.request({ path: `/r${i}`, method: 'GET' });
        const body = await r.body.text();
        if (r.statusCode !== 200 || body.length !== 2048) failures.push(`status ${r.statusCode} len ${body.length}`);
        else ok++;
        if (signalled && r.headers.connection === 'close') closedAfter++;
      } catch (err) {
        const e = err as Error & { code?: string; syscall?: string };
        // After the signal, new connections are refused: nothing was sent on them. One
        // whose handshake the kernel finished just before the listener closed sat in its
        // accept queue, never accepted, and is reset at connect (seen once in CI).
        const atConnect = e.code === 'ECONNREFUSED' || (e.code === 'ECONNRESET' && (e.syscall === 'connect' || e.message.startsWith('connect ')));
        if (signalled && (atConnect || e instanceof errors.ClientDestroyedError)) {
          refused++;
          return;
        }
        failures.push(`${e.code ?? ''} ${e.message}`);
        return;
      }
    }
  });
  // Load first (a condition, not a fixed wait: a loaded machine serves fewer per second).
  const deadline = Date.now() + 15_000;
  while (ok < 60 && failures.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(ok >= 60, `only ${ok} requests completed before the signal (${failures.join('; ')})`);
  const beforeSignal = ok;
  signalled = true;
  const exit = gw.stop('SIGTERM');
  await Promise.all(loops);
  assert.equal(await exit, 0, 'exit code 0');
  await Promise.all(clients.map((c) => c.destroy()));
  await up.close();
  // After its last response each client's next connection must be refused (the
  // listener closed at the signal), not accepted and then cut.
  assert.equal(refused, clients.length, `${refused} of ${clients.length} clients had their next connection refused (failures: ${failures.join('; ') || 'none'})`);
  assert.deepEqual(failures, [], 'no request failed mid-way');
  assert.ok(ok > beforeSignal, `requests in flight at the signal completed (${ok - beforeSignal})`);
  assert.ok(closedAfter > 0, 'responses after the signal carry Connection: close');
  assert.ok(gw.logs.some((l) => l.event === 'draining'));
  assert.ok(gw.logs.some((l) => l.event === 'stopped'));
});
