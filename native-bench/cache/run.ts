// `npm run bench -- --scenario cache`: a Zipf-distributed key set (N objects of 1–16 KiB,
// exponent s) through tidegate's shared cache, nginx proxy_cache (keys zone +
// proxy_cache_lock) and Varnish (malloc storage), all sized to hold `--fraction` of the
// objects' bytes, each in front of a fresh origin of its own, all running at once. First
// pure hits (a key set that fits, every key fetched first, so every measured request is a
// hit: the hit path's throughput), in rounds that take turns across the peers; then per
// peer the Zipf mix — a warm-up, then a measured wrk run: hit ratio (from the origin's own
// request count, the same way for every peer), what the cache held, throughput and p99 —
// and a burst of concurrent misses for one fresh key with a slow origin (upstream
// requests seen); then what each peer's cache costs the requests it does not serve
// (cache/miss.ts); last, tidegate's Zipf mix again with the bytes nginx actually held.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { list, readFlags } from '../flags.js';
import { freePort } from '../ports.js';
import { BENCH_SRC, TIDEGATE_CLI, WRK_REPORT_LUA } from '../paths.js';
import { run, start, stop, stopAll, waitForPort } from '../processes.js';
import { nginxHttpPrelude, nginxVersion, startNginx } from '../peers/nginx-common.js';
import { objectSize } from './objects.js';
import { median } from '../stats.js';
import { nginxHeld, sampleHeld, tidegateHeld, varnishHeld, type HeldProbe } from './held.js';
import { startVarnish, varnishVersion } from './varnish.js';
import { DIRECT_PREFIX, MISS_PREFIX, missPhase, missTable, startMissOrigin, type MissFigures } from './miss.js';

const PEERS = ['tidegate', 'nginx', 'varnish'] as const;
type PeerName = (typeof PEERS)[number];

interface CacheOptions {
  objects: number;
  s: number;
  fraction: number;
  warmupS: number;
  durationS: number;
  connections: number;
  burst: number;
  workers: number;
  /** keys of the pure-hit run (0: as many as fill half the cache) */
  hitKeys: number;
  hitDurationS: number;
  /** pure-hit runs per peer, taken in turns across the peers (all running at once); the median counts */
  hitRounds: number;
  peers: PeerName[];
  /** nginx's cache manager: `eager` deletes everything over max_size whenever it runs (manager_files=100000); `stock` keeps nginx's defaults */
  nginxManager: 'eager' | 'stock';
  /** after the peers, tidegate once more with the body bytes nginx held on average (the Zipf mix only) */
  equalHeld: boolean;
  /** rounds of the miss phase (0: none) and the seconds of each of its runs */
  missRounds: number;
  missDurationS: number;
}

const HELP = `npm run bench -- --scenario cache [--objects 10000] [--s 1.0] [--fraction 0.2] [--warmup 10] [--duration 15] [--hit-keys N] [--hit-duration 5] [--hit-rounds 3] [--connections 64] [--burst 64] [--workers 2] [--peers tidegate,nginx,varnish] [--nginx-manager eager|stock] [--no-equal-held] [--miss-rounds 3] [--miss-duration 3]`;

