// Nanoseconds per request spent on the pool.maxPending bound in a worker: the full()
// check, acquire on dispatch and release on completion, against the same loop without
// them; one real UpstreamSet over a real shared table, alternating, median of 5 rounds.
//   node dist/test/bench/max-pending.bench.js
import { SharedState } from '../../src/shm/shared-state.js';
import { EndpointTable } from '../../src/shm/endpoint-table.js';
import { EndpointWriter } from '../../src/primary/endpoint-writer.js';
import { UpstreamSet } from '../../src/worker/upstream-set.js';
import { IpAllowList } from '../../src/policies/ip-allow-list.js';
import type { WorkerUpstream } from '../../src/messages.js';

const N = 5_000_000;
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 1, maxEndpoints: 8, limiterSlots: 16, limiterPolicies: 1 });
const writer = new EndpointWriter(shm);
writer.applyConfig([{ name: 'app', balancer: 'round-robin', endpoints: [{ host: '127.0.0.1', port: 1 }], slowStartMs: 0, panicThreshold: 0 }], true);
const cfg: WorkerUpstream = { name: 'app', balancer: 'round-robin', hash: null, timeouts: { connect: 1000, response: 30_000, read: 60_000 }, pool: { connections: 64, keepAliveTimeout: 4000, maxPending: 1024, pipelining: 1 }, retries: 1, guard: null };
const up = new UpstreamSet(cfg, new EndpointTable(shm, 0), new IpAllowList([]));
const ep = up.endpoints[0]!;

let sink = 0;
function withBound(): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    // ~32 requests in flight, as on a busy worker: some releases, some acquires.
    if (up.full(ep)) sink++;
    else up.acquire(ep);
    if (ep.active > 32) up.release(ep);
  }
  while (ep.active > 0) up.release(ep);
  return Number(process.hrtime.bigint() - t0) / N;
}
let active = 0;
function without(): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    active++;
    if (active > 32) active--;
  }
  active = 0;
  return Number(process.hrtime.bigint() - t0) / N;
}
const a: number[] = [];
const b: number[] = [];
withBound();
without();
for (let r = 0; r < 5; r++) {
  a.push(withBound());
  b.push(without());
}
const med = (x: number[]): number => [...x].sort((p, q) => p - q)[2]!;
console.log(JSON.stringify({ iterations: N, nsPerRequestWith: +med(a).toFixed(2), nsPerRequestWithout: +med(b).toFixed(2), costNs: +(med(a) - med(b)).toFixed(2), refusedInLoop: sink }));
void up.close();
writer.stop();
