// The decision ring and the one function that records a decision and logs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecisionFeed } from '../../src/primary/decisions/decision-feed.js';
import { decision, decisionFeedOf, withDecisionFeed } from '../../src/primary/decisions/decision-log.js';
import { parseDecisionQuery } from '../../src/primary/decisions/decision-query.js';
import { captureLog } from '../helpers/log-capture.js';

function push(feed: DecisionFeed, kind: string, n = 1): void {
  for (let i = 0; i < n; i++) feed.push({ time: new Date().toISOString(), kind, level: 'info', subject: {}, message: kind, why: { i } });
}

test('ring: ids only grow, the oldest fall out, since/kind/limit select', () => {
  const feed = new DecisionFeed(5);
  assert.equal(feed.latestId, 0);
  assert.equal(feed.oldestId, 0);
  assert.deepEqual(feed.query(), []);
  push(feed, 'a', 3);
  push(feed, 'b', 4); // ids 1..7; the ring keeps 3..7
  assert.equal(feed.latestId, 7);
  assert.equal(feed.oldestId, 3);
  assert.equal(feed.retained, 5);
  assert.deepEqual(feed.query().map((d) => d.id), [3, 4, 5, 6, 7]);
  assert.deepEqual(feed.query({ since: 5 }).map((d) => d.id), [6, 7]);
  assert.deepEqual(feed.query({ since: 1 }).map((d) => d.id), [3, 4, 5, 6, 7], 'a since older than the ring gives what is left');
  assert.deepEqual(feed.query({ since: 7 }), []);
  assert.deepEqual(feed.query({ kinds: ['a'] }).map((d) => d.id), [3]);
  assert.deepEqual(feed.query({ limit: 2 }).map((d) => d.id), [6, 7], 'limit keeps the newest');
  assert.equal(feed.totals.get('a'), 3);
  assert.equal(feed.totals.get('b'), 4);
  feed.resize(3);
  assert.deepEqual(feed.query().map((d) => d.id), [5, 6, 7]);
  push(feed, 'c');
  assert.deepEqual(feed.query().map((d) => d.id), [6, 7, 8], 'ids continue after a resize');
  feed.resize(10);
  push(feed, 'c', 2);
  assert.deepEqual(feed.query().map((d) => d.id), [6, 7, 8, 9, 10]);
});

test('a subscriber that throws costs neither the decision nor the other subscribers', () => {
  const feed = new DecisionFeed(4);
  const seen: number[] = [];
  feed.subscribe(() => {
    throw new Error('boom');
  });
  const off = feed.subscribe((d) => seen.push(d.id));
  push(feed, 'a', 2);
  off();
  push(feed, 'a');
  assert.deepEqual(seen, [1, 2]);
  assert.equal(feed.latestId, 3);
});

test('decision(log) writes the log line and the feed entry from the same fields, with the id in the line', () => {
  const cap = captureLog();
  const feed = new DecisionFeed(10);
  const log = withDecisionFeed(cap.log, feed);
  decision(log).warn({ event: 'endpoint-ejected', upstream: 'app', endpoint: '127.0.0.1:9001', cause: 'active', reason: '2 consecutive http checks failed' }, 'endpoint 127.0.0.1:9001 ejected');
  // a module's own child logger (pino child = Object.create(parent)) still finds the feed
  const child = log.child({ component: 'supervisor' });
  assert.equal(decisionFeedOf(child), feed);
  decision(child).error({ event: 'worker-restart', slot: 1, exitCode: 1, reason: 'worker thread exited unexpectedly' }, 'restarting worker');

  const [d1, d2] = feed.query();
  assert.equal(d1!.kind, 'endpoint-ejected');
  assert.equal(d1!.level, 'warn');
  assert.deepEqual(d1!.subject, { upstream: 'app', endpoint: '127.0.0.1:9001' });
  assert.deepEqual(d1!.why, { cause: 'active', reason: '2 consecutive http checks failed' });
  assert.equal(d1!.message, 'endpoint 127.0.0.1:9001 ejected');
  assert.deepEqual(d2!.subject, { worker: 1 });
  assert.deepEqual(d2!.why, { exitCode: 1, reason: 'worker thread exited unexpectedly' });

  const lines = cap.records.filter((r) => r.decision !== undefined);
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.decision, d1!.id);
  assert.equal(lines[0]!.event, 'endpoint-ejected');
  assert.equal(lines[0]!.reason, d1!.why.reason);
  assert.equal(lines[0]!.level, 40);
  assert.equal(lines[1]!.decision, d2!.id);
  assert.equal(lines[1]!.component, 'supervisor');
});

test('a logger without a feed still logs the decision (modules under test on their own)', () => {
  const cap = captureLog();
  decision(cap.log).info({ event: 'discovery-updated', upstream: 'app', after: 2 }, 'upstream app: 2 endpoints');
  assert.equal(cap.events('discovery-updated').length, 1);
  assert.equal(cap.events('discovery-updated')[0]!.decision, undefined);
});

test('query parameters: bad values are a 400 with TG_ERR_ADMIN_BAD_QUERY, never ignored', () => {
  const q = (s: string) => parseDecisionQuery(new URL(`http://admin/v1/decisions?${s}`));
  assert.deepEqual(q('since=4&kind=endpoint-ejected,endpoint-readmitted&kind=worker-restart&limit=7'), { since: 4, limit: 7, kinds: ['endpoint-ejected', 'endpoint-readmitted', 'worker-restart'] });
  assert.deepEqual(q(''), {});
  for (const bad of ['since=-1', 'since=x', 'limit=0x10', 'limit=100000', 'kind=Endpoint%20Ejected']) {
    assert.throws(() => q(bad), (e: Error & { status?: number; code?: string }) => e.status === 400 && e.code === 'TG_ERR_ADMIN_BAD_QUERY', bad);
  }
});
