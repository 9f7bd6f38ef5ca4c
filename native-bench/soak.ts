// `npm run bench -- --scenario soak`: tidegate (2 workers, one route, no policies) in
// front of the bench's nginx upstream under one long wrk run at a fixed, moderate load
// (-c16 by default), sampling the gateway's RSS (anonymous and file-backed apart) and
// every isolate's V8 heap from /metrics every 30 s, then once more 15 s after the load
// stops. Heap growth with RSS is a JS leak; RSS growth over a flat heap is the native
// side (malloc arenas, uWS buffers). Writes samples.csv, soak.json and summary.md to
// native-bench/results/soak-<timestamp>/.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { readFlags } from './flags.js';
import { wrk, type WrkResult } from './load/wrk.js';
import { BENCH_SRC, REPO_ROOT, TIDEGATE_CLI, commitOf } from './paths.js';
import { waitForStarted } from './peers/tidegate.js';
import { killAllNow, sleep, start, stop, stopAll } from './processes.js';
import { startUpstream } from './upstream.js';

interface SoakOptions {
  durationMin: number;
  intervalS: number;
  connections: number;
  threads: number;
  workers: number;
  path: string;
  /** seconds after the load stops for the "afterward" reading */
  settleS: number;
  out: string | undefined;
  tidegateCli: string | undefined;
}

const HELP = `npm run bench -- --scenario soak [--duration MIN (60)] [--interval S (30)] [--connections 16] [--threads 2] [--workers 2] [--path /1k] [--settle S (15)] [--tidegate PATH] [--out DIR]`;

function parse(argv: readonly string[]): SoakOptions {
  const o: SoakOptions = { durationMin: 60, intervalS: 30, connections: 16, threads: 2, workers: 2, path: '/1k', settleS: 15, out: undefined, tidegateCli: undefined };
  for (const f of readFlags(argv)) {
    switch (f.flag) {
      case '--scenario':
        f.value();
        break;
      case '--duration':
        o.durationMin = f.num(0.5);
        break;
      case '--interval':
        o.intervalS = f.num(1);
        break;
      case '--connections':
        o.connections = f.num(1);
        break;
      case '--threads':
        o.threads = f.num(1);
        break;
      case '--workers':
        o.workers = f.num(1);
        break;
      case '--path':
        o.path = f.value();
        break;
      case '--settle':
        o.settleS = f.num(1);
        break;
      case '--tidegate':
        o.tidegateCli = f.value();
        break;
      case '--out':
        o.out = f.value();
        break;
      case '--help':
        process.stdout.write(`${HELP}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag ${f.flag}\n${HELP}`);
    }
  }
  return o;
}

export interface SoakSample {
  /** seconds since the load started (negative: before it) */
  t: number;
  phase: 'idle' | 'load' | 'after';
  rssMiB: number;
  rssAnonMiB: number;
  rssFileMiB: number;
  threads: number;
  primaryHeapUsedMiB: number;
  primaryHeapTotalMiB: number;
  /** per worker, in worker-label order */
  workerHeapUsedMiB: number[];
  workerHeapTotalMiB: number[];
  /** requests the workers have served so far */
  requests: number;
}

const MiB = 2 ** 20;

function procStatus(pid: number): { rss: number; anon: number; file: number; threads: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) / 1024;
  // RssFile + RssShmem: the mapped code and the shared-memory tables; RssAnon: heaps and malloc
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem'), threads: Number(/Threads:\s+(\d+)/.exec(s)?.[1] ?? 0) };
}

/** value of an unlabelled gauge, or one series per label value of `label` */
function gauge(text: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}
function labelled(text: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${name}\\{[^}]*${label}="([^"]+)"[^}]*\\} ([0-9.e+]+)$`, 'gm');
  for (let m = re.exec(text); m; m = re.exec(text)) out.set(m[1]!, Number(m[2]));
  return out;
}

