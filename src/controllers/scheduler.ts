// The one timer of the adaptive controllers, on the primary. Each tick it reads the
// workers' outcome counters and latency histograms for every guarded upstream (shared
// memory, summed as deltas), runs each controller's pure step, writes the control words
// the steps ask for (the primary is their only writer), and logs every decision once.
// Timers, shared memory and logging live here and nowhere else in src/controllers.
import type { Logger } from '../primary/logger.js';
import type { Config } from '../config/schema.js';
import { ControlWords, type UpstreamOutcomes } from '../shm/control-words.js';
import { BreakerState, breakerStateNames, kLatencyBuckets, latencyBucketFloor } from '../shm/layout.js';
import type { SharedState } from '../shm/shared-state.js';
import { breakerStep, initialBreakerState, windowSums, type BreakerConfig, type BreakerControllerState } from './breaker.js';
import { concurrencyStep, fixedLimit, initialConcurrencyState, type ConcurrencyConfig, type ConcurrencyState } from './concurrency.js';
import { round, type DecisionEvent } from './decision.js';
import { adaptivePolicies, adaptiveRateStep, adaptiveRateStatus, initialAdaptiveRateState, type AdaptivePolicy, type AdaptiveRateState, type AdaptiveRateStatus } from './adaptive-rate.js';
import { decision } from '../primary/decisions/decision-log.js';
import { initialPredictiveState, predictiveStep, type PredictiveState } from './predictive.js';
import { initialShedLevel, shedLevelStep, type SheddingConfig, type ShedLevelState } from './shed-level.js';
import { kHeaderShedLevelField, kWorkerShedLoadField, priorityNames, type PriorityName } from '../shm/layout.js';
import type { WorkerScalingConfig } from '../config/schema-workers.js';
import { initialWorkerScale, workerScaleSettled, workerScaleStep, type WorkerScaleState } from './worker-scale.js';

export const DEFAULT_TICK_MS = 200;
/** Retry-After of a forced-open breaker: how soon a client should try again (the override may be lifted any time) */
const FORCED_OPEN_RETRY_MS = 30_000;

export interface SchedulerDeps {
  readonly shm: SharedState;
  readonly log: Logger;
  readonly workerSlots: () => readonly number[];
  /** mean event-loop utilisation of the workers since the previous call (0–1) */
  readonly workerUtilization: () => number;
  readonly slotOf: (upstream: string) => number;
  /** writes a rate-limit policy row's multiplier (adaptive rate limits) */
  readonly setMultiplier?: (row: number, factor: number) => void;
  /** the upstream's request rate and its forecast (`observability.forecast`), for `concurrency.predictive` */
  readonly forecast?: (upstream: string) => UpstreamForecast | null;
  readonly tickMs?: number;
  /** the worker threads, for worker scaling (workers: { min, max }) */
  readonly workerPool?: WorkerPool;
}

/** What the worker scaler may do to the worker threads (src/primary/supervisor.ts). */
export interface WorkerPool {
  counts(): { readonly serving: number; readonly starting: number; readonly retiring: number };
  /** false when no slot is free */
  add(): boolean;
  /** the slot retiring, or null when none can */
  retire(): number | null;
}

export interface WorkerScalingStatus {
  readonly enabled: boolean;
  readonly min: number;
  readonly max: number;
  /** percent */
  readonly target: number;
  readonly release: number;
  readonly serving: number;
  readonly starting: number;
  readonly retiring: number;
  /** smoothed mean utilisation of the serving workers (0–1); null while a change settles */
  readonly eventLoopUtilization: number | null;
  readonly hotForMs: number;
  readonly coldForMs: number;
  readonly cooldownLeftMs: number;
  readonly adds: number;
  readonly retires: number;
  /** the last completed change */
  readonly last: { readonly direction: 'up' | 'down'; readonly slot: number; readonly at: string; readonly tookMs: number; readonly forcedRequests: number } | null;
}

