// Consistent hashing with Maglev (Eisenbud et al., NSDI 2016; Envoy's MAGLEV): each
// endpoint fills a fixed-size lookup table along its own permutation, so a request key
// maps with one array read, and when an endpoint leaves only about 1/n of the keys
// move (those it owned, plus a small fraction the paper bounds). Weighted: an endpoint
// with twice the weight takes twice the turns while filling.
//
// Every worker builds the same table from the same shared rows (order and addresses),
// so a key lands on the same endpoint whichever worker serves it.
import type { EndpointSnapshot } from '../shm/endpoint-table.js';
import { hash32, SEED_A, SEED_B } from './hash.js';
import { randomCandidate, type Balancer, type BalancerContext } from './balancer.js';

/** Table sizes: primes, the smallest ≥ 100 × endpoints is used (the paper's M ≫ N). */
const PRIMES = [251, 1021, 4093, 16381, 65521];

export function maglevSize(n: number): number {
  for (const p of PRIMES) if (p >= n * 100) return p;
  return PRIMES[PRIMES.length - 1]!;
}

/**
 * Builds the lookup table for `rows` (row indices), `keys` (their addresses) and
 * `weights`. Exported for tests; O(M × log) in practice.
 */
export function buildMaglev(rows: readonly number[], keys: readonly string[], weights: readonly number[], size = maglevSize(rows.length)): Int32Array {
  const table = new Int32Array(size).fill(-1);
  const n = rows.length;
  if (n === 0) return table;
  const offset = new Float64Array(n);
  const skip = new Float64Array(n);
  const next = new Float64Array(n);
  const acc = new Float64Array(n);
  let maxW = 0;
  for (let i = 0; i < n; i++) {
    offset[i] = hash32(keys[i]!, SEED_A) % size;
    skip[i] = (hash32(keys[i]!, SEED_B) % (size - 1)) + 1;
    maxW = Math.max(maxW, weights[i]!);
  }
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      acc[i]! += weights[i]!;
      if (acc[i]! < maxW) continue;
      acc[i]! -= maxW;
      let c = (offset[i]! + skip[i]! * next[i]!) % size;
      while (table[c]! >= 0) {
        next[i]!++;
        c = (offset[i]! + skip[i]! * next[i]!) % size;
      }
      table[c] = rows[i]!;
      next[i]!++;
      filled++;
    }
  }
  return table;
}

export class ConsistentHashBalancer implements Balancer {
  private table: Int32Array = new Int32Array(0);
  private version = -1;
  private builtFor = '';
  private readonly s: EndpointSnapshot;

  constructor(private readonly ctx: BalancerContext) {
    this.s = ctx.snapshot;
  }

  private rebuild(): void {
    const s = this.s;
    this.version = s.version;
    const rows: number[] = [];
    const keys: string[] = [];
    const weights: number[] = [];
    for (let i = 0; i < s.count; i++) {
      const e = s.candidates[i]!;
      rows.push(e);
      keys.push(this.ctx.addressOf(e));
      weights.push(s.weights[e]!);
    }
    // A version change that did not change the set (a counter-only write, a weight
    // ramp elsewhere) must not cost a rebuild.
    const id = `${rows.join(',')}|${keys.join(',')}|${weights.join(',')}`;
    if (id === this.builtFor) return;
    this.builtFor = id;
    this.table = buildMaglev(rows, keys, weights);
  }

  pick(avoid: number, hash: number): number {
    const s = this.s;
    if (s.count === 0) return -1;
    if (this.version !== s.version) this.rebuild();
    if (hash < 0) return randomCandidate(s, avoid);
    const t = this.table;
    const m = t.length;
    const i = hash % m;
    let e = t[i]!;
    if (e === avoid && s.count > 1) {
      // A retry walks the table to the next other endpoint: still deterministic per key.
      for (let k = 1; k < m && e === avoid; k++) e = t[(i + k) % m]!;
    }
    return e;
  }
}
