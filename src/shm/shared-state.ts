// Typed views over the one SharedArrayBuffer. Created by the primary, passed to each
// worker in workerData; both sides wrap the same buffer with these classes.
import {
  computeLayout,
  kHeaderGenerationField,
  kHeaderMagicField,
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

  private constructor(buffer: SharedArrayBuffer, layout: Layout) {
    this.buffer = buffer;
    this.layout = layout;
    this.f64 = new Float64Array(buffer);
    this.i64 = new BigInt64Array(buffer);
  }

  static create(limits: LayoutLimits): SharedState {
    const layout = computeLayout(limits);
    const state = new SharedState(new SharedArrayBuffer(layout.byteLength), layout);
    state.f64[kHeaderMagicField] = kMagic;
    state.f64[kHeaderVersionField] = kLayoutVersion;
    state.f64[kHeaderWorkerSlotsField] = limits.maxWorkers;
    return state;
  }

  /** Wraps a buffer received from the primary; refuses one written by another layout version. */
  static attach(buffer: SharedArrayBuffer, limits: LayoutLimits): SharedState {
    const state = new SharedState(buffer, computeLayout(limits));
    if (state.f64[kHeaderMagicField] !== kMagic || state.f64[kHeaderVersionField] !== kLayoutVersion) {
      throw new Error(`shared memory layout mismatch: expected version ${kLayoutVersion}`);
    }
    return state;
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
