#!/usr/bin/env node
// The request-path cost of a change: two tidegate builds (A and B, e.g. the commit
// before a change and after it) and nginx proxy_pass as the yardstick, each with 2
// workers, in front of one nginx `return 200` upstream (1 KiB body). wrk -t2 -c64,
// runs interleaved A, B, nginx, B, A, nginx… after a warm-up; prints each run, the
// medians, B/A and both against nginx in the same run, and the CPU time A and B spent
// per 1,000 requests (all threads, from /proc) with its B/A.
//
//   git worktree add /tmp/tg-a <commit> && ln -s "$PWD/node_modules" /tmp/tg-a/ && (cd /tmp/tg-a && npx tsc -p tsconfig.json)
//   npm run build && node scripts/measure-ab.mjs --a /tmp/tg-a --b . [--runs 5] [--duration 5] [--yaml-b "<extra top-level yaml>"] [--upstream-b "<extra keys of the upstream>"]
// --upstream-a/-b add keys to the one upstream's flow mapping, e.g.
//   --upstream-b 'breaker: { failureRate: 50% }, concurrency: { limit: 10000 }'
// --route-a/-b add keys to the one route's flow mapping, e.g.
//   --route-b 'policies: [{ rate-limit: { key: route, rate: 10000000/s, adaptive: {} } }]'
// --split-a/-b <percent> turn the route into a split: `up` gets 100 − percent, a second
// upstream `up2` (the same nginx) gets percent, so A/B measures a split route against a
// plain one in one build:
//   node scripts/measure-ab.mjs --a . --b . --split-b 50
// --header adds one request header to every request (wrk and the start-up probe), to both
// peers, e.g. an API key for a route with an api-key policy:
//   --header 'x-api-key: bench-key-0123456789abcdef' --route-b 'policies: [{ api-key: { file: /tmp/keys.yaml } }]'
// --together loads A and B at the same moment (one wrk -t1 -c32 each; nginx runs alone
// after them): on a shared host whose speed drifts by ±20 % from one run to the next,
// both then run under the same conditions, and each round gives a paired B/A of
// throughput and of CPU per 1,000 requests; their medians are printed as `paired`.
// --script <file.lua> hands wrk a request script (all peers), e.g. a distinct path per
// request: scripts/wrk/unique-paths.lua.
// --body <bytes> sets the upstream's body size (default 1024), e.g. 8192 for cache hits
// of the size the cache benchmark's objects have on average.
// --cache-control <value> makes the upstream send `Cache-Control: <value>` with every
// response, e.g. `private` for a caching route's responses it may not store.
// Needs nginx and wrk (bash scripts/install-bench-deps.sh).
import { spawn, exec } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startNginxPair } from './lib/nginx-pair.mjs';

const { values: o } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    runs: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    'yaml-a': { type: 'string', default: '' },
    'yaml-b': { type: 'string', default: '' },
    'upstream-a': { type: 'string', default: '' },
    'upstream-b': { type: 'string', default: '' },
    'route-a': { type: 'string', default: '' },
    'route-b': { type: 'string', default: '' },
    'split-a': { type: 'string', default: '' },
    'split-b': { type: 'string', default: '' },
    header: { type: 'string', default: '' },
    together: { type: 'boolean', default: false },
    script: { type: 'string', default: '' },
    body: { type: 'string', default: '1024' },
    'cache-control': { type: 'string', default: '' },
  },
});
if (!o.a) {
  console.error('usage: node scripts/measure-ab.mjs --a <checkout A> --b <checkout B> [--runs 5] [--duration 5] [--yaml-a "<extra yaml>"] [--yaml-b "<extra yaml>"]');
  process.exit(2);
}
const sh = promisify(exec);
const dir = mkdtempSync(join(tmpdir(), 'tg-ab-'));
const UP = 18281, NGINX = 18282, A = 18283, B = 18285;
const tgYaml = (port, extra, upstream, route, split) => {
  const up = (name) => `${name}: { discovery: { type: static, endpoints: ["127.0.0.1:${UP}"] }${upstream ? `, ${upstream}` : ''} }`;
  const target = split === '' ? 'upstream: up' : `split: [{ upstream: up, weight: ${100 - Number(split)} }, { upstream: up2, weight: ${Number(split)} }]`;
  return `listen: { host: 127.0.0.1, port: ${port} }\nworkers: 2\nadmin: { port: ${port + 1} }\nupstreams: { ${up('up')}${split === '' ? '' : `, ${up('up2')}`} }\nroutes: [{ ${target}${route ? `, ${route}` : ''} }]\n${extra.replaceAll('\\n', '\n')}\n`;
};
writeFileSync(join(dir, 'a.yaml'), tgYaml(A, o['yaml-a'], o['upstream-a'], o['route-a'], o['split-a']));
writeFileSync(join(dir, 'b.yaml'), tgYaml(B, o['yaml-b'], o['upstream-b'], o['route-b'], o['split-b']));

