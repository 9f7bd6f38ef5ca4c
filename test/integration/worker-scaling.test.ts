// Worker threads that scale themselves: closed-loop load on one worker thread drives
// its event-loop utilisation over workers.target, a second thread is added and serves
// (its own slot counts requests); then the load drops to a trickle, the second thread
// retires (drains) and no request fails at any point. Loopback only, bounded in count
// and time. Prints the figures (time from sustained overload to the new thread serving,
// drain time, requests lost) for the README.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startChildUpstream } from '../helpers/child-upstream.js';
import { until } from '../helpers/poll.js';
import { startUpstream } from '../helpers/upstream.js';

interface WorkerRow {
  readonly slot: number;
  readonly phase: string;
  readonly requests: number;
}
interface Status {
  readonly workers: readonly WorkerRow[];
  readonly workerScaling: { readonly serving: number; readonly starting: number; readonly retiring: number; readonly adds: number; readonly retires: number } | null;
}

async function status(gw: RunningGateway): Promise<Status> {
  const r = await fetch(`${gw.adminUrl}/status`);
  return (await r.json()) as Status;
}

async function metrics(gw: RunningGateway): Promise<string> {
  return (await fetch(`${gw.adminUrl}/metrics`)).text();
}

test('workers { min: 1, max: 2 }: overload adds a serving thread; a quiet gateway retires it with no request lost', async () => {
  const up = await startChildUpstream();
  // Slow answers keep requests in flight on the retiring thread while its event loop is idle.
  const slow = await startUpstream((req, res) => {
    req.resume();
    setTimeout(() => res.end(JSON.stringify({ pid: process.pid, slow: true })), 250);
  });
  const base = baseConfig([up.address]);
  const gw = await startGateway({
    ...base,
    workers: { min: 1, max: 2, target: '25%', release: '10%', addAfter: '1s', retireAfter: '2s', cooldown: '1s' },
    shutdown: { drainTimeout: '3s' },
    upstreams: { ...(base.upstreams as object), slow: { discovery: { type: 'static', endpoints: [slow.address] }, timeouts: { connect: '1s', response: '5s' } } },
    routes: [{ match: { path: '/slow' }, upstream: 'slow' }, ...(base.routes as object[])],
  });
  const failures: string[] = [];
  let ok = 0;
  /**
   * One client loop: keep-alive requests, a fresh connection every `perConnection`
   * (SO_REUSEPORT hands a new thread only new connections), `pauseMs` between requests.
   */
  async function loop(stop: () => boolean, perConnection: number, path: string, maxRequests: number): Promise<void> {
    let c = new Client(gw.url, { pipelining: 1 });
    for (let i = 0; i < maxRequests && !stop(); i++) {
      if (i > 0 && i % perConnection === 0) {
        await c.close();
        c = new Client(gw.url, { pipelining: 1 });
      }
      try {
        const r = await c.request({ path: `${path}${i}`, method: 'GET' });
        const body = await r.body.text();
        if (r.statusCode === 200 && body.includes('"pid"')) ok++;
        else failures.push(`status ${r.statusCode}: ${body.slice(0, 120)}`);
      } catch (err) {
        const e = err as Error & { code?: string };
        failures.push(`${e.code ?? ''} ${e.message}`);
      }
    }
    await c.close();
  }
  try {
    const s0 = await status(gw);
    assert.deepEqual(s0.workers.map((w) => w.slot), [0], 'starts with workers.min threads');

    // Overload: 48 closed-loop clients (bounded: 60 s or 4,000 requests each).
    let heavy = true;
    const loadStart = Date.now();
    const heavyLoops = Array.from({ length: 48 }, () => loop(() => !heavy || Date.now() - loadStart > 60_000, 25, '/w', 4_000));
    const added = await until('a second worker thread serving traffic', () => status(gw), (s) => s.workers.some((w) => w.slot === 1 && w.phase === 'listening' && w.requests > 0), 45_000);
    const servedAfterMs = Date.now() - loadStart;
    heavy = false;
    await Promise.all(heavyLoops);
    assert.equal(added.workerScaling?.adds, 1);
    const up1 = gw.logs.find((l) => l.event === 'worker-scale-up');
    const added1 = gw.logs.find((l) => l.event === 'worker-added');
    assert.ok(up1 !== undefined && added1 !== undefined, 'the scale-up decision and its completion are logged');
    assert.equal(typeof up1.decision, 'number', 'the scale-up is in the decision feed (its id)');
    assert.equal(added1.slot, 1);
    const feed = (await (await fetch(`${gw.adminUrl}/v1/decisions`)).json()) as { decisions?: { event?: string; kind?: string }[] };
    assert.match(JSON.stringify(feed), /worker-scale-up/, 'GET /v1/decisions lists the scale-up');
    // the added thread's runtime gauges appear with its first telemetry snapshot
    const m1 = await until('heap and event-loop gauges of slot 1', () => metrics(gw), (m) => /^tidegate_worker_heap_used_bytes\{worker="1"\} /m.test(m) && /^tidegate_worker_event_loop_utilization_ratio\{worker="1"\} /m.test(m), 15_000);
    assert.match(m1, /tidegate_worker_scaling_total\{direction="up"\} 1/);
    assert.match(m1, /tidegate_workers\{state="serving"\} 2/);

    // Quiet: a trickle (8 clients, each request 250 ms at the upstream, so some are always
    // in flight on both threads) while the second thread retires.
    let light = true;
    const quietStart = Date.now();
    const before = ok;
    const lightLoops = Array.from({ length: 8 }, () => loop(() => !light || Date.now() - quietStart > 60_000, 10, '/slow/', 400));
    const retired = await until('the second thread retired', () => status(gw), (s) => s.workerScaling?.retires === 1 && s.workers.length === 1, 50_000);
    const retiredAfterMs = Date.now() - quietStart;
    light = false;
    await Promise.all(lightLoops);
    assert.deepEqual(retired.workers.map((w) => w.slot), [0]);
    const down = gw.logs.find((l) => l.event === 'worker-scale-down');
    const gone = gw.logs.find((l) => l.event === 'worker-retired');
    assert.ok(down !== undefined && gone !== undefined, 'the retire decision and its completion are logged');
    assert.equal(gone.forcedRequests, 0, 'the retiring thread had nothing in flight when it ended');
    assert.ok(ok > before, 'requests were served while the thread retired');
    assert.deepEqual(failures, [], 'no request failed while threads were added and retired');
    const m2 = await metrics(gw);
    assert.match(m2, /tidegate_worker_scaling_total\{direction="down"\} 1/);
    assert.match(m2, /tidegate_workers\{state="serving"\} 1/);
    // the retired thread's per-worker gauges are gone, not frozen at their last values
    for (const name of ['tidegate_worker_heap_used_bytes', 'tidegate_worker_heap_total_bytes', 'tidegate_worker_event_loop_utilization_ratio', 'tidegate_worker_event_loop_delay_p99_seconds']) {
      assert.doesNotMatch(m2, new RegExp(`^${name}\\{worker="1"\\} `, 'm'), `${name} of the retired slot 1`);
      assert.match(m2, new RegExp(`^${name}\\{worker="0"\\} `, 'm'), `${name} of the serving slot 0`);
    }
    for (const l of [up1, added1, down, gone]) {
      const { time: _t, svc: _s, decision: _d, msg: _m, ...rest } = l;
      console.log(JSON.stringify(rest));
    }
    console.log(
      `worker scaling: dwell ${String(up1.heldMs)} ms at elu ${String(up1.eventLoopUtilization)} + start ${String(added1.tookMs)} ms; ` +
        `slot 1 seen serving ${servedAfterMs} ms after the load began; retired ${retiredAfterMs} ms after the load dropped (drain ${String(gone.tookMs)} ms); ` +
        `${ok} requests, ${failures.length} failed`,
    );
  } finally {
    await gw.stop();
    await up.kill();
    await slow.close();
  }
});

