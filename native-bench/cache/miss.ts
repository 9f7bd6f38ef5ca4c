// The cache scenario's miss phase: what a cache costs the requests it does not serve,
// per peer, as the ratio of its throughput through a caching path to its throughput
// through a path without cache, in the same process and the same minutes. Both paths
// lead to one fast origin (an nginx of its own, `return 200` with a 1 KiB body), so the
// origin is not what limits them:
//   /m/…          through the peer's cache
//   /direct/m/…   past it (tidegate: a route without `cache`; nginx: a location without
//                 proxy_cache; Varnish: `return (pass)`)
// The origin answers paths under /m/private/ with `Cache-Control: private` (no shared
// cache may store them) and the others with `max-age=3600`.
import { join } from 'node:path';
import { body } from '../bodies.js';
import { freePort } from '../ports.js';
import { BENCH_SRC, WRK_REPORT_LUA } from '../paths.js';
import { run } from '../processes.js';
import { sampleTree } from '../proc-stats.js';
import { median } from '../stats.js';
import { nginxHttpPrelude, startNginx, type RunningNginx } from '../peers/nginx-common.js';

/** The origin's path prefix the caching path uses; the direct path puts DIRECT_PREFIX before it. */
export const MISS_PREFIX = '/m';
export const DIRECT_PREFIX = '/direct';

export interface MissKind {
  readonly name: string;
  /** path under MISS_PREFIX */
  readonly path: string;
  /** each request a path never asked for before */
  readonly unique: boolean;
}

export const MISS_KINDS: readonly MissKind[] = [
  { name: 'one URL, uncacheable (Cache-Control: private), again and again', path: '/private/one', unique: false },
  { name: 'a never-seen URL per request, uncacheable', path: '/private/u', unique: true },
  { name: 'a never-seen URL per request, storable (max-age=3600)', path: '/u', unique: true },
];

export interface MissOrigin extends RunningNginx {
  port: number;
}

export async function startMissOrigin(dir: string, workers: number): Promise<MissOrigin> {
  const port = await freePort();
  const b = body('1k').toString('latin1');
  const conf = `${nginxHttpPrelude(dir, workers)}
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port} reuseport;
    location ~ ^(${DIRECT_PREFIX})?${MISS_PREFIX}/private/ { add_header Cache-Control private; return 200 "${b}"; }
    location / { add_header Cache-Control "max-age=3600"; return 200 "${b}"; }
  }
}
`;
  const n = await startNginx('miss-origin', dir, conf, port, undefined, workers);
  return { ...n, port };
}

export interface MissPeer {
  readonly label: string;
  readonly port: number;
  /** the root of the peer's process tree (its CPU time is read from /proc) */
  readonly pid: number;
}

interface MissRun {
  rps: number;
  /** CPU milliseconds of the peer's processes per 1,000 requests */
  cpuMsPer1k: number;
  errors: number;
}

export interface MissFigures {
  peer: string;
  kind: string;
  cachedRps: number;
  directRps: number;
  /** median over the rounds of cached ÷ direct throughput, and of CPU per request */
  throughput: number;
  cpu: number;
  rounds: { throughput: number; cpu: number }[];
  errors: number;
}

async function missWrk(p: MissPeer, path: string, unique: boolean, durationS: number, connections: number): Promise<MissRun> {
  const args = ['-t2', `-c${connections}`, `-d${durationS}s`, '--timeout', '5s', '-s', join(BENCH_SRC, 'cache', 'requests.lua'), `http://127.0.0.1:${p.port}/`];
  const before = sampleTree(p.pid).cpuSeconds;
  const r = await run('wrk', 'wrk', args, { timeoutMs: (durationS + 30) * 1000, env: { ...process.env, WRK_REPORT: WRK_REPORT_LUA, ZIPF_N: '1', REQ_PATH: path, REQ_UNIQUE: unique ? '1' : '0' } });
  const cpu = sampleTree(p.pid).cpuSeconds - before;
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no result: ${r.stdout.slice(-500)} ${r.stderr.slice(-500)}`);
  const j = JSON.parse(line.slice(9)) as { requests: number; duration_us: number; ok2xx: number; non2xx: number; errors: Record<string, number> };
  const errors = j.non2xx + Object.values(j.errors).reduce((a, b) => a + b, 0);
  return { rps: j.ok2xx / (j.duration_us / 1e6), cpuMsPer1k: j.requests > 0 ? (cpu * 1e6) / j.requests : Number.NaN, errors };
}

/**
 * Rounds of: per kind, per peer, the caching path and the direct path back to back (in
 * turns which goes first), so each round gives a paired ratio taken under the same
 * conditions; the medians of those ratios are reported. The peers idle while another is
 * measured.
 */
export async function missPhase(peers: readonly MissPeer[], rounds: number, durationS: number, connections: number, log: (m: string) => void): Promise<MissFigures[]> {
  const acc = new Map<string, { cached: MissRun[]; direct: MissRun[] }>();
  const key = (p: MissPeer, k: MissKind): string => `${p.label}\n${k.name}`;
  for (let r = 0; r < rounds; r++) {
    for (const k of MISS_KINDS) {
      const line: string[] = [];
      for (const p of peers) {
        const a = acc.get(key(p, k)) ?? { cached: [], direct: [] };
        acc.set(key(p, k), a);
        const cached = (): Promise<MissRun> => missWrk(p, MISS_PREFIX + k.path, k.unique, durationS, connections);
        const direct = (): Promise<MissRun> => missWrk(p, DIRECT_PREFIX + MISS_PREFIX + k.path, k.unique, durationS, connections);
        if (r % 2 === 0) {
          a.cached.push(await cached());
          a.direct.push(await direct());
        } else {
          a.direct.push(await direct());
          a.cached.push(await cached());
        }
        line.push(`${p.label} ${(a.cached[r]!.rps / a.direct[r]!.rps).toFixed(3)}`);
      }
      log(`misses, round ${r + 1} of ${rounds}, ${k.name}: cached ÷ direct ${line.join(', ')}`);
    }
  }
  const out: MissFigures[] = [];
  for (const k of MISS_KINDS) {
    for (const p of peers) {
      const a = acc.get(key(p, k))!;
      const rs = a.cached.map((c, i) => ({ throughput: c.rps / a.direct[i]!.rps, cpu: c.cpuMsPer1k / a.direct[i]!.cpuMsPer1k }));
      out.push({
        peer: p.label,
        kind: k.name,
        cachedRps: median(a.cached.map((x) => x.rps)),
        directRps: median(a.direct.map((x) => x.rps)),
        throughput: median(rs.map((x) => x.throughput)),
        cpu: median(rs.map((x) => x.cpu)),
        rounds: rs,
        errors: [...a.cached, ...a.direct].reduce((n, x) => n + x.errors, 0),
      });
    }
  }
  return out;
}

export function missTable(figures: readonly MissFigures[], rounds: number, durationS: number): string {
  const rows = figures.map((f) => `| ${f.kind} | ${f.peer} | ${Math.round(f.cachedRps)} | ${Math.round(f.directRps)} | **${f.throughput.toFixed(3)}** (${f.rounds.map((x) => x.throughput.toFixed(2)).join(', ')}) | ${f.cpu.toFixed(3)} | ${f.errors} |`);
  return [
    `Misses: a caching path against a path without cache in the same peer (${rounds} rounds of ${durationS} s each, paired; 1 KiB bodies from a fast origin):`,
    '',
    '| requests | peer | cached req/s | direct req/s | throughput cached ÷ direct, median (rounds) | CPU per request cached ÷ direct | errors |',
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}
