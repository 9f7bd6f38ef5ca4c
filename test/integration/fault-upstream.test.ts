// The fault-injecting upstream: its capacity model, its fault rates, stalls, run-time
// control, and what a gateway in front of it sees. Timing bounds are wide (2 shared
// cores); rate bounds are binomial, five standard deviations either side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { Agent, Pool, request } from 'undici';
import { startFaultUpstream, type FaultCounters } from '../../src/demo/fault-upstream.js';
import { baseConfig, CLI, startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/log-capture.js';

/** [lo, hi] that a Binomial(n, p) count leaves with probability ≈ 6e-7 */
function binomialBounds(n: number, p: number): [number, number] {
  const sd = Math.sqrt(n * p * (1 - p));
  return [Math.max(0, Math.floor(n * p - 5 * sd)), Math.ceil(n * p + 5 * sd)];
}

async function counters(url: string): Promise<FaultCounters> {
  const r = await request(`${url}/_fault`);
  return ((await r.body.json()) as { counters: FaultCounters }).counters;
}

/** 16 requests at once on 16 connections; finish time of each and the upstream's queue wait. */
async function burst(url: string, n: number, path = '/x'): Promise<{ doneMs: number[]; queuedMs: number[]; statuses: number[] }> {
  const pool = new Pool(url, { connections: n, pipelining: 1 });
  try {
    const t0 = performance.now();
    const rs = await Promise.all(
      Array.from({ length: n }, async () => {
        const r = await pool.request({ path, method: 'GET' });
        await r.body.text();
        return { done: performance.now() - t0, queued: Number(r.headers['x-queued-ms']), status: r.statusCode };
      }),
    );
    return { doneMs: rs.map((r) => r.done).sort((a, b) => a - b), queuedMs: rs.map((r) => r.queued).sort((a, b) => a - b), statuses: rs.map((r) => r.status) };
  } finally {
    await pool.close();
  }
}

test('capacity model: C=4, S=50ms, 16 at once → four waves, the last done after ≈ 4 × S', async (t) => {
  const up = await startFaultUpstream({ settings: { capacity: 4, serviceMs: 50 } });
  t.after(() => up.close());
  const r = await burst(up.url, 16);
  const last = r.doneMs[15]!;
  t.diagnostic(`last of 16 done after ${last.toFixed(0)} ms; upstream queue waits ${r.queuedMs.join(',')} ms`);
  assert.deepEqual(r.statuses, Array(16).fill(200));
  assert.ok(last >= 190 && last < 1_500, `last finished after ${last.toFixed(0)} ms (expected ≈ 200)`);
  // The four fastest waited for no slot; the four slowest waited three service times.
  assert.ok(r.queuedMs[3]! < 45, `first wave queued ${r.queuedMs[3]} ms`);
  assert.ok(r.queuedMs[12]! >= 140, `last wave queued only ${r.queuedMs[12]} ms`);
  const c = up.counters();
  assert.equal(c.served, 16);
  assert.equal(c.maxQueue, 12, 'four in service, twelve queued');
  assert.equal(c.queuedNow, 0);
  assert.equal(c.inService, 0);
});

test('bounded queue: beyond queueLimit arrivals get 503 queue-full at once', async (t) => {
  const up = await startFaultUpstream({ settings: { capacity: 2, serviceMs: 100, queueLimit: 3 } });
  t.after(() => up.close());
  const r = await burst(up.url, 8);
  const rejected = r.statuses.filter((s) => s === 503).length;
  assert.equal(rejected, 3, `2 in service + 3 queued of 8: ${r.statuses.join(',')}`);
  assert.equal(up.counters().rejected, 3);
  assert.equal(up.counters().served, 5);
  // the rejected ones were answered well before one service time
  assert.ok(r.doneMs[0]! < 90, `first answer (a rejection) after ${r.doneMs[0]!.toFixed(0)} ms`);
});

test('error and reset rates hold over 600 requests (binomial bounds)', async (t) => {
  const up = await startFaultUpstream({ settings: { capacity: 64, serviceMs: 0, errorRate: 0.2, resetRate: 0.1 } });
  // A reset kills only its own connection; the agent opens another for the next request.
  const agent = new Agent({ pipelining: 0, connections: 32 });
  t.after(async () => {
    await agent.close();
    await up.close();
  });
  const N = 600;
  let ok = 0;
  let errors = 0;
  let resets = 0;
  for (let i = 0; i < N; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        try {
          const r = await request(`${up.url}/r`, { dispatcher: agent });
          await r.body.text();
          if (r.statusCode === 500) errors++;
          else if (r.statusCode === 200) ok++;
        } catch (e) {
          const code = (e as { code?: string }).code;
          assert.ok(code === 'ECONNRESET' || code === 'UND_ERR_SOCKET', `unexpected failure ${code}: ${(e as Error).message}`);
          resets++;
        }
      }),
    );
  }
  const [eLo, eHi] = binomialBounds(N, 0.2);
  const [rLo, rHi] = binomialBounds(N, 0.1);
  t.diagnostic(`errors ${errors} (${eLo}..${eHi}), resets ${resets} (${rLo}..${rHi}), ok ${ok}`);
  assert.equal(ok + errors + resets, N);
  assert.ok(errors >= eLo && errors <= eHi, `errors ${errors}`);
  assert.ok(resets >= rLo && resets <= rHi, `resets ${resets}`);
  const c = up.counters();
  assert.equal(c.errors, errors);
  assert.equal(c.resets, resets);
  assert.equal(c.received, N);
});

