// Consul discovery against a replayed API: an HTTP server on loopback that answers
// /v1/health/service/<name> the way Consul documents it (X-Consul-Index, blocking on
// ?index=&wait=). No Consul can be installed here; the replay follows
// https://developer.hashicorp.com/consul/api-docs/health#list-service-instances-for-service
// and .../features/blocking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulProvider, consulDiscoverySchema, nextConsulIndex, parseConsulHealth } from '../../src/discovery/consul.js';
import { DiscoveryManager } from '../../src/primary/discovery-manager.js';
import { endpointKey, type DiscoveredEndpoint } from '../../src/discovery/provider.js';
import { captureLog, waitFor } from '../helpers/log-capture.js';
import { managerUnderTest } from '../helpers/discovery-harness.js';
import { CLI, writeConfig } from '../helpers/gateway.js';

interface Seen {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly token: string | undefined;
}

/** One health entry as Consul returns it (trimmed to what a client reads). */
function entry(node: string, svcAddr: string, port: number, weight?: number): unknown {
  return {
    Node: { Node: `node-${node}`, Address: node, Datacenter: 'dc1' },
    Service: { ID: `api-${port}`, Service: 'api', Address: svcAddr, Port: port, Tags: ['v1'], ...(weight !== undefined ? { Weights: { Passing: weight, Warning: 1 } } : {}) },
    Checks: [{ Status: 'passing' }],
  };
}

async function replayConsul() {
  const state = { index: 10, body: '[]' as string, status: 200 };
  const seen: Seen[] = [];
  let waiters: (() => void)[] = [];
  const answer = (res: ServerResponse) => {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(state.status, { 'content-type': 'application/json', 'x-consul-index': String(state.index) });
    res.end(state.status === 200 ? state.body : 'rpc error: No cluster leader');
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const token = req.headers['x-consul-token'];
    seen.push({ path: u.pathname, query: u.searchParams, token: Array.isArray(token) ? token[0] : token });
    if (u.pathname !== '/v1/health/service/api') {
      res.writeHead(404).end();
      return;
    }
    const index = Number(u.searchParams.get('index') ?? 0);
    // Blocking: an index at or past the current one hangs until a change or `wait`.
    if (state.status === 200 && index > 0 && index >= state.index) {
      const waitS = Number(/^(\d+)s$/.exec(u.searchParams.get('wait') ?? '')?.[1] ?? 300);
      const wake = () => {
        clearTimeout(timer);
        answer(res);
      };
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== wake);
        answer(res);
      }, waitS * 1000);
      waiters.push(wake);
      return;
    }
    answer(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `http://127.0.0.1:${port}`,
    seen,
    /** changes the catalog and wakes every blocked query */
    set(index: number, entries: unknown[] | string, status = 200) {
      state.index = index;
      state.body = typeof entries === 'string' ? entries : JSON.stringify(entries);
      state.status = status;
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
    async close() {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const weightedKey = (e: DiscoveredEndpoint): string => `${endpointKey(e)}*${e.weight ?? 1}`;
const keys = (eps: readonly DiscoveredEndpoint[] | null) => (eps ?? []).map(weightedKey).sort();

test('consul (replayed API): initial set, a blocking query returns the changed set, token, dc and tag sent', async (t) => {
  const consul = await replayConsul();
  consul.set(10, [entry('10.0.0.1', '127.0.0.2', 8080, 3), entry('127.0.0.9', '', 8081)]);
  const { mgr, cap, sets } = managerUnderTest(t, () => consul.close(), weightedKey);
  const cfg = consulDiscoverySchema.parse({ type: 'consul', address: consul.address, service: 'api', datacenter: 'dc1', tag: 'v1', token: 's3cret', wait: '5s', retry: '200ms' });
  await mgr.apply({ api: { discovery: cfg } });
  await waitFor(() => sets.length >= 1, 3_000, 'first set');
  // Service.Address wins over Node.Address; an empty Service.Address falls back to the node's.
  assert.deepEqual(sets[0], ['127.0.0.2:8080*3', '127.0.0.9:8081*1']);
  const first = consul.seen[0]!;
  assert.equal(first.query.get('passing'), '1');
  assert.equal(first.query.get('dc'), 'dc1');
  assert.equal(first.query.get('tag'), 'v1');
  assert.equal(first.query.get('index'), '0');
  assert.equal(first.token, 's3cret');

  // The next query blocks at index 10 with the configured wait.
  await waitFor(() => consul.seen.length >= 2, 3_000, 'the blocking query');
  assert.equal(consul.seen[1]!.query.get('index'), '10');
  assert.equal(consul.seen[1]!.query.get('wait'), '5s');
  assert.ok(consul.seen.every((s) => s.token === 's3cret'), 'every query carries X-Consul-Token');

  // A change wakes it: the set follows, and the next query waits from the new index.
  consul.set(11, [entry('10.0.0.1', '127.0.0.2', 8080, 3), entry('10.0.0.3', '127.0.0.3', 8080)]);
  await waitFor(() => sets.length >= 2, 3_000, 'the changed set');
  assert.deepEqual(sets[1], ['127.0.0.2:8080*3', '127.0.0.3:8080*1']);
  await waitFor(() => consul.seen.length >= 3, 3_000, 'the next blocking query');
  assert.equal(consul.seen[2]!.query.get('index'), '11');
  assert.equal(cap.events('discovery-failed').length, 0);
});

test('consul (replayed API): an index that goes backwards resets to 0; a zero index is never sent to block on', async (t) => {
  const consul = await replayConsul();
  consul.set(20, [entry('n', '127.0.0.2', 8080)]);
  const { mgr } = managerUnderTest(t, () => consul.close());
  await mgr.apply({ api: { discovery: consulDiscoverySchema.parse({ type: 'consul', address: consul.address, service: 'api', wait: '5s', retry: '200ms' }) } });
  await waitFor(() => consul.seen.length >= 2, 3_000, 'the blocking query at 20');
  assert.equal(consul.seen[1]!.query.get('index'), '20');

  // e.g. a snapshot restore: the index drops to 5. The documented rule: reset to 0.
  consul.set(5, [entry('n', '127.0.0.4', 8080)]);
  await waitFor(() => consul.seen.length >= 3, 3_000, 'the query after the reset');
  assert.equal(consul.seen[2]!.query.get('index'), '0', 'the index went backwards: the next query restarts at 0');
  await waitFor(() => consul.seen.length >= 4, 3_000, 'the blocking query after the reset');
  assert.equal(consul.seen[3]!.query.get('index'), '5');
  assert.deepEqual(keys(mgr.endpoints('api')), ['127.0.0.4:8080*1']);

  // The rules on their own, including the "index must be at least 1" sanity check.
  assert.equal(nextConsulIndex(20, '5'), 0);
  assert.equal(nextConsulIndex(0, '0'), 1);
  assert.equal(nextConsulIndex(0, undefined), 1);
  assert.equal(nextConsulIndex(7, '7'), 7);
  assert.equal(nextConsulIndex(7, '9'), 9);
});

test('consul (replayed API): a 500 or bad JSON keeps the last set and is reported, then recovers', async (t) => {
  const consul = await replayConsul();
  consul.set(3, [entry('n', '127.0.0.2', 8080)]);
  const { mgr, cap, sets } = managerUnderTest(t, () => consul.close(), weightedKey);
  await mgr.apply({ api: { discovery: consulDiscoverySchema.parse({ type: 'consul', address: consul.address, service: 'api', wait: '5s', retry: '200ms' }) } });
  await waitFor(() => sets.length >= 1, 3_000, 'first set');

  consul.set(4, [], 500);
  await waitFor(() => cap.events('discovery-failed').length >= 1, 3_000, 'discovery-failed for the 500');
  const ev = cap.events('discovery-failed')[0]!;
  assert.equal(ev.provider, 'consul');
  assert.match(String(ev.reason), /HTTP 500/);
  assert.equal(ev.keeping, 1);

  consul.set(5, '[{"Service": ');
  await waitFor(() => cap.events('discovery-failed').some((e) => /bad JSON/.test(String(e.reason))), 3_000, 'discovery-failed for bad JSON');
  assert.equal(sets.length, 1, 'no set was pushed on failure');
  assert.deepEqual(keys(mgr.endpoints('api')), ['127.0.0.2:8080*1']);

  consul.set(6, [entry('n', '127.0.0.5', 8080)]);
  await waitFor(() => sets.length >= 2, 3_000, 'recovery after retry');
  assert.deepEqual(sets[1], ['127.0.0.5:8080*1']);
  assert.ok(mgr.stats().api!.failures >= 2);
});

test('consul (replayed API): an agent that refuses connections is a failure, retried', async (t) => {
  const consul = await replayConsul();
  const address = consul.address;
  await consul.close();
  const cap = captureLog();
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints() {} } });
  t.after(() => mgr.stop());
  await mgr.apply({ api: { discovery: consulDiscoverySchema.parse({ type: 'consul', address, service: 'api', retry: '200ms' }) } });
  await waitFor(() => cap.events('discovery-failed').length >= 2, 5_000, 'two failures (retried)');
  assert.match(String(cap.events('discovery-failed')[0]!.reason), /ECONNREFUSED/);
  assert.equal(mgr.endpoints('api'), null);
});

