// `npm run fleet -- --instances N`: a fleet on one machine. Starts Redis (and etcd with
// --etcd), N tidegate instances on loopback (1 worker thread each unless --workers),
// one upstream, and drives open-loop load at `--load` (default 2) × a cluster rate
// limit, spread round robin over the instances' ports. Reports, per key, the requests
// admitted against rate × t + burst, Redis commands per 1,000 admitted, where the
// tokens not admitted went (still leased or reserved when the load stopped, left in
// Redis) against the stated bound, then what
// happens when Redis is killed mid-load and restarted (each second's admitted rate,
// time to fail over and back), and with --etcd the time from a config put to every
// worker of every instance on the new generation.
//
//   npm run fleet -- --instances 10 [--rate 100] [--burst 50] [--seconds 20] [--keys 1]
//                    [--load 2] [--workers 1] [--on-failure local] [--lease-ahead 250ms] [--lease-min 8] [--etcd]
//                    [--no-kill] [--json FILE]
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import { stringify } from 'yaml';
import { readFlags } from '../flags.js';
import { startRedis, type RedisServer } from '../../test/helpers/redis.js';
import { startEtcd, type EtcdServer } from '../../test/helpers/etcd.js';
import { startUpstream } from '../../test/helpers/upstream.js';
import { writeConfig } from '../../test/helpers/gateway.js';
import { accuracyBound } from '../../src/fleet/lease-sizing.js';
import { parseDuration } from '../../src/units/units.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

interface Options {
  instances: number;
  rate: number;
  burst: number;
  seconds: number;
  keys: number;
  load: number;
  workers: number;
  onFailure: 'allow' | 'deny' | 'local';
  etcd: boolean;
  kill: boolean;
  json: string | null;
  /** redis.lease.ahead, e.g. "250ms" (default: the config default) */
  leaseAhead: string | null;
  /** redis.lease.min (default: the config default) */
  leaseMin: number | null;
}

function parse(argv: readonly string[]): Options {
  const o: Options = { instances: 2, rate: 100, burst: 50, seconds: 20, keys: 1, load: 2, workers: 1, onFailure: 'local', etcd: false, kill: true, json: null, leaseAhead: null, leaseMin: null };
  for (const f of readFlags(argv)) {
    switch (f.flag) {
      case '--instances': o.instances = f.num(1); break;
      case '--rate': o.rate = f.num(1); break;
      case '--burst': o.burst = f.num(1); break;
      case '--seconds': o.seconds = f.num(1); break;
      case '--keys': o.keys = f.num(1); break;
      case '--load': o.load = f.num(0.1); break;
      case '--workers': o.workers = f.num(1); break;
      case '--on-failure': {
        const v = f.value();
        if (v !== 'allow' && v !== 'deny' && v !== 'local') throw new Error('--on-failure: allow, deny or local');
        o.onFailure = v;
        break;
      }
      case '--etcd': o.etcd = true; break;
      case '--no-kill': o.kill = false; break;
      case '--json': o.json = f.value(); break;
      case '--lease-ahead': o.leaseAhead = f.value(); break;
      case '--lease-min': o.leaseMin = f.num(1); break;
      default: throw new Error(`unknown flag ${f.flag}`);
    }
  }
  return o;
}

interface Instance {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly adminUrl: string;
  readonly logs: Record<string, unknown>[];
}

function launch(args: string[]): Promise<Instance> {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TIDEGATE_LOG_FORMAT: 'json' } });
  const logs: Record<string, unknown>[] = [];
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`instance did not start in 120 s: ${err}`)), 120_000);
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          logs.push(rec);
          if (rec.event === 'started') {
            clearTimeout(t);
            resolve({ proc, port: rec.port as number, adminUrl: `http://127.0.0.1:${rec.adminPort as number}`, logs });
          }
        } catch {
          /* not JSON */
        }
      }
    });
    proc.once('exit', (code) => reject(new Error(`instance exited with ${code}: ${err}`)));
  });
}

interface ClusterStatus {
  mode: string;
  reachable: boolean;
  transitions: number;
  leasedTokens: number;
  reservedTokens: number;
  roundTripMs: number;
  exchanges: Record<string, number>;
  tokens: { granted: number; returned: number; expired: number; charged: number };
}

async function statusOf(i: Instance): Promise<{ generation: number; workers: { generation: number }[]; cluster: ClusterStatus; routes: { name: string }[] }> {
  return (await (await request(`${i.adminUrl}/status`)).body.json()) as never;
}

interface Counts {
  sent: number;
  ok: number;
  limited: number;
  unavailable: number;
  other: number;
  skipped: number;
}

