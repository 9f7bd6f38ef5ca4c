// The primary's one writer of the shared endpoint tables (src/shm/endpoint-table.ts).
// Discovery, health checks and the admin API change endpoints only through this API;
// workers see a change at their next request (one seqlock load), no message needed.
//
// API (all on the primary thread; `upstream` is the config's upstream name):
//
//   setEndpoints(upstream, endpoints[], reason?)
//       Replaces the whole set (discovery reports whole sets). `endpoints` are
//       { host, port, weight? } (weight 1..1_000_000, default 1). An endpoint already in the
//       table keeps its row, state and counters; a new one starts healthy and, when
//       the upstream has `slowStart`, ramps its effective weight over that window;
//       a removed one turns `draining` (takes no new requests) and its row is freed
//       once its in-flight count reaches zero. Throws StartupError TG_ERR_SHM_CAPACITY
//       when the set needs more rows than `capacity.endpointsPerUpstream`.
//   setState(upstream, endpoint, 'healthy' | 'ejected' | 'draining', reason)
//       `endpoint` is a row index or { host, port }. healthy after ejected re-enters
//       slow start; ejected counts an ejection. Logs `endpoint-state` with the reason.
//   setWeight(upstream, endpoint, weight)
//   setHealth(upstream, endpoint, 'healthy' | 'ejected', reason)
//       setState under the name the health checker's HealthSink expects; ignores
//       endpoints no longer in the table (a verdict racing a discovery update).
//   read(upstream, endpoint) → { consecutive5xx, consecutiveConnectFailures } | null
//   reset(upstream, endpoint)
//       The workers' passive-health counters (PassiveSignalSource shape): read them on
//       each outlier scan, reset them on ejection (as Envoy does).
//   status() → per upstream: balancer state, panic flag and counters, every row.
//
// The gateway itself calls applyConfig(upstreamTables(config)) at start and on
// reload (checkCapacity first, so a config that cannot fit is refused whole); an
// upstream with a static set gets it from there, others get theirs from discovery.
// Panic mode (fewer healthy than `panicThreshold`) is recomputed on every write and
// logged as `upstream-panic` / `upstream-panic-over`; slow-start ramps and
// peak-EWMA time decay run on the writer's own unref'd timers.
//
// Unknown upstream names and endpoints throw a plain Error: they are bugs in the
// caller, not conditions to survive.
import { sharedDictRegionBytes } from '../shm/shared-dict-layout.js';
import { sharedDictSpecs } from '../config/schema-shared.js';
import { StartupCodes, StartupError } from '../errors.js';
import {
  EndpointState,
  endpointStateNames,
  kEndpointAddressField,
  kEndpointConsecutive5xxField,
  kEndpointConsecutiveConnectFailuresField,
  kEndpointEffectiveWeightField,
  kEndpointEjectionsField,
  kEndpointInFlightField,
  kEndpointStateField,
  kEndpointWeightField,
  kUpstreamHealthyField,
  kUpstreamInUseField,
  kUpstreamNoEndpointField,
  kUpstreamPanicField,
  kUpstreamPanicPicksField,
  kUpstreamRowsField,
  kUpstreamNameMaxBytes,
  kEndpointAddressMaxBytes,
} from '../shm/layout.js';
import { EndpointTable, readRowInfo, type EndpointRowInfo, type WorkerLedger } from '../shm/endpoint-table.js';
import type { SharedState } from '../shm/shared-state.js';
import type { Config } from '../config/schema.js';
import type { LayoutLimits } from '../shm/layout.js';

/** What the endpoint tables need from a config (upstream slots are kept by name across reloads). */
export function upstreamTables(cfg: Config): UpstreamTableConfig[] {
  return Object.entries(cfg.upstreams).map(([name, u]) => ({
    name,
    balancer: u.balancer,
    endpoints: u.discovery.type === 'static' ? u.discovery.endpoints : null,
    slowStartMs: u.slowStart,
    panicThreshold: u.panicThreshold,
  }));
}

