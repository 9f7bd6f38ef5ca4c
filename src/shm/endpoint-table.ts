// Typed view of the endpoint tables (layout in layout.ts; docs/architecture.md §2).
//
// Who writes what:
// * the primary alone writes the [seq] fields (address, state, weights, panic flag)
//   between `beginWrite` and `endWrite`, which make the upstream's seqlock word odd
//   and then even again;
// * workers update the [rmw] counters (in-flight, EWMA, failures) with Atomics;
// * a worker reads the [seq] fields through an EndpointSnapshot: one Atomics.load of
//   the seqlock word per request, and a full copy only when that word moved.
//
// Why workers write the EWMA themselves (a CAS on an Int32 of microseconds) rather
// than the primary from samples: peak-EWMA must react to a slow endpoint within a few
// requests, and a sample that waits for the primary's next tick (or a postMessage)
// arrives after the damage is done. A CAS that loses a race is retried a few times
// and then dropped: a lost latency sample is harmless, a blocked request is not.
import {
  EndpointState,
  endpointInt32Offset,
  kEndpointAddressField,
  kEndpointAddressInt32Offset,
  kEndpointAddressLengthField,
  kEndpointAddressMaxBytes,
  kEndpointConsecutive5xxField,
  kEndpointConsecutiveConnectFailuresField,
  kEndpointEffectiveWeightField,
  kEndpointEjectionsField,
  kEndpointEwmaField,
  kEndpointFailuresField,
  kEndpointInFlightField,
  kEndpointRequestsField,
  kEndpointStateField,
  kEndpointWeightField,
  kUpstreamHealthyField,
  kUpstreamInUseField,
  kUpstreamNameInt32Offset,
  kUpstreamNameLengthField,
  kUpstreamNameMaxBytes,
  kUpstreamNoEndpointField,
  kUpstreamPanicField,
  kUpstreamPanicPicksField,
  kUpstreamRowsField,
  kUpstreamSeqField,
  kLedgerHeaderInt32,
  kLedgerOverloadedInt32,
  kLedgerPendingInt32,
  kLedgerPipelinedInt32,
  kLedgerPipelineBatchedInt32,
  kLedgerPipelineFallbacksInt32,
  kLedgerPipelineAnomalyInt32,
  kLedgerPipelineOffUntilInt32,
  ledgerInt32Offset,
  ledgerUpstreamInt32,
  upstreamInt32Offset,
} from './layout.js';
import type { SharedState } from './shared-state.js';

/** Weight of 1/(2^n) of the new sample in the EWMA when latency falls (peak-EWMA jumps up at once). */
const EWMA_DECAY_SHIFT = 3; // 1/8, about Finagle's default over ~10 samples
const CAS_TRIES = 4;
/** Latency sample recorded for a request that failed at the gateway level (no response, 502/503/504). */
const FAILURE_PENALTY_US = 1_000_000;
const SNAPSHOT_TRIES = 64;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** One worker's ledger header for one upstream, as the primary reads it. */
export interface WorkerLedger {
  /** requests waiting for one of the upstream's connections */
  pending: number;
  /** pool.maxPending refusals */
  overloaded: number;
  /** requests written behind another on one connection (pool.pipelining) */
  pipelined: number;
  /** request heads that shared one write with another */
  pipelineBatched: number;
  /** times a pool stopped pipelining after an anomaly */
  pipelineFallbacks: number;
  /** the last anomaly's PipelineAnomaly code (0: none) */
  pipelineAnomaly: number;
  /** Unix seconds until which the last pool that stopped pipelining sends one at a time (0: never stopped) */
  pipelineOffUntilS: number;
}

export class EndpointTable {
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  readonly maxUpstreams: number;
  readonly maxEndpoints: number;