export interface UpstreamForecast {
  /** requests per second over the last snapshot interval */
  readonly rate: number;
  /** forecast requests per second `horizonS` ahead; null before the first fit */
  readonly forecast: number | null;
  readonly horizonS: number;
}

interface AdaptiveRate {
  readonly p: AdaptivePolicy;
  readonly key: string;
  state: AdaptiveRateState;
}

interface Totals {
  readonly o: UpstreamOutcomes;
  readonly latency: Float64Array;
}

interface Guarded {
  readonly name: string;
  readonly slot: number;
  /** the config this entry was built from, to keep state across reloads that do not change it */
  readonly key: string;
  readonly breakerCfg: BreakerConfig | null;
  readonly concurrencyCfg: ConcurrencyConfig | null;
  breaker: BreakerControllerState | null;
  concurrency: ConcurrencyState | null;
  /** the predictive floor's state (concurrency.predictive), null when off */
  predictive: PredictiveState | null;
  /** what the control word holds */
  state: BreakerState;
  limit: number;
  /** per worker slot: the counter totals at the last tick */
  readonly last: Map<number, Totals>;
  /** totals over workers, for metrics and /status (counters that only grow) */
  readonly counts: { attempts: number; failures: number; slow: number; circuitOpen: number; fallback: number; shed: number; probes: number; shedByPriority: number[] };
  readonly transitions: Map<string, number>;
  lastSampleRttUs: number;
}

function emptyOutcomes(): UpstreamOutcomes {
  return { attempts: 0, failures: 0, slow: 0, probeSuccesses: 0, probeFailures: 0, circuitOpen: 0, fallback: 0, shed: 0, shedByPriority: [0, 0, 0, 0], admitted: 0 };
}

/** Counter delta that survives 2^32 wrap. */
function d(now: number, before: number): number {
  return (now - before) >>> 0;
}

export interface GuardStatus {
  readonly upstream: string;
  readonly breaker: {
    readonly state: string;
    /** set by an override: the state workers are held in, the controller paused */
    readonly forced: 'open' | 'closed' | null;
    readonly sinceMs: number;
    readonly openUntil: string | null;
    readonly openForMs: number;
    readonly trips: number;
    readonly failureRateThreshold: number;
    readonly eventLoopUtilization: number;
    readonly window: { readonly requests: number; readonly failures: number; readonly slow: number; readonly failureRate: number; readonly slowRate: number };
    readonly probes: { readonly permitsLeft: number; readonly successes: number; readonly failures: number } | null;
  } | null;
  readonly concurrency: {
    readonly mode: 'adaptive' | 'fixed';
    readonly limit: number;
    readonly inFlight: number;
    readonly phase: string | null;
    readonly minRttMs: number | null;
    readonly sampleRttMs: number | null;
    readonly gradient: number | null;
    /** concurrency.predictive: the floor in force (0: none) and the forecast it last read */
    readonly predictive: { readonly floor: number; readonly requestRate: number; readonly forecast: number | null } | null;
  } | null;
  readonly counts: Guarded['counts'];
  readonly transitions: Record<string, number>;
}

export interface SheddingStatus {
  readonly enabled: boolean;
  readonly level: number;
  readonly sinceMs: number;
  readonly changes: number;
  /** requests refused by the shed level, by route priority */
  readonly shed: Record<PriorityName, number>;
}

export class ControllerScheduler {
  private readonly words: ControlWords;
  private guarded: Guarded[] = [];
  private adaptive: AdaptiveRate[] = [];
  private timer: NodeJS.Timeout | null = null;
  readonly tickMs: number;
  private readonly scratch = emptyOutcomes();
  private readonly scratchLatency = new Float64Array(kLatencyBuckets);
  /** the workers' utilisation at the last tick */
  utilization = 0;
  private shedding: SheddingConfig | null = null;
  /** breakers forced by an override (the `breaker` target): the controller does not step them */
  private readonly forced = new Map<string, 'open' | 'closed'>();
  private shedLevel: ShedLevelState = initialShedLevel(Date.now());
  private workerScaling: WorkerScalingConfig | null = null;
  private workerScale: WorkerScaleState = initialWorkerScale(Date.now());
  private lastWorkerChange: WorkerScalingStatus['last'] = null;

