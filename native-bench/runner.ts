#!/usr/bin/env node
// `npm run bench`: starts the upstream and every peer on loopback, verifies their
// answers, measures them in one interleaved run, and writes results.json, report.md and
// SVG charts to native-bench/results/<timestamp>/. Every process it starts is stopped at
// the end, on an error, and on Ctrl-C.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SizeName } from './bodies.js';
import { openLoop } from './load/h2load.js';
import { runOverload } from './overload/run.js';
import { runCacheBench } from './cache/run.js';
import { runSoak } from './soak.js';
import { wrk } from './load/wrk.js';
import { describeMachine, missingTools, planCpus, type CpuPlan } from './machine.js';
import { parseOptions, type Options } from './options.js';
import { BENCH_SRC, REPO_ROOT, commitOf } from './paths.js';
import { peerByName } from './peers/index.js';
import type { PeerDefinition, RunningPeer } from './peers/peer.js';
import { setCheckDir, setTidegateCli, tidegateCli, type TidegateContext } from './peers/tidegate.js';
import { sampleTree } from './proc-stats.js';
import { killAllNow, stopAll } from './processes.js';
import { profileTidegate } from './profile.js';
import { writeReport } from './report.js';
import type { BenchResults, ClosedPoint, ClosedRun, OpenPoint, PeerStatus } from './results.js';
import { spread } from './stats.js';
import { startUpstream } from './upstream.js';
import { verifyBodies } from './verify.js';

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

interface Live {
  def: PeerDefinition;
  peer: RunningPeer;
}

async function startPeer(def: PeerDefinition, o: { upstreamPort: number; workers: number; plan: CpuPlan; workDir: string; profileDir?: string }): Promise<RunningPeer> {
  const ctx: TidegateContext = { upstreamPort: o.upstreamPort, workers: o.workers, cpus: o.plan.proxy, workDir: o.workDir, profileDir: o.profileDir };
  return def.start(ctx);
}

async function closedRun(live: Live, size: SizeName, close: boolean, opts: Options, plan: CpuPlan, durationS: number): Promise<ClosedRun> {
  const { peer } = live;
  const base = { port: peer.port, scheme: peer.scheme, path: `/${size}`, threads: plan.loadCores, connections: opts.connections, close, cpus: plan.load };
  if (opts.warmupS > 0) await wrk({ ...base, durationS: opts.warmupS });
  const before = peer.pid ? sampleTree(peer.pid) : undefined;
  const wb = peer.workerRequests ? await peer.workerRequests() : undefined;
  const r = await wrk({ ...base, durationS });
  const after = peer.pid ? sampleTree(peer.pid) : undefined;
  const wa = peer.workerRequests ? await peer.workerRequests() : undefined;
  // negative only if processes of the tree vanished mid-run (a crash, or Ctrl-C): no number then
  const cpuSeconds = before && after && after.cpuSeconds >= before.cpuSeconds ? after.cpuSeconds - before.cpuSeconds : null;
  const run: ClosedRun = {
    wrk: r,
    cpuSeconds,
    cpuMsPer1k: cpuSeconds !== null && r.requests > 0 ? (cpuSeconds * 1000) / (r.requests / 1000) : null,
    rssBytes: after ? after.rssBytes : null,
  };
  if (wa && wb) run.workerRequests = wa.map((v, i) => v - (wb[i] ?? 0));
  return run;
}

function summariseClosed(peer: string, size: SizeName, mode: 'keepalive' | 'close', workers: number, runs: ClosedRun[]): ClosedPoint {
  const rss = runs.map((r) => r.rssBytes).filter((x): x is number => x !== null);
  return {
    peer,
    size,
    mode,
    workers,
    runs,
    rps: spread(runs.map((r) => r.wrk.rps)),
    cpuMsPer1k: spread(runs.map((r) => r.cpuMsPer1k ?? NaN)),
    rssMiB: rss.length ? Math.max(...rss) / 2 ** 20 : null,
    errors: runs.reduce((s, r) => s + r.wrk.errors.connect + r.wrk.errors.read + r.wrk.errors.write + r.wrk.errors.timeout, 0),
    non2xx: runs.reduce((s, r) => s + r.wrk.non2xx, 0),
    p99Us: spread(runs.map((r) => r.wrk.latencyUs.p99)),
  };
}

