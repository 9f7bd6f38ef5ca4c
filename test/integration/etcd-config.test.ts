// `--config etcd://…` against a real etcd: read, watched changes applied like a reload
// (an invalid one rejected with every error), etcd restart with compaction, the last
// good config at a start without etcd, and `tidegate config push`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { CLI, baseConfig, startGateway, writeConfig, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { startEtcd } from '../helpers/etcd.js';
import { until } from '../helpers/poll.js';
import { EtcdClient, parseEtcdUrl, type WatchEvent } from '../../src/fleet/etcd-client.js';

interface Status {
  generation: number;
  routes: { name: string }[];
  workers: { generation: number }[];
  configSource: { appliedRevision: number; rejectedRevision: number | null; connected: boolean; watchRestarts: number };
}

async function status(gw: RunningGateway): Promise<Status> {
  return (await (await request(`${gw.adminUrl}/status`)).body.json()) as Status;
}

/** Every worker runs the generation the primary is at, and the route is named `name`. */
const appliedEverywhere = (name: string) => (s: Status) => s.routes[0]?.name === name && s.workers.length === 2 && s.workers.every((w) => w.generation === s.generation);

test('etcd config source: read, watch, invalid change rejected with every error, restart + compaction, last good at start, config push', async () => {
  const etcd = await startEtcd();
  const up = await startUpstream();
  const conf = (name: string) => stringify(baseConfig([up.address], { workers: 2, routes: [{ name, match: { path: '/' }, upstream: 'app' }] }));
  const url = `etcd://127.0.0.1:${etcd.port}/tidegate/test`;
  const lastGood = join(mkdtempSync(join(tmpdir(), 'tidegate-lastgood-')), 'last-good.yaml');
  const rev1 = await etcd.put('/tidegate/test/config', conf('first'));
  let gw = await startGateway(null, { args: ['--config', url, '--last-good', lastGood], timeoutMs: 60_000 });
  try {
    let s = await status(gw);
    assert.equal(s.routes[0]!.name, 'first');
    assert.equal(s.configSource.appliedRevision, rev1);
    assert.match(readFileSync(lastGood, 'utf8'), /name: first/);

    // A change reaches every worker; the time from the put is the change-to-workers latency.
    const t0 = performance.now();
    const rev2 = await etcd.put('/tidegate/test/config', conf('second'));
    s = await until('second config on every worker', () => status(gw), appliedEverywhere('second'), 15_000);
    console.log(`etcd put → every worker on the new generation: ${(performance.now() - t0).toFixed(0)} ms (polled every 50 ms)`);
    assert.equal(s.configSource.appliedRevision, rev2);

    // Invalid: two errors, both logged; the running config stays.
    const bad = stringify({ ...baseConfig([up.address], { workers: 2 }), listen: { port: 'eighty' }, routes: [{ match: { path: 'no-slash' }, upstream: 'app' }] });
    const rev3 = await etcd.put('/tidegate/test/config', bad);
    const rejected = await until('config-rejected logged', () => gw.logs.find((l) => l.event === 'config-rejected') ?? null, (l) => l !== null, 10_000);
    const issues = rejected!.issues as string[];
    assert.ok(issues.some((i) => i.startsWith('listen.port')) && issues.some((i) => i.startsWith('routes[0].match.path')), `every error: ${JSON.stringify(issues)}`);
    s = await status(gw);
    assert.equal(s.routes[0]!.name, 'second');
    assert.equal(s.configSource.rejectedRevision, rev3);
    assert.equal((await request(`${gw.url}/x`)).statusCode, 200);
    assert.match(readFileSync(lastGood, 'utf8'), /name: second/, 'a rejected config is never the last good one');

    // etcd dies; while it is down the gateway keeps serving; it comes back with a new
    // config and its history compacted past everything the gateway has seen.
    await etcd.kill();
    await until('etcd-unreachable logged', () => gw.logs.some((l) => l.event === 'etcd-unreachable'), (v) => v, 10_000);
    assert.equal((await request(`${gw.url}/x`)).statusCode, 200);
    await etcd.restart();
    await etcd.put('/tidegate/test/config', conf('third'));
    await etcd.compact();
    await until('third config after restart and compaction', () => status(gw), appliedEverywhere('third'), 20_000);
    assert.ok(gw.logs.some((l) => l.event === 'etcd-reachable'));

    // config push validates and writes; an invalid file is refused and nothing is written.
    const good = writeConfig(conf('pushed'));
    const push = spawnSync(process.execPath, [CLI, 'config', 'push', good, '--to', url], { encoding: 'utf8' });
    assert.equal(push.status, 0, push.stderr);
    assert.match(push.stdout, /written to \/tidegate\/test\/config \(revision \d+\)/);
    await until('pushed config applied', () => status(gw), appliedEverywhere('pushed'), 15_000);
    const refused = spawnSync(process.execPath, [CLI, 'config', 'push', writeConfig(bad), '--to', url], { encoding: 'utf8' });
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /listen\.port/);
    assert.equal((await status(gw)).routes[0]!.name, 'pushed');

    // A start with etcd down runs the last good config, then follows etcd when it returns.
    await gw.stop();
    await etcd.kill();
    gw = await startGateway(null, { args: ['--config', url, '--last-good', lastGood], timeoutMs: 60_000 });
    assert.ok(gw.logs.some((l) => l.event === 'etcd-fallback'));
    assert.equal((await status(gw)).routes[0]!.name, 'pushed');
    await etcd.restart();
    await etcd.put('/tidegate/test/config', conf('after-fallback'));
    await until('etcd followed after a start without it', () => status(gw), appliedEverywhere('after-fallback'), 20_000);
  } finally {
    await gw.stop();
    await up.close();
    await etcd.stop();
  }
});

test('etcd client: a watch from a compacted revision says so (the source then reads again)', async () => {
  const etcd = await startEtcd();
  const client = new EtcdClient(parseEtcdUrl(`etcd://127.0.0.1:${etcd.port}/x`)!);
  try {
    const r1 = await etcd.put('/x/config', 'a');
    await etcd.put('/x/config', 'b');
    await etcd.compact();
    const events: WatchEvent[] = [];
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 5000);
    await client.watch('/x/config', r1, (e) => events.push(e), ac.signal);
    clearTimeout(t);
    assert.equal(events[0]?.type, 'compacted', JSON.stringify(events));
    const v = await client.get('/x/config');
    assert.equal(v.value, 'b');
    assert.deepEqual(parseEtcdUrl('etcd://127.0.0.1:2379/tidegate'), { endpoints: ['http://127.0.0.1:2379'], prefix: '/tidegate' });
    assert.deepEqual(parseEtcdUrl('etcds://a:1,b:2/p/'), { endpoints: ['https://a:1', 'https://b:2'], prefix: '/p' });
    assert.equal(parseEtcdUrl('etcd:///p'), null);
  } finally {
    await client.close();
    await etcd.stop();
  }
});