function parse(argv: readonly string[]): CacheOptions {
  const o: CacheOptions = { objects: 10_000, s: 1.0, fraction: 0.2, warmupS: 10, durationS: 15, connections: 64, burst: 64, workers: 2, hitKeys: 0, hitDurationS: 5, hitRounds: 3, peers: [...PEERS], nginxManager: 'eager', equalHeld: true, missRounds: 3, missDurationS: 3 };
  for (const f of readFlags(argv)) {
    switch (f.flag) {
      case '--scenario':
        f.value();
        break;
      case '--objects':
        o.objects = f.num(100);
        break;
      case '--s':
        o.s = f.num(0.1);
        break;
      case '--fraction':
        o.fraction = f.num(0.01);
        break;
      case '--warmup':
        o.warmupS = f.num(0);
        break;
      case '--duration':
        o.durationS = f.num(1);
        break;
      case '--connections':
        o.connections = f.num(1);
        break;
      case '--burst':
        o.burst = f.num(2);
        break;
      case '--workers':
        o.workers = f.num(1);
        break;
      case '--hit-keys':
        o.hitKeys = f.num(0);
        break;
      case '--hit-duration':
        o.hitDurationS = f.num(1);
        break;
      case '--hit-rounds':
        o.hitRounds = f.num(1);
        break;
      case '--peers': {
        const names = list(f.value());
        const bad = names.filter((n) => !(PEERS as readonly string[]).includes(n));
        if (bad.length > 0 || names.length === 0) throw new Error(`--peers: expected some of ${PEERS.join(', ')}, got ${bad.join(', ') || 'none'}`);
        o.peers = PEERS.filter((p) => names.includes(p));
        break;
      }
      case '--nginx-manager': {
        const v = f.value();
        if (v !== 'eager' && v !== 'stock') throw new Error(`--nginx-manager: expected eager or stock, got ${v}`);
        o.nginxManager = v;
        break;
      }
      case '--no-equal-held':
        o.equalHeld = false;
        break;
      case '--miss-rounds':
        o.missRounds = f.num(0);
        break;
      case '--miss-duration':
        o.missDurationS = f.num(1);
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

interface PeerResult {
  peer: string;
  version: string;
  /** pure-hit runs: median 2xx per second and p99 of the rounds, every round's rate, and origin requests during them (0 when every key stayed warm) */
  hitRps: number;
  hitRounds: number[];
  hitP99Ms: number;
  hitOrigin: number;
  hitRequests: number;
  requests: number;
  rps: number;
  p99Ms: number;
  hitRatio: number;
  originRequests: number;
  errors: number;
  burstUpstream: number;
  burstMs: number;
  /** what the cache held during the measured Zipf run: mean and largest body bytes, mean objects */
  heldMeanBytes: number;
  heldMaxBytes: number;
  heldMeanObjects: number;
}

async function originCount(port: number): Promise<{ served: number; slow: Record<string, number> }> {
  const r = await request(`http://127.0.0.1:${port}/_count`);
  return (await r.body.json()) as { served: number; slow: Record<string, number> };
}

async function zipfWrk(port: number, o: CacheOptions, durationS: number, keys = o.objects): Promise<{ requests: number; ok2xx: number; durationS: number; errors: number; p99Us: number }> {
  const args = ['-t2', `-c${o.connections}`, `-d${durationS}s`, '--timeout', '5s', '-s', join(BENCH_SRC, 'cache', 'requests.lua'), `http://127.0.0.1:${port}/`];
  const r = await run('wrk', 'wrk', args, { timeoutMs: (durationS + 30) * 1000, env: { ...process.env, WRK_REPORT: WRK_REPORT_LUA, ZIPF_N: String(keys), ZIPF_S: String(o.s) } });
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no result: ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}`);
  const j = JSON.parse(line.slice(9)) as { requests: number; duration_us: number; ok2xx: number; non2xx: number; errors: Record<string, number>; latency_us: { p99: number } };
  const errors = j.non2xx + Object.values(j.errors).reduce((a, b) => a + b, 0);
  return { requests: j.requests, ok2xx: j.ok2xx, durationS: j.duration_us / 1e6, errors, p99Us: j.latency_us.p99 };
}

async function burst(port: number, originPort: number, n: number, name: string): Promise<{ upstream: number; ms: number }> {
  const agent = new Agent({ connections: n, pipelining: 1 });
  const path = `/slow/${name}`;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async () => {
      const r = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: agent });
      await r.body.arrayBuffer();
    }),
  );
  const ms = performance.now() - t0;
  await agent.close();
  return { upstream: (await originCount(originPort)).slow[path] ?? 0, ms };
}

/** Whether `body` is what the origin sends for /obj/<i> (origin.ts). */
function isObject(i: number, body: Buffer): boolean {
  if (body.length !== objectSize(i)) return false;
  const c = 97 + (i % 26);
  for (let k = 0; k < body.length; k++) if (body[k] !== c) return false;
  return true;
}

/**
 * Every key of 1…n once, 8 at a time, twice (an admission filter may refuse a key its
 * first time). The second pass is mostly hits: a body that is not the origin's fails
 * the peer's run, so no throughput is reported for a cache that serves wrong bytes.
 */
async function warmKeys(port: number, n: number, peer: string): Promise<void> {
  const agent = new Agent({ connections: 8 });
  try {
    for (let pass = 0; pass < 2; pass++) {
      let next = 1;
      const wrong: number[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = next++; i <= n; i = next++) {
            const r = await request(`http://127.0.0.1:${port}/obj/${i}`, { dispatcher: agent });
            const body = Buffer.from(await r.body.arrayBuffer());
            if (r.statusCode !== 200 || !isObject(i, body)) wrong.push(i);
          }
        }),
      );
      if (wrong.length > 0) throw new Error(`${peer}: ${wrong.length} of ${n} responses were not the origin's body (pass ${pass + 1}; first keys ${wrong.slice(0, 5).join(', ')})`);
    }
  } finally {
    await agent.close();
  }
}

