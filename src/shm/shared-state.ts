// Typed views over the one SharedArrayBuffer. Created by the primary, passed to each
// worker in workerData; both sides wrap the same buffer with these classes.
import {
  computeLayout,
  kHeaderBanEpochField,
  kHeaderBanSlotsField,
  kHeaderGenerationField,
  kHeaderLimiterPoliciesField,
  kHeaderLimiterSlotsField,
  kHeaderMagicField,
  kHeaderMaxEndpointsField,
  kHeaderMaxUpstreamsField,
  kHeaderSharedDictBytesField,
  kHeaderVersionField,
  kHeaderWorkerSlotsField,
  kLayoutVersion,
  kMagic,
  kWorkerFieldCount,
  workerSliceOffset,
  type Layout,
  type LayoutLimits,
} from './layout.js';

export class SharedState {
  readonly layout: Layout;
  readonly buffer: SharedArrayBuffer;
  readonly f64: Float64Array;
  readonly i64: BigInt64Array;
  /** 32-bit view for the endpoint tables and counters (Atomics without BigInt allocation) */
  readonly i32: Int32Array;

  private constructor(buffer: SharedArrayBuffer, layout: Layout) {
    this.buffer = buffer;
    this.layout = layout;
    this.f64 = new Float64Array(buffer);
    this.i64 = new BigInt64Array(buffer);
    this.i32 = new Int32Array(buffer);
  }

  static create(limits: LayoutLimits): SharedState {
    const layout = computeLayout(limits);
    const state = new SharedState(new SharedArrayBuffer(layout.byteLength), layout);
    const l = layout.limits;
    state.f64[kHeaderMagicField] = kMagic;
    state.f64[kHeaderVersionField] = kLayoutVersion;
    state.f64[kHeaderWorkerSlotsField] = l.maxWorkers;
    state.f64[kHeaderMaxUpstreamsField] = l.maxUpstreams;
    state.f64[kHeaderMaxEndpointsField] = l.maxEndpoints;
    state.f64[kHeaderLimiterSlotsField] = l.limiterSlots;
    state.f64[kHeaderLimiterPoliciesField] = l.limiterPolicies;
    state.f64[kHeaderBanSlotsField] = l.banSlots;
    state.f64[kHeaderBanEpochField] = Date.now();
    state.f64[kHeaderSharedDictBytesField] = l.sharedDictBytes;
    return state;
  }

  /**
   * Wraps a buffer received from the primary; refuses one written by another layout
   * version. Capacities come from the buffer's header (the primary decided them), so
   * only `maxWorkers` of `limits` is checked.
   */
  static attach(buffer: SharedArrayBuffer, limits: LayoutLimits): SharedState {
    const f64 = new Float64Array(buffer, 0, 8);
    if (f64[kHeaderMagicField] !== kMagic || f64[kHeaderVersionField] !== kLayoutVersion) {
      throw new Error(`shared memory layout mismatch: expected version ${kLayoutVersion}`);
    }
    const h = new Float64Array(buffer, 0, 16);
    const layout = computeLayout({
      maxWorkers: h[kHeaderWorkerSlotsField]!,
      maxUpstreams: h[kHeaderMaxUpstreamsField]!,
      maxEndpoints: h[kHeaderMaxEndpointsField]!,
      limiterSlots: h[kHeaderLimiterSlotsField]!,
      limiterPolicies: h[kHeaderLimiterPoliciesField]!,
      banSlots: h[kHeaderBanSlotsField]!,
      sharedDictBytes: h[kHeaderSharedDictBytesField]!,
    });
    if (layout.limits.maxWorkers !== limits.maxWorkers || layout.byteLength !== buffer.byteLength) {
      throw new Error(`shared memory layout mismatch: buffer of ${buffer.byteLength} bytes for ${layout.limits.maxWorkers} workers`);
    }
    return new SharedState(buffer, layout);
  }

  get generation(): number {
    return Number(Atomics.load(this.i64, kHeaderGenerationField));
  }

  setGeneration(gen: number): void {
    Atomics.store(this.i64, kHeaderGenerationField, BigInt(gen));
  }

  /** A worker's own counter slice: index with the kWorker*Field constants. */
  workerCounters(slot: number): Float64Array {
    if (slot < 0 || slot >= this.layout.limits.maxWorkers) throw new RangeError(`worker slot ${slot} out of range`);
    const off = workerSliceOffset(this.layout, slot);
    return this.f64.subarray(off, off + kWorkerFieldCount);
  }
}