/** Table sizes from the config's `capacity` section (fixed for the life of the process). */
export function shmCapacity(cfg: Config): Omit<LayoutLimits, 'maxWorkers'> {
  return {
    maxUpstreams: cfg.capacity.upstreams,
    maxEndpoints: cfg.capacity.endpointsPerUpstream,
    limiterSlots: cfg.capacity.limiterKeys,
    limiterPolicies: cfg.capacity.limiterPolicies,
    banSlots: cfg.capacity.banKeys,
    sharedDictBytes: sharedDictRegionBytes(sharedDictSpecs(cfg.shared)),
  };
}

export interface EndpointSpec {
  readonly host: string;
  readonly port: number;
  readonly weight?: number;
}

export type EndpointRef = number | { readonly host: string; readonly port: number };
export type EndpointStateName = 'healthy' | 'ejected' | 'draining';

export interface UpstreamTableConfig {
  readonly name: string;
  readonly balancer: string;
  /** the config's own set (static discovery); null: a provider reports it (left as is) */
  readonly endpoints: readonly EndpointSpec[] | null;
  /** ms over which a new or re-admitted endpoint's weight ramps up; 0 = off */
  readonly slowStartMs: number;
  /** 0..100: below this share of healthy endpoints, balancers spread over all (0 = never) */
  readonly panicThreshold: number;
}

/** Structured events for the log (every decision that changes traffic is logged). */
export interface WriterEventSink {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

/**
 * Weights are stored ×100 so a slow-start ramp of a weight-1 endpoint has steps
 * (balancers only compare weights, so the scale is invisible to them).
 */
export const WEIGHT_SCALE = 100;
/** Envoy's slow-start min_weight_percent: a ramping endpoint gets at least this share. */
const SLOW_START_MIN_FACTOR = 0.1;
const TICK_MS = 250;
/** EWMA time decay: per second, exp(-1/10), i.e. Finagle's default 10 s decay time. */
const EWMA_DECAY_PER_SECOND = Math.exp(-1 / 10);

interface RowMeta {
  key: string;
  /** Date.now() when (re)admitted; slow start ramps from here */
  admittedAt: number;
}

/**
 * An operator's override of one endpoint (the `endpoint` override target): it wins
 * over discovery's weight and over health verdicts for as long as it holds; what
 * those said meanwhile is remembered and put back when the pin is lifted.
 */
export interface EndpointPin {
  readonly weight?: number;
  /** draining: takes no new requests; healthy: takes traffic whatever health checks say */
  readonly state?: 'draining' | 'healthy';
}

interface PinState {
  pin: EndpointPin;
  /** the state health checks or discovery last asked for while pinned; null: none since */
  underlying: EndpointStateName | null;
}

interface UpstreamMeta {
  readonly slot: number;
  name: string;
  balancer: string;
  slowStartMs: number;
  panicThreshold: number;
  rows: (RowMeta | null)[];
  /** next address id; ids are never reused within a slot, so a worker never confuses two addresses */
  nextAddressId: number;
  panic: boolean;
}

export function endpointAddress(e: { readonly host: string; readonly port: number }): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function clampWeight(w: number | undefined): number {
  if (w === undefined || !Number.isFinite(w)) return 1;
  return Math.max(1, Math.min(1_000_000, Math.round(w)));
}

export class EndpointWriter {
  readonly table: EndpointTable;
  private readonly byName = new Map<string, UpstreamMeta>();
  private readonly slots: (UpstreamMeta | null)[];
  private timer: NodeJS.Timeout | null = null;
  private decayTimer: NodeJS.Timeout | null = null;
  /** by `upstream\naddress` */
  private readonly pins = new Map<string, PinState>();
  /** by `upstream\naddress`: the weight discovery or the config gave, under a weight pin */
  private readonly baseWeights = new Map<string, number>();

  constructor(
    shm: SharedState,
    private readonly log: WriterEventSink | null = null,
  ) {
    this.table = new EndpointTable(shm);
    this.slots = new Array<UpstreamMeta | null>(this.table.maxUpstreams).fill(null);
  }