interface RunningPeer {
  readonly peer: PeerName;
  readonly label: string;
  readonly version: string;
  readonly port: number;
  readonly originPort: number;
  /** the root of its process tree */
  readonly pid: number;
  readonly held: HeldProbe;
  stop(): Promise<void>;
}

interface HitFigures {
  hitRps: number;
  hitRounds: number[];
  hitP99Ms: number;
  hitOrigin: number;
  hitRequests: number;
}

/**
 * Pure hits, on empty caches: the key set fits, so no peer needs to evict for it. Every
 * peer runs at once and the rounds take turns (peer 1, 2, 3, peer 1, 2, 3, …), so a
 * change in the host's speed during the bench falls on every peer alike.
 */
async function hitPhase(peers: readonly RunningPeer[], o: CacheOptions, hitKeys: number, log: (m: string) => void): Promise<Map<RunningPeer, HitFigures>> {
  const before = new Map<RunningPeer, number>();
  for (const p of peers) {
    await warmKeys(p.port, hitKeys, p.label);
    before.set(p, (await originCount(p.originPort)).served);
  }
  const rounds = new Map<RunningPeer, { rps: number; p99Us: number; requests: number }[]>(peers.map((p) => [p, []]));
  for (let r = 0; r < o.hitRounds; r++) {
    for (const p of peers) {
      const h = await zipfWrk(p.port, o, o.hitDurationS, hitKeys);
      rounds.get(p)!.push({ rps: h.ok2xx / h.durationS, p99Us: h.p99Us, requests: h.requests });
    }
    log(`pure hits, round ${r + 1} of ${o.hitRounds}: ${peers.map((p) => `${p.label} ${Math.round(rounds.get(p)![r]!.rps)}`).join(', ')} req/s`);
  }
  const out = new Map<RunningPeer, HitFigures>();
  for (const p of peers) {
    const rs = rounds.get(p)!;
    out.set(p, {
      hitRps: median(rs.map((x) => x.rps)),
      hitRounds: rs.map((x) => Math.round(x.rps)),
      hitP99Ms: median(rs.map((x) => x.p99Us)) / 1000,
      hitOrigin: (await originCount(p.originPort)).served - before.get(p)!,
      hitRequests: rs.reduce((a, x) => a + x.requests, 0),
    });
  }
  return out;
}

const NO_HITS: HitFigures = { hitRps: Number.NaN, hitRounds: [], hitP99Ms: Number.NaN, hitOrigin: 0, hitRequests: 0 };

