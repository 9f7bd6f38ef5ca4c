// Canary rollouts through the real gateway (two workers, real stable and canary
// upstreams, load from this process): a canary answering 30 % errors is rolled back
// within failedChecks × interval + one interval, and the test prints how many failed
// requests it served; a healthy canary is promoted through every step; a canary with
// too little traffic is paused, not promoted; progress survives a restart in state.file
// beside the overrides; a split override wins over a rollout (pauses it, and start,
// resume and promote wait for it); phase changes reach the decision log, the metrics
// and the webhook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';
import { until } from '../helpers/poll.js';

interface Check {
  n: number;
  step: number;
  weight: number;
  verdict: string;
  reasons: string[];
  stable: { requests: number; errorRate: number };
  canary: { requests: number; errorRate: number };
}
interface Rollout {
  phase: string;
  step: number;
  weight: number;
  checks: Check[];
  updatedAt: string;
  reason: string | null;
}

async function admin(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Rollout & Record<string, unknown> }> {
  const r = await request(url + path, { method: method as 'GET', ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  return { status: r.statusCode, json: (await r.body.json()) as Rollout & Record<string, unknown> };
}

/** Requests from `connections` loops until stopped or `maxMs` passed (bounded); counts statuses per side. */
function load(gw: RunningGateway, connections: number, maxMs: number): { stop(): Promise<{ sent: number; bySide: Map<string, { ok: number; failed: number }> }> } {
  const pool = new Pool(gw.url, { connections });
  const bySide = new Map<string, { ok: number; failed: number }>();
  let sent = 0;
  let stopped = false;
  const t0 = Date.now();
  const loops = Promise.all(
    Array.from({ length: connections }, async () => {
      while (!stopped && Date.now() - t0 < maxMs) {
        const r = await pool.request({ path: '/', method: 'GET' });
        const side = await r.body.text();
        sent++;
        let c = bySide.get(side);
        if (c === undefined) bySide.set(side, (c = { ok: 0, failed: 0 }));
        if (r.statusCode >= 500) c.failed++;
        else c.ok++;
      }
    }),
  );
  let closed: Promise<void> | null = null;
  return {
    async stop() {
      stopped = true;
      await loops;
      closed ??= pool.close();
      await closed;
      return { sent, bySide };
    },
  };
}

function config(stable: TestUpstream, canary: TestUpstream, rollout: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    admin: { host: '127.0.0.1', port: 0 },
    observability: { snapshotInterval: '250ms' },
    upstreams: { stable: { discovery: { type: 'static', endpoints: [stable.address] } }, canary: { discovery: { type: 'static', endpoints: [canary.address] } } },
    routes: [{ name: 'api', split: [{ upstream: 'stable', weight: 100 }, { upstream: 'canary', weight: 0 }] }],
    rollouts: { web: { route: 'api', stable: 'stable', canary: 'canary', ...rollout } },
    ...extra,
  };
}

test('a canary answering 30 % errors is rolled back to 0 % within failedChecks × interval + one interval; the webhook hears each phase', async () => {
  const stable = await startUpstream((_q, s) => s.end('stable'));
  let n = 0;
  const canary = await startUpstream((_q, s) => {
    s.statusCode = n++ % 10 < 3 ? 500 : 200;
    s.end('canary');
  });
  const hook: unknown[] = [];
  const receiver = await startUpstream((q, s) => {
    let b = '';
    q.on('data', (c: Buffer) => (b += c.toString()));
    q.on('end', () => {
      hook.push(JSON.parse(b));
      s.end();
    });
  });
  // 3 s intervals and 10 requests per side: enough on a loaded 2-core host (≈ 20 req/s seen)
  const interval = 3000;
  const failedChecks = 2;
  const gw = await startGateway(config(stable, canary, { steps: [50, 100], interval: `${interval}ms`, analysis: { minRequests: 10, maxErrorRate: '5%', failedChecks }, webhook: { url: `http://${receiver.address}/rollouts` } }), { timeoutMs: 45_000 });
  const traffic = load(gw, 16, 30_000);
  try {
    await new Promise((r) => setTimeout(r, 300));
    const started = await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/start');
    assert.equal(started.status, 200);
    assert.equal(started.json.phase, 'progressing');
    assert.equal(started.json.weight, 50);
    const done = await until('rolled back', async () => (await admin(gw.adminUrl, 'GET', '/v1/rollouts/web')).json, (r) => r.phase !== 'progressing', (failedChecks + 2) * interval + 10_000);
    const { sent, bySide } = await traffic.stop();
    assert.equal(done.phase, 'rolled-back', `ended ${done.phase}: ${done.reason}`);
    assert.equal(done.weight, 0);
    const tookMs = Date.parse(done.updatedAt) - Date.parse(started.json.updatedAt);
    assert.ok(tookMs <= failedChecks * interval + interval, `rolled back ${tookMs} ms after the start; at most ${failedChecks * interval + interval} allowed`);
    assert.equal(done.checks.length, failedChecks);
    for (const c of done.checks) {
      assert.equal(c.verdict, 'fail', JSON.stringify(c));
      assert.ok(c.canary.errorRate > 0.15 && c.canary.errorRate < 0.45, `canary error rate ${c.canary.errorRate}`);
      assert.ok(c.reasons.some((r) => /error rate/.test(r)), c.reasons.join('; '));
    }
    const bad = bySide.get('canary')?.failed ?? 0;
    // The figure the README quotes: how much a bad canary costs before the rollback.
    console.log(`# rollback after ${tookMs} ms (limit ${failedChecks * interval + interval} ms); ${sent} requests, canary served ${bySide.get('canary')?.ok ?? 0} ok and ${bad} failed; stable ${bySide.get('stable')?.ok ?? 0} ok, ${bySide.get('stable')?.failed ?? 0} failed`);
    assert.ok(bad > 0);
    assert.equal(bySide.get('stable')?.failed ?? 0, 0);
    await assertEveryWorkerServed(gw.adminUrl, 2);

    // After the rollback nothing reaches the canary.
    const before = canary.requests.length;
    const after = load(gw, 12, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    const tail = await after.stop();
    assert.ok(tail.sent > 0);
    assert.equal(canary.requests.length, before, 'the canary got requests after the rollback');

    assert.ok(gw.logs.some((l) => l.event === 'rollout-check-failed' && l.rollout === 'web'), 'each failed check is a decision');
    assert.ok(gw.logs.some((l) => l.event === 'rollout-rolled-back' && l.rollout === 'web' && typeof l.decision === 'number'));
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /tidegate_rollout_weight\{rollout="web",route="api",canary="canary"\} 0/);
    assert.match(metrics, /tidegate_rollout_phase\{rollout="web",phase="rolled-back"\} 1/);
    assert.match(metrics, /tidegate_rollout_checks_total\{rollout="web",verdict="fail"\} 2/);
    await until('webhook deliveries', () => hook.map((h) => (h as { event: string }).event), (e) => e.includes('rollout-started') && e.includes('rollout-rolled-back'));
  } finally {
    await traffic.stop();
    await gw.stop();
    await stable.close();
    await canary.close();
    await receiver.close();
  }
});

test('a healthy canary is promoted through every step to 100 %', async () => {
  const stable = await startUpstream((_q, s) => s.end('stable'));
  const canary = await startUpstream((_q, s) => s.end('canary'));
  const steps = [25, 50, 100];
  const gw = await startGateway(config(stable, canary, { steps, interval: '3s', analysis: { minRequests: 10, maxErrorRate: '5%', failedChecks: 2 } }), { timeoutMs: 45_000 });
  const traffic = load(gw, 16, 90_000);
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/start')).status, 200);
    let done: Rollout;
    // A loaded host can starve one interval of the 10 requests per side it needs; the
    // rollout then pauses (as it must), and the operator's answer is to resume it.
    for (let resumes = 0; ; resumes++) {
      done = await until('promoted', async () => (await admin(gw.adminUrl, 'GET', '/v1/rollouts/web')).json, (r) => r.phase !== 'progressing', 30_000);
      if (done.phase !== 'paused' || !/too little traffic/.test(done.reason ?? '') || resumes >= 3) break;
      assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/resume')).status, 200);
    }
    await traffic.stop();
    assert.equal(done.phase, 'promoted', `ended ${done.phase}: ${done.reason}; checks ${JSON.stringify(done.checks)}`);
    assert.equal(done.weight, 100);
    const passed = done.checks.filter((c) => c.verdict === 'pass');
    assert.deepEqual(
      passed.map((c) => c.weight),
      [25, 50],
      'one passing check at each step below 100',
    );
    assert.ok(done.checks.every((c) => c.verdict !== 'fail'), JSON.stringify(done.checks));
    for (const c of passed) assert.ok(c.canary.requests >= 10 && c.stable.requests >= 10, JSON.stringify(c));
    const steppedTo = gw.logs.filter((l) => l.event === 'rollout-step').map((l) => l.weight);
    assert.deepEqual(steppedTo, [50]);
    assert.ok(gw.logs.some((l) => l.event === 'rollout-promoted'));
    const split = await admin(gw.adminUrl, 'GET', '/v1/routes/api/split');
    assert.deepEqual(split.json.weights, { stable: 0, canary: 100 });
    assert.equal(split.json.source, 'rollout:web');
    await assertEveryWorkerServed(gw.adminUrl, 2);
    // A route under an active rollout refuses direct weight changes; a finished one accepts them.
    const st = (await admin(gw.adminUrl, 'GET', '/status')).json as unknown as { rollouts: { rollouts: { name: string; phase: string }[] } };
    assert.deepEqual(st.rollouts.rollouts.map((r) => [r.name, r.phase]), [['web', 'promoted']]);
  } finally {
    await traffic.stop();
    await gw.stop();
    await stable.close();
    await canary.close();
  }
});

