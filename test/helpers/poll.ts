// Waiting for a condition with a deadline (never a fixed sleep), for tests that read a
// value (status JSON, a metric) until it satisfies a check.
import assert from 'node:assert/strict';

/** Polls `read` every 50 ms until `check` holds; fails with the last value seen after `ms`. */
export async function until<T>(what: string, read: () => Promise<T> | T, check: (v: T) => boolean, ms = 5000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    if (Date.now() - t0 > ms) assert.fail(`${what}: not reached in ${ms} ms; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
