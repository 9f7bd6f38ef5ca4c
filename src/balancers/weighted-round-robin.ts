// nginx's smooth weighted round robin (ngx_http_upstream_get_peer): every pick adds
// each endpoint's weight to its current weight, takes the largest, and subtracts the
// total from the winner. Weights 5,1,1 give a,a,b,a,c,a,a — spread, not bursts.
// State is per worker: N workers each interleave smoothly, so the sum does too.
import type { EndpointSnapshot } from '../shm/endpoint-table.js';
import type { Balancer } from './balancer.js';

export class WeightedRoundRobinBalancer implements Balancer {
  private readonly current: Float64Array;
  private version = -1;

  constructor(private readonly s: EndpointSnapshot) {
    this.current = new Float64Array(s.weights.length);
  }

  pick(avoid: number, _hash: number): number {
    const s = this.s;
    const n = s.count;
    if (n === 0) return -1;
    if (this.version !== s.version) {
      // New weights (slow start ramp, health change): restart the interleaving, as
      // nginx does when it rebuilds its peer list.
      this.current.fill(0);
      this.version = s.version;
    }
    const cur = this.current;
    const w = s.weights;
    let total = 0;
    let best = -1;
    for (let i = 0; i < n; i++) {
      const e = s.candidates[i]!;
      if (e === avoid && n > 1) continue;
      cur[e] = cur[e]! + w[e]!;
      total += w[e]!;
      if (best < 0 || cur[e]! > cur[best]!) best = e;
    }
    cur[best] = cur[best]! - total;
    return best;
  }
}
