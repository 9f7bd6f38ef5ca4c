// tidegate top's screen as text: widths, the height budget, states and reasons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTop, type TopSnapshot } from '../../src/console/top-render.js';

function snap(routes: number, endpoints: number, decisions: number): TopSnapshot {
  const times = [1000, 2000, 3000, 4000];
  return {
    admin: 'http://127.0.0.1:9901',
    at: new Date('2026-12-01T08:00:00Z'),
    status: {
      version: '0.1.0',
      generation: 3,
      uptimeSeconds: 42,
      workers: [{ slot: 0, phase: 'listening' }, { slot: 1, phase: 'restarting' }],
      routes: Array.from({ length: routes }, (_, i) => ({ name: `route-with-a-rather-long-name-${i}`, upstream: 'users' })),
      upstreams: [{ name: 'users', endpointHealth: [{ endpoint: '10.0.0.1:8080', reason: '3 consecutive http checks failed (timeout after 1000ms)', since: 0 }] }],
      balancing: [
        {
          name: 'users',
          slowStartMs: 30_000,
          endpoints: Array.from({ length: endpoints }, (_, i) => ({ address: `10.0.0.${i + 1}:8080`, stateName: i === 0 ? 'ejected' : 'healthy', weight: 1, weightPercent: i === 1 ? 40 : 100, inFlight: i, ewmaUs: 1500 })),
        },
      ],
    },
    history: {
      routes: {
        times,
        series: Array.from({ length: routes }, (_, i) => ({ name: `route-with-a-rather-long-name-${i}`, rps: [100, 200, 300, null], errorsPerSecond: [0, 10, 20, null], p99Ms: [5, 50, 7, null] })),
      },
    },
    decisions: Array.from({ length: decisions }, (_, i) => ({ id: i + 1, time: '2026-12-01T07:59:5' + (i % 10) + 'Z', kind: 'endpoint-ejected', level: 'warn', subject: { upstream: 'users', endpoint: '10.0.0.1:8080' }, why: { cause: 'active', reason: 'x'.repeat(200) } })),
  };
}

test('top: 80 columns, means over the last 5 s, states as words, slow start, newest decision first', () => {
  const lines = renderTop(snap(2, 3, 3), { width: 80 });
  for (const l of lines) assert.ok([...l].length <= 80, JSON.stringify(l));
  assert.equal(lines[0], 'tidegate top · 127.0.0.1:9901 · gen 3 · up 42s · 1/2 workers · 08:00:00Z');
  const route = lines.find((l) => l.startsWith('route-with'))!;
  // points at 1000..3000 are within 5 s of the last time: mean 200 req/s, 10 err/s, 5 %, max p99 50
  assert.match(route, /\s200\.0\s+10\.0\s+5\.0\s+50\.0$/);
  assert.match(route, /…/, 'a long name is cut with an ellipsis');
  assert.match(lines.find((l) => l.includes('10.0.0.1:8080'))!, /EJECTED\s+0\s+1\.50 3 consecutive http check…$/);
  assert.match(lines.find((l) => l.includes('10.0.0.2:8080'))!, /healthy .*slow start 40%/);
  const decs = lines.slice(lines.indexOf('LAST DECISIONS') + 1);
  assert.deepEqual(decs.map((l) => l.split(' ')[0]), ['#3', '#2', '#1']);
});

test('top: a short screen keeps every section, cuts the long ones with a count', () => {
  const lines = renderTop(snap(40, 60, 30), { width: 100, height: 24 });
  assert.ok(lines.length <= 24, `${lines.length} lines`);
  for (const h of ['ROUTES (last 5 s: mean rates, highest interval p99)', 'ENDPOINTS', 'LAST DECISIONS']) assert.ok(lines.includes(h), h);
  assert.ok(lines.some((l) => /^… \d+ more$/.test(l)), 'a "more" line');
  assert.ok(lines.slice(lines.indexOf('LAST DECISIONS') + 1).length >= 2, 'at least two decisions');
});

test('top: breakers and concurrency limits, state as a word, forced said so', () => {
  const base = snap(1, 1, 1);
  const s: TopSnapshot = {
    ...base,
    status: {
      ...base.status,
      protection: {
        upstreams: [
          { upstream: 'payments', breaker: { state: 'open', forced: 'open', sinceMs: 12_400, trips: 3, window: { requests: 40, failureRate: 62.5 } }, concurrency: { mode: 'adaptive', limit: 40, inFlight: 3 } },
          { upstream: 'users', breaker: { state: 'closed', forced: null, sinceMs: 600_000, trips: 0, window: { requests: 0, failureRate: 0 } }, concurrency: null },
          { upstream: 'search', breaker: null, concurrency: { mode: 'fixed', limit: 100, inFlight: 0 } },
        ],
      },
    },
  };
  const lines = renderTop(s, { width: 80 });
  for (const l of lines) assert.ok([...l].length <= 80, JSON.stringify(l));
  const at = lines.indexOf('BREAKERS AND CONCURRENCY LIMITS');
  assert.ok(at > lines.indexOf('ENDPOINTS') && at < lines.indexOf('LAST DECISIONS'), 'between endpoints and decisions');
  assert.match(lines[at + 1]!, /^UPSTREAM\s+BREAKER\s+SINCE\s+TRIPS\s+FAILED\s+LIMIT\s+INFL$/);
  const guards = lines.slice(at + 2, lines.indexOf('LAST DECISIONS') - 1);
  assert.equal(guards.length, 3);
  assert.match(guards.find((l) => l.startsWith('payments'))!, /^payments\s+OPEN \(forced\)\s+12s\s+3\s+62\.5%\s+40 adapt\s+3$/);
  assert.match(guards.find((l) => l.startsWith('users'))!, /^users\s+closed\s+10m\s+0\s+-\s+none\s+-$/);
  assert.match(guards.find((l) => l.startsWith('search'))!, /^search\s+none\s+-\s+-\s+-\s+100\s+0$/);
  const none = renderTop(snap(1, 1, 1), { width: 80 });
  assert.equal(none[none.indexOf('BREAKERS AND CONCURRENCY LIMITS') + 1], '(no upstream has a breaker or a concurrency limit)');
});

test('top: a drain by an override says who and why, not the last health verdict; a decision without a subject has no stray space', () => {
  const base = snap(1, 1, 1);
  const drained: TopSnapshot = {
    ...base,
    status: { ...base.status, balancing: [{ name: 'users', slowStartMs: 0, endpoints: [{ address: '10.0.0.1:8080', stateName: 'draining', weight: 1, weightPercent: 100, inFlight: 0, ewmaUs: 0 }] }], overrides: { active: [{ kind: 'endpoint', key: 'users/10.0.0.1:8080', value: { state: 'drain' }, createdBy: 'oncall', reason: 'kernel upgrade' }] } },
    decisions: [{ id: 7, time: '2026-12-01T07:59:59Z', kind: 'ip-access-changed', level: 'info', subject: {}, why: { policy: 'edge' } }],
  };
  const d = renderTop(drained, { width: 80 });
  assert.match(d.find((l) => l.includes('10.0.0.1:8080'))!, /DRAINING\s+0\s+0\.00 drained by oncall: kern/);
  assert.equal(d[d.length - 1], '#7 07:59:59 ip-access-changed: policy=edge');
});
