// `shared: { <name>: { size } }`: named key-value stores in shared memory with the
// semantics of OpenResty's ngx.shared.DICT (src/shm/shared-dict.ts), for plugins and
// the admin API. Sizes are fixed at start like the other shared tables.
import { z } from 'zod';
import { sizeBytes } from '../units/zod-units.js';
import { kDictMinBytes } from '../shm/shared-dict-layout.js';

const kMaxDictBytes = 1024 * 1024 * 1024;

export const sharedDictsSchema = z
  .record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected a dictionary name of letters, digits and "_" (a Lua identifier)'),
    z.strictObject({
      /** storage for keys and values, in 64-byte blocks (every item takes at least one) */
      size: sizeBytes.pipe(z.number().int().min(kDictMinBytes, `must be at least ${kDictMinBytes} bytes (8kb)`).max(kMaxDictBytes, 'must be at most 1gb')),
    }),
  )
  .default({});

/** The dictionaries in configured order, as the shared-memory layout places them. */
export function sharedDictSpecs(shared: z.output<typeof sharedDictsSchema>): { name: string; bytes: number }[] {
  return Object.entries(shared).map(([name, d]) => ({ name, bytes: d.size }));
}
