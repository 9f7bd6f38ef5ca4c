// Priority shedding without servers: the shares each priority may fill of a concurrency
// limit (as workers apply them on the shared in-flight word) and the shed-level step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concurrencySchema, priorityShares } from '../../src/controllers/concurrency.js';
import { initialShedLevel, sheddingSchema, shedLevelStep, type ShedLevelState } from '../../src/controllers/shed-level.js';
import { BreakerState, Priority } from '../../src/shm/layout.js';
import { SharedState } from '../../src/shm/shared-state.js';
import { ControlWords } from '../../src/shm/control-words.js';
import { Admission, UpstreamGuard } from '../../src/worker/upstream-guard.js';

test('at a limit of 20, low fills 10, normal 16, high 18 and critical all 20 of one shared count; sheds are counted by priority', () => {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 4, limiterSlots: 16, limiterPolicies: 1 });
  const cw = new ControlWords(shm);
  cw.writeWord(0, BreakerState.Closed, 20);
  const g = new UpstreamGuard({ slowCallUs: 0, fallback: null, shares: priorityShares(concurrencySchema.parse({ limit: 20 })) }, shm, 0, 0);
  const fill = (p: Priority): number => {
    let n = 0;
    while (g.admit(p) === Admission.Counted) n++;
    return n;
  };
  assert.equal(fill(Priority.Low), 10);
  assert.equal(fill(Priority.Normal), 6, 'normal stops at 16 in flight');
  assert.equal(fill(Priority.High), 2, 'high stops at 18');
  assert.equal(fill(Priority.Critical), 2, 'critical takes the reserve, up to the limit');
  assert.equal(cw.inFlight(0), 20);
  g.words.leave();
  assert.equal(g.admit(Priority.Low), Admission.Shed, 'one free place at 19: only critical may take it');
  assert.equal(g.admit(Priority.High), Admission.Shed);
  assert.equal(g.admit(Priority.Critical), Admission.Counted);
  const o = cw.outcomes(0, 0, { attempts: 0, failures: 0, slow: 0, probeSuccesses: 0, probeFailures: 0, circuitOpen: 0, fallback: 0, shed: 0, shedByPriority: [0, 0, 0, 0], admitted: 0 });
  assert.deepEqual(o.shedByPriority, [1, 2, 1, 2]);
  assert.equal(o.shed, 6);
});

test('shares: a small limit still admits one of each priority; shares may not grow towards lower priorities', () => {
  const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 4, limiterSlots: 16, limiterPolicies: 1 });
  new ControlWords(shm).writeWord(0, BreakerState.Closed, 1);
  const g = new UpstreamGuard({ slowCallUs: 0, fallback: null, shares: priorityShares(concurrencySchema.parse({ limit: 1 })) }, shm, 0, 0);
  assert.equal(g.admit(Priority.Low), Admission.Counted);
  assert.deepEqual(priorityShares(undefined), [1, 1, 1, 1]);
  assert.deepEqual(priorityShares(concurrencySchema.parse({ shares: { low: '25%' } })), [1, 0.9, 0.8, 0.25]);
  const bad = concurrencySchema.safeParse({ shares: { normal: '95%' } });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error?.issues.map((i) => i.path.join('.')), ['shares.low']);
});

test('shed level: rises one step per holdFor while over target, holds between release and target, falls one step per holdFor below release', () => {
  const cfg = sheddingSchema.parse({ target: '80%', release: '50%', holdFor: '1s', maxLevel: 2 });
  let s: ShedLevelState = initialShedLevel(0);
  const levels: number[] = [];
  const events: string[] = [];
  // 200 ms ticks: 3 s busy, 3 s in the band, 3 s idle.
  for (let t = 200; t <= 9000; t += 200) {
    const elu = t <= 3000 ? 0.95 : t <= 6000 ? 0.65 : 0.1;
    const r = shedLevelStep(cfg, s, t, elu);
    s = r.state;
    if (r.event) events.push(`${r.event.fields['from']}→${r.event.fields['to']}@${t}`);
    levels.push(s.level);
  }
  assert.deepEqual(events, ['0→1@1000', '1→2@2000', '2→1@6200', '1→0@7200']);
  assert.equal(levels[levels.length - 1], 0);
  assert.equal(s.changes, 4);
  // A utilisation that swings around the target every tick moves the level once per holdFor at most.
  let f: ShedLevelState = initialShedLevel(0);
  for (let t = 200; t <= 10_000; t += 200) f = shedLevelStep(cfg, f, t, t % 400 === 0 ? 0.85 : 0.75).state;
  assert.ok(f.changes <= 2, `${f.changes} changes`);
  assert.equal(sheddingSchema.safeParse({ target: '50%', release: '60%' }).success, false);
});

test('the highest priority routed to an upstream fills its whole limit; lower ones keep their share', async () => {
  const { validateConfig } = await import('../../src/config/load.js');
  const { compileWorkerConfig } = await import('../../src/config/compile.js');
  const up = (): Record<string, unknown> => ({ discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] }, concurrency: { limit: 100 } });
  const cfg = validateConfig({
    upstreams: { plain: up(), mixed: up(), top: up() },
    routes: [
      { match: { path: '/p' }, upstream: 'plain' },
      { match: { path: '/m1' }, upstream: 'mixed', priority: 'high' },
      { match: { path: '/m2' }, upstream: 'mixed', priority: 'low' },
      { match: { path: '/t' }, upstream: 'top', priority: 'critical' },
      { match: { path: '/t2' }, upstream: 'top' },
    ],
  });
  const shares = Object.fromEntries(compileWorkerConfig(cfg, 1).upstreams.map((u) => [u.name, u.guard!.shares]));
  // critical, high, normal, low
  assert.deepEqual(shares.plain, [1, 1, 1, 0.5], 'all normal: normal fills the whole limit');
  assert.deepEqual(shares.mixed, [1, 1, 0.8, 0.5], 'high is the top here; low keeps its share');
  assert.deepEqual(shares.top, [1, 0.9, 0.8, 0.5], 'a critical route: every share applies');
});
