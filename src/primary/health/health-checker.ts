// Endpoint health on the primary: active checks and passive outlier detection, one
// state per endpoint, reported to a sink that writes the shared endpoint tables.
//
// An endpoint is routable ("healthy") when its active checks pass (or none are
// configured) AND it is not passively ejected. Every change of that effective state
// is an `endpoint-ejected` / `endpoint-readmitted` event with a reason, and counted.
//
// New endpoints start healthy, as in nginx and Kong: a gateway that starts (or a
// discovery update that lands) must not refuse traffic until a first probe round
// completes. Envoy's stricter "unhealthy until first check" can be added as an option.
import type { Logger } from 'pino';
import { endpointKey, type DiscoveredEndpoint } from '../../discovery/provider.js';
import type { ActiveHealthConfig, HealthConfig, PassiveHealthConfig } from '../../config/schema-health.js';
import { createProber, type Prober, type ProbeResult } from './probes.js';
import { decision } from '../decisions/decision-log.js';

export type EndpointHealthState = 'healthy' | 'ejected';

/** Where health decisions go: the shared endpoint table writer (see endpoint-sinks.ts). */
export interface HealthSink {
  setHealth(upstream: string, endpoint: DiscoveredEndpoint, state: EndpointHealthState, reason: string): void;
}

/**
 * Failure counters the workers keep per endpoint in shared memory (consecutive, reset
 * by a worker on success). The primary reads them each scan and resets them when it
 * ejects, as Envoy does, so an endpoint that returns is judged on fresh traffic.
 */
export interface PassiveSignalSource {
  read(upstream: string, endpoint: DiscoveredEndpoint): { consecutive5xx: number; consecutiveConnectFailures: number } | null;
  reset(upstream: string, endpoint: DiscoveredEndpoint): void;
}

export interface EndpointHealthSnapshot {
  readonly endpoint: string;
  readonly state: EndpointHealthState;
  readonly reason: string;
  readonly since: number;
  readonly activeHealthy: boolean;
  readonly ejectedUntil: number | null;
  readonly ejections: number;
  readonly checks: number;
  readonly checkFailures: number;
  readonly lastProbe: string | null;
}

/** Counters per upstream, for the metrics exporter. Monotonic except `ejectedNow`. */
export interface HealthStats {
  checks: number;
  checkFailures: number;
  /** transitions to ejected, by cause */
  ejectionsActive: number;
  ejectionsPassive: number;
  readmissions: number;
  /** passive ejections skipped because maxEjectionPercent was reached */
  ejectionsOverflow: number;
  ejectedNow: number;
}

/** What happened, for tests and the admin API (the log carries the same). */
export interface HealthTransition {
  readonly upstream: string;
  readonly endpoint: string;
  readonly state: EndpointHealthState;
  readonly cause: 'active' | 'passive';
  readonly reason: string;
  readonly at: number;
}

interface EndpointHealth {
  readonly ep: DiscoveredEndpoint;
  readonly key: string;
  state: EndpointHealthState;
  reason: string;
  since: number;
  // active
  activeHealthy: boolean;
  passes: number; // consecutive
  fails: number; // consecutive
  prober: Prober | null;
  timer: NodeJS.Timeout | null;
  checks: number;
  checkFailures: number;
  lastProbe: string | null;
  // passive
  ejectedUntil: number; // 0 = not passively ejected
  ejections: number; // Envoy's ejection multiplier
  passesSinceEjection: number;
  removed: boolean;
}

interface UpstreamHealth {
  readonly name: string;
  active: ActiveHealthConfig | undefined;
  passive: PassiveHealthConfig | undefined;
  readonly endpoints: Map<string, EndpointHealth>;
  readonly stats: HealthStats;
  scanTimer: NodeJS.Timeout | null;
  sweepTimer: NodeJS.Timeout | null;
}

export interface HealthCheckerOptions {
  readonly log: Logger;
  readonly sink: HealthSink;
  readonly passiveSource?: PassiveSignalSource;
  /** injectable for tests */
  readonly now?: () => number;
  readonly random?: () => number;
  /** called on every transition (tests, admin API) */
  readonly onTransition?: (t: HealthTransition) => void;
}

/**
 * How often worker counters are read. Envoy ejects on the 5th consecutive 5xx at once;
 * reading shared counters every 250 ms keeps us within a fraction of a second of that
 * without waking the primary on every request.
 */
