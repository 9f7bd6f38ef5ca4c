#!/usr/bin/env node
// Where the gateway's MiB go (after npm run build): starts tidegate (2 workers, one
// route to a local upstream) and reports, idle and then with N idle keep-alive client
// connections (default 10,000):
//   - RSS, split into anonymous (V8 heaps, malloc, stacks) and file-backed/shared memory
//     (mapped code, the shared-memory tables);
//   - each isolate's V8 heap (primary, every worker, the aggregation thread) from /metrics;
//   - what remains of anonymous memory outside the V8 heaps (malloc arenas, uWS, thread
//     stacks), and the biggest file-backed mappings from /proc/<pid>/smaps.
// uWS closes an HTTP connection idle for ~10 s, so every client connection sends a
// request every 4 s and the reading is taken once all are open (how many are still
// open is printed beside it).
//   node scripts/measure-memory.mjs [--workers 2] [--connections 10000] [--settle 5]
//        [--node-flags "--max-semi-space-size=4"] [--env MALLOC_ARENA_MAX=2] [--tidegate PATH/cli.js] [--json]
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = { workers: 2, connections: 10_000, settle: 5, nodeFlags: '', env: {}, json: false, cli: null };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--workers') opt.workers = Number(args[++i]);
  else if (a === '--connections') opt.connections = Number(args[++i]);
  else if (a === '--settle') opt.settle = Number(args[++i]);
  else if (a === '--node-flags') opt.nodeFlags = args[++i];
  else if (a === '--env') {
    const [k, ...v] = args[++i].split('=');
    opt.env[k] = v.join('=');
  } else if (a === '--json') opt.json = true;
  else if (a === '--tidegate') opt.cli = args[++i];
  else throw new Error(`unknown argument ${a}`);
}

// Each client connection is a descriptor here and one in the gateway: raise the soft
// limit to the hard one for both (a child inherits it) by running again under a shell.
function openFileLimit() {
  const m = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (s) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: n(m[1]), hard: n(m[2]) };
}
const need = opt.connections + 1024;
const lim = openFileLimit();
if (lim.soft < need && !process.env.TG_MEASURE_MEMORY_RAISED) {
  if (lim.hard < need) throw new Error(`ulimit -n hard limit ${lim.hard} < ${need}: lower --connections or raise the limit`);
  const r = spawnSync('sh', ['-c', `ulimit -n ${lim.hard} && exec "$0" "$@"`, process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    stdio: 'inherit',
    env: { ...process.env, TG_MEASURE_MEMORY_RAISED: '1' },
  });
  process.exit(r.status ?? 1);
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 2 ** 20;
const r1 = (x) => Math.round(x * 10) / 10;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function status(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem'), threads: Number(/Threads:\s+(\d+)/.exec(s)?.[1] ?? 0) };
}

/** resident MiB per mapped file (by basename), biggest first */
function fileMappings(pid) {
  const by = new Map();
  let name = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] && head[1].startsWith('/') ? head[1].split('/').pop() : null;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && name) by.set(name, (by.get(name) ?? 0) + Number(rss[1]) / 1024);
  }
  return [...by].sort((a, b) => b[1] - a[1]).map(([file, mib]) => ({ file, mib: r1(mib) }));
}

function series(text, name) {
  const out = [];
  const re = new RegExp(`^${name}(?:\\{([^}]*)\\})? ([0-9.e+]+)$`, 'gm');
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ labels: m[1] ?? '', value: Number(m[2]) });
  return out;
}

async function reading(pid, adminUrl) {
  const st = status(pid);
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const one = (n) => series(text, n)[0]?.value ?? NaN;
  const isolates = [{ isolate: 'primary', usedMiB: one('tidegate_nodejs_heap_size_used_bytes') / MiB, totalMiB: one('tidegate_nodejs_heap_size_total_bytes') / MiB }];
  const wTotal = new Map(series(text, 'tidegate_worker_heap_total_bytes').map((x) => [x.labels, x.value]));
  for (const w of series(text, 'tidegate_worker_heap_used_bytes')) isolates.push({ isolate: `worker ${/worker="(\d+)"/.exec(w.labels)[1]}`, usedMiB: w.value / MiB, totalMiB: (wTotal.get(w.labels) ?? NaN) / MiB });
  const agg = series(text, 'tidegate_aggregator_heap_used_bytes')[0];
  if (agg) isolates.push({ isolate: 'aggregation thread', usedMiB: agg.value / MiB, totalMiB: one('tidegate_aggregator_heap_total_bytes') / MiB });
  const sum = (k) => isolates.reduce((a, b) => a + (Number.isFinite(b[k]) ? b[k] : 0), 0);
  const heapUsed = sum('usedMiB');
  const heapTotal = sum('totalMiB');
  return {
    rssMiB: r1(st.rss),
    anonMiB: r1(st.anon),
    fileMiB: r1(st.file),
    shmemMiB: r1(st.shmem),
    threads: st.threads,
    isolates: isolates.map((x) => ({ isolate: x.isolate, usedMiB: r1(x.usedMiB), totalMiB: r1(x.totalMiB) })),
    v8HeapsUsedMiB: r1(heapUsed),
    v8HeapsTotalMiB: r1(heapTotal),
    // Anonymous memory the V8 heaps do not account for: malloc (uWS, OpenSSL, V8's own
    // malloc'd structures), thread stacks. A heap's reserved pages are not all resident,
    // so the truth lies between anonymous − Σ total and anonymous − Σ used.
    nativeAnonMiB: [r1(Math.max(0, st.anon - heapTotal)), r1(st.anon - heapUsed)],
  };
}

