// One undici Pool per endpoint per worker (DESIGN.md §1: workers mirror nginx
// worker processes, each with its own upstream connections), and the picker.
import { Pool } from 'undici';
import type { WorkerUpstream } from '../messages.js';
import type { Balancer } from '../balancers/balancer.js';
import { RoundRobinBalancer } from '../balancers/round-robin.js';

export interface Endpoint {
  readonly index: number;
  readonly authority: string; // "127.0.0.1:9001", used as Host when a route rewrites it
  readonly pool: Pool;
}

export class UpstreamSet {
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
  readonly balancer: Balancer;
  readonly retries: number;

  constructor(cfg: WorkerUpstream) {
    this.name = cfg.name;
    this.retries = cfg.retries;
    this.endpoints = cfg.endpoints.map((e, index) => {
      const authority = e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
      const pool = new Pool(`http://${authority}`, {
        connections: cfg.pool.connections,
        pipelining: 1, // real upstreams rarely allow more (FIELD-NOTES)
        keepAliveTimeout: cfg.pool.keepAliveTimeout,
        keepAliveMaxTimeout: Math.max(cfg.pool.keepAliveTimeout, 60_000),
        connectTimeout: cfg.timeouts.connect,
        headersTimeout: cfg.timeouts.response,
        bodyTimeout: cfg.timeouts.read,
        strictContentLength: true,
      });
      return { index, authority, pool };
    });
    this.balancer = new RoundRobinBalancer(this.endpoints.length);
  }

  /** The exchange sends a request to endpoint `idx` (balancers that count in-flight requests hook here). */
  onPicked(_idx: number): void {}

  /** The request to endpoint `idx` ended: `status` 0 when it failed without a response; `latencyMs` to response head. */
  onDone(_idx: number, _status: number, _latencyMs: number): void {}

  /** Lets in-flight requests finish, then closes every connection. */
  async close(): Promise<void> {
    await Promise.allSettled(this.endpoints.map((e) => e.pool.close()));
  }

  destroy(): void {
    for (const e of this.endpoints) void e.pool.destroy().catch(() => {});
  }
}
