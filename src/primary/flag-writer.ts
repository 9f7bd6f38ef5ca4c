// The primary's writer of feature-flag words (src/shm/flag-table.ts). Each configured
// flag gets a slot the first time its name is seen and keeps it for the life of the
// process, so workers still on an older generation read the right word during a
// reload. The configured value is written at start and reload; overrides (the `flag`
// target) write on top of it.
import { StartupCodes, StartupError } from '../errors.js';
import type { Config } from '../config/schema.js';
import { FlagTable } from '../shm/flag-table.js';
import type { SharedState } from '../shm/shared-state.js';

export interface FlagStatus {
  readonly name: string;
  readonly slot: number;
  /** 0–100 (percent of callers; 100 = on) */
  readonly configured: number;
  readonly effective: number;
  readonly stickyHeader: string | null;
}

export class FlagWriter {
  readonly table: FlagTable;
  private readonly slotByName = new Map<string, number>();
  private config: Config['flags'] = {};

  constructor(shm: SharedState) {
    this.table = new FlagTable(shm);
  }

  /** Throws TG_ERR_SHM_CAPACITY (and writes nothing) when the flags need more slots than there are. */
  applyConfig(cfg: Config): void {
    const fresh = Object.keys(cfg.flags).filter((n) => !this.slotByName.has(n));
    if (this.slotByName.size + fresh.length > this.table.slots) {
      throw new StartupError(StartupCodes.SHM_CAPACITY, `flags: ${this.slotByName.size + fresh.length} flag names since start, but shared memory holds ${this.table.slots}; restart to reclaim the slots of removed flags`);
    }
    for (const n of fresh) this.slotByName.set(n, this.slotByName.size);
    // A removed flag's word goes to 0, so an old-generation route that still names it reads "off".
    for (const [n, slot] of this.slotByName) this.table.set(slot, cfg.flags[n]?.value ?? 0);
    this.config = cfg.flags;
  }

  get slots(): ReadonlyMap<string, number> {
    return this.slotByName;
  }

  /** `basisPoints` 0–10000; the flag must be configured */
  set(name: string, basisPoints: number): void {
    const slot = this.slotByName.get(name);
    if (slot === undefined || this.config[name] === undefined) throw new Error(`unknown flag "${name}"`);
    this.table.set(slot, basisPoints);
  }

  restore(name: string): void {
    const slot = this.slotByName.get(name);
    if (slot !== undefined) this.table.set(slot, this.config[name]?.value ?? 0);
  }

  status(): FlagStatus[] {
    return Object.entries(this.config).map(([name, f]) => {
      const slot = this.slotByName.get(name)!;
      return { name, slot, configured: f.value / 100, effective: this.table.value(slot) / 100, stickyHeader: f.stickyHeader ?? null };
    });
  }
}