test('stall: the request is held unanswered until the client gives up; stalledNow follows', async (t) => {
  const up = await startFaultUpstream({ settings: { stallRate: 1 } });
  t.after(() => up.close());
  const t0 = performance.now();
  await assert.rejects(request(`${up.url}/s`, { headersTimeout: 300 }), (e: Error & { code?: string }) => e.code === 'UND_ERR_HEADERS_TIMEOUT');
  assert.ok(performance.now() - t0 >= 250, 'not answered before the client timeout');
  assert.equal(up.counters().stalls, 1);
  await waitFor(() => up.counters().stalledNow === 0, 5_000, 'the stalled connection to be counted closed');
  up.set({ stallRate: 0 });
  const r = await request(`${up.url}/s`);
  assert.equal(r.statusCode, 200);
  await r.body.text();
});

test('a client that leaves: in service its slot is wasted (goneInService), in the queue it is skipped (abandoned)', async (t) => {
  const up = await startFaultUpstream({ settings: { capacity: 1, serviceMs: 300 } });
  t.after(() => up.close());
  // an abort signal, not headersTimeout: undici's timers are too coarse for 100 ms
  const pool = new Pool(up.url, { connections: 2 });
  t.after(() => pool.destroy());
  const gone = await Promise.allSettled(['/a', '/b'].map((path) => pool.request({ path, method: 'GET', signal: AbortSignal.timeout(100) })));
  assert.ok(gone.every((g) => g.status === 'rejected'), 'both clients gave up after 100 ms');
  const c = await waitFor(() => {
    const x = up.counters();
    return x.goneInService === 1 && x.abandoned === 1 && x.inService === 0 ? x : undefined;
  }, 5_000, 'one wasted service, one skipped queue entry');
  assert.equal(c.served, 0);
});

