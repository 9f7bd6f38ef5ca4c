// Active health checks against real upstream processes that the test SIGKILLs and
// SIGSTOPs. Timing bounds are generous (2 shared cores): the claim under test is
// "ejected within interval × unhealthy threshold, plus one interval", with slack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthChecker, type HealthTransition } from '../../src/primary/health/health-checker.js';
import { healthSchema } from '../../src/config/schema-health.js';
import type { DiscoveredEndpoint } from '../../src/discovery/provider.js';
import { startChildUpstream, type ChildUpstream } from '../helpers/child-upstream.js';
import { captureLog, waitFor } from '../helpers/log-capture.js';

const INTERVAL = 300;
const TIMEOUT = 200;
const UNHEALTHY = 2;
const HEALTHY = 2;
// interval × threshold + one interval (+ one timeout for the probe in flight), then slack for a loaded CI box
const EJECT_BOUND = INTERVAL * UNHEALTHY + INTERVAL + TIMEOUT + 1_500;
const READMIT_BOUND = INTERVAL * HEALTHY + INTERVAL + 1_500;

function setup(type: 'http' | 'tcp') {
  const cap = captureLog();
  const transitions: HealthTransition[] = [];
  const sinkCalls: { upstream: string; endpoint: string; state: string; reason: string }[] = [];
  const hc = new HealthChecker({
    log: cap.log,
    sink: { setHealth: (upstream, ep, state, reason) => sinkCalls.push({ upstream, endpoint: `${ep.host}:${ep.port}`, state, reason }) },
    onTransition: (t) => transitions.push(t),
  });
  hc.configure('app', healthSchema.parse({ active: { type, path: '/health', interval: `${INTERVAL}ms`, timeout: `${TIMEOUT}ms`, healthy: HEALTHY, unhealthy: UNHEALTHY } }));
  return { cap, transitions, sinkCalls, hc };
}

const eps = (ups: ChildUpstream[]): DiscoveredEndpoint[] => ups.map((u) => ({ host: '127.0.0.1', port: u.port }));

test('active http: SIGKILL one of three → ejected within interval × threshold; restart on the same port → readmitted', async (t) => {
  const ups = await Promise.all([startChildUpstream(), startChildUpstream(), startChildUpstream()]);
  const { cap, transitions, sinkCalls, hc } = setup('http');
  t.after(async () => {
    await hc.stop();
    await Promise.all(ups.map((u) => u.kill()));
  });
  hc.setEndpoints('app', eps(ups));
  await waitFor(() => hc.snapshot('app').every((s) => s.checks >= 2), 5_000, 'two probe rounds');
  assert.equal(transitions.length, 0, 'all three start and stay healthy');

  const victim = ups[1]!;
  const killedAt = Date.now();
  await victim.kill();
  const ej = await waitFor(() => transitions.find((x) => x.endpoint === victim.address && x.state === 'ejected'), EJECT_BOUND + 2_000, 'ejection');
  const detectMs = ej.at - killedAt;
  t.diagnostic(`SIGKILL → ejected in ${detectMs}ms (bound ${EJECT_BOUND}ms; interval ${INTERVAL}ms × unhealthy ${UNHEALTHY})`);
  assert.ok(detectMs <= EJECT_BOUND, `ejected after ${detectMs}ms`);
  // A probe in flight at the kill fails and counts as the first; the next starts one
  // interval after that one started, so the floor is one interval less one probe's time.
  assert.ok(detectMs >= INTERVAL * (UNHEALTHY - 1) - TIMEOUT, `not before ${UNHEALTHY} failed probes (${detectMs}ms)`);
  assert.equal(ej.cause, 'active');
  assert.match(ej.reason, /2 consecutive http checks failed/);
  assert.match(ej.reason, /ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|other side closed/);
  assert.deepEqual(sinkCalls.map((c) => [c.endpoint, c.state]), [[victim.address, 'ejected']], 'the sink heard exactly one change');
  const logged = cap.events('endpoint-ejected');
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.upstream, 'app');
  assert.equal(logged[0]!.endpoint, victim.address);
  assert.equal(typeof logged[0]!.reason, 'string');
  assert.equal(hc.stats('app')!.ejectionsActive, 1);
  assert.equal(hc.stats('app')!.ejectedNow, 1);

  // The others never flapped.
  assert.equal(transitions.filter((x) => x.endpoint !== victim.address).length, 0);

  const restartedAt = Date.now();
  ups[1] = await startChildUpstream(victim.port);
  const re = await waitFor(() => transitions.find((x) => x.endpoint === victim.address && x.state === 'healthy'), READMIT_BOUND + 2_000, 'readmission');
  const readmitMs = re.at - restartedAt;
  t.diagnostic(`restart → readmitted in ${readmitMs}ms (bound ${READMIT_BOUND}ms; healthy threshold ${HEALTHY})`);
  assert.ok(readmitMs <= READMIT_BOUND, `readmitted after ${readmitMs}ms`);
  assert.match(re.reason, /2 consecutive http checks passed \(HTTP 200\)/);
  assert.equal(cap.events('endpoint-readmitted').length, 1);
  assert.equal(hc.stats('app')!.readmissions, 1);
  assert.equal(hc.stats('app')!.ejectedNow, 0);
});

