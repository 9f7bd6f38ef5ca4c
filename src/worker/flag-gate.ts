// Feature flags on the hot path. A route that names a flag (match.flag or
// maintenance.flag) asks the gate per request: one Atomics.load of the flag's word,
// and for a percentage a hash of the sticky key (a header's value, or the client
// address), so a caller stays on the same side of the flag for as long as its share
// holds. A route without a flag never reaches this file.
import { hash32 } from '../balancers/hash.js';
import { kFlagOn } from '../shm/layout.js';
import type { FlagTable } from '../shm/flag-table.js';
import type { WorkerFlagRef } from '../messages.js';
import type { RequestHead } from './request-head.js';

export class FlagGate {
  constructor(
    private readonly table: FlagTable,
    /** the client address for policies (trusted proxies applied): peer and X-Forwarded-For in */
    private readonly clientIp: (peer: string, forwardedFor: string | null) => string,
  ) {}

  on(ref: WorkerFlagRef, head: RequestHead, peer: string): boolean {
    const v = this.table.value(ref.slot);
    if (v <= 0) return false;
    if (v >= kFlagOn) return true;
    let key: string | null = null;
    if (ref.stickyHeader !== null) {
      const h = head.headers;
      for (let i = 2; i < h.length; i += 2) {
        if (h[i] === ref.stickyHeader) {
          key = h[i + 1]!;
          break;
        }
      }
    }
    if (key === null) key = this.clientIp(peer, head.forwardedFor);
    // Seeded by slot: two percentage flags pick independent callers.
    return hash32(key, 0x9e3779b9 ^ ref.slot) % kFlagOn < v;
  }
}
