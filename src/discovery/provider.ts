// The contract every discovery provider implements (discovery providers
// → endpoint sets → table writes). A provider runs on the primary only; it reports
// whole endpoint sets, never deltas, so a missed update heals at the next one.
import type { Logger } from 'pino';

export interface DiscoveredEndpoint {
  readonly host: string;
  readonly port: number;
  /** relative weight (SRV weight, Consul Service.Weights.Passing; Kubernetes has none); absent means 1 */
  readonly weight?: number;
}

export interface ProviderContext {
  readonly upstream: string;
  readonly log: Logger;
  /** a fresh, complete endpoint set; `reason` says where it came from ("dns ttl=30") */
  update(endpoints: readonly DiscoveredEndpoint[], reason: string): void;
  /**
   * The provider could not refresh. The manager keeps the last known set (a provider
   * failure never empties an upstream), logs `discovery-failed` and counts it.
   */
  fail(reason: string): void;
}

export interface DiscoveryProvider {
  readonly type: string;
  /** begins discovering; the first result (or failure) is reported through ctx */
  start(ctx: ProviderContext): void;
  /** stops every timer, watcher and request; safe to call twice */
  stop(): Promise<void>;
}

/** Canonical "host:port" key (IPv6 in brackets), used to match endpoints across sets. */
export function endpointKey(e: { readonly host: string; readonly port: number }): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** Sorted, de-duplicated copy: providers return sets in arbitrary order, the tables want a stable one. */
export function normaliseEndpoints(list: readonly DiscoveredEndpoint[]): DiscoveredEndpoint[] {
  const byKey = new Map<string, DiscoveredEndpoint>();
  for (const e of list) if (!byKey.has(endpointKey(e))) byKey.set(endpointKey(e), e);
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

/** Waits `ms` unless the signal aborts first (then resolves early, never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
