// Run-time tables of access policies (an ip-access list changed through the admin API,
// an api-key file's table, a JWT key set), pushed by the primary to every worker as a
// `policy-data` message and kept here by key. They change rarely and are read on every
// request, so a policy holds its slot and reads `slot.value` (one property load); a
// changed `version` tells it to rebuild whatever it derived from the value. The slots
// outlive config generations: a reload does not wait for, or lose, a table.
//
// Keys: `ip-access:<policy name>`, `api-key:<file>`, `jwt:<file or URL>`.

export interface DataSlot<T> {
  value: T | undefined;
  /** bumped on every change */
  version: number;
}

const slots = new Map<string, DataSlot<unknown>>();

export function dataSlot<T>(key: string): DataSlot<T> {
  let s = slots.get(key);
  if (s === undefined) slots.set(key, (s = { value: undefined, version: 0 }));
  return s as DataSlot<T>;
}

/** `undefined` clears the value (the policy falls back to its configured one, or refuses). */
export function setPolicyData(key: string, value: unknown): void {
  const s = dataSlot(key);
  s.value = value;
  s.version++;
}
