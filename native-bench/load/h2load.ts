// Open-loop load at a fixed rate with `h2load --h1 --rps`: requests are sent on a
// timer, whatever the proxy's answers are doing, so a slow proxy cannot slow the
// generator down and hide its own queueing (coordinated omission). XXX: h2load times a
// request from when it was written, not from when the schedule wanted it; on HTTP/1.1 a
// request due while its connection is still busy waits unseen. We keep that wait rare by
// spreading the rate over many connections (≤ 100 req/s each), and we report the
// achieved rate: a point below 97 % of target is flagged "fell behind", because there
// the missing requests are the latency that could not be measured.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../processes.js';
import { RATE_LIMIT } from '../peers/rate-limit.js';
import { percentileSorted } from '../stats.js';

export interface OpenLoopOptions {
  port: number;
  scheme?: 'http' | 'https' | undefined;
  path: string;
  rate: number;
  durationS: number;
  warmupS: number;
  threads: number;
  cpus: string | undefined;
  logDir: string;
}

export interface OpenLoopResult {
  targetRps: number;
  achievedRps: number;
  fellBehind: boolean;
  connections: number;
  requests: number;
  non2xx: number;
  failed: number;
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
}

let seq = 0;

export async function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const connections = Math.min(1000, Math.max(16, Math.ceil(o.rate / 100)));
  const perClient = Math.max(1, Math.round(o.rate / connections));
  const target = perClient * connections;
  const threads = Math.min(o.threads, connections);
  const logFile = join(o.logDir, `h2load-${process.pid}-${++seq}.tsv`);
  const args = [
    '--h1',
    `-t${threads}`,
    `-c${connections}`,
    `--rps=${perClient}`,
    `-D${o.durationS}`,
    `--warm-up-time=${o.warmupS}`,
    `--log-file=${logFile}`,
    '-H',
    `${RATE_LIMIT.header}: ${RATE_LIMIT.headerValue}`,
    `${o.scheme ?? 'http'}://127.0.0.1:${o.port}${o.path}`,
  ];
  const r = await run('h2load', 'h2load', args, { cpus: o.cpus, timeoutMs: (o.durationS + o.warmupS + 30) * 1000 });
  const summary = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(r.stdout);
  const failed = summary ? Number(summary[5]) + Number(summary[6]) + Number(summary[7]) : 0;
  // The log holds one line per measured request: start µs, status, latency µs.
  const text = readFileSync(logFile, 'utf8');
  rmSync(logFile, { force: true });
  const lat: number[] = [];
  let non2xx = 0;
  let first = Infinity;
  let last = -Infinity;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [start, status, us] = line.split('\t');
    const s = Number(status);
    if (!(s >= 200 && s < 300)) non2xx++;
    const t = Number(start);
    if (t < first) first = t;
    if (t > last) last = t;
    lat.push(Number(us));
  }
  const sorted = Float64Array.from(lat).sort();
  // achieved rate from the measured window, not the requested one
  const achievedRps = lat.length / o.durationS;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    targetRps: target,
    achievedRps,
    fellBehind: achievedRps < 0.97 * target,
    connections,
    requests: lat.length,
    non2xx,
    failed,
    latencyUs: {
      p50: percentileSorted(sorted, 50),
      p90: percentileSorted(sorted, 90),
      p99: percentileSorted(sorted, 99),
      p999: percentileSorted(sorted, 99.9),
      max: sorted.length ? sorted[sorted.length - 1]! : NaN,
      mean: sorted.length ? sum / sorted.length : NaN,
    },
  };
}
