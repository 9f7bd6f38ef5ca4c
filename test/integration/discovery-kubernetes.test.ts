// Kubernetes discovery against a replayed API: an HTTP server on loopback that answers
// the EndpointSlice list and watch (newline-delimited JSON events) the way the API server
// documents them (https://kubernetes.io/docs/reference/using-api/api-concepts/). No
// cluster can be run here; the replay covers list, watch, bookmarks, 410 Gone (as an
// HTTP status and as an ERROR event) and failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointsOfSlices, kubernetesDiscoverySchema, type EndpointSlice } from '../../src/discovery/kubernetes.js';
import { DiscoveryManager } from '../../src/primary/discovery-manager.js';
import { endpointKey, type DiscoveredEndpoint } from '../../src/discovery/provider.js';
import { captureLog, waitFor } from '../helpers/log-capture.js';
import { managerUnderTest } from '../helpers/discovery-harness.js';
import { CLI, writeConfig } from '../helpers/gateway.js';

const SLICES_PATH = '/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices';

function slice(name: string, rv: number, endpoints: [string, boolean | null][], ports = [{ name: 'http', port: 8080, protocol: 'TCP' }]): EndpointSlice {
  return {
    metadata: { name, resourceVersion: String(rv), labels: { 'kubernetes.io/service-name': 'api' } },
    addressType: 'IPv4',
    endpoints: endpoints.map(([ip, ready]) => ({ addresses: [ip], conditions: ready === null ? {} : { ready } })),
    ports,
  } as EndpointSlice;
}

interface Seen {
  readonly kind: 'list' | 'watch';
  readonly query: URLSearchParams;
  readonly auth: string | undefined;
}