const zero = (): Counts => ({ sent: 0, ok: 0, limited: 0, unavailable: 0, other: 0, skipped: 0 });

/**
 * Open-loop load: `perSecond` requests a second over all instances (round robin) and
 * keys (round robin), for `ms`. A request is counted in the second it was sent; an
 * instance with `maxInFlight` requests outstanding skips the send (counted).
 */
async function drive(instances: Instance[], keys: string[], perSecond: number, ms: number, onSecond?: (s: number) => void): Promise<{ byKey: Map<string, Counts>; bySecond: Counts[]; elapsed: number }> {
  const pools = instances.map((i) => new Pool(`http://127.0.0.1:${i.port}`, { connections: 32, pipelining: 1 }));
  const inFlight = instances.map(() => 0);
  const maxInFlight = 256;
  const byKey = new Map(keys.map((k) => [k, zero()]));
  const bySecond: Counts[] = [];
  const t0 = performance.now();
  let n = 0;
  const pending = new Set<Promise<void>>();
  let lastSecond = -1;
  for (;;) {
    const now = performance.now() - t0;
    if (now >= ms) break;
    const sec = Math.floor(now / 1000);
    if (sec !== lastSecond) {
      lastSecond = sec;
      onSecond?.(sec);
    }
    const due = Math.floor((now / 1000) * perSecond);
    while (n < due) {
      const i = n % instances.length;
      const key = keys[Math.floor(n / instances.length) % keys.length]!;
      n++;
      const k = byKey.get(key)!;
      const s = (bySecond[sec] ??= zero());
      k.sent++;
      s.sent++;
      if (inFlight[i]! >= maxInFlight) {
        k.skipped++;
        s.skipped++;
        continue;
      }
      inFlight[i]!++;
      const p = (async () => {
        try {
          const r = await pools[i]!.request({ path: '/bench', method: 'GET', headers: { 'x-tenant': key } });
          const body = await r.body.text();
          const field: keyof Counts = r.statusCode === 200 ? 'ok' : r.statusCode === 429 ? 'limited' : r.statusCode === 503 && body.includes('RATE_LIMIT_UNAVAILABLE') ? 'unavailable' : 'other';
          k[field]++;
          s[field]++;
        } catch {
          k.other++;
          s.other++;
        } finally {
          inFlight[i]!--;
        }
      })();
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const elapsed = (performance.now() - t0) / 1000;
  await Promise.all(pending);
  await Promise.all(pools.map((p) => p.close()));
  return { byKey, bySecond, elapsed };
}

function config(o: Options, upstream: string, redisUrl: string, routeName = 'api'): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    workers: o.workers,
    admin: { host: '127.0.0.1', port: 0 },
    redis: { url: redisUrl, instances: o.instances, onFailure: o.onFailure, lease: { ...(o.leaseAhead ? { ahead: o.leaseAhead } : {}), ...(o.leaseMin ? { min: o.leaseMin } : {}) } },
    upstreams: { app: { discovery: { type: 'static', endpoints: [upstream] } } },
    routes: [{ name: routeName, match: { path: '/' }, upstream: 'app', policies: [{ 'rate-limit': { name: 'tenant', key: 'header:x-tenant', rate: `${o.rate}/s`, burst: o.burst, scope: 'cluster', headers: false } }] }],
  };
}

function leaseAheadMs(o: Options): number {
  if (o.leaseAhead === null) return 250;
  const r = parseDuration(o.leaseAhead);
  if (!r.ok) throw new Error(`--lease-ahead: ${r.expected}`);
  return r.value;
}