export const kPassiveScanMs = 250;

export class HealthChecker {
  private readonly upstreams = new Map<string, UpstreamHealth>();
  private readonly now: () => number;
  private readonly random: () => number;
  private stopped = false;

  constructor(private readonly opts: HealthCheckerOptions) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** Sets (or replaces, on reload) an upstream's health config. No config: every endpoint stays healthy. */
  configure(upstream: string, cfg: HealthConfig | undefined): void {
    let u = this.upstreams.get(upstream);
    if (!u) {
      u = {
        name: upstream,
        active: undefined,
        passive: undefined,
        endpoints: new Map(),
        stats: { checks: 0, checkFailures: 0, ejectionsActive: 0, ejectionsPassive: 0, readmissions: 0, ejectionsOverflow: 0, ejectedNow: 0 },
        scanTimer: null,
        sweepTimer: null,
      };
      this.upstreams.set(upstream, u);
    }
    const activeChanged = JSON.stringify(u.active) !== JSON.stringify(cfg?.active);
    u.active = cfg?.active;
    u.passive = cfg?.passive;
    if (activeChanged) {
      for (const e of u.endpoints.values()) {
        this.stopActive(e);
        // Without active checks nothing would ever clear an active failure.
        if (!u.active && !e.activeHealthy) {
          e.activeHealthy = true;
          this.recompute(u, e, 'active', 'active checks removed from config');
        }
        this.startActive(u, e, true);
      }
    }
    this.restartPassiveTimers(u);
  }

  /** Removes an upstream (reload dropped it): stops its checks. */
  remove(upstream: string): void {
    const u = this.upstreams.get(upstream);
    if (!u) return;
    this.clearPassiveTimers(u);
    for (const e of u.endpoints.values()) this.dropEndpoint(e);
    this.upstreams.delete(upstream);
  }

  /**
   * A new endpoint set from discovery. Endpoints that stay keep their state (and their
   * ejection history); new ones start healthy and are probed; gone ones stop.
   */
  setEndpoints(upstream: string, endpoints: readonly DiscoveredEndpoint[]): void {
    const u = this.upstreams.get(upstream);
    if (!u) throw new Error(`health: unknown upstream "${upstream}" (configure it first)`);
    const next = new Set(endpoints.map(endpointKey));
    for (const [key, e] of u.endpoints) {
      if (!next.has(key)) {
        if (e.state === 'ejected') u.stats.ejectedNow--;
        this.dropEndpoint(e);
        u.endpoints.delete(key);
      }
    }
    for (const ep of endpoints) {
      const key = endpointKey(ep);
      if (u.endpoints.has(key)) continue;
      const e: EndpointHealth = {
        ep,
        key,
        state: 'healthy',
        reason: 'discovered',
        since: this.now(),
        activeHealthy: true,
        passes: 0,
        fails: 0,
        prober: null,
        timer: null,
        checks: 0,
        checkFailures: 0,
        lastProbe: null,
        ejectedUntil: 0,
        ejections: 0,
        passesSinceEjection: 0,
        removed: false,
      };
      u.endpoints.set(key, e);
      this.startActive(u, e, true);
    }
  }

  stats(upstream: string): Readonly<HealthStats> | undefined {
    return this.upstreams.get(upstream)?.stats;
  }

  snapshot(upstream: string): EndpointHealthSnapshot[] {
    const u = this.upstreams.get(upstream);
    if (!u) return [];
    return [...u.endpoints.values()].map((e) => ({
      endpoint: e.key,
      state: e.state,
      reason: e.reason,
      since: e.since,
      activeHealthy: e.activeHealthy,
      ejectedUntil: e.ejectedUntil || null,
      ejections: e.ejections,
      checks: e.checks,
      checkFailures: e.checkFailures,
      lastProbe: e.lastProbe,
    }));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const closing: Promise<void>[] = [];
    for (const u of this.upstreams.values()) {
      this.clearPassiveTimers(u);
      for (const e of u.endpoints.values()) closing.push(this.dropEndpoint(e));
    }
    await Promise.all(closing);
  }

  // ---- active ------------------------------------------------------------------

