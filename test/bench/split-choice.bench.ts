// Nanoseconds per request spent choosing a split side in a worker: chooseSide() over a
// real shared split row, for a random split, a split with a header rule that does not
// match (one header scan first), and a split sticky on a header (one scan + one hash),
// against the same loop that reads the plain route's upstream index. Headers are a
// typical forwarded list of 12 pairs. Alternating rounds, median of 5.
//   node dist/test/bench/split-choice.bench.js
import { SharedState } from '../../src/shm/shared-state.js';
import { SplitTable } from '../../src/shm/split-table.js';
import { chooseSide } from '../../src/worker/split-choice.js';
import type { WorkerSplit } from '../../src/messages.js';

const N = 3_000_000;
const shm = SharedState.create({ maxWorkers: 1, maxUpstreams: 2, maxEndpoints: 1, limiterSlots: 16, limiterPolicies: 1 });
const table = new SplitTable(shm);
table.write(0, [95, 5]);
const headers = ['host', 'api.example.com', 'user-agent', 'curl/8.0', 'accept', '*/*', 'accept-encoding', 'gzip', 'x-user', 'user-123456', 'cookie', 'a=1; session=abc', 'x-forwarded-for', '10.0.0.1', 'x-forwarded-proto', 'http', 'x-forwarded-host', 'api.example.com', 'via', '1.1 tidegate', 'x-request-id', '0b9c7f1e-1234', 'traceparent', '00-abc-def-01'];
const plain: WorkerSplit = { row: 0, sides: [0, 1], sticky: null, rules: [] };
const ruled: WorkerSplit = { row: 0, sides: [0, 1], sticky: null, rules: [{ side: 1, headers: ['x-canary', 'always'] }] };
const sticky: WorkerSplit = { row: 0, sides: [0, 1], sticky: { on: 'header', name: 'x-user' }, rules: [] };
const route = { upstream: 0 };

let sink = 0;
function time(fn: () => number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += fn();
  return Number(process.hrtime.bigint() - t0) / N;
}
const cases: [string, () => number][] = [
  ['plain route (upstream index)', () => route.upstream],
  ['split, random', () => chooseSide(table, plain, headers, '10.0.0.1')],
  ['split, header rule not matching', () => chooseSide(table, ruled, headers, '10.0.0.1')],
  ['split, sticky on a header', () => chooseSide(table, sticky, headers, '10.0.0.1')],
];
const results = new Map<string, number[]>(cases.map(([n]) => [n, []]));
for (let round = 0; round < 5; round++) {
  const order = round % 2 === 0 ? cases : [...cases].reverse();
  for (const [name, fn] of order) results.get(name)!.push(time(fn));
}
const med = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1]!;
for (const [name, r] of results) console.log(`${name.padEnd(34)} ${med(r).toFixed(1)} ns/request (runs ${r.map((v) => v.toFixed(1)).join(', ')})`);
if (sink === -1) console.log(sink);
