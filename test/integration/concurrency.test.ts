// Adaptive concurrency end to end: an upstream that serves at most C requests at once
// in S ms each and queues the rest FIFO (so its response time grows with what is sent
// beyond C), a closed-loop load well above C through two workers, and the gradient
// controller on the primary finding the in-flight level the upstream can take.
// Ranges are wide on purpose: the machine running this is small and shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

interface Capacity {
  concurrency: number;
  serviceMs: number;
  active: number;
  queued: number;
  peakActiveAndQueued: number;
}

async function capacityUpstream(cap: Capacity): Promise<TestUpstream> {
  const queue: ServerResponse[] = [];
  const serve = (res: ServerResponse): void => {
    cap.active++;
    setTimeout(() => {
      res.end('ok');
      cap.active--;
      const next = queue.shift();
      if (next !== undefined) {
        cap.queued--;
        serve(next);
      }
    }, cap.serviceMs);
  };
  return startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    cap.peakActiveAndQueued = Math.max(cap.peakActiveAndQueued, cap.active + cap.queued + 1);
    if (cap.active < cap.concurrency) serve(res);
    else {
      cap.queued++;
      queue.push(res);
    }
  });
}

/** `clients` closed-loop clients, each on its own connection, until `stop()`; a shed request waits 20 ms before the next (a client honouring Retry-After would wait longer). */
function load(url: string, clients: number): { stop(): Promise<void>; counts: Map<string, number> } {
  const agent = new Agent({ connections: clients, pipelining: 1 });
  const counts = new Map<string, number>();
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const r = await request(url, { dispatcher: agent });
        const body = await r.body.text();
        const key = r.statusCode === 503 ? (JSON.parse(body) as { error: { code: string } }).error.code : String(r.statusCode);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        if (r.statusCode === 503) await new Promise((res) => setTimeout(res, 20));
      } catch {
        counts.set('error', (counts.get('error') ?? 0) + 1);
      }
    }
  });
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
    },
  };
}

interface Conc {
  limit: number;
  inFlight: number;
  phase: string;
  minRttMs: number;
}

async function concurrency(gw: RunningGateway): Promise<Conc> {
  const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { protection: { upstreams: { upstream: string; concurrency: Conc }[] } };
  return s.protection.upstreams.find((u) => u.upstream === 'app')!.concurrency;
}

/** Limits seen over `ms`, read every 200 ms. */
async function watch(gw: RunningGateway, ms: number): Promise<number[]> {
  const out: number[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    out.push((await concurrency(gw)).limit);
    await new Promise((r) => setTimeout(r, 200));
  }
  return out;
}

test('adaptive concurrency: the limit settles near the capacity of an upstream serving C=8 at S=20ms, sheds the excess with TG_ERR_SHED, and rises when capacity does', async (t) => {
  const cap: Capacity = { concurrency: 8, serviceMs: 20, active: 0, queued: 0, peakActiveAndQueued: 0 };
  const up = await capacityUpstream(cap);
  const cfg = baseConfig([up.address]);
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, { retries: 0, concurrency: { limit: 'adaptive', min: 3, max: 200, minRttInterval: '60s' } });
  const gw = await startGateway(cfg);
  const workers0 = ((await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { requests: number }[] }).workers.map((w) => w.requests);
  const gen = load(`${gw.url}/work`, 48);
  try {
    // Convergence: give it a few seconds, then watch where it stays.
    await new Promise((r) => setTimeout(r, 4000));
    const settled = await watch(gw, 3000);
    const median = [...settled].sort((a, b) => a - b)[settled.length >> 1]!;
    t.diagnostic(`settled limits at C=8: ${settled.join(',')} (median ${median})`);
    // Without queueing it could serve 8; the buffer (25 %) and headroom put the fixed point near 10–13.
    assert.ok(median >= 6 && median <= 30, `limit settled at ${median} (samples ${settled.join(',')})`);
    assert.ok((gen.counts.get('TG_ERR_SHED') ?? 0) > 0, `the excess was shed: ${JSON.stringify([...gen.counts])}`);
    assert.ok((gen.counts.get('200') ?? 0) > 100);
    const c = await concurrency(gw);
    assert.equal(c.phase, 'sampling');
    assert.ok(c.minRttMs >= 15 && c.minRttMs <= 80, `minRTT ${c.minRttMs} ms (service time 20 ms)`);
    const queuedAt8 = cap.peakActiveAndQueued;
    assert.ok(queuedAt8 < 48, `the upstream never had all 48 clients at once (peak ${queuedAt8})`);

    // Capacity triples: the limit must follow it up.
    cap.concurrency = 24;
    const end = Date.now() + 10_000;
    let limit = median;
    while (Date.now() < end && limit < 24) {
      await new Promise((r) => setTimeout(r, 200));
      limit = (await concurrency(gw)).limit;
    }
    t.diagnostic(`limit after capacity 8 → 24: ${limit}`);
    assert.ok(limit >= 24, `limit rose to ${limit} after capacity went from 8 to 24 (was ${median})`);
    const workers1 = ((await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { requests: number }[] }).workers.map((w) => w.requests);
    workers1.forEach((n, i) => assert.ok(n - workers0[i]! > 50, `worker ${i} served traffic (${n - workers0[i]!})`));
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /tidegate_concurrency_limit\{upstream="app"\} \d+/);
    assert.match(metrics, /tidegate_concurrency_shed_total\{upstream="app"\} [1-9]/);
    const decided = gw.logs.filter((l) => l.event === 'concurrency-limit');
    assert.ok(decided.length > 0);
    for (const e of decided) for (const k of ['from', 'to', 'sampleRttMs', 'minRttMs', 'gradient', 'inFlight']) assert.ok(k in e, `decision log carries ${k}`);
  } finally {
    await gen.stop();
    await gw.stop();
    await up.close();
  }
});