test('too little traffic pauses the rollout at its first step (not promoted); its state and a split override survive a restart in the one state.file', async () => {
  const stable = await startUpstream((_q, s) => s.end('stable'));
  const canary = await startUpstream((_q, s) => s.end('canary'));
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-rollout-'));
  const cfg = config(stable, canary, { steps: [10, 50, 100], interval: '1s', analysis: { minRequests: 50 } }, { state: { file: join(dir, 'state.json') } });
  let gw = await startGateway(cfg, { timeoutMs: 45_000 });
  try {
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/start')).status, 200);
    // a trickle: far below 50 requests per side per interval
    for (let i = 0; i < 5; i++) assert.equal((await request(gw.url)).statusCode, 200);
    const paused = await until('paused', async () => (await admin(gw.adminUrl, 'GET', '/v1/rollouts/web')).json, (r) => r.phase !== 'progressing', 10_000);
    assert.equal(paused.phase, 'paused');
    assert.equal(paused.weight, 10, 'held at the first step');
    assert.equal(paused.checks.length, 1);
    assert.equal(paused.checks[0]!.verdict, 'inconclusive');
    assert.match(paused.reason ?? '', /too little traffic/);
    assert.ok(gw.logs.some((l) => l.event === 'rollout-paused' && l.rollout === 'web'));
    // Paused means paused: no further check moves it.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await admin(gw.adminUrl, 'GET', '/v1/rollouts/web')).json.checks.length, 1);
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/start')).status, 409, 'a paused rollout cannot be started again');
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/nonsense')).status, 404);

    // An operator holds the route on stable: an override (persisted beside the rollout).
    const put = await admin(gw.adminUrl, 'PUT', '/v1/routes/api/split', { weights: { stable: 100, canary: 0 }, for: '10m', reason: 'hold for the incident' });
    assert.equal(put.status, 201, JSON.stringify(put.json));
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/resume')).status, 409, 'a split override holds the weights: no resume under it');
    const doc = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { overrides: { id: string; kind: string }[]; rollouts: { rollouts: Record<string, { phase: string; weight: number }> } };
    assert.deepEqual(doc.overrides.map((o) => [o.id, o.kind]), [[put.json.id, 'split']]);
    assert.deepEqual([doc.rollouts.rollouts.web!.phase, doc.rollouts.rollouts.web!.weight], ['paused', 10]);

    await gw.stop();
    gw = await startGateway(cfg, { timeoutMs: 45_000 });
    const again = await admin(gw.adminUrl, 'GET', '/v1/rollouts/web');
    assert.equal(again.json.phase, 'paused');
    assert.equal(again.json.weight, 10);
    assert.equal(again.json.checks.length, 1);
    const split = await admin(gw.adminUrl, 'GET', '/v1/routes/api/split');
    assert.deepEqual([split.json.weights, split.json.source, split.json.beneath], [{ stable: 100, canary: 0 }, 'override', { stable: 90, canary: 10 }], 'the restored override covers the restored rollout\'s weight');
    const overrides = (await admin(gw.adminUrl, 'GET', '/v1/overrides')).json.overrides as unknown as { id: string; reason: string }[];
    assert.deepEqual(overrides.map((o) => [o.id, o.reason]), [[put.json.id, 'hold for the incident']]);
    const del = await admin(gw.adminUrl, 'DELETE', '/v1/routes/api/split');
    assert.equal(del.json.deleted, put.json.id);
    assert.deepEqual((await admin(gw.adminUrl, 'GET', '/v1/routes/api/split')).json.weights, { stable: 90, canary: 10 }, 'the rollout\'s weight is back under the deleted override');
    const resumed = await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/resume');
    assert.equal(resumed.json.phase, 'progressing');
    const aborted = await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/abort');
    assert.equal(aborted.json.phase, 'rolled-back');
    assert.equal(aborted.json.weight, 0);
  } finally {
    await gw.stop();
    await stable.close();
    await canary.close();
  }
});