  /**
   * Throws TG_ERR_SHM_CAPACITY when `upstreams` does not fit the tables sized at start.
   * Call before applying a reload, so a config that cannot fit is refused whole.
   */
  checkCapacity(upstreams: readonly UpstreamTableConfig[]): void {
    const t = this.table;
    if (upstreams.length > t.maxUpstreams) {
      throw new StartupError(StartupCodes.SHM_CAPACITY, `capacity.upstreams: the config has ${upstreams.length} upstreams but shared memory was sized for ${t.maxUpstreams}; raise capacity.upstreams (takes effect on restart)`);
    }
    for (const u of upstreams) {
      if (Buffer.byteLength(u.name) > kUpstreamNameMaxBytes) {
        throw new StartupError(StartupCodes.SHM_CAPACITY, `upstream name "${u.name}" is longer than the ${kUpstreamNameMaxBytes} bytes the shared tables hold`);
      }
      for (const ep of u.endpoints ?? []) {
        if (Buffer.byteLength(endpointAddress(ep)) > kEndpointAddressMaxBytes) {
          throw new StartupError(StartupCodes.SHM_CAPACITY, `upstream "${u.name}": endpoint address "${endpointAddress(ep)}" is longer than the ${kEndpointAddressMaxBytes} bytes the shared tables hold`);
        }
      }
      if (u.endpoints !== null && u.endpoints.length > t.maxEndpoints) {
        throw new StartupError(StartupCodes.SHM_CAPACITY, `capacity.endpointsPerUpstream: upstream "${u.name}" has ${u.endpoints.length} endpoints but shared memory was sized for ${t.maxEndpoints}; raise capacity.endpointsPerUpstream (takes effect on restart)`);
      }
    }
  }

  /** Writes a config generation's upstreams. Upstreams keep their slot across reloads (by name). */
  applyConfig(upstreams: readonly UpstreamTableConfig[], initial = false): void {
    this.checkCapacity(upstreams);
    const wanted = new Set(upstreams.map((u) => u.name));
    // Retire slots first so a reload that swaps names never runs out of slots. A
    // retired slot keeps its rows: workers still on the old generation keep routing.
    for (const [name, m] of this.byName) {
      if (wanted.has(name)) continue;
      this.byName.delete(name);
      this.table.beginWrite(m.slot);
      this.table.setUpstreamField(m.slot, kUpstreamInUseField, 0);
      this.table.endWrite(m.slot);
      this.slots[m.slot] = null;
    }
    for (const u of upstreams) {
      let m = this.byName.get(u.name);
      if (!m) {
        const slot = this.freeSlot();
        m = { slot, name: u.name, balancer: u.balancer, slowStartMs: u.slowStartMs, panicThreshold: u.panicThreshold, rows: [], nextAddressId: 1, panic: false };
        this.byName.set(u.name, m);
        this.slots[slot] = m;
        const t = this.table;
        t.beginWrite(slot);
        try {
          t.writeName(slot, u.name);
          // A reused slot may hold rows of a retired upstream: free them.
          const old = t.upstreamField(slot, kUpstreamRowsField);
          for (let e = 0; e < old; e++) this.freeRow(slot, e);
          t.setUpstreamField(slot, kUpstreamRowsField, 0);
          t.setUpstreamField(slot, kUpstreamInUseField, 1);
        } finally {
          // Never leave the seqlock odd: readers would keep a stale copy forever.
          t.endWrite(slot);
        }
      }
      m.balancer = u.balancer;
      if (u.balancer === 'peak-ewma' && this.decayTimer === null) {
        this.decayTimer = setInterval(() => this.decayEwma(), 1000);
        this.decayTimer.unref();
      }
      m.slowStartMs = u.slowStartMs;
      m.panicThreshold = u.panicThreshold;
      if (u.endpoints !== null) this.writeSet(m, u.endpoints, initial ? 'config' : 'config reload', initial);
      else {
        // Options (slow start, panic threshold) may have changed: recompute the flag.
        this.table.beginWrite(m.slot);
        this.updatePanic(m);
        this.table.endWrite(m.slot);
      }
    }
  }