  constructor(private readonly deps: SchedulerDeps) {
    this.words = new ControlWords(deps.shm);
    this.tickMs = deps.tickMs ?? DEFAULT_TICK_MS;
  }

  /**
   * A config generation: controllers for upstreams whose breaker/concurrency config is
   * unchanged keep their state; the rest start afresh. Call before workers receive the
   * generation, so they never see a new upstream's slot with a stale word.
   */
  apply(cfg: Config): void {
    const now = Date.now();
    if (JSON.stringify(cfg.shedding ?? null) !== JSON.stringify(this.shedding)) {
      this.shedding = cfg.shedding ?? null;
      this.shedLevel = initialShedLevel(now);
      this.deps.shm.f64[kHeaderShedLevelField] = 0;
    }
    const scaling = typeof cfg.workers === 'object' ? cfg.workers : null;
    if (JSON.stringify(scaling) !== JSON.stringify(this.workerScaling)) {
      this.workerScaling = scaling;
      this.workerScale = { ...initialWorkerScale(now), adds: this.workerScale.adds, retires: this.workerScale.retires };
    }
    const before = new Map(this.guarded.map((g) => [g.name, g]));
    const next: Guarded[] = [];
    const seenSlots = new Set<number>();
    const watched = this.applyAdaptive(cfg, now);
    for (const [name, u] of Object.entries(cfg.upstreams)) {
      const slot = this.deps.slotOf(name);
      seenSlots.add(slot);
      if (u.breaker === undefined && u.concurrency === undefined && !watched.has(name)) {
        this.words.writeWord(slot, BreakerState.Closed, 0);
        continue;
      }
      const key = JSON.stringify([u.breaker ?? null, u.concurrency ?? null]);
      const old = before.get(name);
      if (old !== undefined && old.key === key && old.slot === slot) {
        next.push(old);
        continue;
      }
      // A changed config starts the controller afresh, and with it any forcing (the override store re-applies what still fits).
      this.forced.delete(name);
      // XXX: a changed breaker or concurrency config starts its controllers afresh (closed,
      // limit at min): carrying an open state into a different window or openFor would
      // need rules of its own, and changing these settings is rare.
      const concurrency = u.concurrency && fixedLimit(u.concurrency) === null ? initialConcurrencyState(u.concurrency, now) : null;
      const limit = u.concurrency ? (fixedLimit(u.concurrency) ?? concurrency!.written) : 0;
      const g: Guarded = {
        name,
        slot,
        key,
        breakerCfg: u.breaker ?? null,
        concurrencyCfg: u.concurrency ?? null,
        breaker: u.breaker ? initialBreakerState(u.breaker, this.tickMs, now) : null,
        concurrency,
        predictive: concurrency !== null && u.concurrency?.predictive ? initialPredictiveState() : null,
        state: BreakerState.Closed,
        limit,
        last: new Map(),
        counts: old?.counts ?? { attempts: 0, failures: 0, slow: 0, circuitOpen: 0, fallback: 0, shed: 0, probes: 0, shedByPriority: [0, 0, 0, 0] },
        transitions: old?.transitions ?? new Map(),
        lastSampleRttUs: 0,
      };
      this.words.setProbePermits(slot, 0);
      this.words.writeWord(slot, BreakerState.Closed, limit);
      this.baseline(g);
      this.deps.log.info(
        { event: 'controllers-configured', upstream: name, breaker: u.breaker !== undefined, concurrency: u.concurrency === undefined ? null : String(u.concurrency.limit), limit },
        `upstream ${name}: adaptive protection configured (breaker ${u.breaker ? 'on' : 'off'}, concurrency ${u.concurrency ? String(u.concurrency.limit) : 'off'})`,
      );
      next.push(g);
    }
    this.guarded = next;
    for (const name of [...this.forced.keys()]) if (!next.some((g) => g.name === name && g.breakerCfg !== null)) this.forced.delete(name);
  }

