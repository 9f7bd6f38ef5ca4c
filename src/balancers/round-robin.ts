import type { Balancer } from './balancer.js';

/** Plain round robin over a fixed endpoint count; per worker, so no shared state. */
export class RoundRobinBalancer implements Balancer {
  private next = 0;
  constructor(private readonly size: number) {}

  pick(avoid: number): number {
    if (this.size === 0) return -1;
    let i = this.next;
    if (i === avoid && this.size > 1) i = (i + 1) % this.size;
    this.next = (i + 1) % this.size;
    return i;
  }
}