  private startActive(u: UpstreamHealth, e: EndpointHealth, first: boolean): void {
    if (!u.active || this.stopped || e.removed) return;
    const a = u.active;
    e.prober ??= createProber(e.ep.host, e.ep.port, a);
    // The first probe goes out within the jitter (at once without jitter) so a bad
    // endpoint is found one interval sooner; later ones wait interval + jitter.
    const delay = (first ? 0 : a.interval) + (a.jitter > 0 ? Math.floor(this.random() * a.jitter) : 0);
    e.timer = setTimeout(() => void this.runProbe(u, e, a), delay);
    e.timer.unref();
  }

  private stopActive(e: EndpointHealth): void {
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    const p = e.prober;
    e.prober = null;
    if (p) void p.close();
  }

  private async runProbe(u: UpstreamHealth, e: EndpointHealth, a: ActiveHealthConfig): Promise<void> {
    e.timer = null;
    const prober = e.prober;
    if (!prober || e.removed || this.stopped) return;
    let r: ProbeResult;
    try {
      r = await prober.probe();
    } catch (err) {
      r = { ok: false, detail: (err as Error).message };
    }
    // The config or the endpoint set may have changed while the probe was out.
    if (e.removed || this.stopped || u.active !== a || e.prober !== prober) return;
    this.onProbeResult(u, e, a, r);
    this.startActive(u, e, false);
  }

  private onProbeResult(u: UpstreamHealth, e: EndpointHealth, a: ActiveHealthConfig, r: ProbeResult): void {
    e.checks++;
    u.stats.checks++;
    e.lastProbe = r.detail;
    if (r.ok) {
      e.passes++;
      e.fails = 0;
      if (e.ejectedUntil) e.passesSinceEjection++;
      if (!e.activeHealthy && e.passes >= a.healthy) {
        e.activeHealthy = true;
        this.recompute(u, e, 'active', `${e.passes} consecutive ${a.type} checks passed (${r.detail})`);
      }
      // Envoy's successful_active_health_check_uneject_host (default on): a passively
      // ejected endpoint that passes `healthy` checks since its ejection returns early.
      if (e.ejectedUntil && e.passesSinceEjection >= a.healthy) {
        e.ejectedUntil = 0;
        this.recompute(u, e, 'active', `passed ${e.passesSinceEjection} ${a.type} checks since its passive ejection`);
      }
    } else {
      e.checkFailures++;
      u.stats.checkFailures++;
      e.fails++;
      e.passes = 0;
      e.passesSinceEjection = 0;
      if (e.activeHealthy && e.fails >= a.unhealthy) {
        e.activeHealthy = false;
        this.recompute(u, e, 'active', `${e.fails} consecutive ${a.type} checks failed (${r.detail})`);
      }
    }
  }

  // ---- passive -----------------------------------------------------------------

  private clearPassiveTimers(u: UpstreamHealth): void {
    if (u.scanTimer) clearInterval(u.scanTimer);
    if (u.sweepTimer) clearInterval(u.sweepTimer);
    u.scanTimer = u.sweepTimer = null;
  }

  private restartPassiveTimers(u: UpstreamHealth): void {
    this.clearPassiveTimers(u);
    if (!u.passive || this.stopped) return;
    if (this.opts.passiveSource) {
      u.scanTimer = setInterval(() => this.scanPassive(u.name), Math.min(kPassiveScanMs, u.passive.interval));
      u.scanTimer.unref();
    }
    u.sweepTimer = setInterval(() => this.sweepPassive(u.name), u.passive.interval);
    u.sweepTimer.unref();
  }

  /** Reads the workers' failure counters and ejects endpoints over a threshold. Public for tests. */
  scanPassive(upstream: string): void {
    const u = this.upstreams.get(upstream);
    const src = this.opts.passiveSource;
    if (!u?.passive || !src) return;
    const p = u.passive;
    for (const e of u.endpoints.values()) {
      if (e.ejectedUntil) continue;
      const c = src.read(u.name, e.ep);
      if (!c) continue;
      let why: string | null = null;
      if (p.consecutive5xx > 0 && c.consecutive5xx >= p.consecutive5xx) why = `${c.consecutive5xx} consecutive 5xx responses (threshold ${p.consecutive5xx})`;
      else if (p.consecutiveConnectFailures > 0 && c.consecutiveConnectFailures >= p.consecutiveConnectFailures)
        why = `${c.consecutiveConnectFailures} consecutive connect failures (threshold ${p.consecutiveConnectFailures})`;
      if (!why) continue;
      this.ejectPassive(u, e, p, why);
      src.reset(u.name, e.ep);
    }
  }