test('a split override wins over a progressing rollout: it pauses, start/resume/promote wait for the override, and its end (delete or expiry) uncovers the rollout\'s weights', async () => {
  const stable = await startUpstream((_q, s) => s.end('stable'));
  const canary = await startUpstream((_q, s) => s.end('canary'));
  // A long interval: no check runs during the test, so every phase change here is the override's.
  const gw = await startGateway(config(stable, canary, { steps: [10, 50, 100], interval: '60s' }), { timeoutMs: 45_000 });
  const pool = new Pool(gw.url, { connections: 16 });
  try {
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/start')).json.phase, 'progressing');
    assert.deepEqual((await admin(gw.adminUrl, 'GET', '/v1/routes/api/split')).json.weights, { stable: 90, canary: 10 });

    const made = await admin(gw.adminUrl, 'POST', '/v1/overrides', { kind: 'split', target: 'api', value: { stable: 100, canary: 0 }, reason: 'canary looks wrong' });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const paused = (await admin(gw.adminUrl, 'GET', '/v1/rollouts/web')).json;
    assert.equal(paused.phase, 'paused');
    assert.match(paused.reason ?? '', /split override holds the weights/);
    assert.equal(paused.weight, 10, 'the rollout keeps its own step beneath the override');
    assert.ok(gw.logs.some((l) => l.event === 'rollout-paused' && /split override/.test(String(l.reason))));

    // Every request, on both workers, follows the override.
    const before = await workerRequests(gw.adminUrl);
    const bodies = await Promise.all(Array.from({ length: 60 }, async () => (await (await pool.request({ path: '/', method: 'GET' })).body.text())));
    assert.deepEqual([...new Set(bodies)], ['stable']);
    await assertEveryWorkerServed(gw.adminUrl, 2, before);

    for (const action of ['resume', 'start', 'promote']) {
      const r = await admin(gw.adminUrl, 'POST', `/v1/rollouts/web/${action}`);
      assert.equal(r.status, 409, `${action} under a split override`);
    }
    // Abort lowers risk, so it is taken: the rollout's layer goes to 0 % beneath the override.
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/abort')).json.phase, 'rolled-back');
    const covered = (await admin(gw.adminUrl, 'GET', '/v1/routes/api/split')).json;
    assert.deepEqual([covered.source, covered.beneath], ['override', { stable: 100, canary: 0 }]);

    // Deleting the override uncovers the rollout's weights, not the configured ones.
    assert.equal((await admin(gw.adminUrl, 'DELETE', `/v1/overrides/${made.json.id}`)).status, 200);
    const uncovered = (await admin(gw.adminUrl, 'GET', '/v1/routes/api/split')).json;
    assert.deepEqual([uncovered.weights, uncovered.source], [{ stable: 100, canary: 0 }, 'rollout:web']);

    // An expiring one: 50/50 for a second, then the rollout's weights again.
    const brief = await admin(gw.adminUrl, 'PUT', '/v1/routes/api/split', { weights: { stable: 50, canary: 50 }, for: '1s' });
    assert.equal(brief.status, 201);
    assert.notEqual(brief.json.expiresAt, null);
    assert.deepEqual((await admin(gw.adminUrl, 'GET', '/v1/routes/api/split')).json.weights, { stable: 50, canary: 50 });
    const back = await until('the override expired', async () => (await admin(gw.adminUrl, 'GET', '/v1/routes/api/split')).json, (j) => j.source !== 'override', 10_000);
    assert.deepEqual([back.weights, back.source], [{ stable: 100, canary: 0 }, 'rollout:web']);
    assert.deepEqual((await admin(gw.adminUrl, 'GET', '/v1/overrides')).json.overrides, []);
    assert.ok(gw.logs.some((l) => l.event === 'override-removed' && l.kind === 'split' && l.why === 'expired'));
    // With the override gone, the rollout may start again.
    assert.equal((await admin(gw.adminUrl, 'POST', '/v1/rollouts/web/start')).json.phase, 'progressing');
  } finally {
    await pool.close();
    await gw.stop();
    await stable.close();
    await canary.close();
  }
});