  private freeSlot(): number {
    const t = this.table;
    // Never-used slots first, then retired ones (oldest generation's workers are gone by then).
    for (let s = 0; s < this.slots.length; s++) if (this.slots[s] === null && t.upstreamField(s, kUpstreamRowsField) === 0) return s;
    for (let s = 0; s < this.slots.length; s++) if (this.slots[s] === null) return s;
    throw new StartupError(StartupCodes.SHM_CAPACITY, `capacity.upstreams: no free upstream slot (sized for ${t.maxUpstreams})`);
  }

  /** The slot of `upstream` in the tables (workers find it by name; tests and status use this). */
  slotOf(upstream: string): number {
    return this.meta(upstream).slot;
  }

  setEndpoints(upstream: string, endpoints: readonly EndpointSpec[], reason = 'discovery'): void {
    const m = this.meta(upstream);
    if (endpoints.length > this.table.maxEndpoints) {
      throw new StartupError(StartupCodes.SHM_CAPACITY, `capacity.endpointsPerUpstream: upstream "${upstream}" got ${endpoints.length} endpoints but shared memory was sized for ${this.table.maxEndpoints}`);
    }
    for (const ep of endpoints) {
      if (Buffer.byteLength(endpointAddress(ep)) > kEndpointAddressMaxBytes) throw new StartupError(StartupCodes.SHM_CAPACITY, `upstream "${upstream}": endpoint address "${endpointAddress(ep)}" is longer than ${kEndpointAddressMaxBytes} bytes`);
    }
    this.writeSet(m, endpoints, reason, false);
  }

  setState(upstream: string, endpoint: EndpointRef, state: EndpointStateName, reason: string): void {
    const m = this.meta(upstream);
    const e = this.row(m, endpoint);
    const ps = this.pins.get(`${upstream}\n${m.rows[e]!.key}`);
    if (ps?.pin.state !== undefined) {
      // Pinned by an override: remember the verdict for when the pin is lifted.
      ps.underlying = state;
      return;
    }
    this.writeState(m, e, state, reason);
  }

  private writeState(m: UpstreamMeta, e: number, state: EndpointStateName, reason: string): void {
    const upstream = m.name;
    const t = this.table;
    const next = state === 'healthy' ? EndpointState.Healthy : state === 'ejected' ? EndpointState.Ejected : EndpointState.Draining;
    const prev = t.rowField(m.slot, e, kEndpointStateField);
    if (prev === next) return;
    const meta = m.rows[e]!;
    t.beginWrite(m.slot);
    t.setRowField(m.slot, e, kEndpointStateField, next);
    if (next === EndpointState.Ejected) t.setRowField(m.slot, e, kEndpointEjectionsField, t.rowField(m.slot, e, kEndpointEjectionsField) + 1);
    if (next === EndpointState.Healthy) {
      meta.admittedAt = Date.now();
      t.setRowField(m.slot, e, kEndpointEffectiveWeightField, this.effectiveWeight(m, e, Date.now()));
    }
    this.updatePanic(m);
    t.endWrite(m.slot);
    this.log?.info({ event: 'endpoint-state', upstream, endpoint: meta.key, from: endpointStateNames[prev], to: state, reason }, `endpoint ${meta.key} of ${upstream}: ${state} (${reason})`);
    this.armTimer();
  }

  /**
   * Lenient where setState is strict: a health verdict for an endpoint discovery just
   * removed (or an upstream a reload just dropped) is a normal race, not a bug.
   */
  setHealth(upstream: string, endpoint: { readonly host: string; readonly port: number }, state: 'healthy' | 'ejected', reason: string): void {
    const m = this.byName.get(upstream);
    if (!m || this.findRow(m, endpoint) < 0) return;
    this.setState(upstream, endpoint, state, reason);
  }

