// Feature-flag words in shared memory (layout: kFlagSlots, one Int32 each). The
// primary's FlagWriter stores a flag's value when the config or an override changes
// it; a worker reads it with one Atomics.load, only on a route that names a flag, so
// turning a flag on reaches every worker without a message.
import { flagInt32Offset, kFlagOn, kFlagSlots } from './layout.js';
import type { SharedState } from './shared-state.js';

export class FlagTable {
  private readonly i32: Int32Array;
  private readonly base: number;

  constructor(shm: SharedState) {
    this.i32 = shm.i32;
    this.base = flagInt32Offset(shm.layout, 0);
  }

  get slots(): number {
    return kFlagSlots;
  }

  /** 0 … kFlagOn (basis points) */
  value(slot: number): number {
    return Atomics.load(this.i32, this.base + slot);
  }

  set(slot: number, basisPoints: number): void {
    Atomics.store(this.i32, this.base + slot, basisPoints < 0 ? 0 : basisPoints > kFlagOn ? kFlagOn : Math.round(basisPoints));
  }
}