async function waitFor<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const v = await read().catch(() => null as T | null);
    if (v !== null && ok(v)) return { value: v, ms: performance.now() - t0 };
    if (performance.now() - t0 > ms) throw new Error(`${what}: not reached in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const report: Record<string, unknown> = { options: o };
  const redis: RedisServer = await startRedis();
  const etcd: EtcdServer | null = o.etcd ? await startEtcd() : null;
  const up = await startUpstream((_req, res) => res.end('ok'));
  const instances: Instance[] = [];
  const stopAll = async (): Promise<void> => {
    for (const i of instances) i.proc.kill('SIGTERM');
    await Promise.all(instances.map((i) => new Promise((r) => (i.proc.exitCode !== null ? r(null) : i.proc.once('exit', r)))));
    await up.close();
    await redis.stop();
    await etcd?.stop();
  };
  try {
    const base = config(o, up.address, redis.url);
    const etcdUrl = etcd ? `etcd://127.0.0.1:${etcd.port}/fleet` : null;
    if (etcd) await etcd.put('/fleet/config', stringify(base));
    const file = writeConfig(base);
    console.log(`fleet: ${o.instances} instances × ${o.workers} worker, limit ${o.rate}/s burst ${o.burst} per key (${o.keys} key${o.keys > 1 ? 's' : ''}), load ${o.load}×, lease.ahead ${o.leaseAhead ?? '250ms'}, lease.min ${o.leaseMin ?? 8}, Redis ${redis.url}${etcdUrl ? `, config from ${etcdUrl}` : ''}`);
    // One at a time: on a 2-core machine parallel starts only slow each other down.
    for (let n = 0; n < o.instances; n++) instances.push(await launch(etcdUrl ? ['--config', etcdUrl, '--last-good', `${file}.last-good-${n}`] : ['--config', file]));
    for (const i of instances) await waitFor('Redis reachable', () => statusOf(i), (s) => s.cluster.reachable, 30_000);
    const keys = Array.from({ length: o.keys }, (_, k) => `tenant-${k}`);

    // ---- accuracy ------------------------------------------------------------------
    const evalBefore = await redis.commands('evalsha');
    const allBefore = await redis.commands();
    const perSecond = o.load * o.rate * o.keys;
    const run = await drive(instances, keys, perSecond, o.seconds * 1000);
    // Read at once: what the fleet still holds when the load stops is what it fell short by.
    const atEnd = (await Promise.all(instances.map(statusOf))).map((x) => x.cluster);
    const evals = (await redis.commands('evalsha')) - evalBefore;
    const all = (await redis.commands()) - allBefore - 1; // less the INFO of the first reading
    const expected = o.rate * run.elapsed + o.burst;
    const rows = [...run.byKey].map(([key, c]) => ({ key, ...c, expected: Math.round(expected), errorPercent: Math.round((1000 * (c.ok - expected)) / expected) / 10 }));
    const admitted = rows.reduce((s, r) => s + r.ok, 0);
    console.log(`\naccuracy over ${run.elapsed.toFixed(2)} s (expected = rate × t + burst = ${expected.toFixed(0)} per key):`);
    console.log('key          sent   admitted  limited  other  skipped  expected  error');
    for (const r of rows) console.log(`${r.key.padEnd(12)} ${String(r.sent).padStart(6)} ${String(r.ok).padStart(9)} ${String(r.limited).padStart(8)} ${String(r.other + r.unavailable).padStart(6)} ${String(r.skipped).padStart(8)} ${String(r.expected).padStart(9)}  ${r.errorPercent >= 0 ? '+' : ''}${r.errorPercent} %`);
    const per1k = (1000 * evals) / Math.max(1, admitted);
    console.log(`Redis: ${evals} EVALSHA (${all} commands counted by Redis, the script's own TIME/GET/SET included) for ${admitted} admitted = ${per1k.toFixed(1)} EVALSHA per 1,000 admitted (${((1000 * evals) / Math.max(1, rows.reduce((s, r) => s + r.sent, 0))).toFixed(1)} per 1,000 requests)`);
    const held = atEnd.reduce((a, c) => a + c.leasedTokens, 0);
    const reserved = atEnd.reduce((a, c) => a + c.reservedTokens, 0);
    const ex = (f: string): number => atEnd.reduce((a, c) => a + (c.exchanges[f] ?? 0), 0);
    const rtt = atEnd.reduce((a, c) => a + c.roundTripMs, 0) / atEnd.length;
    const bound = accuracyBound({ rate: o.rate, burst: o.burst, instances: o.instances, aheadMs: leaseAheadMs(o), minTokens: o.leaseMin ?? 8, maxTokens: 10_000 }, 50 + rtt, (o.load * o.rate) / o.instances);
    console.log(`exchanges: ${ex('grant')} granted at once, ${ex('reserve')} reserved, ${ex('wait')} answered "not yet", ${ex('settle')} only settling credit or returns; Redis round trip ${rtt.toFixed(1)} ms (mean of instances)`);
    console.log(`when the load stopped the instances held ${held} leased tokens and ${reserved} reserved (valid later); stated bound at the limit (each instance asked ${o.load}× its share): batch ${bound.batch}, low-water ${bound.low}, at most ${bound.fleet} tokens outside Redis (admitted ≥ ${(expected - bound.fleet).toFixed(0)} per key), ${bound.commandsPer1000.toFixed(0)} EVALSHA per 1,000 at one per batch`);
    const tok = (await Promise.all(instances.map(statusOf))).map((x) => x.cluster.tokens);
    const tsum = (f: keyof ClusterStatus['tokens']): number => tok.reduce((a, t) => a + t[f], 0);
    console.log(`leases over all instances: ${tsum('granted')} tokens granted, ${tsum('charged')} admitted on credit (charged), ${tsum('returned')} returned, ${tsum('expired')} expired`);
    report.accuracy = { elapsed: run.elapsed, expectedPerKey: expected, keys: rows, evalsha: evals, commands: all, evalshaPer1000Admitted: per1k, heldAtEnd: held, reservedAtEnd: reserved, exchanges: { grant: ex('grant'), reserve: ex('reserve'), wait: ex('wait'), settle: ex('settle') }, bound };

    // ---- Redis killed mid-load and restarted ------------------------------------------
    if (o.kill) {
      const killKeys = ['kill-test'];
      const KILL_AT = 4;
      const RESTART_AT = 9;
      const TOTAL = 15;
      let killedAt = 0;
      let restartedAt = 0;
      const failover: Promise<{ ms: number }>[] = [];
      const failback: Promise<{ ms: number }>[] = [];
      let killed = false;
      let killing: Promise<void> = Promise.resolve();
      let restoring: Promise<void> = Promise.resolve();
      let restarted = false;
      // `>=`: a starved load generator may skip a second's first iteration.
      const phase = drive(instances, killKeys, o.load * o.rate, TOTAL * 1000, (s) => {
        if (s >= KILL_AT && !killed) {
          killed = true;
          killedAt = performance.now();
          killing = redis.kill().then(() => {
            for (const i of instances) failover.push(waitFor('failover', () => statusOf(i), (x) => !x.cluster.reachable, 20_000));
          });
        }
        if (s >= RESTART_AT && killed && !restarted) {
          restarted = true;
          restartedAt = performance.now();
          restoring = killing.then(() => redis.restart()).then(() => {
            for (const i of instances) failback.push(waitFor('failback', () => statusOf(i), (x) => x.cluster.reachable && x.cluster.mode === 'lease', 30_000));
          });
        }
      });
      const k = await phase;
      await restoring;
      const over = await Promise.all(failover);
      const back = await Promise.all(failback);
      void killedAt;
      void restartedAt;
      console.log(`\nRedis killed at ${KILL_AT} s, restarted at ${RESTART_AT} s (onFailure ${o.onFailure}; limit ${o.rate}/s, load ${o.load * o.rate}/s):`);
      console.log('second  admitted  limited  unavailable  other');
      Array.from({ length: TOTAL }, (_, s) => k.bySecond[s] ?? zero()).forEach((c, s) => console.log(`${String(s).padStart(6)} ${String(c.ok).padStart(9)} ${String(c.limited).padStart(8)} ${String(c.unavailable).padStart(12)} ${String(c.other).padStart(6)}${s === KILL_AT ? '   ← kill' : s === RESTART_AT ? '   ← restart' : ''}`));
      const ms = (xs: { ms: number }[]): string => `max ${Math.max(...xs.map((x) => x.ms)).toFixed(0)} ms, median ${xs.map((x) => x.ms).sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(0)} ms`;
      console.log(`every instance in ${o.onFailure} mode after the kill: ${ms(over)} (status polled every 20 ms); back to leases after the restart: ${ms(back)}`);
      const transitions = (await Promise.all(instances.map(statusOf))).map((s) => s.cluster.transitions);
      console.log(`transitions per instance: ${transitions.join(' ')}`);
      report.redisKill = { killAt: KILL_AT, restartAt: RESTART_AT, bySecond: k.bySecond, failoverMs: over.map((x) => x.ms), failbackMs: back.map((x) => x.ms), transitions };
    }

    // ---- etcd: a config change to every worker of every instance ------------------------
    if (etcd) {
      const samples: number[] = [];
      for (let n = 1; n <= 5; n++) {
        const name = `api-v${n}`;
        const t0 = performance.now();
        await etcd.put('/fleet/config', stringify(config(o, up.address, redis.url, name)));
        await Promise.all(instances.map((i) => waitFor('config on every worker', () => statusOf(i), (s) => s.routes[0]?.name === name && s.workers.every((w) => w.generation === s.generation), 30_000)));
        samples.push(performance.now() - t0);
      }
      const sorted = [...samples].sort((a, b) => a - b);
      console.log(`\netcd put → every worker of all ${o.instances} instances on the new config: ${samples.map((s) => s.toFixed(0)).join(', ')} ms (median ${sorted[2]!.toFixed(0)} ms; /status polled every 20 ms per instance)`);
      report.etcd = { samplesMs: samples };
    }
    if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2));
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('fleet:', err);
    process.exit(1);
  },
);