async function replayApiServer() {
  const state = { rv: 100, items: [] as EndpointSlice[], failStatus: 0, goneOnWatch: false };
  const seen: Seen[] = [];
  let watchers: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const watch = u.searchParams.get('watch') === '1' || u.searchParams.get('watch') === 'true';
    seen.push({ kind: watch ? 'watch' : 'list', query: u.searchParams, auth: req.headers.authorization });
    if (u.pathname !== SLICES_PATH || u.searchParams.get('labelSelector') !== 'kubernetes.io/service-name=api') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","code":404}');
      return;
    }
    if (state.failStatus) {
      res.writeHead(state.failStatus, { 'content-type': 'application/json' }).end(`{"kind":"Status","code":${state.failStatus}}`);
      return;
    }
    if (!watch) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(state.rv) }, items: state.items }));
      return;
    }
    if (state.goneOnWatch) {
      state.goneOnWatch = false;
      res.writeHead(410, { 'content-type': 'application/json' }).end('{"kind":"Status","status":"Failure","reason":"Expired","code":410}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    watchers.push(res);
    res.on('close', () => (watchers = watchers.filter((w) => w !== res)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    apiServer: `http://127.0.0.1:${port}`,
    seen,
    state,
    watching: () => watchers.length,
    /** writes one watch event to every open watch */
    emit(type: string, object: unknown) {
      for (const w of watchers) w.write(`${JSON.stringify({ type, object })}\n`);
    },
    /** ends every open watch (as the server's timeoutSeconds does) */
    endWatches() {
      for (const w of watchers) w.end();
      watchers = [];
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const keys = (eps: readonly DiscoveredEndpoint[] | null) => (eps ?? []).map(endpointKey).sort();

test('kubernetes (replayed API): list, then watch events add and remove endpoints, not-ready filtered, bearer token sent', async (t) => {
  const api = await replayApiServer();
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-k8s-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'tok-1\n');
  api.state.items = [
    slice('api-a', 90, [['10.0.0.1', true], ['10.0.0.2', false]]),
    slice('api-b', 95, [['10.0.0.3', null]], [{ name: 'metrics', port: 9090, protocol: 'TCP' }, { name: 'http', port: 8080, protocol: 'TCP' }]),
  ];
  const { mgr, cap, sets } = managerUnderTest(t, () => api.close());
  const cfg = kubernetesDiscoverySchema.parse({ type: 'kubernetes', apiServer: api.apiServer, namespace: 'prod', service: 'api', port: 'http', tokenFile, caFile: join(dir, 'none.crt'), retry: '200ms' });
  await mgr.apply({ api: { discovery: cfg } });
  await waitFor(() => sets.length >= 1, 3_000, 'first set');
  // not-ready 10.0.0.2 is left out; ready unset (10.0.0.3) counts as ready; the named port is used.
  assert.deepEqual(sets[0], ['10.0.0.1:8080', '10.0.0.3:8080']);
  assert.equal(api.seen[0]!.kind, 'list');
  assert.equal(api.seen[0]!.auth, 'Bearer tok-1');

  await waitFor(() => api.watching() === 1, 3_000, 'the watch');
  const w = api.seen.find((s) => s.kind === 'watch')!;
  assert.equal(w.query.get('resourceVersion'), '100', 'the watch starts from the list resourceVersion');
  assert.equal(w.query.get('allowWatchBookmarks'), 'true');
  assert.equal(w.auth, 'Bearer tok-1');

  api.emit('ADDED', slice('api-c', 101, [['10.0.0.4', true], ['10.0.0.5', false]]));
  await waitFor(() => sets.length >= 2, 3_000, 'ADDED');
  assert.deepEqual(sets[1], ['10.0.0.1:8080', '10.0.0.3:8080', '10.0.0.4:8080']);

  api.emit('MODIFIED', slice('api-a', 102, [['10.0.0.2', true]]));
  await waitFor(() => sets.length >= 3, 3_000, 'MODIFIED');
  assert.deepEqual(sets[2], ['10.0.0.2:8080', '10.0.0.3:8080', '10.0.0.4:8080']);

  api.emit('DELETED', slice('api-b', 103, []));
  await waitFor(() => sets.length >= 4, 3_000, 'DELETED');
  assert.deepEqual(sets[3], ['10.0.0.2:8080', '10.0.0.4:8080']);

  // A bookmark moves the resourceVersion only; a watch that ends resumes from it, without a re-list.
  api.emit('BOOKMARK', { kind: 'EndpointSlice', metadata: { resourceVersion: '150' } });
  await new Promise((r) => setTimeout(r, 100));
  api.endWatches();
  await waitFor(() => api.seen.filter((s) => s.kind === 'watch').length >= 2, 3_000, 'the resumed watch');
  assert.equal(api.seen.filter((s) => s.kind === 'watch')[1]!.query.get('resourceVersion'), '150');
  assert.equal(api.seen.filter((s) => s.kind === 'list').length, 1);
  assert.equal(sets.length, 4);
  assert.equal(cap.events('discovery-failed').length, 0);
});

test('kubernetes (replayed API): 410 Gone (ERROR event or HTTP status) re-lists with a re-read token; failures keep the last set', async (t) => {
  const api = await replayApiServer();
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-k8s-'));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'tok-1');
  api.state.items = [slice('api-a', 90, [['10.0.1.1', true]], [{ name: 'http', port: 8080, protocol: 'TCP' }])];
  const { mgr, cap, sets } = managerUnderTest(t, () => api.close());
  await mgr.apply({ api: { discovery: kubernetesDiscoverySchema.parse({ type: 'kubernetes', apiServer: api.apiServer, namespace: 'prod', service: 'api', port: 8080, tokenFile, retry: '200ms' }) } });
  await waitFor(() => api.watching() === 1, 3_000, 'the watch');
  assert.deepEqual(sets[0], ['10.0.1.1:8080']);
  const lists = () => api.seen.filter((s) => s.kind === 'list');

  // The token rotates; the history is compacted: an ERROR 410 event makes the provider re-list.
  writeFileSync(tokenFile, 'tok-2');
  api.state.rv = 200;
  api.state.items = [slice('api-a', 199, [['10.0.1.2', true]], [{ name: 'http', port: 8080, protocol: 'TCP' }])];
  api.emit('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version: 100 (150)', reason: 'Expired', code: 410 });
  await waitFor(() => lists().length >= 2, 3_000, 're-list after ERROR 410');
  assert.equal(lists()[1]!.auth, 'Bearer tok-2', 'the token file is re-read on reconnect');
  await waitFor(() => sets.length >= 2, 3_000, 'the re-listed set');
  assert.deepEqual(sets[1], ['10.0.1.2:8080']);
  assert.ok(cap.events('discovery-relist').length >= 1);

  // A watch answered with HTTP 410 re-lists too.
  await waitFor(() => api.watching() === 1, 3_000, 'the watch after the re-list');
  api.state.goneOnWatch = true;
  api.endWatches();
  await waitFor(() => lists().length >= 3, 3_000, 're-list after HTTP 410');
  assert.equal(cap.events('discovery-failed').length, 0, 'a 410 is routine, not a failure');

  // The API server fails: reported, retried, the last set stays.
  await waitFor(() => api.watching() === 1, 3_000, 'the watch before the failure');
  api.state.failStatus = 503;
  api.endWatches();
  await waitFor(() => cap.events('discovery-failed').length >= 2, 5_000, 'discovery-failed (retried)');
  const ev = cap.events('discovery-failed')[0]!;
  assert.equal(ev.provider, 'kubernetes');
  assert.match(String(ev.reason), /HTTP 503/);
  assert.equal(ev.keeping, 1);
  assert.deepEqual(keys(mgr.endpoints('api')), ['10.0.1.2:8080']);
  const n = sets.length;

  // A list with no ready endpoints is a failure too (an empty set never replaces a good one).
  api.state.failStatus = 0;
  api.state.items = [slice('api-a', 201, [['10.0.1.3', false]], [{ name: 'http', port: 8080, protocol: 'TCP' }])];
  await waitFor(() => cap.events('discovery-failed').some((e) => /no ready endpoints/.test(String(e.reason))), 5_000, 'failure for no ready endpoints');
  assert.equal(sets.length, n, 'no empty set was pushed');
  assert.deepEqual(keys(mgr.endpoints('api')), ['10.0.1.2:8080']);

  // Recovery.
  await waitFor(() => api.watching() === 1, 3_000, 'the watch after recovery');
  api.emit('MODIFIED', slice('api-a', 202, [['10.0.1.3', true]], [{ name: 'http', port: 8080, protocol: 'TCP' }]));
  await waitFor(() => keys(mgr.endpoints('api')).includes('10.0.1.3:8080'), 3_000, 'recovered set');
});

test('kubernetes (replayed API): https with the CA from caFile; a wrong or missing CA is a failure', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-k8s-tls-'));
  const key = join(dir, 'key.pem');
  const crt = join(dir, 'ca.crt');
  try {
    for (const [k, c] of [[key, crt], [join(dir, 'other.key'), join(dir, 'other.crt')]] as const) {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', k, '-out', c, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore', timeout: 20_000 });
    }
  } catch {
    t.skip('openssl is not available to make a test certificate');
    return;
  }
  const items = [slice('api-a', 1, [['10.0.2.1', true]])];
  let auth: string | undefined;
  const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(crt) }, (req, res) => {
    auth = req.headers.authorization;
    if (new URL(req.url ?? '/', 'https://x').searchParams.get('watch')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ metadata: { resourceVersion: '1' }, items }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const apiServer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  writeFileSync(join(dir, 'token'), 'tls-token');
  const cap = captureLog();
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints() {} } });
  t.after(async () => {
    await mgr.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  await mgr.apply({
    good: { discovery: kubernetesDiscoverySchema.parse({ type: 'kubernetes', apiServer, namespace: 'prod', service: 'api', tokenFile: join(dir, 'token'), caFile: crt, retry: '200ms' }) },
    // trusts another CA: the server's certificate must be refused
    bad: { discovery: kubernetesDiscoverySchema.parse({ type: 'kubernetes', apiServer, namespace: 'prod', service: 'api', tokenFile: join(dir, 'token'), caFile: join(dir, 'other.crt'), retry: '200ms' }) },
    noca: { discovery: kubernetesDiscoverySchema.parse({ type: 'kubernetes', apiServer, namespace: 'prod', service: 'api', tokenFile: join(dir, 'token'), caFile: join(dir, 'missing.crt'), retry: '200ms' }) },
  });
  await waitFor(() => mgr.endpoints('good'), 5_000, 'the set over https');
  assert.deepEqual(keys(mgr.endpoints('good')), ['10.0.2.1:8080']);
  assert.equal(auth, 'Bearer tls-token');
  const bad = await waitFor(() => cap.events('discovery-failed').find((e) => e.upstream === 'bad'), 5_000, 'failure with the wrong CA');
  assert.match(String(bad.reason), /CERT|certificate|self.signed/i);
  const noca = await waitFor(() => cap.events('discovery-failed').find((e) => e.upstream === 'noca'), 5_000, 'failure without a CA file');
  assert.match(String(noca.reason), /ENOENT/);
  assert.equal(mgr.endpoints('bad'), null);
  assert.equal(mgr.endpoints('noca'), null);
});