test('steady healthy traffic: no breaker transition and no concurrency-limit change over a quiet period', async () => {
  const cap: Capacity = { concurrency: 64, serviceMs: 5, active: 0, queued: 0, peakActiveAndQueued: 0 };
  const up = await capacityUpstream(cap);
  const cfg = baseConfig([up.address]);
  Object.assign((cfg.upstreams as { app: Record<string, unknown> }).app, {
    retries: 0,
    breaker: { window: '2s', minRequests: 5, failureRate: '50%', adaptive: { minFailureRate: '20%', maxFailureRate: '60%' } },
    concurrency: { limit: 'adaptive', min: 3, max: 200, minRttInterval: '60s' },
  });
  const gw = await startGateway(cfg);
  const gen = load(`${gw.url}/steady`, 4);
  try {
    // Warm-up: the minRTT window and the ramp to a limit that does not hold this load back
    // (the limit stops once fewer than half of it are in flight: 4 clients settle it at 9).
    // Steady means no decision for 2 s; on a loaded host the ramp's last step can come late.
    const decisions = () => gw.logs.filter((l) => typeof l.event === 'string' && /^(breaker-|concurrency-)/.test(l.event)).length;
    const end = Date.now() + 8000;
    while (Date.now() < end && !gw.logs.some((l) => l.event === 'concurrency-min-rtt')) await new Promise((r) => setTimeout(r, 100));
    const settleBy = Date.now() + 20_000;
    let last = decisions();
    let quietSince = Date.now();
    while (Date.now() - quietSince < 2000) {
      assert.ok(Date.now() < settleBy, `the controllers settled within 20 s (decisions: ${decisions()})`);
      await new Promise((r) => setTimeout(r, 100));
      if (decisions() !== last) {
        last = decisions();
        quietSince = Date.now();
      }
    }
    const before = decisions();
    const served0 = gen.counts.get('200') ?? 0;
    const shed0 = gen.counts.get('TG_ERR_SHED') ?? 0; // the minRTT window pins the limit at min = 3 under 4 clients
    await new Promise((r) => setTimeout(r, 4000));
    const served = (gen.counts.get('200') ?? 0) - served0;
    assert.ok(served > 100, `steady traffic flowed (${served} requests)`);
    const quiet = gw.logs.filter((l) => typeof l.event === 'string' && /^(breaker-|concurrency-)/.test(l.event)).slice(before);
    assert.deepEqual(quiet.map((l) => `${String(l.event)} ${String(l.msg)}`), [], 'no decision during the quiet period');
    assert.equal((gen.counts.get('TG_ERR_SHED') ?? 0) - shed0, 0, 'nothing shed once settled');
  } finally {
    await gen.stop();
    await gw.stop();
    await up.close();
  }
});
