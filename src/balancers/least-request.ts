// Least request with the power of two choices (Envoy's LEAST_REQUEST): sample two
// endpoints at random and take the one with fewer requests in flight across *all*
// workers (the shared in-flight counters), scaled by weight. Two choices instead of a
// full scan avoid every worker herding onto the same momentarily idle endpoint.
import type { EndpointSnapshot } from '../shm/endpoint-table.js';
import { twoChoices, type Balancer } from './balancer.js';

export class LeastRequestBalancer implements Balancer {
  private readonly pair = new Int32Array(2);
  constructor(private readonly s: EndpointSnapshot) {}

  pick(avoid: number, _hash: number): number {
    const s = this.s;
    const k = twoChoices(s, avoid, this.pair);
    if (k === 0) return -1;
    const a = this.pair[0]!;
    if (k === 1) return a;
    const b = this.pair[1]!;
    // Envoy's weighted form: weight / (active + 1), larger wins.
    const sa = s.weights[a]! / (s.inFlight(a) + 1);
    const sb = s.weights[b]! / (s.inFlight(b) + 1);
    return sb > sa ? b : a;
  }
}
