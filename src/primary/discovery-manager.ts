// Runs one discovery provider per upstream on the primary and feeds the endpoint sets
// they find to a sink (the shared endpoint tables, the health checker). A provider
// failure keeps the last known set: it is logged (`discovery-failed`) and counted,
// and never empties an upstream.
import type { Logger } from './logger.js';
import { createProvider as defaultCreateProvider, type DiscoveryConfig } from '../discovery/registry.js';
import { endpointKey, normaliseEndpoints, type DiscoveredEndpoint, type DiscoveryProvider } from '../discovery/provider.js';
import { decision } from './decisions/decision-log.js';

export interface EndpointSink {
  setEndpoints(upstream: string, endpoints: readonly DiscoveredEndpoint[], reason: string): void;
}

/** Per-upstream counters for the metrics exporter and /status. */
export interface DiscoveryStats {
  readonly provider: string;
  /** epoch ms of the last successful refresh (changed or not); null before the first */
  lastSuccess: number | null;
  lastFailure: number | null;
  lastError: string | null;
  /** failed refreshes since start (monotonic) */
  failures: number;
  /** refreshes that changed the set (monotonic) */
  changes: number;
  /** endpoints in the set in use now */
  endpoints: number;
}

interface Running {
  readonly provider: DiscoveryProvider;
  readonly configJson: string;
  readonly stats: DiscoveryStats;
  current: DiscoveredEndpoint[] | null;
  currentSig: string;
  stopped: boolean;
}

export interface DiscoveryManagerOptions {
  readonly log: Logger;
  readonly sink: EndpointSink;
  /** injectable for tests */
  readonly createProvider?: (cfg: DiscoveryConfig) => DiscoveryProvider;
}

function signature(eps: readonly DiscoveredEndpoint[]): string {
  return eps.map((e) => `${endpointKey(e)}*${e.weight ?? 1}`).join(',');
}

export class DiscoveryManager {
  private readonly running = new Map<string, Running>();

  constructor(private readonly opts: DiscoveryManagerOptions) {}

  /**
   * Brings the providers in line with a config generation: starts new upstreams',
   * restarts those whose discovery config changed, stops removed ones. An unchanged
   * provider keeps running (a reload does not re-resolve every name).
   */
  async apply(upstreams: Readonly<Record<string, { readonly discovery: DiscoveryConfig }>>): Promise<void> {
    const stops: Promise<void>[] = [];
    for (const [name, r] of this.running) {
      const next = upstreams[name];
      if (!next || JSON.stringify(next.discovery) !== r.configJson) {
        r.stopped = true;
        stops.push(r.provider.stop());
        this.running.delete(name);
      }
    }
    await Promise.all(stops);
    for (const [name, u] of Object.entries(upstreams)) {
      if (!this.running.has(name)) this.startOne(name, u.discovery);
    }
  }

  private startOne(upstream: string, cfg: DiscoveryConfig): void {
    const provider = (this.opts.createProvider ?? defaultCreateProvider)(cfg);
    const r: Running = {
      provider,
      configJson: JSON.stringify(cfg),
      stats: { provider: cfg.type, lastSuccess: null, lastFailure: null, lastError: null, failures: 0, changes: 0, endpoints: 0 },
      current: null,
      currentSig: '',
      stopped: false,
    };
    this.running.set(upstream, r);
    const log = this.opts.log;
    provider.start({
      upstream,
      log,
      update: (endpoints, reason) => {
        if (r.stopped) return;
        const eps = normaliseEndpoints(endpoints);
        if (eps.length === 0) {
          // Providers are told not to, but the rule "never empty an upstream" lives here.
          this.failed(upstream, r, `${reason}: empty endpoint set`);
          return;
        }
        r.stats.lastSuccess = Date.now();
        const sig = signature(eps);
        if (sig === r.currentSig) return;
        const before = r.current?.length ?? 0;
        r.current = eps;
        r.currentSig = sig;
        r.stats.changes++;
        r.stats.endpoints = eps.length;
        decision(log).info(
          { event: 'discovery-updated', upstream, provider: cfg.type, endpoints: eps.map(endpointKey), before, after: eps.length, reason },
          `upstream ${upstream}: ${eps.length} endpoints`,
        );
        try {
          this.opts.sink.setEndpoints(upstream, eps, reason);
        } catch (err) {
          // e.g. TG_ERR_SHM_CAPACITY: more endpoints than the tables have rows. The
          // tables keep what they had; the next update tries again.
          r.currentSig = '';
          this.failed(upstream, r, `cannot apply ${eps.length} endpoints: ${(err as Error).message}`);
        }
      },
      fail: (reason) => {
        if (!r.stopped) this.failed(upstream, r, reason);
      },
    });
  }

  private failed(upstream: string, r: Running, reason: string): void {
    r.stats.failures++;
    r.stats.lastFailure = Date.now();
    r.stats.lastError = reason;
    decision(this.opts.log).warn(
      { event: 'discovery-failed', upstream, provider: r.stats.provider, reason, keeping: r.current?.length ?? 0, failures: r.stats.failures },
      `discovery for ${upstream} failed; keeping the last known ${r.current?.length ?? 0} endpoints`,
    );
  }

  /** Whether every provider has reported once, with a set or a failure (readiness waits for this at start). */
  settled(): boolean {
    for (const r of this.running.values()) if (r.stats.lastSuccess === null && r.stats.failures === 0) return false;
    return true;
  }

  /** The set in use for an upstream (null before the first success). */
  endpoints(upstream: string): readonly DiscoveredEndpoint[] | null {
    return this.running.get(upstream)?.current ?? null;
  }

  stats(): Record<string, Readonly<DiscoveryStats>> {
    const out: Record<string, DiscoveryStats> = {};
    for (const [name, r] of this.running) out[name] = { ...r.stats };
    return out;
  }

  async stop(): Promise<void> {
    const all = [...this.running.values()];
    this.running.clear();
    for (const r of all) r.stopped = true;
    await Promise.all(all.map((r) => r.provider.stop()));
  }
}

/** Sends every endpoint set to several sinks (the table writer, then the health checker). */
export function fanOutSink(...sinks: readonly EndpointSink[]): EndpointSink {
  return {
    setEndpoints(upstream, endpoints, reason) {
      for (const s of sinks) s.setEndpoints(upstream, endpoints, reason);
    },
  };
}