  // Offsets in Int32 units, cached as plain numbers: these run several times per request.
  private readonly areaI32: number;
  private readonly strideI32: number;
  private readonly firstRowI32: number;
  private readonly rowI32: number;
  /** Int32 index of this worker's ledger (upstream 0's header), -1 on the primary */
  private readonly ledgerI32: number;
  private readonly ledgerStrideI32: number;

  /** `workerSlot`: the worker this view counts for (its ledger); -1 (primary, tests) keeps none. */
  constructor(
    readonly shm: SharedState,
    readonly workerSlot = -1,
  ) {
    this.i32 = shm.i32;
    this.u8 = new Uint8Array(shm.buffer);
    this.maxUpstreams = shm.layout.limits.maxUpstreams;
    this.maxEndpoints = shm.layout.limits.maxEndpoints;
    this.areaI32 = upstreamInt32Offset(shm.layout, 0);
    this.strideI32 = upstreamInt32Offset(shm.layout, 1) - this.areaI32;
    this.firstRowI32 = endpointInt32Offset(shm.layout, 0, 0) - this.areaI32;
    this.rowI32 = endpointInt32Offset(shm.layout, 0, 1) - endpointInt32Offset(shm.layout, 0, 0);
    this.ledgerStrideI32 = ledgerUpstreamInt32(this.maxEndpoints);
    this.ledgerI32 = workerSlot >= 0 ? ledgerInt32Offset(shm.layout, workerSlot, 0) : -1;
  }

  upstreamBase(u: number): number {
    return this.areaI32 + u * this.strideI32;
  }

  rowBase(u: number, e: number): number {
    return this.areaI32 + u * this.strideI32 + this.firstRowI32 + e * this.rowI32;
  }

  // ---- primary side (single writer) ------------------------------------------------

  /** Makes the seqlock odd: readers that start now retry or keep their last snapshot. */
  beginWrite(u: number): void {
    const i = this.upstreamBase(u) + kUpstreamSeqField;
    const v = Atomics.add(this.i32, i, 1);
    if ((v & 1) !== 0) throw new Error(`endpoint table ${u}: nested write (seqlock already odd)`);
  }

  endWrite(u: number): void {
    Atomics.add(this.i32, this.upstreamBase(u) + kUpstreamSeqField, 1);
  }

  /** Stores an upstream field; call between beginWrite and endWrite. */
  setUpstreamField(u: number, field: number, value: number): void {
    Atomics.store(this.i32, this.upstreamBase(u) + field, value);
  }

  setRowField(u: number, e: number, field: number, value: number): void {
    Atomics.store(this.i32, this.rowBase(u, e) + field, value);
  }

  writeName(u: number, name: string): void {
    const bytes = utf8.encode(name);
    if (bytes.length > kUpstreamNameMaxBytes) throw new RangeError(`upstream name longer than ${kUpstreamNameMaxBytes} bytes: ${name}`);
    const base = this.upstreamBase(u);
    this.u8.set(bytes, (base + kUpstreamNameInt32Offset) * 4);
    Atomics.store(this.i32, base + kUpstreamNameLengthField, bytes.length);
  }

  writeAddress(u: number, e: number, address: string): void {
    const bytes = utf8.encode(address);
    if (bytes.length > kEndpointAddressMaxBytes) throw new RangeError(`endpoint address longer than ${kEndpointAddressMaxBytes} bytes: ${address}`);
    const base = this.rowBase(u, e);
    this.u8.set(bytes, (base + kEndpointAddressInt32Offset) * 4);
    Atomics.store(this.i32, base + kEndpointAddressLengthField, bytes.length);
  }

  // ---- either side -------------------------------------------------------------------

  upstreamField(u: number, field: number): number {
    return Atomics.load(this.i32, this.upstreamBase(u) + field);
  }

  rowField(u: number, e: number, field: number): number {
    return Atomics.load(this.i32, this.rowBase(u, e) + field);
  }

