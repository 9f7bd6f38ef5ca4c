// `npm run bench -- --scenario overload`: a capacity-limited upstream (the fault
// upstream: C slots, S ms each) offered a multiple of its capacity by an open-loop
// generator, a share of it critical, through each peer in turn. Per peer: goodput,
// critical success and p99, how fast rejections are, how long the upstream queue grew,
// and how soon full admission returns after the overload ends.
//
// Phases (by due time): `before` s at half capacity, `overload` s at --offered × capacity,
// `after` s at half capacity. Each peer gets a fresh upstream process, so no backlog or
// counter carries over from the peer before it.
import { readFlags } from '../flags.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { describeMachine } from '../machine.js';
import { BENCH_DIST, BENCH_SRC, REPO_ROOT } from '../paths.js';
import { setTidegateCli, tidegateCli } from '../peers/tidegate.js';
import type { RunningPeer } from '../peers/peer.js';
import { start, stop, type Child } from '../processes.js';
import { percentileSorted } from '../stats.js';
import { timeSeriesChart } from '../svg.js';
import type { GeneratorOutput, GeneratorPlan } from './generator.js';
import { OVERLOAD_PEERS, type UpstreamModel } from './peers.js';

export interface OverloadOptions {
  peers: string[];
  capacity: number;
  serviceMs: number;
  /** offered load during the overload phase, × capacity */
  offered: number;
  criticalPct: number;
  beforeS: number;
  overloadS: number;
  afterS: number;
  timeoutMs: number;
  workers: number;
  connections: number;
  out: string | undefined;
  tidegateCli: string | undefined;
}

export const OVERLOAD_USAGE = `npm run bench -- --scenario overload [flags]

  --peers a,b          peers (default all): ${OVERLOAD_PEERS.map((p) => p.name).join(', ')}
  --capacity N         upstream slots C (default 8)
  --service MS         upstream service time S in ms (default 20)
  --offered X          overload offered load, × capacity C/S (default 3)
  --critical PCT       share of requests to /critical/ (default 10)
  --before S / --overload S / --after S   phase lengths in s (default 3 / 10 / 5)
  --timeout MS         client deadline per request, from when it was due (default 2000)
  --workers N          proxy workers (default 2)
  --connections N      generator connection cap (default 1024)
  --tidegate PATH      tidegate cli.js to measure;  --out DIR  results folder`;