/** The Zipf mix on one peer (the others idle): warm-up, the measured run with what the cache holds sampled, then the burst. */
async function zipfPhase(p: RunningPeer, o: CacheOptions, hits: HitFigures): Promise<PeerResult> {
  if (o.warmupS > 0) await zipfWrk(p.port, o, o.warmupS);
  const before = (await originCount(p.originPort)).served;
  const sampler = sampleHeld(p.held);
  const w = await zipfWrk(p.port, o, o.durationS);
  const after = (await originCount(p.originPort)).served;
  const h2 = await sampler.stop();
  const b = await burst(p.port, p.originPort, o.burst, `${p.label.replace(/[^A-Za-z0-9]+/g, '-')}-${Date.now()}`);
  const origin = after - before;
  return { peer: p.label, version: p.version, ...hits, requests: w.requests, rps: w.ok2xx / w.durationS, p99Ms: w.p99Us / 1000, hitRatio: w.requests > 0 ? 1 - origin / w.requests : 0, originRequests: origin, errors: w.errors, burstUpstream: b.upstream, burstMs: b.ms, heldMeanBytes: h2.meanBytes, heldMaxBytes: h2.maxBytes, heldMeanObjects: h2.meanObjects };
}

// nginx trims its cache to max_size only when its cache manager runs, and a manager that
// finds the cache under max_size sleeps until the oldest entry's `inactive` expiry, at
// most 10 s (ngx_http_file_cache_expire): under this bench's miss rate the cache grows to
// several times max_size between runs (what `held` measures; ≈ 3–5×). `eager` lets each
// run delete everything over the size at once instead of 100 files per 50 ms; it cannot
// make the manager run more often, so nginx still holds more than its size.
const NGINX_EAGER_MANAGER = ' manager_files=100000 manager_threshold=1000ms';

