// Discovery and health for every upstream, fed into the shared endpoint tables:
//
//   DiscoveryManager ──setEndpoints──▶ EndpointWriter (tables)  ──▶ workers' balancers
//          │                                 ▲   │ read/reset (workers' failure counters)
//          └──setEndpoints──▶ HealthChecker ─┘───┘ setHealth (ejected / healthy)
//
// The gateway owns one of these, calls apply() with each config generation and stop()
// at shutdown. The writer is the EndpointWriter (endpoint-writer.ts),
// which implements all three interfaces; until the gateway has one, `writer: null`
// runs discovery and health checks with decisions logged but not written anywhere.
import type { Logger } from './logger.js';
import type { Config } from '../config/schema.js';
import { DiscoveryManager, fanOutSink, type DiscoveryStats, type EndpointSink } from './discovery-manager.js';
import { HealthChecker, type EndpointHealthSnapshot, type HealthSink, type HealthStats, type PassiveSignalSource } from './health/health-checker.js';
import type { DiscoveredEndpoint } from '../discovery/provider.js';

/** What the shared endpoint tables' writer must offer (EndpointWriter has all of it). */
export type EndpointTableWriter = EndpointSink & HealthSink & PassiveSignalSource;

export interface UpstreamControlOptions {
  readonly log: Logger;
  readonly writer: EndpointTableWriter | null;
}

export interface UpstreamControlStatus {
  readonly discoveryStats: DiscoveryStats | null;
  readonly healthStats: HealthStats | null;
  readonly endpointHealth: readonly EndpointHealthSnapshot[];
}

export class UpstreamControl {
  readonly discovery: DiscoveryManager;
  readonly health: HealthChecker;
  private known = new Set<string>();

  constructor(opts: UpstreamControlOptions) {
    const writer = opts.writer;
    const healthSink: HealthSink = writer ?? {
      // XXX: no table writer wired yet — the decision is logged by the checker; nothing routes by it.
      setHealth() {},
    };
    this.health = new HealthChecker({ log: opts.log, sink: healthSink, ...(writer ? { passiveSource: writer } : {}) });
    const healthFeed: EndpointSink = { setEndpoints: (u, eps) => this.health.setEndpoints(u, eps) };
    // Tables first: by the time a probe can eject an endpoint, its row exists.
    this.discovery = new DiscoveryManager({ log: opts.log, sink: writer ? fanOutSink(writer, healthFeed) : healthFeed });
  }

  /** Applies a config generation's upstreams: health config first, so discovered sets land on configured checkers. */
  async apply(upstreams: Config['upstreams']): Promise<void> {
    for (const name of this.known) if (!Object.hasOwn(upstreams, name)) this.health.remove(name);
    for (const [name, u] of Object.entries(upstreams)) this.health.configure(name, u.health);
    this.known = new Set(Object.keys(upstreams));
    await this.discovery.apply(upstreams);
  }

  /**
   * The endpoints a table write for `upstream` should carry on a reload: the set in
   * use, so a reload never wipes a discovered set back to the config's (empty) list.
   */
  currentEndpoints(upstream: string): readonly DiscoveredEndpoint[] | null {
    return this.discovery.endpoints(upstream);
  }

  status(upstream: string): UpstreamControlStatus {
    return { discoveryStats: this.discovery.stats()[upstream] ?? null, healthStats: this.health.stats(upstream) ?? null, endpointHealth: this.health.snapshot(upstream) };
  }

  async stop(): Promise<void> {
    await this.discovery.stop();
    await this.health.stop();
  }
}