test('consul: health entries without a usable address or port are skipped; provider stops cleanly twice', async () => {
  assert.deepEqual(parseConsulHealth([{ Node: { Address: '' }, Service: { Address: '', Port: 80 } }, { Service: { Address: 'h', Port: 0 } }, { Service: { Address: 'h', Port: 1 } }]), [{ host: 'h', port: 1 }]);
  assert.throws(() => parseConsulHealth({}), /JSON array/);
  const p = new ConsulProvider(consulDiscoverySchema.parse({ type: 'consul', service: 'api' }));
  assert.match(p.path(), /^\/v1\/health\/service\/api\?passing=1&index=0&wait=30s$/);
  await p.stop();
  await p.stop();
});

test('consul: tidegate --check accepts a config with type consul and rejects a bad address', () => {
  const cfg = (address: string) => ({
    listen: { host: '127.0.0.1', port: 8080 },
    upstreams: { app: { discovery: { type: 'consul', address, service: 'api', tag: 'v1', wait: '1m' } } },
    routes: [{ name: 'all', match: { path: '/' }, upstream: 'app' }],
  });
  const ok = spawnSync(process.execPath, [CLI, '--check', writeConfig(cfg('http://127.0.0.1:8500'))], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(ok.status, 0, ok.stderr + ok.stdout);
  const bad = spawnSync(process.execPath, [CLI, '--check', writeConfig(cfg('consul:8500'))], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 2, bad.stderr + bad.stdout);
});
