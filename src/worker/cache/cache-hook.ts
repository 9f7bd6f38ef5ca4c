// The contract between the request path (exchange.ts) and the cache: the exchange
// calls these at fixed points of an upstream attempt, and knows nothing else about
// caching. Whatever upstream client carries the request only has to call them.
import type { ResponseFields } from '../response-fields.js';

export const enum HeadVerdict {
  /** send the response on to the client as usual (the hook sees the body through onBody) */
  Pass = 0,
  /** do not send it: the hook answers the client from the cache in onComplete (a 304 that revalidated, a 5xx hidden by stale-if-error) */
  Absorb = 1,
}

export interface CacheHook {
  /**
   * The upstream's final response head: its fields as received (name, value, …), and
   * what the request path already read of them (framing, Date), so nothing is read twice.
   */
  onHead(status: number, rawHeaders: readonly Buffer[], fields: Readonly<ResponseFields>): HeadVerdict;
  /** a body chunk: a view of the upstream read, overwritten by the next read (copy what is kept) */
  onBody(chunk: Buffer): void;
  /** the upstream response is complete; with Absorb the hook answers the client now */
  onComplete(): void;
  /** the upstream failed and nothing went to the client yet: true when the hook answered instead (stale-if-error) */
  onFailure(): boolean;
  /** refused before reaching the upstream; `busy`: concurrency limit, full pool, half-open breaker; else an open breaker. True when the hook answered (stale) */
  onRefused(busy: boolean): boolean;
  /** the exchange is over, however it ended, and so is its upstream attempt: let go of any reservation */
  onFinish(): void;
}
