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