  /** Decodes a row's "host:port" (the caller holds a consistent seqlock read, or is the writer). */
  readAddress(u: number, e: number): string {
    const base = this.rowBase(u, e);
    const len = Atomics.load(this.i32, base + kEndpointAddressLengthField);
    const start = (base + kEndpointAddressInt32Offset) * 4;
    // slice(): TextDecoder refuses views of shared memory.
    return utf8Decoder.decode(this.u8.slice(start, start + Math.min(len, kEndpointAddressMaxBytes)));
  }

  readName(u: number): string {
    const base = this.upstreamBase(u);
    const len = Atomics.load(this.i32, base + kUpstreamNameLengthField);
    const start = (base + kUpstreamNameInt32Offset) * 4;
    return utf8Decoder.decode(this.u8.slice(start, start + Math.min(len, kUpstreamNameMaxBytes)));
  }

  /** The slot the primary gave upstream `name`, or -1. Not for the hot path (decodes names). */
  findUpstream(name: string): number {
    for (let u = 0; u < this.maxUpstreams; u++) {
      for (let tries = 0; tries < SNAPSHOT_TRIES; tries++) {
        const v1 = Atomics.load(this.i32, this.upstreamBase(u) + kUpstreamSeqField);
        if ((v1 & 1) !== 0) continue;
        const hit = this.upstreamField(u, kUpstreamInUseField) === 1 && this.readName(u) === name;
        if (Atomics.load(this.i32, this.upstreamBase(u) + kUpstreamSeqField) !== v1) continue;
        if (hit) return u;
        break;
      }
    }
    return -1;
  }

  // ---- worker side: counters ---------------------------------------------------------

  addInFlight(u: number, e: number, delta: number): void {
    Atomics.add(this.i32, this.rowBase(u, e) + kEndpointInFlightField, delta);
    // This worker's share, a plain add on its own cache lines (one writer).
    if (this.ledgerI32 >= 0) this.i32[this.ledgerI32 + u * this.ledgerStrideI32 + kLedgerHeaderInt32 + e]! += delta;
  }

  /** Requests this worker holds waiting for one of upstream `u`'s connections (ledger only). */
  addPending(u: number, delta: number): void {
    if (this.ledgerI32 >= 0) this.i32[this.ledgerI32 + u * this.ledgerStrideI32 + kLedgerPendingInt32]! += delta;
  }

  countOverloaded(u: number): void {
    if (this.ledgerI32 >= 0) this.i32[this.ledgerI32 + u * this.ledgerStrideI32 + kLedgerOverloadedInt32]! += 1;
  }

  /** A request went out behind another on one of upstream `u`'s connections (pool.pipelining). */
  countPipelined(u: number): void {
    if (this.ledgerI32 >= 0) this.i32[this.ledgerI32 + u * this.ledgerStrideI32 + kLedgerPipelinedInt32]! += 1;
  }

  /** `heads` request heads went out in one write. */
  countPipelineBatched(u: number, heads: number): void {
    if (this.ledgerI32 >= 0) this.i32[this.ledgerI32 + u * this.ledgerStrideI32 + kLedgerPipelineBatchedInt32]! += heads;
  }

  /** A pool of upstream `u` stopped pipelining after anomaly `kind` (a PipelineAnomaly code) until Unix second `untilS`. */
  countPipelineFallback(u: number, kind: number, untilS: number): void {
    if (this.ledgerI32 < 0) return;
    const b = this.ledgerI32 + u * this.ledgerStrideI32;
    this.i32[b + kLedgerPipelineAnomalyInt32] = kind;
    this.i32[b + kLedgerPipelineOffUntilInt32] = untilS;
    this.i32[b + kLedgerPipelineFallbacksInt32]! += 1;
  }

  // ---- primary side: ledgers -----------------------------------------------------------