  /**
   * Pins (or, with null, unpins) an endpoint by address. An endpoint not in the table
   * yet takes the pin when discovery reports it; an unpinned one gets back the weight
   * discovery or the config gave and the state health checks last asked for.
   */
  pin(upstream: string, address: string, pin: EndpointPin | null, reason: string): void {
    const k = `${upstream}\n${address}`;
    const m = this.meta(upstream);
    const e = m.rows.findIndex((r) => r !== null && r.key === address);
    const before = this.pins.get(k);
    if (pin === null) {
      this.pins.delete(k);
      if (e < 0) return;
      const base = this.baseWeights.get(k);
      if (before?.pin.weight !== undefined && base !== undefined) this.setWeight(upstream, e, base);
      if (before?.pin.state !== undefined) this.writeState(m, e, before.underlying ?? 'healthy', `${reason} (override lifted)`);
      return;
    }
    const cur = e < 0 ? null : (endpointStateNames[this.table.rowField(m.slot, e, kEndpointStateField)] as EndpointStateName | undefined);
    this.pins.set(k, { pin, underlying: before?.underlying ?? (cur === 'healthy' || cur === 'ejected' || cur === 'draining' ? cur : null) });
    if (e < 0) return;
    if (pin.weight !== undefined) {
      if (!this.baseWeights.has(k)) this.baseWeights.set(k, this.table.rowField(m.slot, e, kEndpointWeightField));
      this.setWeight(upstream, e, pin.weight);
    } else if (before?.pin.weight !== undefined) {
      const base = this.baseWeights.get(k);
      if (base !== undefined) this.setWeight(upstream, e, base);
    }
    if (pin.state !== undefined) this.writeState(m, e, pin.state, reason);
    else if (before?.pin.state !== undefined) this.writeState(m, e, before.underlying ?? 'healthy', `${reason} (override lifted)`);
  }

  setWeight(upstream: string, endpoint: EndpointRef, weight: number): void {
    const m = this.meta(upstream);
    const e = this.row(m, endpoint);
    const t = this.table;
    t.beginWrite(m.slot);
    t.setRowField(m.slot, e, kEndpointWeightField, clampWeight(weight));
    t.setRowField(m.slot, e, kEndpointEffectiveWeightField, this.effectiveWeight(m, e, Date.now()));
    this.updatePanic(m);
    t.endWrite(m.slot);
  }

  read(upstream: string, endpoint: EndpointRef): { consecutive5xx: number; consecutiveConnectFailures: number } | null {
    const m = this.byName.get(upstream);
    if (!m) return null;
    const e = this.findRow(m, endpoint);
    if (e < 0) return null;
    return {
      consecutive5xx: this.table.rowField(m.slot, e, kEndpointConsecutive5xxField),
      consecutiveConnectFailures: this.table.rowField(m.slot, e, kEndpointConsecutiveConnectFailuresField),
    };
  }

  reset(upstream: string, endpoint: EndpointRef): void {
    const m = this.byName.get(upstream);
    if (!m) return;
    const e = this.findRow(m, endpoint);
    if (e < 0) return;
    // Counters have many writers (workers); a store of 0 only loses increments racing it, as intended.
    Atomics.store(this.table.i32, this.table.rowBase(m.slot, e) + kEndpointConsecutive5xxField, 0);
    Atomics.store(this.table.i32, this.table.rowBase(m.slot, e) + kEndpointConsecutiveConnectFailuresField, 0);
  }

