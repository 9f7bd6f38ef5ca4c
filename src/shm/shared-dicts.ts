// The configured shared dictionaries by name, over one shared buffer. The primary
// formats them once at start (`format`); workers and the admin API attach
// (`attach`). Placement comes from the config (shared-dict-layout.ts placeDicts,
// offsets within the region), so both sides agree without a directory in shared memory.
import { SharedDict } from './shared-dict.js';
import { placeDicts, type DictPlacement } from './shared-dict-layout.js';
import type { SharedState } from './shared-state.js';

export type DictSpec = { readonly name: string; readonly bytes: number };

/** Throws TG_ERR_SHM_CAPACITY when these placements do not fit the region reserved at start. */
export function checkDictCapacity(shm: SharedState, placements: readonly DictPlacement[]): void {
  const last = placements[placements.length - 1];
  const end = last === undefined ? 0 : last.byteOffset + last.bytes;
  if (end > shm.layout.limits.sharedDictBytes) {
    throw Object.assign(new Error(`shared dictionaries need ${end} bytes; ${shm.layout.limits.sharedDictBytes} were reserved at start (a larger \`shared\` takes effect on restart)`), { code: 'TG_ERR_SHM_CAPACITY' });
  }
}

export class SharedDicts {
  private readonly byName: ReadonlyMap<string, SharedDict>;
  readonly placements: readonly DictPlacement[];

  private constructor(dicts: readonly SharedDict[], placements: readonly DictPlacement[]) {
    this.byName = new Map(dicts.map((d) => [d.name, d]));
    this.placements = placements;
  }

  /** No dictionaries (a config without `shared`, or a policy tested on its own). */
  static empty(): SharedDicts {
    return new SharedDicts([], []);
  }

  /** Empty dictionaries for `specs` (primary, once at start, before workers attach). */
  static format(shm: SharedState, specs: readonly DictSpec[]): SharedDicts {
    const placements = placeDicts(0, specs);
    checkDictCapacity(shm, placements);
    const region = shm.layout.sharedDictOffset * 8;
    return new SharedDicts(placements.map((p) => SharedDict.format(shm.buffer, p.name, region + p.byteOffset, p.bytes)), placements);
  }

  /** Views over dictionaries the primary formatted; refuses a placement that finds none. */
  static attach(shm: SharedState, placements: readonly DictPlacement[]): SharedDicts {
    checkDictCapacity(shm, placements);
    const region = shm.layout.sharedDictOffset * 8;
    return new SharedDicts(
      placements.map((p) => {
        const d = new SharedDict(shm.buffer, p.name, region + p.byteOffset, p.bytes);
        if (!d.formatted) throw new Error(`shared dict ${p.name}: no dictionary of ${p.bytes} bytes at region offset ${p.byteOffset}`);
        return d;
      }),
      placements,
    );
  }

  get(name: string): SharedDict | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }
}