  /** Worker `w`'s pending count, overload refusals and pipelining counters for upstream `u`. */
  ledger(w: number, u: number): WorkerLedger {
    const b = ledgerInt32Offset(this.shm.layout, w, u);
    const i32 = this.i32;
    return {
      pending: Atomics.load(i32, b + kLedgerPendingInt32),
      overloaded: Atomics.load(i32, b + kLedgerOverloadedInt32) >>> 0,
      pipelined: Atomics.load(i32, b + kLedgerPipelinedInt32) >>> 0,
      pipelineBatched: Atomics.load(i32, b + kLedgerPipelineBatchedInt32) >>> 0,
      pipelineFallbacks: Atomics.load(i32, b + kLedgerPipelineFallbacksInt32) >>> 0,
      pipelineAnomaly: Atomics.load(i32, b + kLedgerPipelineAnomalyInt32),
      pipelineOffUntilS: Atomics.load(i32, b + kLedgerPipelineOffUntilInt32),
    };
  }

  /**
   * Worker `w`'s thread has ended: subtract what it still held from the shared
   * in-flight counts and clear its shares and pending gauges (its overload counter
   * stays: it is a total). Only safe once that thread can no longer write. Returns
   * the requests released and the rows they were on, per upstream slot.
   */
  releaseWorker(w: number): { upstream: number; row: number; count: number }[] {
    const out: { upstream: number; row: number; count: number }[] = [];
    const i32 = this.i32;
    for (let u = 0; u < this.maxUpstreams; u++) {
      const b = ledgerInt32Offset(this.shm.layout, w, u);
      Atomics.store(i32, b + kLedgerPendingInt32, 0);
      for (let e = 0; e < this.maxEndpoints; e++) {
        const v = Atomics.load(i32, b + kLedgerHeaderInt32 + e);
        if (v === 0) continue;
        Atomics.sub(i32, this.rowBase(u, e) + kEndpointInFlightField, v);
        Atomics.store(i32, b + kLedgerHeaderInt32 + e, 0);
        out.push({ upstream: u, row: e, count: v });
      }
    }
    return out;
  }

  /**
   * A request to row `e` ended: `status` 0 when no response came (connect error,
   * reset, timeout), else the response status. Feeds passive health and the EWMA.
   */
  recordResult(u: number, e: number, status: number, latencyUs: number): void {
    const base = this.rowBase(u, e);
    const i32 = this.i32;
    if (status === 0) {
      Atomics.add(i32, base + kEndpointConsecutiveConnectFailuresField, 1);
      Atomics.add(i32, base + kEndpointFailuresField, 1);
    } else {
      // Only store when needed: a store on every success would bounce the cache line.
      if (Atomics.load(i32, base + kEndpointConsecutiveConnectFailuresField) !== 0) Atomics.store(i32, base + kEndpointConsecutiveConnectFailuresField, 0);
      if (status >= 500) {
        Atomics.add(i32, base + kEndpointConsecutive5xxField, 1);
        Atomics.add(i32, base + kEndpointFailuresField, 1);
      } else if (Atomics.load(i32, base + kEndpointConsecutive5xxField) !== 0) {
        Atomics.store(i32, base + kEndpointConsecutive5xxField, 0);
      }
    }
    // A fast failure must not look like a fast endpoint (the "black hole" that
    // least-latency balancers fall into): no response, or a gateway-class 5xx, counts
    // as a sample of at least FAILURE_PENALTY_US.
    const failed = status === 0 || status === 502 || status === 503 || status === 504;
    const raw = failed && latencyUs < FAILURE_PENALTY_US ? FAILURE_PENALTY_US : latencyUs;
    const sample = raw > 0x7fff_ffff ? 0x7fff_ffff : raw | 0;
    const i = base + kEndpointEwmaField;
    for (let t = 0; t < CAS_TRIES; t++) {
      const old = Atomics.load(i32, i);
      // Peak-EWMA (Finagle): rise to a slow sample at once, decay slowly after.
      const next = old === 0 || sample >= old ? sample : old + ((sample - old) >> EWMA_DECAY_SHIFT);
      if (next === old || Atomics.compareExchange(i32, i, old, next) === old) return;
    }
  }