  /** Slow-start ramps and freeing drained rows; runs on its own unref'd timer while needed. */
  tick(now = Date.now()): boolean {
    let busy = false;
    const t = this.table;
    for (const m of this.byName.values()) {
      const updates: [number, number][] = [];
      const frees: number[] = [];
      for (let e = 0; e < m.rows.length; e++) {
        const r = m.rows[e];
        if (!r) continue;
        const s = t.rowField(m.slot, e, kEndpointStateField);
        if (s === EndpointState.Draining && !r.key.startsWith('#')) {
          // Removed from the set (marked below in writeSet): free once idle.
          continue;
        }
        if (s === EndpointState.Draining) {
          if (t.rowField(m.slot, e, kEndpointInFlightField) <= 0) frees.push(e);
          else busy = true;
          continue;
        }
        if (s === EndpointState.Healthy && m.slowStartMs > 0) {
          // Written until it reaches full weight (the last step may land after the window).
          const w = this.effectiveWeight(m, e, now);
          if (w !== t.rowField(m.slot, e, kEndpointEffectiveWeightField)) updates.push([e, w]);
          if (now - r.admittedAt < m.slowStartMs) busy = true;
        }
      }
      if (updates.length > 0 || frees.length > 0) {
        t.beginWrite(m.slot);
        for (const [e, w] of updates) t.setRowField(m.slot, e, kEndpointEffectiveWeightField, w);
        for (const e of frees) {
          this.freeRow(m.slot, e);
          m.rows[e] = null;
        }
        this.trimRows(m);
        this.updatePanic(m);
        t.endWrite(m.slot);
      }
    }
    return busy;
  }

  /** Stops both timers (gateway shutdown). */
  stop(): void {
    this.stopTick();
    if (this.decayTimer) clearInterval(this.decayTimer);
    this.decayTimer = null;
  }

