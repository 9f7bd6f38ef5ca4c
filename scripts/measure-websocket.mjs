#!/usr/bin/env node
// WebSocket relay cost: the same echo workload straight to a `ws` upstream, through
// the gateway and (when /usr/sbin/nginx exists) through nginx proxy_pass with the
// usual Upgrade/Connection lines, interleaved in one run (absolute numbers on a shared
// machine mean little; the ratios within a run are the figure).
//   node scripts/measure-websocket.mjs [rounds] [seconds] [workers]   (after npm run build)
// Per round and target: sequential round trips of 1 KiB on one connection (latency),
// then 16 connections × 16 messages in flight for `seconds` (throughput).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';

const ROUNDS = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 5);
const WORKERS = Number(process.argv[4] ?? 2);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const payload = Buffer.alloc(1024, 97);

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (s) => s.on('message', (d, b) => s.send(d, { binary: b })));
await new Promise((r) => wss.once('listening', r));
const upPort = wss.address().port;

const dir = mkdtempSync(join(tmpdir(), 'tg-ws-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(
  cfg,
  `listen: { host: 127.0.0.1, port: 0 }\nworkers: ${WORKERS}\nadmin: { port: 0 }\n` +
    `upstreams: { a: { discovery: { type: static, endpoints: ["127.0.0.1:${upPort}"] } } }\n` +
    `routes: [{ upstream: a, websocket: true }]\n`,
);
const gw = spawn(process.execPath, [join(root, 'dist/src/cli.js'), '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => gw.kill('SIGTERM')); // also when something below throws
const gwPort = await new Promise((resolve, reject) => {
  let buf = '';
  const t = setTimeout(() => reject(new Error('gateway did not start')), 15_000);
  gw.stdout.on('data', (d) => {
    buf += d;
    const m = /"event":"started","port":(\d+)/.exec(buf);
    if (m) {
      clearTimeout(t);
      resolve(Number(m[1]));
    }
  });
});

// nginx, 2 worker processes like the gateway's 2 workers
const NGINX = '/usr/sbin/nginx';
let nginxPort = 0;
let nginx = null;
if (existsSync(NGINX)) {
  const probe = createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  nginxPort = probe.address().port;
  await new Promise((r) => probe.close(r));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes ${WORKERS};\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents { worker_connections 4096; }\n` +
      `http {\n access_log off;\n client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;\n` +
      ` server { listen 127.0.0.1:${nginxPort}; location / { proxy_pass http://127.0.0.1:${upPort}; proxy_http_version 1.1; ` +
      `proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; proxy_read_timeout 60s; } }\n}\n`,
  );
  nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'inherit' });
  process.on('exit', () => nginx.kill('SIGTERM'));
  await new Promise((r) => setTimeout(r, 500));
}

const open = (port) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });

async function latency(port, n = 3000) {
  const ws = await open(port);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise((r) => {
      ws.once('message', r);
      ws.send(payload);
    });
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  ws.close();
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(n * 0.5)], p99: samples[Math.floor(n * 0.99)] };
}

async function throughput(port, conns = 16, window = 16) {
  const sockets = await Promise.all(Array.from({ length: conns }, () => open(port)));
  let echoed = 0;
  let running = true;
  for (const ws of sockets) {
    ws.on('message', () => {
      echoed++;
      if (running) ws.send(payload);
    });
    for (let i = 0; i < window; i++) ws.send(payload);
  }
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  running = false;
  const rate = echoed / ((Date.now() - t0) / 1000);
  for (const ws of sockets) ws.terminate();
  return rate;
}

const targets = [
  ['direct', upPort],
  ['gateway', gwPort],
];
if (nginx !== null) targets.push(['nginx', nginxPort]);
const results = Object.fromEntries(targets.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, port] of targets) {
    const l = await latency(port);
    const t = await throughput(port);
    results[name].push({ ...l, rate: t });
    console.log(`round ${r + 1} ${name.padEnd(7)} p50 ${l.p50.toFixed(0)} µs  p99 ${l.p99.toFixed(0)} µs  ${t.toFixed(0)} msg/s`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name] of targets) {
  const rs = results[name];
  console.log(`median  ${name.padEnd(7)} p50 ${median(rs.map((x) => x.p50)).toFixed(0)} µs  p99 ${median(rs.map((x) => x.p99)).toFixed(0)} µs  ${median(rs.map((x) => x.rate)).toFixed(0)} msg/s`);
}
const rate = (name) => median(results[name].map((x) => x.rate));
console.log(`gateway/direct throughput: ${(rate('gateway') / rate('direct')).toFixed(2)}×`);
if (nginx !== null) console.log(`gateway/nginx throughput: ${(rate('gateway') / rate('nginx')).toFixed(2)}×`);
gw.kill('SIGTERM');
nginx?.kill('SIGTERM');
wss.close();
