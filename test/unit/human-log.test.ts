// The terminal rendering of log lines: one line per event, fields as key=value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanLine, wantHumanLogs } from '../../src/demo/human-log.js';

test('a JSON log line becomes time, level, event, key=value fields, message', () => {
  const line = JSON.stringify({ level: 'warn', time: '2026-12-01T09:04:11.123Z', svc: 'tidegate', event: 'endpoint-ejected', upstream: 'orders', endpoint: '127.0.0.1:9001', cause: 'active', reason: '2 consecutive http checks failed', msg: 'endpoint 127.0.0.1:9001 ejected' });
  assert.equal(humanLine(line), '09:04:11.123 WARN  endpoint-ejected upstream=orders endpoint=127.0.0.1:9001 cause=active reason="2 consecutive http checks failed"  — endpoint 127.0.0.1:9001 ejected');
});

test('numbers are shortened, objects inlined, non-JSON passes unchanged', () => {
  assert.equal(humanLine('{"level":"info","time":"2026-12-01T09:04:11.000Z","event":"x","ratio":0.123456,"n":3,"list":[1,2]}'), '09:04:11.000 INFO  x ratio=0.123 n=3 list=[1,2]');
  assert.equal(humanLine('not json'), 'not json');
});

test('human lines on a terminal, JSON otherwise; TIDEGATE_LOG_FORMAT overrides', () => {
  assert.equal(wantHumanLogs({ isTTY: true }, {}), true);
  assert.equal(wantHumanLogs({ isTTY: false }, {}), false);
  assert.equal(wantHumanLogs({}, {}), false);
  assert.equal(wantHumanLogs({ isTTY: true }, { TIDEGATE_LOG_FORMAT: 'json' }), false);
  assert.equal(wantHumanLogs({ isTTY: false }, { TIDEGATE_LOG_FORMAT: 'human' }), true);
});