test('SIGTERM while a thread retires: the gateway drains and exits 0', async () => {
  const up = await startChildUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: { min: 1, max: 2, target: '25%', release: '10%', addAfter: '1s', retireAfter: '1s', cooldown: '1s' },
      shutdown: { drainTimeout: '2s' },
    }),
  );
  try {
    let heavy = true;
    const t0 = Date.now();
    const loops = Array.from({ length: 48 }, async () => {
      let c = new Client(gw.url, { pipelining: 1 });
      for (let i = 0; i < 4_000 && heavy && Date.now() - t0 < 60_000; i++) {
        if (i > 0 && i % 25 === 0) {
          await c.close();
          c = new Client(gw.url, { pipelining: 1 });
        }
        const r = await c.request({ path: `/t${i}`, method: 'GET' }).catch(() => null);
        await r?.body.text();
      }
      await c.close();
    });
    await until('a second thread serving', () => status(gw), (s) => s.workerScaling?.serving === 2, 45_000);
    heavy = false;
    await Promise.all(loops);
    await until('the retire under way', () => status(gw), (s) => (s.workerScaling?.retiring ?? 0) === 1, 30_000);
    // The retiring thread waits ~11 s for idle connections; the drain must not wait for it.
    const stoppedAt = Date.now();
    const code = await gw.stop('SIGTERM');
    assert.equal(code, 0, `exit code (stderr: ${gw.stderr.join('').slice(-300)})`);
    assert.ok(Date.now() - stoppedAt < 9_000, `stopped in ${Date.now() - stoppedAt} ms`);
    assert.ok(!gw.logs.some((l) => l.event === 'drain-stuck'));
  } finally {
    await gw.stop();
    await up.kill();
  }
});