test('active http: SIGSTOP (accepts, never answers) → ejected by the check timeout; SIGCONT → readmitted', async (t) => {
  const ups = await Promise.all([startChildUpstream(), startChildUpstream(), startChildUpstream()]);
  const { transitions, hc } = setup('http');
  const victim = ups[2]!;
  t.after(async () => {
    victim.cont(); // a stopped process cannot even die from SIGTERM handlers; SIGKILL works, but leave it runnable
    await hc.stop();
    await Promise.all(ups.map((u) => u.kill()));
  });
  hc.setEndpoints('app', eps(ups));
  await waitFor(() => hc.snapshot('app').every((s) => s.checks >= 1), 5_000, 'a probe round');
  const stoppedAt = Date.now();
  victim.stop();
  const ej = await waitFor(() => transitions.find((x) => x.endpoint === victim.address && x.state === 'ejected'), EJECT_BOUND + 2_000, 'ejection');
  const detectMs = ej.at - stoppedAt;
  t.diagnostic(`SIGSTOP → ejected in ${detectMs}ms (bound ${EJECT_BOUND + UNHEALTHY * TIMEOUT}ms)`);
  // every failed probe here costs a whole timeout on top of the interval
  assert.ok(detectMs <= EJECT_BOUND + UNHEALTHY * TIMEOUT, `ejected after ${detectMs}ms`);
  assert.match(ej.reason, /checks failed \((timeout|UND_ERR_HEADERS_TIMEOUT)/);
  assert.equal(transitions.filter((x) => x.endpoint !== victim.address).length, 0, 'the others stay healthy');

  victim.cont();
  const re = await waitFor(() => transitions.find((x) => x.endpoint === victim.address && x.state === 'healthy'), READMIT_BOUND + 2_000, 'readmission after SIGCONT');
  assert.equal(re.cause, 'active');
});

test('active tcp: SIGKILL → ejected (connection refused); restart → readmitted', async (t) => {
  const ups = await Promise.all([startChildUpstream(), startChildUpstream()]);
  const { transitions, hc } = setup('tcp');
  t.after(async () => {
    await hc.stop();
    await Promise.all(ups.map((u) => u.kill()));
  });
  hc.setEndpoints('app', eps(ups));
  await waitFor(() => hc.snapshot('app').every((s) => s.checks >= 1), 5_000, 'a probe round');
  const victim = ups[0]!;
  await victim.kill();
  const ej = await waitFor(() => transitions.find((x) => x.endpoint === victim.address && x.state === 'ejected'), EJECT_BOUND + 2_000, 'ejection');
  assert.match(ej.reason, /consecutive tcp checks failed \(ECONNREFUSED/);
  ups[0] = await startChildUpstream(victim.port);
  await waitFor(() => transitions.find((x) => x.endpoint === victim.address && x.state === 'healthy'), READMIT_BOUND + 2_000, 'readmission');
});

test('active http: an unexpected status fails the check; expectedStatuses widens it', async (t) => {
  const bad = await startChildUpstream(0, { HEALTH_STATUS: '503' });
  const redirect = await startChildUpstream(0, { HEALTH_STATUS: '302' });
  const cap = captureLog();
  const transitions: HealthTransition[] = [];
  const hc = new HealthChecker({ log: cap.log, sink: { setHealth() {} }, onTransition: (x) => transitions.push(x) });
  t.after(async () => {
    await hc.stop();
    await bad.kill();
    await redirect.kill();
  });
  hc.configure('app', healthSchema.parse({ active: { interval: '200ms', timeout: '150ms', unhealthy: 2, expectedStatuses: ['2xx', 302] } }));
  hc.setEndpoints('app', eps([bad, redirect]));
  const ej = await waitFor(() => transitions.find((x) => x.state === 'ejected'), 5_000, 'ejection of the 503 endpoint');
  assert.equal(ej.endpoint, bad.address);
  assert.match(ej.reason, /HTTP 503/);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(transitions.filter((x) => x.endpoint === redirect.address).length, 0, '302 is expected, so it stays healthy');
});
