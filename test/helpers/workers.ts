// Per-worker request counts from the admin API's /status (each worker's counter slice
// in shared memory), so a test that claims "across workers" can show that every worker
// served some of its traffic.
//
// SO_REUSEPORT spreads connections by a hash of the 4-tuple, so with c connections the
// chance that two workers get them all on one side is 2 × 2^-c: tests that need both
// workers open at least 12 connections (≈ 1 in 2,000) or more.
import assert from 'node:assert/strict';
import { request } from 'undici';

/** requests counted by each worker slot so far, in slot order; `token` for an admin API that needs one */
export async function workerRequests(adminUrl: string, token?: string): Promise<number[]> {
  const r = await request(`${adminUrl}/status`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.statusCode, 200);
  const s = (await r.body.json()) as { workers: { slot: number; requests: number }[] };
  return s.workers.map((w) => w.requests);
}

/**
 * Asserts that there are `expected` workers and each one counted more requests than in
 * `before` (a previous workerRequests result; omit to compare with zero).
 */
export async function assertEveryWorkerServed(adminUrl: string, expected: number, before?: readonly number[], token?: string): Promise<number[]> {
  const now = await workerRequests(adminUrl, token);
  assert.equal(now.length, expected, `expected ${expected} workers in /status, got ${now.length}`);
  const served = now.map((n, i) => n - (before?.[i] ?? 0));
  assert.ok(
    served.every((n) => n > 0),
    `every worker must serve traffic; requests per worker: ${served.join(', ')}`,
  );
  return served;
}