async function sample(pid: number, adminUrl: string, t: number, phase: SoakSample['phase']): Promise<SoakSample> {
  const p = procStatus(pid);
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const status = (await (await fetch(`${adminUrl}/status`)).json()) as { workers: { requests?: number }[] };
  const used = labelled(text, 'tidegate_worker_heap_used_bytes', 'worker');
  const total = labelled(text, 'tidegate_worker_heap_total_bytes', 'worker');
  const keys = [...used.keys()].sort((a, b) => Number(a) - Number(b));
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  return {
    t: Math.round(t),
    phase,
    rssMiB: r1(p.rss),
    rssAnonMiB: r1(p.anon),
    rssFileMiB: r1(p.file),
    threads: p.threads,
    primaryHeapUsedMiB: r1(gauge(text, 'tidegate_nodejs_heap_size_used_bytes') / MiB),
    primaryHeapTotalMiB: r1(gauge(text, 'tidegate_nodejs_heap_size_total_bytes') / MiB),
    workerHeapUsedMiB: keys.map((k) => r1((used.get(k) ?? NaN) / MiB)),
    workerHeapTotalMiB: keys.map((k) => r1((total.get(k) ?? NaN) / MiB)),
    requests: status.workers.reduce((s, w) => s + (w.requests ?? 0), 0),
  };
}

function csv(samples: SoakSample[]): string {
  const workers = Math.max(0, ...samples.map((s) => s.workerHeapUsedMiB.length));
  const head = ['t_s', 'phase', 'rss_mib', 'rss_anon_mib', 'rss_file_mib', 'threads', 'primary_heap_used_mib', 'primary_heap_total_mib'];
  for (let i = 0; i < workers; i++) head.push(`worker${i}_heap_used_mib`, `worker${i}_heap_total_mib`);
  head.push('requests');
  const rows = samples.map((s) => {
    const r: (string | number)[] = [s.t, s.phase, s.rssMiB, s.rssAnonMiB, s.rssFileMiB, s.threads, s.primaryHeapUsedMiB, s.primaryHeapTotalMiB];
    for (let i = 0; i < workers; i++) r.push(s.workerHeapUsedMiB[i] ?? '', s.workerHeapTotalMiB[i] ?? '');
    r.push(s.requests);
    return r.join(',');
  });
  return [head.join(','), ...rows].join('\n') + '\n';
}

export interface SoakSummary {
  idleRssMiB: number;
  /** the first sample at or after one minute of load */
  minute1: SoakSample;
  end: SoakSample;
  after: SoakSample;
  rssGrowthPct: number;
  anonGrowthPct: number;
  workerHeapGrowthMiB: number[];
  wrk: WrkResult;
}

function summarise(samples: SoakSample[], w: WrkResult): SoakSummary {
  const load = samples.filter((s) => s.phase === 'load');
  const minute1 = load.find((s) => s.t >= 60) ?? load[0]!;
  const end = load[load.length - 1]!;
  const after = samples.find((s) => s.phase === 'after')!;
  const pct = (a: number, b: number): number => Math.round(((b - a) / a) * 1000) / 10;
  return {
    idleRssMiB: samples.find((s) => s.phase === 'idle')?.rssMiB ?? NaN,
    minute1,
    end,
    after,
    rssGrowthPct: pct(minute1.rssMiB, end.rssMiB),
    anonGrowthPct: pct(minute1.rssAnonMiB, end.rssAnonMiB),
    workerHeapGrowthMiB: end.workerHeapUsedMiB.map((v, i) => Math.round((v - (minute1.workerHeapUsedMiB[i] ?? NaN)) * 10) / 10),
    wrk: w,
  };
}

function summaryMd(o: SoakOptions, s: SoakSummary, commit: string): string {
  const errors = s.wrk.errors.connect + s.wrk.errors.read + s.wrk.errors.write + s.wrk.errors.timeout;
  const row = (name: string, x: SoakSample): string =>
    `| ${name} | ${x.t} | ${x.rssMiB} | ${x.rssAnonMiB} | ${x.rssFileMiB} | ${x.primaryHeapUsedMiB} | ${x.workerHeapUsedMiB.join(' / ')} | ${x.workerHeapTotalMiB.join(' / ')} |`;
  return [
    `# Soak: tidegate ${commit}, ${o.workers} workers, wrk -t${o.threads} -c${o.connections} ${o.path} for ${o.durationMin} min`,
    '',
    `${s.wrk.requests} requests, ${Math.round(s.wrk.rps)} req/s (2xx), non-2xx ${s.wrk.non2xx}, socket errors ${errors}, p99 ${(s.wrk.latencyUs.p99 / 1000).toFixed(2)} ms. Idle RSS before the load: ${s.idleRssMiB} MiB.`,
    '',
    '| reading | t (s) | RSS MiB | anon MiB | file+shmem MiB | primary heap used MiB | worker heap used MiB | worker heap total MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    row('minute 1', s.minute1),
    row('end of load', s.end),
    row(`${o.settleS} s after`, s.after),
    '',
    `RSS growth minute 1 → end: ${s.rssGrowthPct} % (anonymous memory ${s.anonGrowthPct} %); worker heap used growth ${s.workerHeapGrowthMiB.join(' / ')} MiB.`,
    '',
  ].join('\n');
}