  /**
   * Time decay, run by the primary about once a second: Finagle's peak-EWMA decays
   * with time, so an endpoint that was slow once (and then lost every two-choice
   * comparison, so got no new samples) is tried again. Lost CAS races are skipped:
   * a worker just wrote a fresh sample, which is better than a decayed one.
   */
  decayEwma(u: number, rows: number, factor: number): void {
    const i32 = this.i32;
    for (let e = 0; e < rows; e++) {
      const i = this.rowBase(u, e) + kEndpointEwmaField;
      const old = Atomics.load(i32, i);
      if (old <= 1) continue;
      Atomics.compareExchange(i32, i, old, Math.max(1, Math.floor(old * factor)));
    }
  }

  countRequest(u: number, e: number): void {
    Atomics.add(this.i32, this.rowBase(u, e) + kEndpointRequestsField, 1);
  }

  countPanicPick(u: number): void {
    Atomics.add(this.i32, this.upstreamBase(u) + kUpstreamPanicPicksField, 1);
  }

  countNoEndpoint(u: number): void {
    Atomics.add(this.i32, this.upstreamBase(u) + kUpstreamNoEndpointField, 1);
  }
}

/**
 * One worker's consistent copy of an upstream's [seq] fields, refreshed only when the
 * seqlock word moved. Balancers read `candidates` / `weights`; they rebuild their own
 * derived state (SWRR weights, Maglev table) when `version` changes.
 */
export class EndpointSnapshot {
  /** seqlock value this copy was taken at (even); -1 before the first copy */
  version = -1;
  /** rows in use (row indices are < rows) */
  rows = 0;
  panic = false;
  healthy = 0;
  /** rows a balancer may pick now, `count` of them */
  readonly candidates: Int32Array;
  count = 0;
  /** per row: the weight to balance by (0 = not a candidate) */
  readonly weights: Int32Array;
  /** per row: address id (0 = free) and state, as copied */
  readonly addressIds: Int32Array;
  readonly states: Int32Array;
  /** times a copy was attempted while the primary was writing (torn read avoided) */
  retries = 0;

  private readonly seqIndex: number;
  private readonly i32: Int32Array;
  /** Int32 index of each row, so per-request counter reads are one add and one load */
  private readonly rowBases: Int32Array;
  // Scratch copies, so a failed attempt never touches the published arrays.
  private readonly tmpStates: Int32Array;
  private readonly tmpWeights: Int32Array;
  private readonly tmpConfigured: Int32Array;
  private readonly tmpIds: Int32Array;

  constructor(
    readonly table: EndpointTable,
    readonly upstream: number,
  ) {
    const n = table.maxEndpoints;
    this.candidates = new Int32Array(n);
    this.weights = new Int32Array(n);
    this.addressIds = new Int32Array(n);
    this.states = new Int32Array(n);
    this.tmpStates = new Int32Array(n);
    this.tmpWeights = new Int32Array(n);
    this.tmpConfigured = new Int32Array(n);
    this.tmpIds = new Int32Array(n);
    this.seqIndex = table.upstreamBase(upstream) + kUpstreamSeqField;
    this.i32 = table.i32;
    this.rowBases = new Int32Array(n);
    for (let e = 0; e < n; e++) this.rowBases[e] = table.rowBase(upstream, e);
    this.sync();
  }

  /** The per-request check: one atomic load; true when a new copy was taken. */
  sync(): boolean {
    if (Atomics.load(this.i32, this.seqIndex) === this.version) return false;
    return this.copy();
  }