export function parseOverloadOptions(argv: string[]): OverloadOptions {
  const o: OverloadOptions = { peers: OVERLOAD_PEERS.map((p) => p.name), capacity: 8, serviceMs: 20, offered: 3, criticalPct: 10, beforeS: 3, overloadS: 10, afterS: 5, timeoutMs: 2000, workers: 2, connections: 1024, out: undefined, tidegateCli: undefined };
  for (const { flag, value, num } of readFlags(argv)) {
    switch (flag) {
      case '--scenario':
        value();
        break;
      case '--peers':
        o.peers = value().split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--capacity': o.capacity = num(1); break;
      case '--service': o.serviceMs = num(1); break;
      case '--offered': o.offered = num(0.1); break;
      case '--critical': o.criticalPct = num(1); break;
      case '--before': o.beforeS = num(0); break;
      case '--overload': o.overloadS = num(1); break;
      case '--after': o.afterS = num(1); break;
      case '--timeout': o.timeoutMs = num(10); break;
      case '--workers': o.workers = num(1); break;
      case '--connections': o.connections = num(1); break;
      case '--tidegate': o.tidegateCli = value(); break;
      case '--out': o.out = value(); break;
      case '--help':
      case '-h':
        console.log(OVERLOAD_USAGE);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag "${flag}"\n\n${OVERLOAD_USAGE}`);
    }
  }
  for (const p of o.peers) if (!OVERLOAD_PEERS.some((d) => d.name === p)) throw new Error(`unknown overload peer "${p}" (known: ${OVERLOAD_PEERS.map((d) => d.name).join(', ')})`);
  return o;
}

function log(msg: string): void {
  process.stderr.write(`[overload ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

interface QueueSample {
  /** s since the generator's start */
  t: number;
  queuedNow: number;
  inService: number;
}

export interface PeerOutcome {
  name: string;
  description: string;
  state: 'ok' | 'pending' | 'unavailable' | 'failed';
  reason?: string;
  version?: string;
  overload?: {
    offeredRps: number;
    goodputRps: number;
    goodputPctOfCapacity: number;
    criticalSent: number;
    criticalSuccessPct: number;
    criticalP50Ms: number;
    criticalP99Ms: number;
    bulkSuccessPct: number;
    rejected: number;
    rejectedP50Ms: number;
    rejectedP99Ms: number;
    rejectStatuses: Record<string, number>;
    timeoutsOrErrors: number;
  };
  errors?: Record<string, number>;
  /** s after the overload ended until every later 250 ms bin had ≥ 95 % 2xx; null = not within the after phase */
  recoveryS?: number | null;
  /** 2xx share of the requests due in the after phase (half capacity) */
  afterSuccessPct?: number;
  upstreamMaxQueue?: number;
  upstreamServed?: number;
  /** the fault upstream's counters at the end (served, abandoned, rejected, …) */
  upstreamCounters?: Record<string, number>;
  maxSendLagMs?: number;
  queue?: QueueSample[];
  /** 2xx per second in 250 ms bins, by when they were answered */
  goodputSeries?: { t: number; y: number }[];
}

function sorted(xs: number[]): Float64Array {
  return Float64Array.from(xs).sort();
}

export function summarise(g: GeneratorOutput, o: OverloadOptions): Pick<PeerOutcome, 'overload' | 'recoveryS' | 'afterSuccessPct' | 'goodputSeries' | 'errors' | 'maxSendLagMs'> {
  const capacityRps = (o.capacity * 1000) / o.serviceMs;
  const from = o.beforeS * 1000;
  const to = from + o.overloadS * 1000;
  let ok = 0;
  let critSent = 0;
  let critOk = 0;
  let bulkSent = 0;
  let bulkOk = 0;
  let lost = 0;
  const critLat: number[] = [];
  const rejLat: number[] = [];
  const rejectStatuses: Record<string, number> = {};
  for (let i = 0; i < g.dueMs.length; i++) {
    const due = g.dueMs[i]!;
    if (due < from || due >= to) continue;
    const s = g.status[i]!;
    const good = s >= 200 && s < 300;
    if (good) ok++;
    if (g.critical[i]) {
      critSent++;
      if (good) {
        critOk++;
        critLat.push(g.latencyMs[i]!);
      }
    } else {
      bulkSent++;
      if (good) bulkOk++;
    }
    if (s > 0 && !good) {
      rejLat.push(g.latencyMs[i]!);
      rejectStatuses[s] = (rejectStatuses[s] ?? 0) + 1;
    }
    if (s <= 0) lost++;
  }
  const cl = sorted(critLat);
  const rl = sorted(rejLat);
  // goodput over time and recovery, in 250 ms bins by due time
  const bin = 250;
  const bins = Math.ceil((o.beforeS + o.overloadS + o.afterS) * 1000 / bin);
  const sent = new Array<number>(bins).fill(0);
  const good = new Array<number>(bins).fill(0);
  // goodput over time counts answers when they arrive; success shares go by due time
  const answered = new Array<number>(bins + Math.ceil(o.timeoutMs / bin) + 1).fill(0);
  for (let i = 0; i < g.dueMs.length; i++) {
    const b = Math.min(bins - 1, Math.floor(g.dueMs[i]! / bin));
    sent[b]!++;
    const s = g.status[i]!;
    if (s >= 200 && s < 300) {
      good[b]!++;
      const a = Math.min(answered.length - 1, Math.floor((g.dueMs[i]! + g.latencyMs[i]!) / bin));
      answered[a]!++;
    }
  }
  let recoveryS: number | null = null;
  const firstAfter = Math.floor(to / bin);
  for (let b = firstAfter; b < bins; b++) {
    let allGood = true;
    // 95 %, not 100 %: a static limit may reject a few at half load when arrivals bunch
    for (let k = b; k < bins; k++) if (sent[k]! > 0 && good[k]! / sent[k]! < 0.95) allGood = false;
    if (allGood) {
      recoveryS = ((b - firstAfter) * bin) / 1000;
      break;
    }
  }
  let afterSent = 0;
  let afterGood = 0;
  for (let b = firstAfter; b < bins; b++) {
    afterSent += sent[b]!;
    afterGood += good[b]!;
  }
  return {
    afterSuccessPct: afterSent ? (100 * afterGood) / afterSent : NaN,
    overload: {
      offeredRps: capacityRps * o.offered,
      goodputRps: ok / o.overloadS,
      goodputPctOfCapacity: (100 * ok) / o.overloadS / capacityRps,
      criticalSent: critSent,
      criticalSuccessPct: critSent ? (100 * critOk) / critSent : NaN,
      criticalP50Ms: percentileSorted(cl, 50),
      criticalP99Ms: percentileSorted(cl, 99),
      bulkSuccessPct: bulkSent ? (100 * bulkOk) / bulkSent : NaN,
      rejected: rl.length,
      rejectedP50Ms: percentileSorted(rl, 50),
      rejectedP99Ms: percentileSorted(rl, 99),
      rejectStatuses,
      timeoutsOrErrors: lost,
    },
    recoveryS,
    goodputSeries: answered.map((v, b) => ({ t: (b * bin) / 1000, y: v * (1000 / bin) })),
    errors: g.errors,
    maxSendLagMs: g.maxSendLagMs,
  };
}

async function startFaultUpstreamProcess(o: OverloadOptions, workDir: string): Promise<{ child: Child; port: number; url: string }> {
  const child = start('fault-upstream', process.execPath, [tidegateCli(), 'fault-upstream', '--port', '0', '--capacity', String(o.capacity), '--service', `${o.serviceMs}ms`], { logFile: join(workDir, 'fault-upstream.log') });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = /"event":"fault-upstream-started".*?"port":(\d+)/.exec(child.stdout);
    if (m) return { child, port: Number(m[1]), url: `http://127.0.0.1:${m[1]}` };
    if (child.proc.exitCode !== null) throw new Error(`fault upstream exited: ${child.stderr.slice(-1000)}`);
    if (Date.now() > deadline) throw new Error(`fault upstream did not start in 15 s: ${child.stderr.slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
  return { status: r.statusCode, body: await r.body.text() };
}

async function measurePeer(def: (typeof OVERLOAD_PEERS)[number], o: OverloadOptions, workRoot: string): Promise<PeerOutcome> {
  const workDir = join(workRoot, def.name);
  mkdirSync(workDir, { recursive: true });
  const outcome: PeerOutcome = { name: def.name, description: def.description, state: 'ok' };
  const a = await def.available(workDir);
  if (!a.ok) {
    outcome.state = a.pending ? 'pending' : 'unavailable';
    outcome.reason = a.reason;
    log(`${def.name}: ${outcome.state} — ${a.reason}`);
    return outcome;
  }
  outcome.version = a.version;
  const up = await startFaultUpstreamProcess(o, workDir);
  let peer: RunningPeer | undefined;
  const model: UpstreamModel = { capacity: o.capacity, serviceMs: o.serviceMs, criticalShare: o.criticalPct / 100 };
  try {
    peer = await def.start({ upstreamPort: up.port, workers: o.workers, cpus: undefined, workDir, model });
    for (const path of ['/critical/check', '/bulk/check']) {
      const r = await get(`http://127.0.0.1:${peer.port}${path}`);
      if (r.status !== 200 || !r.body.includes(`"path":"${path}"`)) throw new Error(`${path} answered ${r.status} ${r.body.slice(0, 200)}`);
    }
    await request(`${up.url}/_fault/reset`, { method: 'POST' }).then((r) => r.body.dump());
    log(`${def.name}: up on ${peer.port}, upstream on ${up.port}; ${o.beforeS}+${o.overloadS}+${o.afterS} s`);

    const capacityRps = (o.capacity * 1000) / o.serviceMs;
    const outFile = join(workDir, 'generator.json');
    const plan: GeneratorPlan = {
      url: `http://127.0.0.1:${peer.port}`,
      phases: [
        { name: 'before', rate: capacityRps / 2, durationS: o.beforeS },
        { name: 'overload', rate: capacityRps * o.offered, durationS: o.overloadS },
        { name: 'after', rate: capacityRps / 2, durationS: o.afterS },
      ].filter((p) => p.durationS > 0),
      criticalEvery: Math.round(100 / o.criticalPct),
      timeoutMs: o.timeoutMs,
      connections: o.connections,
      out: outFile,
    };
    const gen = start(`${def.name} generator`, process.execPath, [join(BENCH_DIST, 'overload', 'generator.js'), JSON.stringify(plan)], { keep: 1024 * 1024 });
    // Sample the upstream's queue every 100 ms until the generator is done.
    const samples: { epoch: number; queuedNow: number; inService: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const t = Date.now();
        try {
          const r = await get(`${up.url}/_fault`);
          const c = (JSON.parse(r.body) as { counters: { queuedNow: number; inService: number } }).counters;
          samples.push({ epoch: t, queuedNow: c.queuedNow, inService: c.inService });
        } catch {
          /* a missed sample stays a gap in the chart */
        }
        await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t))));
      }
    })();
    const code = await gen.exited;
    sampling = false;
    await sampler;
    if (code !== 0) throw new Error(`generator exited with ${code}: ${gen.stderr.slice(-1500)}`);
    const g = JSON.parse(readFileSync(outFile, 'utf8')) as GeneratorOutput;
    Object.assign(outcome, summarise(g, o));
    outcome.queue = samples.map((s) => ({ t: +((s.epoch - g.startEpochMs) / 1000).toFixed(2), queuedNow: s.queuedNow, inService: s.inService })).filter((s) => s.t >= 0);
    const counters = (JSON.parse((await get(`${up.url}/_fault`)).body) as { counters: Record<string, number> & { maxQueue: number; served: number } }).counters;
    outcome.upstreamCounters = counters;
    outcome.upstreamMaxQueue = counters.maxQueue;
    outcome.upstreamServed = counters.served;
    const ov = outcome.overload!;
    log(
      `${def.name}: goodput ${ov.goodputRps.toFixed(0)}/s (${ov.goodputPctOfCapacity.toFixed(0)} % of capacity), critical ${ov.criticalSuccessPct.toFixed(1)} % ok, p99 ${ov.criticalP99Ms.toFixed(1)} ms, rejected ${ov.rejected} (p50 ${ov.rejectedP50Ms.toFixed(2)} ms), lost ${ov.timeoutsOrErrors}, upstream served ${counters.served} (client gone: ${counters.abandoned} in its queue, ${counters.goneInService} in service), max queue ${counters.maxQueue}, generator lag ≤ ${g.maxSendLagMs} ms, recovery ${outcome.recoveryS ?? 'none'} s`,
    );
  } catch (e) {
    outcome.state = 'failed';
    outcome.reason = (e as Error).message.slice(0, 500);
    log(`${def.name}: failed — ${outcome.reason}`);
  } finally {
    await peer?.stop();
    await stop(up.child, 'SIGTERM', 3_000);
  }
  return outcome;
}

