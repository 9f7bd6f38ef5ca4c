// The cache scenario's object set: object i has a fixed size of 1–16 KiB, so the
// origin and the runner (which sizes the caches) agree without talking.
export function objectSize(i: number): number {
  return 1024 + ((Math.imul(i + 1, 2654435761) >>> 0) % (15 * 1024 + 1));
}
