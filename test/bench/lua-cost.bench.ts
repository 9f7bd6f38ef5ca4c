// CPU time per request of the `lua` policy's access call in a worker, split into what a
// script pays: running Lua at all (an empty script), the seed's scripts
// (examples/lua/global-limit.lua and endpoint-counters.lua), pure Lua work with and
// without the runaway protection, and each boundary crossing into `ngx` (a script of
// ten of the same crossing, less the empty script, over ten).
//
//   unprotected  the same script with no runaway protection at all (no hook, no
//                checks): what the protection costs is the difference
// Alternating rounds, median of 5, in CPU time of this thread (process.cpuUsage): on a
// host shared with other load a wall clock counts the time other processes ran.
//
//   npx tsc -p tsconfig.json && node dist/test/bench/lua-cost.bench.js [filter]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import { loadLuaVm } from '../../src/lua/lua-vm.js';
import { LuaHost } from '../../src/lua/lua-host.js';
import { luaPolicy } from '../../src/lua/lua-policy.js';
import type { AccessContext, PolicyEnv, PolicyInstance } from '../../src/policies/policy.js';

const N = 50_000;
const ROUNDS = 5;
const filter = process.argv[2] ?? '';
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: 8 * 1024 * 1024 });
const dicts = SharedDicts.format(shm, [
  { name: 'config', bytes: 64 * 1024 },
  { name: 'user_counts', bytes: 2 * 1024 * 1024 },
  { name: 'endpoint_counters', bytes: 1024 * 1024 },
  { name: 'd', bytes: 1024 * 1024 },
]);
// The seed limit high enough that the bench never gets 429s (the check is what is measured).
dicts.get('config')!.set('global_limit', 1e12);
dicts.get('d')!.set('k', 'value');
const vm = await loadLuaVm();
const protectedHost = new LuaHost(vm, { dicts, scheme: 'http', workerId: 0 });
const bareHost = new LuaHost(vm, { dicts, scheme: 'http', workerId: 0, unprotected: true });

const example = (name: string): string => readFileSync(fileURLToPath(new URL(`../../../examples/lua/${name}`, import.meta.url)), 'utf8');
const ten = (line: string): string => Array.from({ length: 10 }, () => line).join('\n');

/** name → access script; `crossing` cases are reported per crossing (÷ 10, less the empty script) */
const scripts: [name: string, source: string, crossing: boolean][] = [
  ['empty', '', false],
  ['seed global-limit.lua', example('global-limit.lua'), false],
  ['seed endpoint-counters.lua', example('endpoint-counters.lua'), false],
  ['lua loop 1000 additions', 'local n = 0 for i = 1, 1000 do n = n + i end', false],
  ['lua 100 function calls', 'local function f(x) return x + 1 end local n = 0 for i = 1, 100 do n = f(n) end', false],
  ['ngx.var.uri', ten('local v = ngx.var.uri'), true],
  ['ngx.var.http_x_user_id', ten('local v = ngx.var.http_x_user_id'), true],
  ['ngx.var.remote_addr', ten('local v = ngx.var.remote_addr'), true],
  ['ngx.now()', ten('local v = ngx.now()'), true],
  ['dict:get', ten('local v = ngx.shared.d:get("k")'), true],
  ['dict:incr', ten('local v = ngx.shared.d:incr("n", 1, 0)'), true],
  ['ngx.header[k] = v', ten('ngx.header["X-A"] = 1'), true],
  ['ngx.ctx.x = 1', ten('ngx.ctx.x = 1'), true],
];
const exitScript = 'return ngx.exit(429)';

const headers = ['host', 'bench', 'x-user-id', 'bench-user-1', 'accept', '*/*', 'x-forwarded-for', '127.0.0.1'];
const env = (host: LuaHost, routeIndex: number): PolicyEnv => ({ shm: shm.buffer, maxWorkers: 1, routeIndex, policyIndex: 0, kindIndex: 0, routeName: 'bench', tenants: null, plugins: new Map(), dicts, lua: host });
let route = 0;
const make = (host: LuaHost, source: string): PolicyInstance => luaPolicy.create({ access: { file: 'bench.lua', source }, maxInstructions: 1_000_000_000 }, env(host, ++route));

let sink = 0;
function run(p: PolicyInstance | null): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const access: AccessContext = { method: 'GET', path: '/api/orders', query: '', host: 'bench', headers, peer: '127.0.0.1', clientIp: '127.0.0.1', routeIndex: 0, routeName: 'bench', responseHeaders: [], consumer: null, tenant: null, watched: null };
    if (p === null) sink += access.headers.length;
    else if (p.access(access) !== null) sink++;
  }
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) * 1000) / N;
}

interface Case {
  readonly name: string;
  readonly policy: PolicyInstance | null;
  readonly samples: number[];
}
const cases: Case[] = [{ name: 'none', policy: null, samples: [] }];
for (const [name, source] of scripts) {
  if (!name.includes(filter) && name !== 'empty') continue;
  cases.push({ name, policy: make(protectedHost, source), samples: [] });
  cases.push({ name: `${name} (unprotected)`, policy: make(bareHost, source), samples: [] });
}
if ('ngx.exit(429)'.includes(filter)) cases.push({ name: 'ngx.exit(429)', policy: make(protectedHost, exitScript), samples: [] });

for (let r = 0; r < ROUNDS; r++) for (const c of cases) c.samples.push(run(c.policy));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const at = (name: string): number => median(cases.find((c) => c.name === name)!.samples);
const base = at('none');
const empty = at('empty');
const emptyBare = at('empty (unprotected)');
const us = (ns: number): string => (ns / 1000).toFixed(2).padStart(7);
console.log(`${'case'.padEnd(44)} ${'µs/request'.padStart(10)} ${'over none'.padStart(10)}   per crossing`);
for (const c of cases) {
  const m = median(c.samples);
  const crossing = scripts.find(([n]) => c.name === n || c.name === `${n} (unprotected)`)?.[2] === true;
  const per = crossing ? `${us((m - (c.name.endsWith('(unprotected)') ? emptyBare : empty)) / 10)} µs` : '';
  console.log(`${c.name.padEnd(44)} ${us(m)}    ${us(m - base)}   ${per}`);
}
console.log(`(sink ${sink}; ${N} requests a round, ${ROUNDS} rounds)`);
