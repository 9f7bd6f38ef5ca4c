#!/usr/bin/env node
// Certificate reloads under load, reproducible: wrk over TLS (2 threads, 64 keep-alive
// connections, 12 s) through tidegate (2 workers, listen.tls) to a node:http upstream,
// with the certificate files rewritten and POST /reload sent three times during the
// run. Prints wrk's summary (socket errors and non-2xx appear only when there are
// any), the reloads applied and the old listeners retired.
//   npm run build && node scripts/measure-tls-reload.mjs      (needs wrk and openssl)
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'tg-tls-reload-'));
const TG = 18193, ADMIN = 18194;
const cert = join(dir, 'site.crt'), key = join(dir, 'site.key');
const makeCert = (n) =>
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=site-${n}.test`], { stdio: 'pipe' });
makeCert(0);

const body = 'x'.repeat(1024);
const upstream = createServer((_req, res) => res.end(body));
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upPort = upstream.address().port;
writeFileSync(
  join(dir, 'tg.yaml'),
  `listen: { host: 127.0.0.1, port: ${TG}, tls: { cert: "${cert}", key: "${key}" } }\nworkers: 2\nadmin: { port: ${ADMIN} }\nupstreams: { up: { discovery: { type: static, endpoints: ["127.0.0.1:${upPort}"] } } }\nroutes: [{ upstream: up }]\n`,
);
const gw = spawn(process.execPath, [join(root, 'dist/src/cli.js'), '--config', join(dir, 'tg.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
let log = '';
gw.stdout.on('data', (d) => (log += d));
const stop = () => {
  gw.kill('SIGTERM');
  upstream.close();
};
process.on('SIGINT', () => (stop(), process.exit(130)));
try {
  const deadline = Date.now() + 15_000;
  while (!log.includes('"event":"started"')) {
    if (Date.now() > deadline) throw new Error(`tidegate did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const wrk = spawn('wrk', ['-t2', '-c64', '-d12s', `https://127.0.0.1:${TG}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  wrk.stdout.on('data', (d) => (out += d));
  const done = new Promise((r) => wrk.once('exit', r));
  for (let i = 1; i <= 3; i++) {
    await new Promise((r) => setTimeout(r, 3000));
    makeCert(i);
    const res = await fetch(`http://127.0.0.1:${ADMIN}/reload`, { method: 'POST' });
    console.log(`reload ${i}: ${res.status}`);
  }
  await done;
  console.log(out.trim());
  // Old listeners close once idle: wrk's connections were closed after their next response.
  await new Promise((r) => setTimeout(r, 13_000));
  const count = (event) => log.split('\n').filter((l) => l.includes(`"event":"${event}"`)).length;
  console.log(`tls-reloaded: ${count('tls-reloaded')}, tls-reload-failed: ${count('tls-reload-failed')}, tls-listener-retired: ${count('tls-listener-retired')} (2 workers x 3 reloads = 6)`);
} finally {
  stop();
}
