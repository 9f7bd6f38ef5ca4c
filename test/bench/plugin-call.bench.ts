// Nanoseconds per request a plugin adds in a worker: the `plugin` policy's access and
// log calls (context views, try/catch) for an empty plugin and for the nginx-lua peer's
// policy as a plugin (native-bench/peers/autoscale-plugin.mjs: shared-dict get + set in
// access, two incr in log), against no plugin. Alternating rounds, median of 5. Timed in
// CPU time of this thread (process.cpuUsage), not wall time: on a host shared with
// other load a wall clock counts the time other processes ran.
//   node dist/test/bench/plugin-call.bench.js
import { fileURLToPath } from 'node:url';
import { SharedState } from '../../src/shm/shared-state.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';
import { pluginPolicy } from '../../src/plugins/plugin-policy.js';
import { importPlugin } from '../../src/plugins/plugin-module.js';
import type { AccessContext, PolicyInstance } from '../../src/policies/policy.js';
import type { PluginDefinition } from '../../src/plugins/plugin-api.js';

const N = 300_000;
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1, sharedDictBytes: 32 * 1024 * 1024 });
const dicts = SharedDicts.format(shm, [
  { name: 'tg_limits', bytes: 16 * 1024 * 1024 },
  { name: 'tg_counters', bytes: 16 * 1024 * 1024 },
]);
const autoscale = await importPlugin(fileURLToPath(new URL('../../../native-bench/peers/autoscale-plugin.mjs', import.meta.url)));
const empty: PluginDefinition = { name: 'empty', create: () => ({ access() {}, log() {} }) };
const plugins = new Map([
  ['autoscale', autoscale],
  ['empty', empty],
]);
const env = { shm: shm.buffer, maxWorkers: 1, routeIndex: 0, policyIndex: 0, kindIndex: 0, routeName: 'bench', tenants: null, plugins, dicts };
const withAutoscale = pluginPolicy.create({ name: 'autoscale', config: { header: 'x-user-id', rate: 10_000_000, burst: 1_000_000 } }, env);
const withEmpty = pluginPolicy.create({ name: 'empty' }, env);

const headers = ['host', 'bench', 'x-user-id', 'bench-user-1', 'accept', '*/*', 'x-forwarded-for', '127.0.0.1'];
let sink = 0;
function run(p: PolicyInstance | null): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const access: AccessContext = { method: 'GET', path: '/', query: '', host: 'bench', headers, peer: '127.0.0.1', clientIp: '127.0.0.1', routeIndex: 0, routeName: 'bench', responseHeaders: [], consumer: null, tenant: null, watched: null };
    if (p === null) {
      sink += access.headers.length;
      continue;
    }
    if (p.access(access) !== null) sink++;
    p.log!({ access, status: 200, durationMs: 1 });
  }
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) * 1000) / N;
}

const rounds: Record<string, number[]> = { none: [], empty: [], autoscale: [] };
for (let r = 0; r < 5; r++) {
  rounds.none!.push(run(null));
  rounds.empty!.push(run(withEmpty));
  rounds.autoscale!.push(run(withAutoscale));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(rounds.none!);
for (const [k, v] of Object.entries(rounds)) console.log(`${k.padEnd(10)} ${median(v).toFixed(0).padStart(6)} ns/request  (+${(median(v) - base).toFixed(0)} ns over none)`);
console.log(`(sink ${sink})`);
