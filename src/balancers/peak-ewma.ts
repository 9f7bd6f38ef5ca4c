// Peak-EWMA (Finagle, Linkerd): cost = latency EWMA × (in flight + 1) / weight, picked
// by power of two choices. The EWMA is shared (workers CAS it, see endpoint-table.ts)
// and jumps to a slow sample at once, so one slow endpoint loses traffic within a
// few requests from any worker.
//
// The EWMA falls per faster sample (1/8 each) and, for endpoints that stopped getting
// samples, with time: the primary decays every row once a second (10 s decay time,
// Finagle's default), so an endpoint that was slow once is tried again. A request
// that failed fast (no response, 502/503/504) counts as a 1 s sample, so a broken
// endpoint never looks like the fastest one.
import type { EndpointSnapshot } from '../shm/endpoint-table.js';
import { twoChoices, type Balancer } from './balancer.js';

/** Cost of an endpoint with no sample yet: low, so new endpoints get probed, but not zero. */
const UNKNOWN_US = 1;

export class PeakEwmaBalancer implements Balancer {
  private readonly pair = new Int32Array(2);
  constructor(private readonly s: EndpointSnapshot) {}

  cost(e: number): number {
    const s = this.s;
    const ewma = s.ewmaUs(e) || UNKNOWN_US;
    return (ewma * (s.inFlight(e) + 1)) / s.weights[e]!;
  }

  pick(avoid: number, _hash: number): number {
    const k = twoChoices(this.s, avoid, this.pair);
    if (k === 0) return -1;
    const a = this.pair[0]!;
    if (k === 1) return a;
    const b = this.pair[1]!;
    return this.cost(b) < this.cost(a) ? b : a;
  }
}
