// End-to-end A/B of histogram recording: the real gateway (1 worker) in front of an
// nginx upstream, wrk closed loop on loopback, histograms on vs off by config,
// runs interleaved (on, off, on, off, …), median of RUNS each.
//   node .tmp/obs-dist/test/bench/recording-ab.bench.js   (needs nginx and wrk: scripts/install-bench-deps.sh)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseConfig, startGateway } from '../helpers/gateway.js';

const RUNS = Number(process.env.RUNS ?? 3);
const DURATION = process.env.DURATION ?? '6s';
const WORKERS = Number(process.env.WORKERS ?? 1);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function startNginx(): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-ab-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const body = 'x'.repeat(1024);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; error_log ${dir}/logs/error.log; pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 '${body}'; } } }`,
  );
  const p = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  return { port, stop: () => p.kill('SIGTERM') };
}

function wrk(url: string, duration: string): number {
  const r = spawnSync('wrk', ['-t2', '-c64', `-d${duration}`, url], { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk output: ${r.stdout}\n${r.stderr}`);
  return Number(m[1]);
}

const nginx = await startNginx();
const results: Record<'on' | 'off', number[]> = { on: [], off: [] };
try {
  for (let run = 0; run < RUNS; run++) {
    for (const mode of ['on', 'off'] as const) {
      const gw = await startGateway(baseConfig([`127.0.0.1:${nginx.port}`], { workers: WORKERS, observability: { histograms: { enabled: mode === 'on' } } }));
      try {
        wrk(`${gw.url}/`, '2s'); // warm-up: JIT, connection pools
        const rps = wrk(`${gw.url}/`, DURATION);
        results[mode].push(rps);
        console.log(`run ${run + 1} histograms ${mode}: ${rps.toFixed(0)} req/s`);
      } finally {
        await gw.stop();
      }
    }
  }
} finally {
  nginx.stop();
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[]) => ((Math.max(...xs) - Math.min(...xs)) / med(xs)) * 100;
const on = med(results.on);
const off = med(results.off);
console.log(`median histograms on ${on.toFixed(0)} req/s, off ${off.toFixed(0)} req/s: ${(((off - on) / off) * 100).toFixed(1)}% cost; run-to-run spread on ${spread(results.on).toFixed(1)}%, off ${spread(results.off).toFixed(1)}%`);