test('control endpoint: GET, PUT changes service time and faults at run time, bad PUT lists every error', async (t) => {
  const up = await startFaultUpstream({ settings: { capacity: 8, serviceMs: 10 } });
  t.after(() => up.close());
  const timed = async (): Promise<{ ms: number; status: number }> => {
    const t0 = performance.now();
    const r = await request(`${up.url}/c`);
    await r.body.text();
    return { ms: performance.now() - t0, status: r.statusCode };
  };
  const fast = await timed();
  assert.equal(fast.status, 200);
  let r = await request(`${up.url}/_fault`, { method: 'PUT', body: JSON.stringify({ serviceMs: 300 }) });
  assert.equal(r.statusCode, 200);
  assert.equal(((await r.body.json()) as { settings: { serviceMs: number } }).settings.serviceMs, 300);
  const slow = await timed();
  t.diagnostic(`10 ms service: ${fast.ms.toFixed(0)} ms; after PUT serviceMs 300: ${slow.ms.toFixed(0)} ms`);
  assert.ok(slow.ms >= 290 && slow.ms < 2_000, `slow request took ${slow.ms.toFixed(0)} ms`);

  r = await request(`${up.url}/_fault`, { method: 'PUT', body: JSON.stringify({ errorRate: 1, serviceMs: 0 }) });
  await r.body.text();
  assert.equal((await timed()).status, 500);

  r = await request(`${up.url}/_fault`, { method: 'PUT', body: JSON.stringify({ capacity: 0, errorRate: 2, bogus: true }) });
  assert.equal(r.statusCode, 400);
  const bad = (await r.body.json()) as { errors: string[] };
  assert.equal(bad.errors.length, 3, bad.errors.join('; '));
  assert.ok(bad.errors.some((e) => e.startsWith('capacity:')));
  assert.ok(bad.errors.some((e) => e.startsWith('bogus:')));
  assert.equal(up.settings().capacity, 8, 'a bad PUT changes nothing');

  const before = await counters(up.url);
  assert.ok(before.received >= 3);
  r = await request(`${up.url}/_fault/reset`, { method: 'POST' });
  await r.body.text();
  assert.equal((await counters(up.url)).received, 0, 'control requests are not traffic');
});

test('health: "down" and "auto" with errors answer 503, "up" answers 200 whatever the faults', async (t) => {
  const up = await startFaultUpstream({});
  t.after(() => up.close());
  const health = async (): Promise<number> => {
    const r = await request(`${up.url}/health`);
    await r.body.text();
    return r.statusCode;
  };
  assert.equal(await health(), 200);
  up.set({ errorRate: 1 });
  assert.equal(await health(), 503);
  up.set({ health: 'up' });
  assert.equal(await health(), 200);
  up.set({ health: 'down', errorRate: 0 });
  assert.equal(await health(), 503);
  assert.equal(up.counters().received, 0, 'health checks are not traffic');
});