  /**
   * The ramp/free tick only: it idles between table writes, while the EWMA decay
   * must keep running for as long as a peak-ewma upstream exists (stopping both here
   * froze every EWMA about 250 ms after the last write).
   */
  private stopTick(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Worker slot `w`'s thread has ended: release the in-flight counts it still held
   * (requests that died with it), so draining rows can be freed and least-request /
   * peak-EWMA stop seeing phantom load. Logged when anything was released.
   */
  releaseWorker(w: number): number {
    const released = this.table.releaseWorker(w);
    if (released.length === 0) return 0;
    let total = 0;
    const rows = released.map((r) => {
      total += r.count;
      const m = this.slots[r.upstream];
      const key = m?.rows[r.row]?.key;
      return { upstream: m?.name ?? `#${r.upstream}`, endpoint: key === undefined ? `#${r.row}` : key.replace(/^#/, ''), count: r.count };
    });
    this.log?.warn({ event: 'worker-in-flight-reconciled', slot: w, released: total, rows }, `worker slot ${w} ended with ${total} upstream requests counted in flight; released`);
    this.armTimer(); // draining rows may be free now
    return total;
  }

  /** Pending (waiting for a connection) and overload refusals per worker, for upstream `name`. */
  overload(name: string, workers: readonly number[]): ({ worker: number } & WorkerLedger)[] {
    const m = this.byName.get(name);
    if (!m) return [];
    return workers.map((w) => ({ worker: w, ...this.table.ledger(w, m.slot) }));
  }

  /** One step of EWMA time decay for upstreams balanced by latency (see EndpointTable.decayEwma). */
  decayEwma(factor = EWMA_DECAY_PER_SECOND): void {
    for (const m of this.byName.values()) if (m.balancer === 'peak-ewma') this.table.decayEwma(m.slot, m.rows.length, factor);
  }

  status(): UpstreamStatus[] {
    return [...this.byName.values()].map((m) => {
      const t = this.table;
      const rows: EndpointStatus[] = [];
      for (let e = 0; e < m.rows.length; e++) {
        const r = m.rows[e];
        if (!r) continue;
        const info = readRowInfo(t, m.slot, e);
        rows.push({ ...info, address: r.key.startsWith('#') ? r.key.slice(1) : r.key, stateName: endpointStateNames[info.state] ?? 'unknown' });
      }
      return {
        name: m.name,
        slot: m.slot,
        balancer: m.balancer,
        slowStartMs: m.slowStartMs,
        panicThreshold: m.panicThreshold,
        panic: t.upstreamField(m.slot, kUpstreamPanicField) === 1,
        panicPicks: t.upstreamField(m.slot, kUpstreamPanicPicksField) >>> 0,
        noEndpointPicks: t.upstreamField(m.slot, kUpstreamNoEndpointField) >>> 0,
        healthy: t.upstreamField(m.slot, kUpstreamHealthyField),
        endpoints: rows,
      };
    });
  }

  // ---- internals ----------------------------------------------------------------------

  private meta(upstream: string): UpstreamMeta {
    const m = this.byName.get(upstream);
    if (!m) throw new Error(`unknown upstream "${upstream}" (known: ${[...this.byName.keys()].join(', ')})`);
    return m;
  }

  private findRow(m: UpstreamMeta, ref: EndpointRef): number {
    if (typeof ref === 'number') return ref >= 0 && ref < m.rows.length && m.rows[ref] ? ref : -1;
    const key = endpointAddress(ref);
    return m.rows.findIndex((r) => r !== null && r.key === key);
  }

  private row(m: UpstreamMeta, ref: EndpointRef): number {
    const e = this.findRow(m, ref);
    if (e < 0) throw new Error(`upstream "${m.name}" has no endpoint ${typeof ref === 'number' ? `row ${ref}` : endpointAddress(ref)}`);
    return e;
  }

  private effectiveWeight(m: UpstreamMeta, e: number, now: number): number {
    const w = this.table.rowField(m.slot, e, kEndpointWeightField) * WEIGHT_SCALE;
    const r = m.rows[e];
    if (!r || m.slowStartMs <= 0) return w;
    const elapsed = now - r.admittedAt;
    if (elapsed >= m.slowStartMs) return w;
    const f = Math.max(SLOW_START_MIN_FACTOR, elapsed / m.slowStartMs);
    return Math.max(1, Math.round(w * f));
  }

  private freeRow(slot: number, e: number): void {
    const t = this.table;
    t.setRowField(slot, e, kEndpointAddressField, 0);
    t.setRowField(slot, e, kEndpointStateField, EndpointState.Free);
    t.setRowField(slot, e, kEndpointEffectiveWeightField, 0);
    // In-flight and counters are left alone: workers may still decrement them.
  }

  private trimRows(m: UpstreamMeta): void {
    while (m.rows.length > 0 && m.rows[m.rows.length - 1] === null) m.rows.pop();
    this.table.setUpstreamField(m.slot, kUpstreamRowsField, m.rows.length);
  }

  /** Under the seqlock: recompute healthy count and the panic flag (logged on change). */
  private updatePanic(m: UpstreamMeta): void {
    const t = this.table;
    let total = 0;
    let healthy = 0;
    for (let e = 0; e < m.rows.length; e++) {
      if (!m.rows[e]) continue;
      const s = t.rowField(m.slot, e, kEndpointStateField);
      if (s === EndpointState.Healthy || s === EndpointState.Ejected) total++;
      if (s === EndpointState.Healthy && t.rowField(m.slot, e, kEndpointEffectiveWeightField) > 0) healthy++;
    }
    const panic = m.panicThreshold > 0 && total > 0 && (healthy * 100) / total < m.panicThreshold;
    t.setUpstreamField(m.slot, kUpstreamHealthyField, healthy);
    t.setUpstreamField(m.slot, kUpstreamPanicField, panic ? 1 : 0);
    if (panic !== m.panic) {
      m.panic = panic;
      const fields = { event: panic ? 'upstream-panic' : 'upstream-panic-over', upstream: m.name, healthy, total, panicThreshold: m.panicThreshold };
      if (panic) this.log?.warn(fields, `upstream ${m.name}: ${healthy}/${total} endpoints healthy, below ${m.panicThreshold}%: balancing over all endpoints (panic mode)`);
      else this.log?.info(fields, `upstream ${m.name}: panic mode over (${healthy}/${total} healthy)`);
    }
  }

  private writeSet(m: UpstreamMeta, endpoints: readonly EndpointSpec[], reason: string, initial: boolean): void {
    const t = this.table;
    const now = Date.now();
    const wanted = new Map<string, number>();
    for (const ep of endpoints) wanted.set(endpointAddress(ep), clampWeight(ep.weight));
    const present = new Map<string, number>();
    m.rows.forEach((r, e) => {
      if (r && !r.key.startsWith('#')) present.set(r.key, e);
    });
    const added: string[] = [];
    const removed: string[] = [];
    // Rows we can give to new endpoints: free ones, then draining ones already idle.
    const free: number[] = [];
    for (let e = 0; e < m.rows.length; e++) if (!m.rows[e]) free.push(e);
    const removedKeys = [...present.keys()].filter((k) => !wanted.has(k));
    const liveAfter = wanted.size;
    if (liveAfter > t.maxEndpoints) {
      throw new StartupError(StartupCodes.SHM_CAPACITY, `capacity.endpointsPerUpstream: upstream "${m.name}" needs ${liveAfter} rows, sized for ${t.maxEndpoints}`);
    }
    t.beginWrite(m.slot);
    try {
      for (const key of removedKeys) {
        const e = present.get(key)!;
        // Draining: finishes what is in flight, takes nothing new; tick() frees it. The
        // '#' prefix marks "removed from the set" (a draining endpoint still in the set
        // is one an operator drains on purpose and stays).
        m.rows[e]!.key = `#${key}`;
        t.setRowField(m.slot, e, kEndpointStateField, EndpointState.Draining);
        removed.push(key);
      }
      for (const [key, w] of wanted) {
        let e = present.get(key);
        if (e === undefined) {
          e = free.shift();
          if (e === undefined && m.rows.length < t.maxEndpoints) e = m.rows.length;
          if (e === undefined) {
            // Full: reclaim a removed row even if requests are in flight there (their
            // decrements still land on the same counter, so nothing is lost).
            e = m.rows.findIndex((r) => r !== null && r.key.startsWith('#'));
          }
          if (e < 0) throw new StartupError(StartupCodes.SHM_CAPACITY, `capacity.endpointsPerUpstream: upstream "${m.name}" has no free row (sized for ${t.maxEndpoints})`);
          m.rows[e] = { key, admittedAt: initial ? -Infinity : now };
          t.writeAddress(m.slot, e, key);
          t.setRowField(m.slot, e, kEndpointAddressField, m.nextAddressId++);
          t.setRowField(m.slot, e, kEndpointStateField, EndpointState.Healthy);
          t.setRowField(m.slot, e, kEndpointEjectionsField, 0);
          added.push(key);
        }
        const ps = this.pins.get(`${m.name}\n${key}`);
        this.baseWeights.set(`${m.name}\n${key}`, w);
        t.setRowField(m.slot, e, kEndpointWeightField, ps?.pin.weight ?? w);
        if (ps?.pin.state !== undefined) t.setRowField(m.slot, e, kEndpointStateField, ps.pin.state === 'draining' ? EndpointState.Draining : EndpointState.Healthy);
        t.setRowField(m.slot, e, kEndpointEffectiveWeightField, this.effectiveWeight(m, e, now));
      }
      this.trimRows(m);
      this.updatePanic(m);
    } finally {
      t.endWrite(m.slot);
    }
    if (added.length > 0 || removed.length > 0) {
      this.log?.info({ event: 'endpoints-changed', upstream: m.name, added, removed, reason }, `upstream ${m.name}: +${added.length} -${removed.length} endpoints (${reason})`);
    }
    this.armTimer();
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (!this.tick()) this.stopTick();
    }, TICK_MS);
    this.timer.unref();
  }
}

export interface EndpointStatus extends EndpointRowInfo {
  readonly stateName: string;
}

export interface UpstreamStatus {
  readonly name: string;
  readonly slot: number;
  readonly balancer: string;
  readonly slowStartMs: number;
  readonly panicThreshold: number;
  readonly panic: boolean;
  readonly panicPicks: number;
  readonly noEndpointPicks: number;
  readonly healthy: number;
  readonly endpoints: readonly EndpointStatus[];
}