function log(msg: string): void {
  process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export async function runSoak(argv: string[]): Promise<void> {
  const o = parse(argv);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const outDir = resolve(o.out ?? join(BENCH_SRC, 'results', `soak-${stamp}`));
  const work = join(outDir, 'work');
  mkdirSync(work, { recursive: true });
  process.on('exit', killAllNow);
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  const commit = commitOf(o.tidegateCli ? resolve(o.tidegateCli) : REPO_ROOT);
  // A frozen copy of the build: rebuilding the repo meanwhile must not change what a
  // restarted worker thread would load during an hour-long run.
  let cli = o.tidegateCli ? resolve(o.tidegateCli) : TIDEGATE_CLI;
  if (!o.tidegateCli) {
    const frozen = join(REPO_ROOT, '.tmp', `soak-dist-${stamp}`);
    cpSync(join(REPO_ROOT, 'dist'), frozen, { recursive: true });
    cli = join(frozen, 'src', 'cli.js');
  }
  const upstream = await startUpstream(join(work, 'upstream'), 1, undefined);
  log(`upstream nginx on 127.0.0.1:${upstream.port}`);
  const cfgFile = join(work, 'tidegate.yaml');
  writeFileSync(
    cfgFile,
    stringify({
      listen: { host: '127.0.0.1', port: 0 },
      workers: o.workers,
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { app: { discovery: { type: 'static', endpoints: [`127.0.0.1:${upstream.port}`] }, timeouts: { connect: '1s', response: '10s' }, pool: { connections: 64 } } },
      routes: [{ name: 'bench', match: { path: '/' }, upstream: 'app' }],
    }),
  );
  const gw = start('tidegate', process.execPath, [cli, '--config', cfgFile], { env: { ...process.env, TIDEGATE_LOG_LEVEL: 'info' }, logFile: join(work, 'tidegate.log') });
  const { port, adminPort } = await waitForStarted(gw);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  log(`tidegate ${commit} on ${port} (admin ${adminPort}), pid ${gw.pid}`);
  const samples: SoakSample[] = [];
  const save = (): void => writeFileSync(join(outDir, 'samples.csv'), csv(samples));
  // every worker reports its heap once a second: wait until all have
  for (let deadline = Date.now() + 15_000; ; ) {
    const s = await sample(gw.pid, adminUrl, 0, 'idle');
    if (s.workerHeapUsedMiB.length >= o.workers || Date.now() > deadline) break;
    await sleep(250);
  }
  await sleep(3_000);
  samples.push(await sample(gw.pid, adminUrl, 0, 'idle'));
  log(`idle: RSS ${samples[0]!.rssMiB} MiB`);

  const t0 = performance.now();
  const durationS = Math.round(o.durationMin * 60);
  const load = wrk({ port, path: o.path, threads: o.threads, connections: o.connections, durationS, close: false, cpus: undefined });
  let done = false;
  void load.finally(() => (done = true)).catch(() => {});
  for (let k = 1; !done; k++) {
    const at = t0 + k * o.intervalS * 1000;
    while (!done && performance.now() < at) await sleep(Math.min(500, at - performance.now()));
    if (done) break;
    const s = await sample(gw.pid, adminUrl, (performance.now() - t0) / 1000, 'load');
    samples.push(s);
    save();
    log(`t=${s.t}s RSS ${s.rssMiB} MiB (anon ${s.rssAnonMiB}), heap primary ${s.primaryHeapUsedMiB}, workers ${s.workerHeapUsedMiB.join('/')} MiB, ${s.requests} requests`);
  }
  const w = await load;
  log(`load done: ${w.requests} requests, ${Math.round(w.rps)} req/s`);
  await sleep(o.settleS * 1000);
  samples.push(await sample(gw.pid, adminUrl, (performance.now() - t0) / 1000, 'after'));
  save();
  await stop(gw, 'SIGTERM', 10_000);
  await upstream.stop();

  const summary = summarise(samples, w);
  writeFileSync(join(outDir, 'soak.json'), JSON.stringify({ commit, options: o, summary, samples }, null, 2));
  const md = summaryMd(o, summary, commit);
  writeFileSync(join(outDir, 'summary.md'), md);
  process.stdout.write(md);
  log(`results in ${outDir}`);
}