test('kubernetes: port selection by name, number or first; FQDN slices skipped', () => {
  const s = [
    slice('a', 1, [['10.0.0.1', true]], [{ name: 'grpc', port: 9000, protocol: 'TCP' }, { name: 'http', port: 8080, protocol: 'TCP' }]),
    { ...slice('f', 1, [['api.example.com', true]]), addressType: 'FQDN' },
  ];
  assert.deepEqual(endpointsOfSlices(s, undefined), [{ host: '10.0.0.1', port: 9000 }]);
  assert.deepEqual(endpointsOfSlices(s, 'http'), [{ host: '10.0.0.1', port: 8080 }]);
  assert.deepEqual(endpointsOfSlices(s, 8080), [{ host: '10.0.0.1', port: 8080 }]);
  assert.deepEqual(endpointsOfSlices(s, 'nope'), []);
});

test('kubernetes: tidegate --check accepts a config with type kubernetes and rejects a bad namespace', () => {
  const cfg = (namespace: string) => ({
    listen: { host: '127.0.0.1', port: 8080 },
    upstreams: { app: { discovery: { type: 'kubernetes', namespace, service: 'api', port: 'http' } } },
    routes: [{ name: 'all', match: { path: '/' }, upstream: 'app' }],
  });
  const ok = spawnSync(process.execPath, [CLI, '--check', writeConfig(cfg('prod'))], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(ok.status, 0, ok.stderr + ok.stdout);
  const bad = spawnSync(process.execPath, [CLI, '--check', writeConfig(cfg('Prod_NS'))], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 2, bad.stderr + bad.stdout);
});
