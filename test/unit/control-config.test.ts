// Config of run-time control: flags (booleans and percentages in basis points), a
// route's flag and maintenance, event rules, and the errors with their paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { compileWorkerConfig } from '../../src/config/compile.js';

const base = { upstreams: { a: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } } };

test('flags parse to basis points; routes carry their flag slot and maintenance answer to workers', () => {
  const cfg = validateConfig({
    ...base,
    flags: { on: { value: true }, share: { value: '12.5%', stickyHeader: 'X-User' }, off: {} },
    routes: [{ upstream: 'a', match: { flag: 'share' } }, { upstream: 'a', maintenance: { flag: 'on', retryAfter: '2m' } }],
    events: [{ on: { alertname: 'X' }, do: [{ flag: { name: 'on', value: false } }], for: '15m' }],
  });
  assert.deepEqual(
    Object.fromEntries(Object.entries(cfg.flags).map(([k, f]) => [k, f.value])),
    { on: 10_000, share: 1250, off: 0 },
  );
  assert.equal(cfg.events[0]!.for, 900_000);
  const w = compileWorkerConfig(cfg, 1, new Map([['on', 7], ['share', 3]]));
  assert.deepEqual(w.routes[0]!.flag, { slot: 3, stickyHeader: 'x-user' });
  assert.deepEqual(w.routes[1]!.maintenance, { slot: 7, stickyHeader: null, response: { kind: 'static', status: 503, body: 'down for maintenance\n', headers: ['content-type', 'text/plain; charset=utf-8', 'retry-after', '120'] } });
  assert.equal(w.routes[1]!.flag, null);
});

test('unknown flags, bad values and bad event rules are rejected with every error and its path', () => {
  assert.throws(
    () =>
      validateConfig({
        ...base,
        flags: { f: { value: '120%' }, 'bad name!': {} },
        routes: [{ upstream: 'a', match: { flag: 'nope' }, maintenance: { flag: 'gone' } }],
        events: [{ on: {}, do: [] }, { on: { a: 'b' }, do: [{ flag: { name: 'f' } }] }],
      }),
    (e: unknown) => {
      const issues = (e as ConfigError).issues.join('\n');
      for (const re of [/flags\.f\.value/, /flags\.bad name!/, /routes\[0\]\.match\.flag: unknown flag "nope"/, /routes\[0\]\.maintenance\.flag: unknown flag "gone"/, /events\[0\]\.on/, /events\[0\]\.do/, /events\[1\]\.do\[0\]/]) assert.match(issues, re);
      return true;
    },
  );
});