const procs = [
  ...startNginxPair(dir, UP, NGINX, Number(o.body), o['cache-control']),
  spawn(process.execPath, [join(resolve(o.a), 'dist/src/cli.js'), '--config', join(dir, 'a.yaml')], { stdio: 'ignore' }),
  spawn(process.execPath, [join(resolve(o.b), 'dist/src/cli.js'), '--config', join(dir, 'b.yaml')], { stdio: 'ignore' }),
];
const stop = () => procs.forEach((p) => p.kill('SIGTERM'));
process.on('SIGINT', () => (stop(), process.exit(130)));
try {
  // Until every peer answers (a loaded machine starts them slowly), at most 30 s.
  const deadline = Date.now() + 30_000;
  for (const p of [A, B, NGINX]) {
    const probe = o.header ? { headers: { [o.header.slice(0, o.header.indexOf(':')).trim()]: o.header.slice(o.header.indexOf(':') + 1).trim() } } : {};
    while ((await fetch(`http://127.0.0.1:${p}/`, probe).then((r) => r.status, () => 0)) !== 200) {
      if (Date.now() > deadline) throw new Error(`port ${p} did not answer 200 within 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // CPU time of a peer's process (all its threads), from /proc: on a small shared host
  // throughput swings ±20 % run to run with how the scheduler shares the cores between
  // wrk and the peer, while the CPU each request costs the peer moves far less.
  const pidOf = { [A]: procs[procs.length - 2].pid, [B]: procs[procs.length - 1].pid };
  const ticks = Number((await sh('getconf CLK_TCK')).stdout.trim()) || 100;
  const cpuMs = (port) => {
    const pid = pidOf[port];
    if (pid === undefined) return NaN;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // utime and stime are fields 14 and 15; the command name before them may hold spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
  };
  const cpu = { a: [], b: [] };
  const rps = async (port, conns = 64, threads = 2) => {
    const c0 = cpuMs(port);
    const out = (await sh(`wrk -t${threads} -c${conns} -d${o.duration}s ${o.header ? `-H ${JSON.stringify(o.header)} ` : ''}${o.script ? `-s ${JSON.stringify(resolve(o.script))} ` : ''}http://127.0.0.1:${port}/`)).stdout;
    if (/Non-2xx|Socket errors/.test(out)) console.error(`warning: errors at port ${port}:\n${out}`);
    const n = Number(/(\d+) requests in/.exec(out)[1]);
    if (port === A || port === B) cpu[port === A ? 'a' : 'b'].push(+(((cpuMs(port) - c0) * 1000) / n).toFixed(1));
    return Number(/Requests\/sec:\s*([\d.]+)/.exec(out)[1]);
  };
  const both = async (r) => {
    const [a, b] = await Promise.all([rps(A, 32, 1), rps(B, 32, 1)]);
    r.a.push(a);
    r.b.push(b);
  };
  for (const p of [A, B, NGINX]) await rps(p); // warm-up
  cpu.a.length = 0;
  cpu.b.length = 0;
  const r = { a: [], b: [], nginx: [] };
  // The order alternates (A B nginx, then B A nginx): whichever ran second after nginx
  // came out faster by ~9 % in same-build runs, so a fixed order biases B/A.
  for (let i = 0; i < Number(o.runs); i++) {
    if (o.together) await both(r);
    else if (i % 2 === 0) {
      r.a.push(await rps(A));
      r.b.push(await rps(B));
    } else {
      r.b.push(await rps(B));
      r.a.push(await rps(A));
    }
    r.nginx.push(await rps(NGINX));
  }
  const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
  const m = { a: med(r.a), b: med(r.b), nginx: med(r.nginx) };
  const cpuMed = { a: med(cpu.a), b: med(cpu.b) };
  const ratios = (x, y) => x.map((v, i) => y[i] / v);
  const paired = o.together ? { bOverA: +med(ratios(r.a, r.b)).toFixed(3), cpuBOverA: +med(ratios(cpu.a, cpu.b)).toFixed(3), rounds: ratios(r.a, r.b).map((v) => +v.toFixed(3)), cpuRounds: ratios(cpu.a, cpu.b).map((v) => +v.toFixed(3)) } : undefined;
  console.log(JSON.stringify({ runs: r, medians: m, cpuMsPer1k: { runs: cpu, medians: cpuMed, bOverA: +(cpuMed.b / cpuMed.a).toFixed(3) }, bOverA: +(m.b / m.a).toFixed(3), paired, aVsNginx: +(m.a / m.nginx).toFixed(3), bVsNginx: +(m.b / m.nginx).toFixed(3), loadavg: readFileSync('/proc/loadavg', 'utf8').trim() }));
} finally {
  stop();
}