test('through the gateway: capacity holds, injected 5xx pass through at the set rate, a failing endpoint is ejected by active health checks and readmitted', async (t) => {
  const a = await startFaultUpstream({ name: 'fa', settings: { capacity: 4, serviceMs: 50 } });
  const b = await startFaultUpstream({ name: 'fb', settings: { capacity: 4, serviceMs: 50 } });
  const gw = await startGateway(
    baseConfig([`127.0.0.1:${a.port}`], {
      upstreams: {
        // no passive ejection: a run of injected 500s must not take the only endpoint out
        app: { discovery: { type: 'static', endpoints: [`127.0.0.1:${a.port}`] }, timeouts: { connect: '1s', response: '5s' }, health: { passive: { consecutive5xx: 0, consecutiveConnectFailures: 0 } } },
        pair: {
          discovery: { type: 'static', endpoints: [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`] },
          timeouts: { connect: '1s', response: '5s' },
          health: { active: { path: '/health', interval: '200ms', timeout: '150ms', healthy: 2, unhealthy: 2 }, passive: { consecutive5xx: 0, consecutiveConnectFailures: 0 } },
        },
      },
      routes: [
        { match: { path: '/pair' }, upstream: 'pair' },
        { match: { path: '/' }, upstream: 'app' },
      ],
    }),
  );
  t.after(async () => {
    await gw.stop();
    await Promise.all([a.close(), b.close()]);
  });

  // capacity, one endpoint: 16 at once through two workers still take four service times
  const r = await burst(gw.url, 16);
  t.diagnostic(`through the gateway: last of 16 after ${r.doneMs[15]!.toFixed(0)} ms, upstream maxQueue ${a.counters().maxQueue}`);
  assert.deepEqual(r.statuses, Array(16).fill(200));
  assert.ok(r.doneMs[15]! >= 190 && r.doneMs[15]! < 2_000, `last finished after ${r.doneMs[15]!.toFixed(0)} ms`);
  assert.ok(a.counters().inService === 0 && a.counters().maxQueue >= 8, `the upstream queued what its 4 slots could not take (maxQueue ${a.counters().maxQueue})`);

  // error rate, set over HTTP through the control endpoint, seen by the gateway's clients
  let cr = await request(`${a.url}/_fault`, { method: 'PUT', body: JSON.stringify({ errorRate: 0.3, serviceMs: 0, capacity: 64 }) });
  await cr.body.text();
  const N = 300;
  let e5 = 0;
  const pool = new Pool(gw.url, { connections: 16 });
  for (let i = 0; i < N; i += 30) {
    await Promise.all(
      Array.from({ length: 30 }, async () => {
        const res = await pool.request({ path: '/e', method: 'GET' });
        await res.body.text();
        if (res.statusCode === 500) e5++;
        else assert.equal(res.statusCode, 200);
      }),
    );
  }
  await pool.close();
  const [lo, hi] = binomialBounds(N, 0.3);
  t.diagnostic(`through the gateway: ${e5} of ${N} answered 500 (bounds ${lo}..${hi})`);
  assert.ok(e5 >= lo && e5 <= hi, `${e5} 500s`);

  // health: a fails every check → ejected; /pair then goes to b only; heal → readmitted
  cr = await request(`${a.url}/_fault`, { method: 'PUT', body: JSON.stringify({ errorRate: 1 }) });
  await cr.body.text();
  const ejected = await waitFor(() => gw.logs.find((l) => l.event === 'endpoint-ejected' && l.endpoint === `127.0.0.1:${a.port}`), 8_000, 'fa ejected by active checks');
  assert.equal(ejected.upstream, 'pair');
  for (let i = 0; i < 10; i++) {
    const res = await request(`${gw.url}/pair/${i}`);
    await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-upstream'], 'fb');
  }
  cr = await request(`${a.url}/_fault`, { method: 'PUT', body: JSON.stringify({ errorRate: 0 }) });
  await cr.body.text();
  await waitFor(() => gw.logs.find((l) => l.event === 'endpoint-readmitted' && l.endpoint === `127.0.0.1:${a.port}`), 8_000, 'fa readmitted');
});

test('tidegate fault-upstream: the subcommand starts with its flags, prints where it listens, stops on SIGTERM; a bad flag exits 2', async () => {
  const proc = spawn(process.execPath, [CLI, 'fault-upstream', '--port', '0', '--capacity', '3', '--service', '30ms', '--error-rate', '0.25'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  try {
    const line = await waitFor(() => out.split('\n').find((l) => l.includes('fault-upstream-started')), 10_000, 'the started line');
    const started = JSON.parse(line) as { port: number; settings: { capacity: number; serviceMs: number; errorRate: number } };
    assert.deepEqual([started.settings.capacity, started.settings.serviceMs, started.settings.errorRate], [3, 30, 0.25]);
    const r = await request(`http://127.0.0.1:${started.port}/_fault`);
    assert.equal(((await r.body.json()) as { settings: { capacity: number } }).settings.capacity, 3);
  } finally {
    proc.kill('SIGTERM');
  }
  assert.equal(await exited, 0);
  const bad = spawnSync(process.execPath, [CLI, 'fault-upstream', '--service', '20', '--stall-rate', '2'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--service: expected a duration/);
});
