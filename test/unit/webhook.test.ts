import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookNotifier, type DeliveryOutcome, type ScalingEvent } from '../../src/metrics/webhook.js';

const event: ScalingEvent = { type: 'scaling-recommendation', upstream: 'app', current: 2, recommended: 4, previous: 2, metric: 'rps', observed: 200, target: 100, reason: 'test', at: new Date(0).toISOString() };

test('webhook retries a failing receiver and delivers the JSON event', async () => {
  const bodies: unknown[] = [];
  let calls = 0;
  const server = createServer((req, res) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c.toString()));
    req.on('end', () => {
      calls++;
      if (calls <= 2) {
        res.statusCode = 503;
        return res.end();
      }
      bodies.push({ contentType: req.headers['content-type'], body: JSON.parse(b) });
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  try {
    const outcome = await new Promise<DeliveryOutcome>((resolve) => new WebhookNotifier({ url, timeout: 1000, retries: 3 }, (_ev, o) => resolve(o)).notify(event));
    assert.deepEqual(outcome, { ok: true, attempts: 3, status: 200 });
    assert.deepEqual(bodies, [{ contentType: 'application/json', body: event }]);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('webhook gives up after its retries when the receiver hangs (timeout per attempt)', async () => {
  let calls = 0;
  const server = createServer(() => {
    calls++; // never answers
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  try {
    const started = Date.now();
    const outcome = await new Promise<DeliveryOutcome>((resolve) => new WebhookNotifier({ url, timeout: 150, retries: 1 }, (_ev, o) => resolve(o)).notify(event));
    assert.equal(outcome.ok, false);
    assert.equal(outcome.attempts, 2);
    assert.equal(calls, 2);
    assert.ok(Date.now() - started < 5000);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
