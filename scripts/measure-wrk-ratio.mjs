#!/usr/bin/env node
// The core issue's done-criterion, reproducible: `wrk -t1 -c64 -d10s` through tidegate
// (2 workers) vs nginx proxy_pass (2 workers, upstream keepalive) to the same nginx
// `return 200` upstream, interleaved, medians of 3 after a warm-up.
//   npm run build && node scripts/measure-wrk-ratio.mjs      (needs nginx and wrk:
//   bash scripts/install-bench-deps.sh). For the full comparison use `npm run bench`.
import { spawn, exec } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNginxPair } from './lib/nginx-pair.mjs';

const sh = promisify(exec);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'tg-wrk-'));
const UP = 18181, NGINX = 18182, TG = 18183, ADMIN = 18184;
writeFileSync(join(dir, 'tg.yaml'), `listen: { host: 127.0.0.1, port: ${TG} }\nworkers: 2\nadmin: { port: ${ADMIN} }\nupstreams: { up: { discovery: { type: static, endpoints: ["127.0.0.1:${UP}"] } } }\nroutes: [{ upstream: up }]\n`);

const procs = [
  ...startNginxPair(dir, UP, NGINX),
  spawn(process.execPath, [join(root, 'dist/src/cli.js'), '--config', join(dir, 'tg.yaml')], { stdio: 'ignore' }),
];
const stop = () => procs.forEach((p) => p.kill('SIGTERM'));
process.on('SIGINT', () => (stop(), process.exit(130)));
try {
  await new Promise((r) => setTimeout(r, 2500));
  const rps = async (port) => {
    const out = (await sh(`wrk -t1 -c64 -d10s http://127.0.0.1:${port}/`)).stdout;
    if (/Non-2xx|Socket errors/.test(out)) console.error(`warning: errors at port ${port}:\n${out}`);
    return Number(/Requests\/sec:\s*([\d.]+)/.exec(out)[1]);
  };
  await rps(TG);
  await rps(NGINX);
  const tg = [];
  const ng = [];
  for (let i = 0; i < 3; i++) {
    tg.push(await rps(TG));
    ng.push(await rps(NGINX));
  }
  const med = (a) => [...a].sort((x, y) => x - y)[1];
  console.log(JSON.stringify({ tidegate: tg, nginx: ng, medians: [med(tg), med(ng)], ratio: +(med(tg) / med(ng)).toFixed(2), loadavg: readFileSync('/proc/loadavg', 'utf8').trim() }));
} finally {
  stop();
}
