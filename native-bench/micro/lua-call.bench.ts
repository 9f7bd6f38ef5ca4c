// Nanoseconds per request a Lua script adds in a worker: the `lua` policy's access
// (and log) calls on a synthetic request, against no policy, for
//   empty        an empty script in access and in log
//   seed-limit   examples/lua/global-limit.lua (the seed's global limit + per-user incr)
//   seed-count   examples/lua/endpoint-counters.lua (two incr)
//   autoscale    the tidegate-lua peer's scripts (get + set in access, two incr in log)
//   plugin       the same policy as a JS plugin (the tidegate-plugin peer's)
// Alternating rounds, median of 5, in CPU time of this thread (process.cpuUsage): on a
// host shared with other load a wall clock counts the time other processes ran.
//
//   npx tsc -p tsconfig.json && node dist/native-bench/micro/lua-call.bench.js
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import { loadLuaVm } from '../../src/lua/lua-vm.js';
import { LuaHost } from '../../src/lua/lua-host.js';
import { luaPolicy } from '../../src/lua/lua-policy.js';
import { pluginPolicy } from '../../src/plugins/plugin-policy.js';
import { importPlugin } from '../../src/plugins/plugin-module.js';
import type { AccessContext, PolicyEnv, PolicyInstance } from '../../src/policies/policy.js';
import { PEER_FILES, REPO_ROOT } from '../paths.js';

const N = 100_000;
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: 40 * 1024 * 1024 });
const dicts = SharedDicts.format(shm, [
  { name: 'tg_limits', bytes: 16 * 1024 * 1024 },
  { name: 'tg_counters', bytes: 16 * 1024 * 1024 },
  { name: 'config', bytes: 64 * 1024 },
  { name: 'user_counts', bytes: 4 * 1024 * 1024 },
  { name: 'endpoint_counters', bytes: 1024 * 1024 },
]);
// The seed limit high enough that the bench never gets 429s (the check is what is measured).
dicts.get('config')!.set('global_limit', 1e12);
const host = new LuaHost(await loadLuaVm(), { dicts, scheme: 'http', workerId: 0 });
const env: PolicyEnv = { shm: shm.buffer, maxWorkers: 1, routeIndex: 0, policyIndex: 0, kindIndex: 0, routeName: 'bench', tenants: null, plugins: new Map([['autoscale', await importPlugin(join(PEER_FILES, 'autoscale-plugin.mjs'))]]), dicts, lua: host };

const file = (path: string) => ({ file: path, source: readFileSync(path, 'utf8') });
const autoscaleAccess = readFileSync(join(PEER_FILES, 'autoscale-access.lua'), 'utf8').replace('{{RATE}}', '10000000').replace('{{BURST}}', '1000000');
const policies: Record<string, PolicyInstance | null> = {
  none: null,
  empty: luaPolicy.create({ access: file(join(PEER_FILES, 'empty.lua')), log: file(join(PEER_FILES, 'empty.lua')), maxInstructions: 1_000_000 }, { ...env, routeIndex: 1 }),
  'seed-limit': luaPolicy.create({ access: file(join(REPO_ROOT, 'examples/lua/global-limit.lua')), maxInstructions: 1_000_000 }, { ...env, routeIndex: 2 }),
  'seed-count': luaPolicy.create({ access: file(join(REPO_ROOT, 'examples/lua/endpoint-counters.lua')), maxInstructions: 1_000_000 }, { ...env, routeIndex: 3 }),
  autoscale: luaPolicy.create({ access: { file: 'autoscale-access.lua', source: autoscaleAccess }, log: file(join(PEER_FILES, 'autoscale-log.lua')), maxInstructions: 1_000_000 }, { ...env, routeIndex: 4 }),
  plugin: pluginPolicy.create({ name: 'autoscale', config: { header: 'x-user-id', rate: 10_000_000, burst: 1_000_000 } }, { ...env, routeIndex: 5 }),
};

const headers = ['host', 'bench', 'x-user-id', 'bench-user-1', 'accept', '*/*', 'x-forwarded-for', '127.0.0.1'];
let sink = 0;
function run(p: PolicyInstance | null, routeIndex: number): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const access: AccessContext = { method: 'GET', path: '/api/orders', query: '', host: 'bench', headers, peer: '127.0.0.1', clientIp: '127.0.0.1', routeIndex, routeName: 'bench', responseHeaders: [], consumer: null, tenant: null, watched: null };
    if (p === null) {
      sink += access.headers.length;
      continue;
    }
    if (p.access(access) !== null) sink++;
    p.log?.({ access, status: 200, durationMs: 1 });
  }
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) * 1000) / N;
}

const names = Object.keys(policies);
const rounds: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < 5; r++) names.forEach((n, i) => rounds[n]!.push(run(policies[n]!, i)));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(rounds.none!);
for (const n of names) console.log(`${n.padEnd(11)} ${median(rounds[n]!).toFixed(0).padStart(7)} ns/request  (+${(median(rounds[n]!) - base).toFixed(0)} ns over none)`);
console.log(`(sink ${sink}; user_counts bench-user-1 = ${dicts.get('user_counts')!.get('bench-user-1')})`);