  /** Returns false when maxEjectionPercent forbids the ejection. */
  private ejectPassive(u: UpstreamHealth, e: EndpointHealth, p: PassiveHealthConfig, why: string): boolean {
    const total = u.endpoints.size;
    let ejected = 0;
    for (const x of u.endpoints.values()) if (x.ejectedUntil) ejected++;
    // Envoy: eject only while the ejected share is below max_ejection_percent, which
    // always lets the first one go (0 % < max), however small the upstream.
    if (total === 0 || (100 * ejected) / total >= p.maxEjectionPercent) {
      if (ejected > 0 || p.maxEjectionPercent === 0) {
        u.stats.ejectionsOverflow++;
        decision(this.opts.log).warn(
          { event: 'endpoint-ejection-skipped', upstream: u.name, endpoint: e.key, reason: `${why}; ${ejected}/${total} already ejected (maxEjectionPercent ${p.maxEjectionPercent})` },
          'outlier not ejected: max ejection percent reached',
        );
        return false;
      }
    }
    e.ejections++;
    const ms = Math.min(p.baseEjection * e.ejections, Math.max(p.maxEjection, p.baseEjection));
    e.ejectedUntil = this.now() + ms;
    e.passesSinceEjection = 0;
    this.recompute(u, e, 'passive', `${why}; ejected for ${ms}ms (ejection #${e.ejections})`);
    return true;
  }

  /** Envoy's interval sweep: return endpoints whose ejection ran out; decay the multiplier of those that behaved. Public for tests. */
  sweepPassive(upstream: string): void {
    const u = this.upstreams.get(upstream);
    if (!u?.passive) return;
    const now = this.now();
    for (const e of u.endpoints.values()) {
      if (e.ejectedUntil && now >= e.ejectedUntil) {
        e.ejectedUntil = 0;
        this.recompute(u, e, 'passive', `ejection time expired (ejection #${e.ejections})`);
      } else if (!e.ejectedUntil && e.ejections > 0) {
        e.ejections--;
      }
    }
  }

  /** Test hook: eject by key as the passive detector would. */
  ejectForTest(upstream: string, key: string, why: string): boolean {
    const u = this.upstreams.get(upstream);
    const e = u?.endpoints.get(key);
    if (!u || !e || !u.passive) return false;
    return this.ejectPassive(u, e, u.passive, why);
  }

  // ---- state -------------------------------------------------------------------

  private recompute(u: UpstreamHealth, e: EndpointHealth, cause: 'active' | 'passive', reason: string): void {
    const next: EndpointHealthState = e.activeHealthy && !e.ejectedUntil ? 'healthy' : 'ejected';
    if (next === e.state) {
      // Still ejected for the other cause: say so, but nothing changes for traffic.
      this.opts.log.debug({ event: 'endpoint-health-detail', upstream: u.name, endpoint: e.key, cause, reason, state: e.state }, 'endpoint health detail');
      return;
    }
    const at = this.now();
    e.state = next;
    e.since = at;
    e.reason = reason;
    // Tables first, then the event: whoever reads "ejected" in the log (an operator, a
    // test, a webhook) may act at once, and the workers must already route by it.
    this.opts.sink.setHealth(u.name, e.ep, next, reason);
    if (next === 'ejected') {
      u.stats.ejectedNow++;
      if (cause === 'active') u.stats.ejectionsActive++;
      else u.stats.ejectionsPassive++;
      decision(this.opts.log).warn({ event: 'endpoint-ejected', upstream: u.name, endpoint: e.key, cause, reason }, `endpoint ${e.key} ejected`);
    } else {
      u.stats.ejectedNow--;
      u.stats.readmissions++;
      decision(this.opts.log).info({ event: 'endpoint-readmitted', upstream: u.name, endpoint: e.key, cause, reason }, `endpoint ${e.key} readmitted`);
    }
    this.opts.onTransition?.({ upstream: u.name, endpoint: e.key, state: next, cause, reason, at });
  }

  private dropEndpoint(e: EndpointHealth): Promise<void> {
    e.removed = true;
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    const p = e.prober;
    e.prober = null;
    return p ? p.close() : Promise.resolve();
  }
}