/** a generator further behind its schedule than this was short of CPU: its lag is in the figures */
const LAG_LIMIT_MS = 100;

const f1 = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(1) : '–');
const f2 = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(2) : '–');

export function overloadTable(peers: PeerOutcome[], o: OverloadOptions): string[] {
  const capacityRps = (o.capacity * 1000) / o.serviceMs;
  const out = [
    `Upstream C = ${o.capacity}, S = ${o.serviceMs} ms (capacity ${capacityRps.toFixed(0)} req/s), offered ${o.offered}× = ${(capacityRps * o.offered).toFixed(0)} req/s for ${o.overloadS} s, ${o.criticalPct} % critical; client deadline ${o.timeoutMs} ms; ${o.workers} proxy workers. Figures over the overload phase (by due time); latency from when each request was due.`,
    '',
    '| peer | goodput 2xx/s | % of capacity | critical ok | critical p50 / p99 ms | bulk ok | fast rejections | rejection p50 / p99 ms | timeouts + errors | upstream max queue | recovery s | ok after | generator lag ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const p of peers) {
    const ov = p.overload;
    if (p.state !== 'ok' || !ov) {
      out.push(`| ${p.name} | ${p.state}: ${(p.reason ?? '').replace(/\s+/g, ' ').replace(/\|/g, '\\|').slice(0, 200)} | | | | | | | | | | | |`);
      continue;
    }
    const statuses = Object.entries(ov.rejectStatuses).map(([s, n]) => `${n}×${s}`).join(', ');
    out.push(
      `| ${p.name} | ${ov.goodputRps.toFixed(0)} | ${ov.goodputPctOfCapacity.toFixed(0)} % | ${f1(ov.criticalSuccessPct)} % | ${f1(ov.criticalP50Ms)} / ${f1(ov.criticalP99Ms)} | ${f1(ov.bulkSuccessPct)} % | ${ov.rejected}${statuses ? ` (${statuses})` : ''} | ${f2(ov.rejectedP50Ms)} / ${f2(ov.rejectedP99Ms)} | ${ov.timeoutsOrErrors} | ${p.upstreamMaxQueue ?? '–'} | ${p.recoveryS === null ? `> ${o.afterS}` : f2(p.recoveryS)} | ${f1(p.afterSuccessPct)} % | ${f1(p.maxSendLagMs)}${(p.maxSendLagMs ?? 0) > LAG_LIMIT_MS ? ' ⚠' : ''} |`,
    );
  }
  return out;
}