  /** Whether `upstream` has a breaker that can be forced (workers guard only such upstreams). */
  hasBreaker(upstream: string): boolean {
    return this.guarded.some((g) => g.name === upstream && g.breakerCfg !== null);
  }

  /**
   * Forces an upstream's breaker open or closed until `null` hands it back to the
   * controller, which then starts from closed with an empty window (what it saw while
   * forced is not evidence about the upstream's health now). Written at once, not at
   * the next tick, so workers see it within microseconds.
   */
  force(upstream: string, state: 'open' | 'closed' | null): void {
    const g = this.guarded.find((x) => x.name === upstream && x.breakerCfg !== null);
    if (g === undefined) throw new Error(`upstream "${upstream}" has no breaker`);
    const now = Date.now();
    const before = this.forced.get(upstream) ?? null;
    if (state === null) {
      if (before === null) return;
      this.forced.delete(upstream);
      g.breaker = initialBreakerState(g.breakerCfg!, this.tickMs, now);
      this.words.setProbePermits(g.slot, 0);
      g.state = BreakerState.Closed;
    } else {
      this.forced.set(upstream, state);
      if (state === 'open') this.words.writeOpenUntil(g.slot, now + FORCED_OPEN_RETRY_MS);
      this.words.setProbePermits(g.slot, 0);
      g.state = state === 'open' ? BreakerState.Open : BreakerState.Closed;
    }
    this.words.writeWord(g.slot, g.state, g.limit);
    g.transitions.set('breaker-forced', (g.transitions.get('breaker-forced') ?? 0) + 1);
  }

  forcedState(upstream: string): 'open' | 'closed' | null {
    return this.forced.get(upstream) ?? null;
  }

  /** Adaptive rate limits: an unchanged policy keeps its multiplier across a reload (rewritten: applyConfig reset the row). */
  private applyAdaptive(cfg: Config, now: number): Set<string> {
    const before = new Map(this.adaptive.map((a) => [a.key, a]));
    this.adaptive = adaptivePolicies(cfg).map((p) => {
      const key = JSON.stringify([p.route, p.policy, p.upstream, p.cfg]);
      const state = before.get(key)?.state ?? initialAdaptiveRateState(now, kLatencyBuckets);
      // XXX: between the limiter writer's reset to 1 and this write a reload lets workers see ×1 for a moment.
      this.deps.setMultiplier?.(p.row, state.multiplier);
      return { p, key, state };
    });
    return new Set(this.adaptive.map((a) => a.p.upstream));
  }