/** `--scenario NAME` picks a scenario other than the default peer comparison. */
function scenarioOf(argv: string[]): string | undefined {
  const i = argv.findIndex((a) => a === '--scenario' || a.startsWith('--scenario='));
  if (i < 0) return undefined;
  return argv[i]!.includes('=') ? argv[i]!.slice(argv[i]!.indexOf('=') + 1) : argv[i + 1];
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const scenario = scenarioOf(argv);
  if (scenario === 'overload') return runOverload(argv);
  if (scenario === 'cache') return runCacheBench(argv);
  if (scenario === 'soak') return runSoak(argv);
  if (scenario !== undefined) throw new Error(`unknown scenario "${scenario}" (known: overload, cache, soak; without --scenario: the peer comparison)`);
  const preliminary = planCpus(argv.includes('--no-pin'));
  const opts = parseOptions(argv, preliminary.proxyCores);
  const plan = planCpus(opts.noPin);

  const missing = await missingTools();
  if (missing.length) {
    const script = join(REPO_ROOT, 'scripts', 'install-bench-deps.sh');
    if (!opts.install) {
      console.error(`native-bench: missing tools: ${missing.join(', ')}.\nInstall them with:\n  bash ${script}\n(or run: npm run bench -- --install)`);
      process.exit(1);
    }
    log(`installing missing tools (${missing.join(', ')}) with ${script}`);
    const r = spawnSync('bash', [script], { stdio: 'inherit' });
    if (r.status !== 0) process.exit(1);
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  // absolute: nginx resolves relative paths against its prefix, not our cwd
  const outDir = resolve(opts.out ?? join(BENCH_SRC, 'results', stamp));
  const workRoot = join(outDir, 'work');
  mkdirSync(workRoot, { recursive: true });
  setCheckDir(workRoot);
  if (opts.tidegateCli) setTidegateCli(resolve(opts.tidegateCli));

  const startedAt = new Date().toISOString();
  const machine = await describeMachine();
  log(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.kernel}, node ${machine.node}`);
  log(plan.note);

  const upstream = await startUpstream(join(workRoot, 'upstream'), plan.upstreamCores, plan.upstream);
  log(`upstream nginx on 127.0.0.1:${upstream.port} (${upstream.workers} workers)`);

  // Which peers can run here.
  const statuses: PeerStatus[] = [];
  const runnable: PeerDefinition[] = [];
  for (const name of opts.peers) {
    const def = peerByName(name)!;
    const a = await def.available();
    const st: PeerStatus = { name, description: def.description, version: a.ok ? a.version : '', state: a.ok ? 'ok' : a.pending ? 'pending' : 'unavailable', verification: {} };
    if (!a.ok) {
      st.reason = a.reason;
      log(`${name}: ${st.state} — ${a.reason}`);
    } else runnable.push(def);
    statuses.push(st);
  }
  const statusOf = (n: string): PeerStatus => statuses.find((s) => s.name === n)!;

  // Phase 1: all peers up at once (idle peers cost nothing), verified, then measured
  // interleaved — repeat × size × peer — so drift on a noisy host spreads over all peers.
  const lives: Live[] = [];
  const started = await Promise.all(
    runnable.map(async (def) => {
      try {
        return { def, peer: await startPeer(def, { upstreamPort: upstream.port, workers: opts.workers, plan, workDir: join(workRoot, `${def.name}-w${opts.workers}`) }) };
      } catch (e) {
        const st = statusOf(def.name);
        st.state = 'failed';
        st.reason = (e as Error).message.slice(0, 500);
        log(`${def.name}: failed to start — ${st.reason}`);
        return undefined;
      }
    }),
  );
  for (const s of started) {
    if (!s) continue;
    const { def, peer } = s;
    const sizes = [...new Set([...opts.sizes, opts.mainSize])];
    let bad = false;
    for (const size of sizes) {
      const v = await verifyBodies(peer.port, size, opts.verifySamples, peer.scheme);
      statusOf(def.name).verification[size] = v;
      if (v.failures.length) bad = true;
    }
    if (bad) {
      const st = statusOf(def.name);
      st.state = 'failed';
      st.reason = `wrong answers: ${Object.entries(st.verification).flatMap(([sz, v]) => v!.failures.map((f) => `${sz}: ${f}`)).slice(0, 5).join('; ')}`;
      log(`${def.name}: ${st.reason} — not measured`);
      await peer.stop();
      continue;
    }
    log(`${def.name}: up on ${peer.port} (${peer.workers ? `${peer.workers} worker(s)` : 'no proxy'}), ${opts.verifySamples} bodies per size verified`);
    lives.push({ def, peer });
  }

  const throughput: ClosedPoint[] = [];
  const modes: ('keepalive' | 'close')[] = opts.close ? ['keepalive', 'close'] : ['keepalive'];
  for (const mode of modes) {
    const sizes = mode === 'close' ? [opts.mainSize] : opts.sizes;
    const runs = new Map<string, ClosedRun[]>();
    for (let r = 0; r < opts.repeats; r++) {
      for (const size of sizes) {
        for (const live of lives) {
          const run = await closedRun(live, size, mode === 'close', opts, plan, opts.durationS);
          const k = `${live.def.name}|${size}`;
          runs.set(k, [...(runs.get(k) ?? []), run]);
          log(`${mode} ${size} ${live.def.name} #${r + 1}: ${Math.round(run.wrk.rps)} rps, non-2xx ${run.wrk.non2xx}, errors ${run.wrk.errors.connect + run.wrk.errors.read + run.wrk.errors.write + run.wrk.errors.timeout}${run.cpuMsPer1k !== null ? `, ${run.cpuMsPer1k.toFixed(1)} ms CPU/1k` : ''}${run.workerRequests ? `, per worker ${run.workerRequests.join('/')}` : ''}`);
        }
      }
    }
    for (const size of sizes) for (const live of lives) throughput.push(summariseClosed(live.def.name, size, mode, live.peer.workers, runs.get(`${live.def.name}|${size}`) ?? []));
  }

  // Phase 2: open-loop latency at fixed shares of the lowest peer's max.
  const latency: OpenPoint[] = [];
  let latencyBase: BenchResults['latencyBase'] = null;
  if (opts.ratesPct.length) {
    const candidates = throughput.filter((t) => t.mode === 'keepalive' && t.size === opts.mainSize && t.peer !== 'direct' && Number.isFinite(t.rps.median));
    if (candidates.length) {
      const lowest = candidates.reduce((a, b) => (b.rps.median < a.rps.median ? b : a));
      latencyBase = { peer: lowest.peer, rps: lowest.rps.median };
      log(`open loop: rates ${opts.ratesPct.join('/')} % of ${lowest.peer}'s ${Math.round(lowest.rps.median)} rps`);
      for (const pct of opts.ratesPct) {
        const rate = Math.max(1, Math.round((lowest.rps.median * pct) / 100));
        const runs = new Map<string, OpenPoint['runs']>();
        for (let r = 0; r < opts.repeats; r++) {
          for (const live of lives) {
            const res = await openLoop({ port: live.peer.port, scheme: live.peer.scheme, path: `/${opts.mainSize}`, rate, durationS: opts.latencyDurationS, warmupS: Math.max(1, opts.warmupS), threads: plan.loadCores, cpus: plan.load, logDir: workRoot });
            runs.set(live.def.name, [...(runs.get(live.def.name) ?? []), res]);
            log(`open ${pct}% (${res.targetRps} rps) ${live.def.name} #${r + 1}: p50 ${(res.latencyUs.p50 / 1000).toFixed(2)} ms, p99 ${(res.latencyUs.p99 / 1000).toFixed(2)} ms, achieved ${Math.round(res.achievedRps)}${res.fellBehind ? ' FELL BEHIND' : ''}, non-2xx ${res.non2xx}, failed ${res.failed}`);
          }
        }
        for (const live of lives) {
          const rs = runs.get(live.def.name) ?? [];
          latency.push({
            peer: live.def.name,
            size: opts.mainSize,
            ratePct: pct,
            targetRps: rs[0]?.targetRps ?? rate,
            runs: rs,
            p50Us: spread(rs.map((x) => x.latencyUs.p50)),
            p90Us: spread(rs.map((x) => x.latencyUs.p90)),
            p99Us: spread(rs.map((x) => x.latencyUs.p99)),
            p999Us: spread(rs.map((x) => x.latencyUs.p999)),
            maxUs: spread(rs.map((x) => x.latencyUs.max)),
            achievedRps: spread(rs.map((x) => x.achievedRps)),
            fellBehind: rs.some((x) => x.fellBehind),
            errors: rs.reduce((s, x) => s + x.non2xx + x.failed, 0),
          });
        }
      }
    }
  }
  for (const live of lives) await live.peer.stop();

  // Phase 3: worker sweep, one peer at a time (a peer's CPU count changes per point).
  const sweep: ClosedPoint[] = [];
  const sweepDefs = opts.sweepPeers.map((n) => peerByName(n)!).filter((d) => d.scalable && runnable.includes(d) && statusOf(d.name).state === 'ok');
  for (const w of opts.sweep) {
    for (const def of sweepDefs) {
      let peer: RunningPeer | undefined;
      try {
        peer = await startPeer(def, { upstreamPort: upstream.port, workers: w, plan, workDir: join(workRoot, `${def.name}-sweep-w${w}`) });
        const runs: ClosedRun[] = [];
        for (let r = 0; r < opts.repeats; r++) runs.push(await closedRun({ def, peer }, opts.mainSize, false, opts, plan, opts.durationS));
        const p = summariseClosed(def.name, opts.mainSize, 'keepalive', w, runs);
        sweep.push(p);
        log(`sweep ${def.name} ${w} workers: ${Math.round(p.rps.median)} rps (median of ${runs.length})`);
      } catch (e) {
        log(`sweep ${def.name} ${w} workers failed: ${(e as Error).message.slice(0, 300)}`);
      } finally {
        await peer?.stop();
      }
    }
  }

  // Optional: where tidegate's worker time goes.
  let profile: BenchResults['profile'] = null;
  if (opts.profile && runnable.some((d) => d.name === 'tidegate')) {
    try {
      profile = await profileTidegate({ upstreamPort: upstream.port, workers: opts.workers, plan, opts, dir: join(outDir, 'profile'), workDir: join(workRoot, 'tidegate-profile') });
      log(`profile: ${profile.files.length} worker-thread profiles in ${join(outDir, 'profile')}`);
    } catch (e) {
      log(`profile failed (the measurements above stand): ${(e as Error).message.slice(0, 500)}`);
    }
  }

  await upstream.stop();
  const results: BenchResults = {
    startedAt,
    finishedAt: new Date().toISOString(),
    loadAverageAtEnd: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number),
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    options: opts,
    machine,
    cpuPlan: plan,
    upstream: { workers: upstream.workers, cpus: plan.upstream },
    tidegate: { cli: tidegateCli(), commit: commitOf(tidegateCli()) },
    peers: statuses,
    throughput,
    latency,
    latencyBase,
    sweep,
    profile,
  };
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2));
  const files = writeReport(results, outDir);
  process.stdout.write(`${readFileSync(join(outDir, 'report.md'), 'utf8')}\n`);
  log(`results in ${outDir}: results.json, ${files.join(', ')}`);
}

// Ctrl-C / SIGTERM: stop every child, then leave. 'exit' catches whatever is left.
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) {
      killAllNow();
      process.exit(130);
    }
    interrupted = true;
    log(`${sig}: stopping every process the bench started`);
    void stopAll().finally(() => process.exit(130));
  });
}
process.on('exit', killAllNow);

main().then(
  () => stopAll(),
  async (e: unknown) => {
    if (interrupted) return; // the signal handler is stopping everything and exits 130
    log(`error: ${(e as Error).stack ?? String(e)}`);
    await stopAll();
    process.exit(1);
  },
);