function nginxConf(port: number, originPort: number, missPort: number, dir: string, sizeBytes: number, workers: number, manager: CacheOptions['nginxManager']): string {
  const cached = (path: string, upstream: string): string => `    location ${path} {
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 5s;
      add_header X-Cache-Status $upstream_cache_status;
    }`;
  return `${nginxHttpPrelude(dir, workers)}
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=bench:16m max_size=${Math.floor(sizeBytes / 1024)}k inactive=1h use_temp_path=off${manager === 'eager' ? NGINX_EAGER_MANAGER : ''};
  upstream origin { server 127.0.0.1:${originPort}; keepalive 64; }
  upstream fast { server 127.0.0.1:${missPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} reuseport;
${cached('/', 'origin')}
${cached(`${MISS_PREFIX}/`, 'fast')}
    location ${DIRECT_PREFIX}/ {
      proxy_pass http://fast;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

export async function runCacheBench(argv: readonly string[]): Promise<void> {
  const o = parse(argv);
  let total = 0;
  for (let i = 1; i <= o.objects; i++) total += objectSize(i);
  const size = Math.floor(total * o.fraction);
  // The pure-hit key set: the most popular keys that fill at most half of every cache.
  let hitKeys = o.hitKeys;
  if (hitKeys === 0) for (let bytes = 0; hitKeys < o.objects && bytes + objectSize(hitKeys + 1) <= size / 2; hitKeys++) bytes += objectSize(hitKeys + 1);
  hitKeys = Math.min(hitKeys, o.objects);
  const log = (m: string): void => void process.stderr.write(`[bench cache ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  log(`${o.objects} objects, ${(total / 2 ** 20).toFixed(1)} MiB in all; caches sized ${(size / 2 ** 20).toFixed(1)} MiB (${o.fraction * 100} %), Zipf s=${o.s}; pure-hit run over the ${hitKeys} most popular keys`);
  const results: PeerResult[] = [];
  const skipped: { peer: string; reason: string }[] = [];
  let misses: MissFigures[] = [];
  try {
    const missDir = mkdtempSync(join(tmpdir(), 'tidegate-bench-cache-miss-origin-'));
    chmodSync(missDir, 0o777);
    const missOrigin = await startMissOrigin(missDir, o.workers);
    const startPeer = async (peer: PeerName, label: string, version: string, sizeBytes: number): Promise<RunningPeer> => {
      // A fresh origin per peer, so its counters belong to that peer alone.
      const originPort = await freePort();
      const origin = start('origin', process.execPath, [join(BENCH_SRC, '..', 'dist', 'native-bench', 'cache', 'origin.js'), String(originPort)]);
      await waitForPort(originPort, origin);
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), `tidegate-bench-cache-${peer}-`));
      // nginx workers run as an unprivileged user when started as root: they must be able to write the cache.
      chmodSync(dir, 0o777);
      let stopPeer: () => Promise<void>;
      let held: HeldProbe;
      let pid: number;
      if (peer === 'tidegate') {
        const cfg = join(dir, 'tidegate.yaml');
        const adminPort = await freePort();
        held = tidegateHeld(adminPort);
        writeFileSync(
          cfg,
          [
            `listen: { host: 127.0.0.1, port: ${port} }`,
            `workers: ${o.workers}`,
            `admin: { host: 127.0.0.1, port: ${adminPort} }`,
            `cache: { size: ${sizeBytes}, maxObjectSize: 64kb, lockTimeout: 5s }`,
            `upstreams: { origin: { discovery: { type: static, endpoints: ["127.0.0.1:${originPort}"] } }, fast: { discovery: { type: static, endpoints: ["127.0.0.1:${missOrigin.port}"] } } }`,
            `routes: [{ match: { path: ${DIRECT_PREFIX} }, upstream: fast }, { match: { path: ${MISS_PREFIX} }, upstream: fast, cache: {} }, { upstream: origin, cache: {} }]`,
            '',
          ].join('\n'),
        );
        const child = start('tidegate', process.execPath, [TIDEGATE_CLI, '--config', cfg], { env: { ...process.env, TIDEGATE_LOG_LEVEL: 'warn' } });
        await waitForPort(port, child);
        pid = child.pid;
        stopPeer = () => stop(child, 'SIGTERM', 5_000);
      } else if (peer === 'nginx') {
        const ng = await startNginx('nginx-cache', dir, nginxConf(port, originPort, missOrigin.port, dir, sizeBytes, o.workers, o.nginxManager), port, undefined, o.workers);
        held = nginxHeld(join(dir, 'cache'), o.objects, 'origin');
        pid = ng.pid;
        stopPeer = () => ng.stop();
      } else {
        held = varnishHeld(join(dir, 'varnish'));
        const vn = await startVarnish(port, originPort, missOrigin.port, dir, sizeBytes);
        pid = vn.pid;
        stopPeer = () => vn.stop();
      }
      log(`${label}: listening on ${port} (cache ${(sizeBytes / 2 ** 20).toFixed(1)} MiB)`);
      return {
        peer,
        label,
        version,
        port,
        originPort,
        pid,
        held,
        stop: async () => {
          await stopPeer();
          await stop(origin, 'SIGTERM', 2_000);
        },
      };
    };
    const running: RunningPeer[] = [];
    for (const peer of o.peers) {
      let version = '';
      if (peer === 'varnish') {
        const v = await varnishVersion();
        if (!v.ok) {
          log(`varnish skipped: ${v.reason}`);
          skipped.push({ peer, reason: v.reason });
          continue;
        }
        version = v.version;
      } else if (peer === 'nginx') {
        const v = await nginxVersion();
        version = v.ok ? v.version : '';
      } else {
        version = TIDEGATE_CLI;
      }
      running.push(await startPeer(peer, peer, version, size));
    }
    log(`pure hits: ${o.hitRounds} rounds of ${o.hitDurationS}s per peer over ${hitKeys} keys, in turns`);
    const hits = await hitPhase(running, o, hitKeys, log);
    for (const p of running) {
      log(`${p.label}: Zipf warm-up ${o.warmupS}s, measure ${o.durationS}s, burst of ${o.burst}`);
      results.push(await zipfPhase(p, o, hits.get(p)!));
    }
    if (o.missRounds > 0) {
      log(`misses: ${o.missRounds} rounds of ${o.missDurationS}s per peer, path and kind, in turns`);
      misses = await missPhase(running, o.missRounds, o.missDurationS, o.connections, log);
    }
    for (const p of running) await p.stop();
    // nginx holds more than its size (see NGINX_EAGER_MANAGER): the like-for-like hit
    // ratio is tidegate's with as many body bytes held as nginx held on average.
    const tg = results.find((r) => r.peer === 'tidegate');
    const ng = results.find((r) => r.peer === 'nginx');
    if (o.equalHeld && tg !== undefined && ng !== undefined && tg.heldMeanBytes > 0 && ng.heldMeanBytes > tg.heldMeanBytes) {
      const scaled = Math.floor((ng.heldMeanBytes * size) / tg.heldMeanBytes);
      const p = await startPeer('tidegate', "tidegate at nginx's held bytes", tg.version, scaled);
      log(`${p.label}: Zipf warm-up ${o.warmupS}s, measure ${o.durationS}s, burst of ${o.burst}`);
      results.push(await zipfPhase(p, o, NO_HITS));
      await p.stop();
    }
  } finally {
    await stopAll();
  }
  const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
  const rows = results.map((r) => `| ${r.peer} | ${(r.hitRatio * 100).toFixed(1)} % | ${mib(r.heldMeanBytes)} / ${mib(r.heldMaxBytes)} MiB (${(r.heldMeanBytes / size).toFixed(2)}× size), ${Math.round(r.heldMeanObjects)} objects | ${Math.round(r.rps)} | ${r.p99Ms.toFixed(1)} | ${r.originRequests} / ${r.requests} | ${r.errors} | ${r.burstUpstream} (${Math.round(r.burstMs)} ms) |`);
  const table = [`Zipf mix (caches sized ${mib(size)} MiB; nginx cache manager: ${o.nginxManager}):`, '', '| peer | hit ratio | held during the run: mean / max | req/s | p99 ms | origin / client requests | errors | burst: upstream requests for one fresh key |', '|---|---|---|---|---|---|---|---|', ...rows].join('\n');
  const nginxResult = results.find((r) => r.peer === 'nginx');
  const nginxHit = nginxResult?.hitRps;
  // Each round runs the peers one after the other, so a round's ratio compares them under
  // nearly the same conditions; on a host whose speed drifts between rounds the median
  // of those ratios is steadier than the ratio of the medians.
  const paired = (r: PeerResult): string => {
    const n = nginxResult?.hitRounds ?? [];
    const ratios = r.hitRounds.flatMap((x, k) => (n[k] ? [x / n[k]!] : []));
    return ratios.length === 0 ? '—' : `${median(ratios).toFixed(2)}× (${ratios.map((x) => x.toFixed(2)).join(', ')})`;
  };
  const hitRows = results.filter((r) => !Number.isNaN(r.hitRps)).map((r) => `| ${r.peer} | ${Math.round(r.hitRps)} (${r.hitRounds.join(', ')}) | ${nginxHit ? `${(r.hitRps / nginxHit).toFixed(2)}×` : '—'} | ${paired(r)} | ${r.hitP99Ms.toFixed(1)} | ${r.hitOrigin} / ${r.hitRequests} |`);
  const hitTable = [`Pure hits (${hitKeys} keys, all fetched first; ${o.hitRounds} rounds of ${o.hitDurationS} s per peer, in turns):`, '', '| peer | hit req/s, median (rounds) | vs nginx | vs nginx, median of the rounds\' ratios | p99 ms | origin / client requests |', '|---|---|---|---|---|---|', ...hitRows].join('\n');
  process.stdout.write(`\n${table}\n\n${hitTable}\n\n`);
  if (misses.length > 0) process.stdout.write(`${missTable(misses, o.missRounds, o.missDurationS)}\n\n`);
  for (const s of skipped) process.stdout.write(`${s.peer} skipped: ${s.reason}\n`);
  process.stdout.write(`${JSON.stringify({ options: o, cacheBytes: size, objectBytes: total, hitKeys, results, misses, skipped })}\n`);
}
