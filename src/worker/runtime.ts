// A worker's per-generation state: what a request needs to be routed and proxied.
// Swapped whole when the primary sends a new config generation; requests in flight
// keep the generation they started with.
import type { WorkerConfig } from '../messages.js';
import { IpAllowList } from './ip-allow-list.js';
import { Router } from './router.js';
import { UpstreamSet } from './upstream-set.js';

export class Runtime {
  readonly generation: number;
  readonly config: WorkerConfig;
  readonly router: Router;
  readonly upstreams: readonly UpstreamSet[];
  readonly trusted: IpAllowList;
  /** "1.1 tidegate", or null when Via is switched off */
  readonly viaToken: string | null;
  readonly requestIdHeader: string;

  constructor(config: WorkerConfig) {
    this.generation = config.generation;
    this.config = config;
    this.router = new Router(config.routes);
    this.upstreams = config.upstreams.map((u) => new UpstreamSet(u));
    this.trusted = new IpAllowList(config.proxy.trustedProxies);
    this.viaToken = config.proxy.via === false ? null : `1.1 ${config.proxy.via}`;
    this.requestIdHeader = config.proxy.requestIdHeader;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.upstreams.map((u) => u.close()));
  }

  destroy(): void {
    for (const u of this.upstreams) u.destroy();
  }
}
