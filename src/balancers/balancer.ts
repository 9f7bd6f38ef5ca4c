// The picker contract (APISIX style: one picker per file). A picker reads one
// upstream's EndpointSnapshot (src/shm/endpoint-table.ts), which the caller syncs with
// the shared table just before `pick`; a picker rebuilds its own derived state (SWRR
// weights, Maglev table) when `snapshot.version` moves.
//
// `pick` returns a row index or -1 when no endpoint is usable. `avoid` is the row a
// retry must not land on again (-1 for none); it is honoured unless it is the only
// candidate. `hash` is the request's 32-bit hash for consistent hashing (-1: the
// request carries no key; a hashing picker then spreads it randomly, as Envoy does).
import type { EndpointSnapshot } from '../shm/endpoint-table.js';

export interface Balancer {
  pick(avoid: number, hash: number): number;
}

export type BalancerKind = 'round-robin' | 'weighted-round-robin' | 'least-request' | 'peak-ewma' | 'consistent-hash';

export interface BalancerContext {
  readonly snapshot: EndpointSnapshot;
  /** a row's "host:port": the stable identity consistent hashing places on the ring */
  addressOf(row: number): string;
}

/** A random candidate other than `avoid` (when there is another), or -1. */
export function randomCandidate(s: EndpointSnapshot, avoid: number): number {
  const n = s.count;
  if (n === 0) return -1;
  let e = s.candidates[(Math.random() * n) | 0]!;
  if (e === avoid && n > 1) {
    // Shift to a neighbour: uniform enough for a retry, and never loops.
    const i = s.candidates.indexOf(e);
    e = s.candidates[(i + 1) % n]!;
  }
  return e;
}

/**
 * Two distinct random candidates, neither `avoid` when that leaves at least two
 * (Mitzenmacher's power of two choices). Writes into `out`; returns how many (0..2).
 */
export function twoChoices(s: EndpointSnapshot, avoid: number, out: Int32Array): number {
  const n = s.count;
  if (n === 0) return 0;
  if (n === 1) {
    out[0] = s.candidates[0]!;
    return 1;
  }
  const c = s.candidates;
  let i = (Math.random() * n) | 0;
  let j = (Math.random() * (n - 1)) | 0;
  if (j >= i) j++;
  if (n > 2 && avoid >= 0) {
    // Replace an avoided choice by the next candidate that is neither choice nor avoided.
    if (c[i] === avoid) i = nextOther(c, n, i, j, avoid);
    if (c[j] === avoid) j = nextOther(c, n, j, i, avoid);
  }
  out[0] = c[i]!;
  out[1] = c[j]!;
  return 2;
}

function nextOther(c: Int32Array, n: number, from: number, other: number, avoid: number): number {
  for (let k = 1; k < n; k++) {
    const x = (from + k) % n;
    if (x !== other && c[x] !== avoid) return x;
  }
  return from;
}