const up = createServer((req, res) => res.end('ok'));
up.keepAliveTimeout = 60_000;
await new Promise((r) => up.listen(0, '127.0.0.1', r));
const dir = mkdtempSync(join(tmpdir(), 'tg-mem-'));
const cfg = join(dir, 'c.yaml');
writeFileSync(cfg, `listen: { host: 127.0.0.1, port: 0 }\nworkers: ${opt.workers}\nadmin: { host: 127.0.0.1, port: 0 }\nupstreams: { a: { discovery: { type: static, endpoints: ["127.0.0.1:${up.address().port}"] } } }\nroutes: [{ upstream: a }]\n`);
const nodeArgs = opt.nodeFlags ? opt.nodeFlags.split(/\s+/).filter(Boolean) : [];
const gw = spawn(process.execPath, [...nodeArgs, opt.cli ?? join(root, 'dist/src/cli.js'), '--config', cfg], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...opt.env } });
const started = await new Promise((resolve, reject) => {
  let buf = '';
  gw.stdout.on('data', (d) => {
    buf += d;
    const m = /"event":"started","port":(\d+),"adminPort":(\d+)/.exec(buf);
    if (m) resolve({ port: Number(m[1]), adminPort: Number(m[2]) });
    if (buf.length > 1e6) buf = buf.slice(-1e5);
  });
  gw.once('exit', (code) => reject(new Error(`tidegate exited (${code}) before it started`)));
});
gw.stdout.resume();
const adminUrl = `http://127.0.0.1:${started.adminPort}`;
// every worker reports its heap with its first telemetry snapshot
for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(200)) {
  const t = await (await fetch(`${adminUrl}/metrics`)).text();
  if (series(t, 'tidegate_worker_heap_used_bytes').length >= opt.workers) break;
}
await sleep(opt.settle * 1000);
const idle = await reading(gw.pid, adminUrl);
const files = fileMappings(gw.pid).slice(0, 6);

let withConnections = null;
if (opt.connections > 0) {
  const sockets = [];
  let answered = 0;
  const req = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
  const t0 = Date.now();
  // Keep every connection inside uWS's idle timeout while the rest open: a request each
  // every 4 s, only on a connection whose last request was answered (no pipelining).
  const pending = new Set();
  const keep = setInterval(() => {
    for (const s of sockets)
      if (!s.destroyed && !pending.has(s)) {
        pending.add(s);
        s.write(req);
      }
  }, 4_000);
  let closed = 0;
  for (let i = 0; i < opt.connections; i++) {
    const s = connect(started.port, '127.0.0.1');
    s.on('error', () => {});
    s.once('close', () => closed++);
    s.once('data', () => answered++);
    s.on('data', () => pending.delete(s));
    pending.add(s);
    s.write(req);
    sockets.push(s);
    if (i % 200 === 199 || i === opt.connections - 1) {
      // 200 at a time: a larger burst of connects overflows the listen backlog
      for (const deadline = Date.now() + 10_000; answered + closed < i + 1 && Date.now() < deadline; ) await sleep(5);
    }
  }
  await sleep(2_000);
  withConnections = { connections: opt.connections, answered, stillOpen: opt.connections - closed, openSeconds: r1((Date.now() - t0) / 1000), ...(await reading(gw.pid, adminUrl)) };
  withConnections.perConnectionKiB = r1(((withConnections.rssMiB - idle.rssMiB) * 1024) / opt.connections);
  clearInterval(keep);
  for (const s of sockets) s.destroy();
}

gw.kill('SIGTERM');
await new Promise((r) => gw.once('exit', r));
up.close();
rmSync(dir, { recursive: true, force: true });

const result = { workers: opt.workers, nodeFlags: opt.nodeFlags, env: opt.env, idle, topFileMappings: files, withConnections };
if (opt.json) {
  console.log(JSON.stringify(result));
} else {
  const show = (label, x) => {
    console.log(`${label}: RSS ${x.rssMiB} MiB = anonymous ${x.anonMiB} + file-backed ${x.fileMiB} + shared ${x.shmemMiB}; ${x.threads} threads`);
    for (const i of x.isolates) console.log(`  V8 heap ${i.isolate.padEnd(19)} used ${String(i.usedMiB).padStart(6)} MiB, total ${String(i.totalMiB).padStart(6)} MiB`);
    console.log(`  V8 heaps together: used ${x.v8HeapsUsedMiB} MiB, total ${x.v8HeapsTotalMiB} MiB; anonymous memory outside them (malloc, uWS, stacks) ${x.nativeAnonMiB[0]}–${x.nativeAnonMiB[1]} MiB`);
  };
  console.log(`tidegate, ${opt.workers} workers${opt.nodeFlags ? `, node ${opt.nodeFlags}` : ''}${Object.keys(opt.env).length ? `, env ${JSON.stringify(opt.env)}` : ''}`);
  show('idle', idle);
  console.log(`  biggest file-backed mappings: ${files.map((f) => `${f.file} ${f.mib}`).join(', ')} (MiB)`);
  if (withConnections) show(`${withConnections.connections} keep-alive connections (${withConnections.answered} answered, ${withConnections.stillOpen} open at the reading, opened in ${withConnections.openSeconds} s; ${withConnections.perConnectionKiB} KiB each)`, withConnections);
}
