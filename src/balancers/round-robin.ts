import type { EndpointSnapshot } from '../shm/endpoint-table.js';
import type { Balancer } from './balancer.js';

/** Plain round robin over the usable endpoints, ignoring weights; per worker, so no shared state. */
export class RoundRobinBalancer implements Balancer {
  private next = 0;
  constructor(private readonly s: EndpointSnapshot) {}

  pick(avoid: number, _hash: number): number {
    const n = this.s.count;
    if (n === 0) return -1;
    let i = this.next % n;
    if (this.s.candidates[i] === avoid && n > 1) i = (i + 1) % n;
    this.next = i + 1;
    return this.s.candidates[i]!;
  }
}
