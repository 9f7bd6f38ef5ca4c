// Split and rollout config: every error at once, each with its path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const upstreams = { blue: { discovery: { type: 'static', endpoints: ['127.0.0.1:1'] } }, green: { discovery: { type: 'static', endpoints: ['127.0.0.1:2'] } } };

function issues(cfg: unknown): string[] {
  try {
    validateConfig(cfg, {});
  } catch (e) {
    if (e instanceof ConfigError) return [...e.issues];
    throw e;
  }
  return [];
}

test('a split route takes its first side as `upstream`; sticky and rules compile', () => {
  const cfg = validateConfig({ upstreams, routes: [{ name: 'api', split: [{ upstream: 'blue', weight: 90 }, { upstream: 'green', weight: 10, match: { header: { 'x-canary': 'always' } } }], sticky: { on: 'cookie', name: 'Session' } }] }, {});
  assert.equal(cfg.routes[0]!.upstream, 'blue');
  assert.equal(cfg.routes[0]!.sticky?.name, 'session');
});

test('split errors are all reported with their paths', () => {
  const got = issues({
    upstreams,
    routes: [
      { name: 'a', split: [{ upstream: 'blue', weight: 70 }, { upstream: 'red', weight: 20 }] },
      { name: 'b', upstream: 'blue', split: [{ upstream: 'blue', weight: 50 }, { upstream: 'blue', weight: 50 }] },
      { name: 'c' },
      { name: 'd', upstream: 'blue', sticky: { on: 'header' } },
      { name: 'e', split: [{ upstream: 'blue', weight: 100 }] },
    ],
    rollouts: { r: { route: 'a', stable: 'blue', canary: 'yellow' }, s: { route: 'zz', stable: 'blue', canary: 'green' } },
  });
  const want = [
    /^routes\[0\]\.split\[1\]\.upstream: unknown upstream "red"/,
    /^routes\[0\]\.split: the weights must sum to 100 \(they sum to 90\)/,
    /^routes\[1\]\.split: give `upstream` or `split`, not both/,
    /^routes\[1\]\.split\[1\]\.upstream: upstream "blue" is already a side/,
    /^routes\[2\]\.upstream: a route needs `upstream` or `split`/,
    /^routes\[3\]\.sticky: `sticky` needs a `split`/,
    /^routes\[3\]\.sticky\.name: sticky\.name is required/,
    /^routes\[4\]\.split: a split needs at least two sides/,
    /^rollouts\.r\.canary: "yellow" is not a side of route "a"/,
    /^rollouts\.s\.route: unknown route "zz"/,
  ];
  for (const w of want) assert.ok(got.some((i) => w.test(i)), `missing ${w}; got:\n${got.join('\n')}`);
});