export async function runOverload(argv: string[]): Promise<void> {
  const o = parseOverloadOptions(argv);
  if (o.tidegateCli) setTidegateCli(resolve(o.tidegateCli));
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const outDir = resolve(o.out ?? join(BENCH_SRC, 'results', `${stamp}-overload`));
  const workRoot = join(outDir, 'work');
  mkdirSync(workRoot, { recursive: true });
  const machine = await describeMachine();
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  const startedAt = new Date().toISOString();
  const peers: PeerOutcome[] = [];
  for (const name of o.peers) peers.push(await measurePeer(OVERLOAD_PEERS.find((p) => p.name === name)!, o, workRoot));
  const commit = spawnSync('git', ['-C', REPO_ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  const results = { scenario: 'overload', startedAt, finishedAt: new Date().toISOString(), command: `npm run bench -- ${argv.join(' ')}`, options: o, machine, tidegate: { cli: tidegateCli(), commit }, loadAverageAtEnd: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number), peers };
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2));
  const measured = peers.filter((p) => p.state === 'ok');
  const bands = [{ from: o.beforeS, to: o.beforeS + o.overloadS, label: `offered ${o.offered}× capacity` }];
  writeFileSync(
    join(outDir, 'upstream-queue.svg'),
    timeSeriesChart({ title: 'Upstream queue length (requests waiting for a slot), sampled every 100 ms', xLabel: 'seconds', yLabel: 'queued at the upstream', bands, series: measured.map((p) => ({ name: p.name, points: (p.queue ?? []).map((s) => ({ x: s.t, y: s.queuedNow })) })) }),
  );
  writeFileSync(
    join(outDir, 'goodput.svg'),
    timeSeriesChart({ title: 'Goodput (2xx answered per second, 250 ms bins)', xLabel: 'seconds', yLabel: '2xx per second', bands, series: measured.map((p) => ({ name: p.name, points: (p.goodputSeries ?? []).map((s) => ({ x: s.t, y: s.y })) })) }),
  );
  const report = [
    `## Overload — ${startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `\`${results.command}\` on ${machine.cpuModel}, ${machine.cores} cores (shared: the generator, the upstream and the proxy run on the same cores), tidegate ${commit}.`,
    '',
    ...overloadTable(peers, o),
    '',
    `"fast rejections": answers other than 2xx (the peer, or the upstream's own queue-full 503). "recovery": seconds after the overload ended until every later 250 ms bin had ≥ 95 % 2xx; "ok after": 2xx share of the requests due after the overload (offered half capacity). "generator lag": how far the sender fell behind its schedule at worst; ⚠ above ${LAG_LIMIT_MS} ms — the sender was short of CPU (the host's other work, or on a shared machine the peer itself) and its lag is in the latencies: rerun, or compare with care.`,
    '',
    '![upstream queue](upstream-queue.svg) ![goodput](goodput.svg)',
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'report.md'), report);
  process.stdout.write(`${report}\n`);
  log(`results in ${outDir}: results.json, report.md, upstream-queue.svg, goodput.svg`);
}