  start(): void {
    if (this.timer !== null) return;
    this.deps.workerUtilization(); // start the utilisation interval now
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Worker `slot` ended: its share of the shared in-flight words is released. */
  releaseWorker(slot: number): void {
    const released = this.words.releaseWorker(slot);
    if (released.length > 0) this.deps.log.warn({ event: 'worker-admissions-reconciled', slot, released }, `worker slot ${slot} ended holding admitted requests; released`);
  }

  private baseline(g: Guarded): void {
    for (const w of this.deps.workerSlots()) g.last.set(w, this.read(g, w, { o: emptyOutcomes(), latency: new Float64Array(kLatencyBuckets) }));
  }

  private read(g: Guarded, w: number, into: Totals): Totals {
    this.words.outcomes(w, g.slot, into.o);
    this.words.readLatency(w, g.slot, into.latency);
    return into;
  }

  /** One tick; public for tests that drive the scheduler by hand. */
  tick(now = Date.now()): void {
    const elu = this.deps.workerUtilization();
    this.utilization = elu;
    if (this.shedding !== null) this.stepShedLevel(this.shedding, now, elu);
    if (this.workerScaling !== null && this.deps.workerPool !== undefined) this.stepWorkers(this.workerScaling, this.deps.workerPool, now, elu);
    const slots = this.deps.workerSlots();
    for (const g of this.guarded) {
      const sum = emptyOutcomes();
      const latency = new Float64Array(kLatencyBuckets);
      for (const w of slots) {
        const last = g.last.get(w);
        if (last === undefined) {
          // A worker slot seen for the first time: its totals so far are not this tick's.
          g.last.set(w, this.read(g, w, { o: emptyOutcomes(), latency: new Float64Array(kLatencyBuckets) }));
          continue;
        }
        const cur = this.read(g, w, { o: this.scratch, latency: this.scratchLatency });
        const o = cur.o;
        const p = last.o;
        sum.attempts += d(o.attempts, p.attempts);
        sum.failures += d(o.failures, p.failures);
        sum.slow += d(o.slow, p.slow);
        sum.probeSuccesses += d(o.probeSuccesses, p.probeSuccesses);
        sum.probeFailures += d(o.probeFailures, p.probeFailures);
        sum.circuitOpen += d(o.circuitOpen, p.circuitOpen);
        sum.fallback += d(o.fallback, p.fallback);
        sum.shed += d(o.shed, p.shed);
        for (let i = 0; i < 4; i++) sum.shedByPriority[i]! += d(o.shedByPriority[i]!, p.shedByPriority[i]!);
        for (let i = 0; i < kLatencyBuckets; i++) latency[i]! += d(cur.latency[i]!, last.latency[i]!);
        // Keep these totals as the next baseline (copy: the scratch is reused).
        Object.assign(p, o, { shedByPriority: p.shedByPriority });
        for (let i = 0; i < 4; i++) p.shedByPriority[i] = o.shedByPriority[i]!;
        last.latency.set(cur.latency);
      }
      const c = g.counts;
      c.attempts += sum.attempts;
      c.failures += sum.failures;
      c.slow += sum.slow;
      c.circuitOpen += sum.circuitOpen;
      c.fallback += sum.fallback;
      c.shed += sum.shed;
      for (let i = 0; i < 4; i++) c.shedByPriority[i]! += sum.shedByPriority[i]!;
      c.probes += sum.probeSuccesses + sum.probeFailures;
      const events: DecisionEvent[] = [];
      let state = g.state;
      let limit = g.limit;
      const forced = this.forced.get(g.name);
      if (forced !== undefined) {
        state = forced === 'open' ? BreakerState.Open : BreakerState.Closed;
        // Keeps Retry-After meaningful: a forced breaker opens "for a while", renewed each tick.
        if (forced === 'open') this.words.writeOpenUntil(g.slot, now + FORCED_OPEN_RETRY_MS);
      } else if (g.breaker !== null && g.breakerCfg !== null) {
        const r = breakerStep(g.name, g.breakerCfg, g.breaker, { now, attempts: sum.attempts, failures: sum.failures, slow: sum.slow, probeSuccesses: sum.probeSuccesses, probeFailures: sum.probeFailures, elu });
        g.breaker = r.state;
        events.push(...r.events);
        if (r.write !== null) {
          state = r.write.state;
          // Order matters to workers: time and permits before the state that reads them.
          if (state === BreakerState.Open) this.words.writeOpenUntil(g.slot, r.write.openUntil);
          this.words.setProbePermits(g.slot, r.write.permits);
        }
      }
      if (g.concurrency !== null && g.concurrencyCfg !== null) {
        const inFlightNow = this.words.inFlight(g.slot);
        // Little's law over the tick: the average in flight, which an instant reading can miss.
        let busyUs = 0;
        for (let i = 0; i < kLatencyBuckets; i++) if (latency[i]! > 0) busyUs += latency[i]! * latencyBucketFloor(i);
        const inFlight = Math.max(inFlightNow, busyUs / (this.tickMs * 1000));
        let floor = 0;
        const pc = g.concurrencyCfg.predictive;
        const f = pc !== null && g.predictive !== null ? (this.deps.forecast?.(g.name) ?? null) : null;
        if (pc !== null && g.predictive !== null && f !== null) {
          const p = predictiveStep(g.name, pc, g.predictive, { now, rate: f.rate, forecast: f.forecast, horizonS: f.horizonS, minRttUs: g.concurrency.minRttUs, bufferPct: g.concurrencyCfg.buffer, limit: g.concurrency.written, max: g.concurrencyCfg.max });
          g.predictive = p.state;
          events.push(...p.events);
          floor = p.state.floor;
        }
        const r = concurrencyStep(g.name, g.concurrencyCfg, g.concurrency, { now, latency, inFlight: round(inFlight, 1), shed: sum.shed, random: Math.random(), floor });
        g.concurrency = r.state;
        events.push(...r.events);
        if (r.write !== null) limit = r.write;
      }
      for (const a of this.adaptive) {
        if (a.p.upstream !== g.name) continue;
        const r = adaptiveRateStep(a.p, a.p.cfg, a.state, { now, attempts: sum.attempts, failures: sum.failures, latency });
        a.state = r.state;
        events.push(...r.events);
        if (r.write !== null) this.deps.setMultiplier?.(a.p.row, r.write);
      }
      if (state !== g.state || limit !== g.limit) {
        g.state = state;
        g.limit = limit;
        this.words.writeWord(g.slot, state, limit);
      }
      for (const e of events) {
        g.transitions.set(e.event, (g.transitions.get(e.event) ?? 0) + 1);
        // Every controller decision goes into the decision feed as well as the log.
        decision(this.deps.log)[e.level]({ event: e.event, ...e.fields }, e.msg);
      }
    }
  }

  private stepShedLevel(cfg: SheddingConfig, now: number, elu: number): void {
    const r = shedLevelStep(cfg, this.shedLevel, now, elu);
    this.shedLevel = r.state;
    if (r.event === null) return;
    this.deps.shm.f64[kHeaderShedLevelField] = r.state.level;
    decision(this.deps.log)[r.event.level]({ event: r.event.event, ...r.event.fields }, r.event.msg);
  }

  private stepWorkers(cfg: WorkerScalingConfig, pool: WorkerPool, now: number, elu: number): void {
    const c = pool.counts();
    const r = workerScaleStep(cfg, this.workerScale, { now, elu, serving: c.serving, changing: c.starting + c.retiring });
    this.workerScale = r.state;
    if (r.event === null) return;
    const log = decision(this.deps.log);
    log[r.event.level]({ event: r.event.event, ...r.event.fields }, r.event.msg);
    const slot = r.action === 'add' ? (pool.add() ? 0 : null) : r.action === 'retire' ? pool.retire() : null;
    if (slot === null) {
      // Nothing changed after all (no free slot, or a thread ended meanwhile): the cool-down still applies.
      this.workerScale = workerScaleSettled(this.workerScale, now);
      this.deps.log.warn({ event: 'worker-scale-skipped', action: r.action }, `worker scaling: could not ${r.action ?? 'act'} now`);
    }
  }

  /**
   * A change the scaler asked for has finished: the added thread listens (`ok`) or
   * failed to start, or the retiring thread has ended. The cool-down starts now.
   */
  workerChanged(direction: 'up' | 'down', slot: number, ok: boolean, tookMs: number, detail: { forcedRequests?: number; error?: string } = {}): void {
    const now = Date.now();
    this.workerScale = workerScaleSettled(this.workerScale, now);
    const c = this.deps.workerPool?.counts();
    const serving = c?.serving ?? 0;
    const log = decision(this.deps.log);
    if (direction === 'up' && !ok) {
      log.warn({ event: 'worker-add-failed', slot, tookMs, error: detail.error ?? null, serving }, `worker thread in slot ${slot} did not start: ${detail.error ?? 'unknown error'}`);
      return;
    }
    const forcedRequests = detail.forcedRequests ?? 0;
    this.lastWorkerChange = { direction, slot, at: new Date(now).toISOString(), tookMs, forcedRequests };
    if (direction === 'up') log.info({ event: 'worker-added', slot, tookMs, serving }, `worker thread in slot ${slot} serving ${tookMs} ms after it was asked for (${serving} serving)`);
    else (forcedRequests > 0 ? log.warn.bind(log) : log.info.bind(log))({ event: 'worker-retired', slot, tookMs, forcedRequests, serving }, `worker thread in slot ${slot} retired after draining for ${tookMs} ms (${forcedRequests} requests cut at the drain timeout; ${serving} serving)`);
  }

  workerScalingStatus(): WorkerScalingStatus | null {
    const cfg = this.workerScaling;
    const pool = this.deps.workerPool;
    if (cfg === null || pool === undefined) return null;
    const s = this.workerScale;
    const c = pool.counts();
    const now = Date.now();
    return {
      enabled: true,
      min: cfg.min,
      max: cfg.max,
      target: cfg.target,
      release: cfg.release,
      ...c,
      eventLoopUtilization: s.elu === null ? null : round(s.elu, 3),
      hotForMs: s.hotSince === null ? 0 : now - s.hotSince,
      coldForMs: s.coldSince === null ? 0 : now - s.coldSince,
      cooldownLeftMs: Math.max(0, cfg.cooldown - (now - s.settledAt)),
      adds: s.adds,
      retires: s.retires,
      last: this.lastWorkerChange,
    };
  }

  /** The gateway's shed level and the requests it refused, by priority (summed over the live workers' counters). */
  sheddingStatus(): SheddingStatus {
    const shed = { critical: 0, high: 0, normal: 0, low: 0 };
    for (const w of this.deps.workerSlots()) {
      const c = this.deps.shm.workerCounters(w);
      for (let p = 0; p < 4; p++) shed[priorityNames[p]!] += c[kWorkerShedLoadField + p] ?? 0;
    }
    return { enabled: this.shedding !== null, level: this.shedLevel.level, sinceMs: Date.now() - this.shedLevel.since, changes: this.shedLevel.changes, shed };
  }

  status(): GuardStatus[] {
    const now = Date.now();
    return this.guarded.map((g) => {
      const b = g.breaker;
      const c = g.concurrency;
      let breaker: GuardStatus['breaker'] = null;
      if (b !== null) {
        const [requests, failures, slow] = windowSums(b.ring);
        const forced = this.forced.get(g.name) ?? null;
        breaker = {
          state: forced ?? b.state,
          forced,
          sinceMs: now - b.since,
          openUntil: b.state === 'open' ? new Date(b.openUntil).toISOString() : null,
          openForMs: b.openForMs,
          trips: b.trips,
          failureRateThreshold: b.threshold,
          eventLoopUtilization: round(b.elu, 3),
          window: { requests, failures, slow, failureRate: requests > 0 ? round((failures / requests) * 100, 1) : 0, slowRate: requests > 0 ? round((slow / requests) * 100, 1) : 0 },
          probes: b.state === 'half-open' ? { permitsLeft: this.words.probePermits(g.slot), successes: b.probeSuccesses, failures: b.probeFailures } : null,
        };
      }
      const concurrency: GuardStatus['concurrency'] =
        g.concurrencyCfg === null
          ? null
          : {
              mode: c === null ? 'fixed' : 'adaptive',
              limit: g.limit,
              inFlight: this.words.inFlight(g.slot),
              phase: c?.phase ?? null,
              minRttMs: c === null ? null : round(c.minRttUs / 1000),
              sampleRttMs: c === null ? null : round(c.sampleRttUs / 1000),
              gradient: c === null ? null : round(c.gradient, 3),
              predictive: g.predictive === null ? null : { floor: g.predictive.floor, requestRate: round(g.predictive.rate, 1), forecast: g.predictive.forecast === null ? null : round(g.predictive.forecast, 1) },
            };
      return { upstream: g.name, breaker, concurrency, counts: { ...g.counts, shedByPriority: [...g.counts.shedByPriority] }, transitions: Object.fromEntries(g.transitions) };
    });
  }

  adaptiveRateStatus(): AdaptiveRateStatus[] {
    return this.adaptive.map((a) => adaptiveRateStatus(a.p, a.state));
  }

  /** The breaker state as workers read it (for tests and metrics). */
  wordState(upstream: string): string | null {
    const g = this.guarded.find((x) => x.name === upstream);
    return g === undefined ? null : (breakerStateNames[g.state] ?? null);
  }
}