  private copy(): boolean {
    const i32 = this.table.i32;
    const u = this.upstream;
    const t = this.table;
    for (let attempt = 0; attempt < SNAPSHOT_TRIES; attempt++) {
      const v1 = Atomics.load(i32, this.seqIndex);
      if ((v1 & 1) !== 0) {
        this.retries++;
        continue;
      }
      const ub = t.upstreamBase(u);
      let rows = Atomics.load(i32, ub + kUpstreamRowsField);
      if (rows > t.maxEndpoints || rows < 0) rows = 0; // only possible mid-write; the version check rejects it
      const panic = Atomics.load(i32, ub + kUpstreamPanicField);
      const healthy = Atomics.load(i32, ub + kUpstreamHealthyField);
      for (let e = 0; e < rows; e++) {
        const rb = this.rowBases[e]!;
        this.tmpIds[e] = Atomics.load(i32, rb + kEndpointAddressField);
        this.tmpStates[e] = Atomics.load(i32, rb + kEndpointStateField);
        this.tmpWeights[e] = Atomics.load(i32, rb + kEndpointEffectiveWeightField);
        this.tmpConfigured[e] = Atomics.load(i32, rb + kEndpointWeightField);
      }
      if (Atomics.load(i32, this.seqIndex) !== v1) {
        this.retries++;
        continue;
      }
      // Consistent: publish.
      this.rows = rows;
      this.panic = panic === 1;
      this.healthy = healthy;
      let count = 0;
      for (let e = 0; e < rows; e++) {
        const s = this.tmpStates[e]!;
        this.states[e] = s;
        this.addressIds[e] = this.tmpIds[e]!;
        let w = 0;
        if (s === EndpointState.Healthy) w = this.tmpWeights[e]!;
        // Panic mode (Envoy): too few healthy endpoints, so spread over every endpoint
        // that is not leaving, at its configured weight, rather than overload the few.
        if (this.panic && (s === EndpointState.Healthy || s === EndpointState.Ejected)) w = this.tmpConfigured[e]! || 1;
        this.weights[e] = w;
        if (w > 0) this.candidates[count++] = e;
      }
      this.count = count;
      this.version = v1;
      return true;
    }
    // The primary is mid-write for longer than we spin: keep the last consistent copy
    // (never block a request on the control plane).
    return false;
  }

  inFlight(e: number): number {
    return Atomics.load(this.i32, this.rowBases[e]! + kEndpointInFlightField);
  }

  ewmaUs(e: number): number {
    return Atomics.load(this.i32, this.rowBases[e]! + kEndpointEwmaField);
  }
}

/** Plain-object view of one upstream for /status and tests. */
export interface EndpointRowInfo {
  readonly row: number;
  readonly address: string;
  readonly addressId: number;
  readonly state: number;
  readonly weight: number;
  readonly effectiveWeight: number;
  readonly inFlight: number;
  readonly ewmaUs: number;
  readonly consecutive5xx: number;
  readonly consecutiveConnectFailures: number;
  readonly failures: number;
  readonly ejections: number;
  readonly requests: number;
}

export function readRowInfo(t: EndpointTable, u: number, e: number): EndpointRowInfo {
  return {
    row: e,
    address: t.readAddress(u, e),
    addressId: t.rowField(u, e, kEndpointAddressField),
    state: t.rowField(u, e, kEndpointStateField),
    weight: t.rowField(u, e, kEndpointWeightField),
    effectiveWeight: t.rowField(u, e, kEndpointEffectiveWeightField),
    inFlight: t.rowField(u, e, kEndpointInFlightField),
    ewmaUs: t.rowField(u, e, kEndpointEwmaField),
    consecutive5xx: t.rowField(u, e, kEndpointConsecutive5xxField),
    consecutiveConnectFailures: t.rowField(u, e, kEndpointConsecutiveConnectFailuresField),
    failures: t.rowField(u, e, kEndpointFailuresField),
    ejections: t.rowField(u, e, kEndpointEjectionsField),
    requests: t.rowField(u, e, kEndpointRequestsField) >>> 0,
  };
}
