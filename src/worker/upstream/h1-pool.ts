// The keep-alive connections of one worker to one upstream endpoint (nginx's
// `keepalive` connections, per worker process): at most `connections` at once, the
// idle ones reused most-recently-used first (so the rest age out at the keep-alive
// limit instead of all staying warm and stale), and a FIFO of requests waiting for one.
// The bound on that FIFO is the caller's (UpstreamSet.full, pool.maxPending).
//
// One timer per pool, running only while it has connections, checks every
// connection's timeouts against a coarse clock; requests themselves set no timers.
//
// With `pipelining` > 1 a bodiless GET, HEAD or OPTIONS goes, in this order of
// preference: behind the request a connection is about to write this turn (so their
// heads share one write); to an idle connection; to a new connection while fewer
// than `connections` are open; behind the requests of the connection with the fewest
// outstanding that has room; else to the queue. Any other request waits for a
// connection with nothing outstanding, as with pipelining 1. An anomaly on any
// connection (h1-connection.ts lists them) stops pipelining in the whole pool for
// PIPELINE_FALLBACK_MS, counted once per stop.
import { H1Connection, pipelinable, type ConnectionOwner } from './h1-connection.js';
import { UpstreamError, UpstreamErrorCode, type RequestBody, type UpstreamHandler } from './upstream-handler.js';

import { PIPELINE_FALLBACK_MS } from '../../shm/layout.js';

export { PIPELINE_FALLBACK_MS };

/** Where a pool reports its pipelining (the worker's shared-memory ledger). */
export interface PipelineCounters {
  /** a request was written behind another on one connection */
  pipelined(): void;
  /** `heads` request heads (more than one) went out in one write */
  batched(heads: number): void;
  /** the pool stopped pipelining for PIPELINE_FALLBACK_MS; `anomaly`: a PipelineAnomaly code */
  fallback(anomaly: number): void;
}

export interface H1PoolOptions {
  readonly connections: number;
  /** ms an idle connection is kept (less when the upstream's Keep-Alive says so) */
  readonly keepAliveTimeout: number;
  readonly connectTimeout: number;
  /** ms from sending the request to the response head */
  readonly headersTimeout: number;
  /** longest ms between two reads of the response body */
  readonly bodyTimeout: number;
  /** requests one connection may have outstanding (bodiless GET/HEAD/OPTIONS only); default 1 */
  readonly pipelining?: number;
  readonly counters?: PipelineCounters;
}

class Queued {
  cancelled = false;
  constructor(
    readonly pool: H1Pool,
    readonly h: UpstreamHandler,
    readonly method: string,
    readonly path: string,
    readonly headers: readonly string[],
    readonly body: RequestBody,
    readonly retried: boolean,
    /** may be written behind other requests */
    readonly pipe: boolean,
  ) {}

  readonly abort = (err?: Error): void => {
    if (this.cancelled) return;
    this.cancelled = true;
    this.pool.dequeued();
    this.h.onError(err ?? new UpstreamError(UpstreamErrorCode.Aborted, 'request aborted'));
  };
}

export class H1Pool implements ConnectionOwner {
  readonly host: string;
  readonly port: number;
  now = performance.now();
  readonly connectTimeout: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly keepAliveTimeout: number;
  readonly pipelining: number;
  /** requests written behind another on one connection */
  pipelined = 0;
  /** request heads that shared a write with at least one other */
  batchedHeads = 0;
  /** times pipelining stopped for an anomaly */
  fallbacks = 0;
  /** the last anomaly's PipelineAnomaly code (0: none yet) */
  lastAnomaly = 0;
  /** performance.now() until which nothing is pipelined; 0: pipelining on */
  private fallbackUntil = 0;
  /** the connection that took the last pipelinable request (its write may still be open) */
  private batch: H1Connection | null = null;
  private readonly counters: PipelineCounters | null;
  private readonly max: number;
  private readonly sweepEvery: number;
  private readonly all = new Set<H1Connection>();
  private readonly idle: H1Connection[] = [];
  private queue: Queued[] = [];
  private queueHead = 0;
  /** live (not cancelled) entries in the queue */
  private waiting = 0;
  private timer: NodeJS.Timeout | null = null;
  private closing = false;
  private destroyed = false;
  private onClosed: (() => void) | null = null;

  constructor(authority: string, opts: H1PoolOptions) {
    const colon = authority.lastIndexOf(':');
    const host = authority.slice(0, colon);
    this.host = host.startsWith('[') ? host.slice(1, -1) : host;
    this.port = Number(authority.slice(colon + 1));
    this.max = opts.connections;
    this.connectTimeout = opts.connectTimeout;
    this.headersTimeout = opts.headersTimeout;
    this.bodyTimeout = opts.bodyTimeout;
    this.keepAliveTimeout = opts.keepAliveTimeout;
    this.pipelining = opts.pipelining ?? 1;
    this.counters = opts.counters ?? null;
    // An eighth of the shortest limit: a timeout fires within 12.5 % of its value.
    const shortest = Math.min(opts.connectTimeout, opts.headersTimeout, opts.bodyTimeout, opts.keepAliveTimeout);
    this.sweepEvery = Math.max(5, Math.min(250, Math.floor(shortest / 8)));
  }

  /** connections open or opening */
  get size(): number {
    return this.all.size;
  }

  /** requests waiting for a connection */
  get queued(): number {
    return this.waiting;
  }

  /** false while the pool sends one request at a time after an anomaly */
  get pipeliningActive(): boolean {
    return this.pipelining > 1 && this.pipeliningOn();
  }

  dispatch(h: UpstreamHandler, method: string, path: string, headers: readonly string[], body: RequestBody): void {
    this.place(h, method, path, headers, body, false);
  }

  /** `retried`: a request lost to the keep-alive race, sent again on a new connection (never an idle one: those are as likely to be stale). */
  private place(h: UpstreamHandler, method: string, path: string, headers: readonly string[], body: RequestBody, retried: boolean): void {
    if (this.destroyed || (this.closing && !retried)) {
      h.onError(new UpstreamError(UpstreamErrorCode.Destroyed, 'the connection pool is closed'));
      return;
    }
    const pipe = this.pipelining > 1 && !retried && body === null && pipelinable(method) && this.pipeliningOn();
    if (pipe) {
      // Behind a request whose head is not written yet: one write carries both.
      const b = this.batch;
      if (b !== null && b.batching && b.canFollow()) {
        this.follow(b, h, method, path, headers);
        return;
      }
    }
    const idle = this.idle;
    if (!retried && idle.length > 0) {
      const c = idle.pop()!;
      c.send(h, method, path, headers, body, retried);
      if (pipe) this.batch = c;
      return;
    }
    if (this.all.size < this.max) {
      const c = this.open();
      c.send(h, method, path, headers, body, retried);
      if (pipe) this.batch = c;
      return;
    }
    if (pipe) {
      let best: H1Connection | null = null;
      for (const c of this.all) if (c.canFollow() && (best === null || c.outstanding < best.outstanding)) best = c;
      if (best !== null) {
        this.follow(best, h, method, path, headers);
        this.batch = best;
        return;
      }
    }
    const q = new Queued(this, h, method, path, headers, body, retried, pipe);
    this.queue.push(q);
    this.waiting++;
    h.onConnect(q.abort);
  }

  /** Lets every request (queued ones too) finish, then closes the connections. */
  close(): Promise<void> {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.destroy();
    if (this.all.size === 0) {
      this.stopSweep();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.onClosed = resolve;
    });
  }

  /** Closes everything now; every request still in the pool fails. */
  destroy(): Promise<void> {
    this.destroyed = true;
    const err = new UpstreamError(UpstreamErrorCode.Destroyed, 'the connection pool was destroyed');
    for (;;) {
      const q = this.nextQueued();
      if (q === null) break;
      q.h.onError(err);
    }
    for (const c of [...this.all]) c.fail(err);
    this.stopSweep();
    return Promise.resolve();
  }

  /**
   * Drops every request and connection without a callback, as a thread that dies mid-way
   * would (the crash test hook: what its requests still count in shared memory is then
   * the primary's to reconcile).
   */
  abandon(): void {
    this.destroyed = true;
    for (const q of this.queue) if (q !== undefined) q.cancelled = true;
    this.waiting = 0;
    for (const c of [...this.all]) c.abandon();
    this.stopSweep();
  }

  // ---- ConnectionOwner ------------------------------------------------------------------

  onFree(conn: H1Connection, reusable: boolean): void {
    if (!reusable || this.destroyed) {
      conn.destroy(); // onGone opens a replacement if requests wait
      return;
    }
    const q = this.nextQueued();
    if (q !== null) {
      conn.send(q.h, q.method, q.path, q.headers, q.body, q.retried);
      if (q.pipe) this.fillFollowers(conn);
      return;
    }
    if (this.closing) {
      conn.destroy();
      return;
    }
    conn.markIdle();
    this.idle.push(conn);
  }

  onGone(conn: H1Connection): void {
    if (!this.all.delete(conn)) return;
    const i = this.idle.lastIndexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.waiting > 0 && !this.destroyed) {
      const q = this.nextQueued();
      if (q !== null) {
        const c = this.open();
        c.send(q.h, q.method, q.path, q.headers, q.body, q.retried);
        if (q.pipe) this.fillFollowers(c);
      }
    }
    if (this.batch === conn) this.batch = null;
    if (this.all.size === 0) {
      this.stopSweep();
      if (this.onClosed !== null && this.waiting === 0) {
        const done = this.onClosed;
        this.onClosed = null;
        done();
      }
    }
  }

  retry(h: UpstreamHandler, method: string, path: string, headers: readonly string[], body: RequestBody): void {
    this.place(h, method, path, headers, body, true);
  }

  /** a queued request was cancelled */
  dequeued(): void {
    this.waiting--;
  }

  onSlotFree(conn: H1Connection): void {
    if (this.waiting > 0 && !this.destroyed) this.fillFollowers(conn);
  }

  onPipelineAnomaly(kind: number): void {
    this.lastAnomaly = kind;
    if (!this.pipeliningOn()) return; // already one at a time: the same stop, counted once
    this.fallbackUntil = performance.now() + PIPELINE_FALLBACK_MS;
    this.fallbacks++;
    this.counters?.fallback(kind);
  }

  onBatchWrite(heads: number): void {
    this.batchedHeads += heads;
    this.counters?.batched(heads);
  }
  // ---- internals ------------------------------------------------------------------------

  private open(): H1Connection {
    if (this.timer === null) {
      this.now = performance.now();
      this.timer = setInterval(this.sweep, this.sweepEvery);
      this.timer.unref();
    }
    const c = new H1Connection(this);
    this.all.add(c);
    return c;
  }

  private pipeliningOn(): boolean {
    if (this.fallbackUntil === 0) return true;
    if (performance.now() < this.fallbackUntil) return false;
    this.fallbackUntil = 0;
    return true;
  }

  private follow(c: H1Connection, h: UpstreamHandler, method: string, path: string, headers: readonly string[]): void {
    this.pipelined++;
    this.counters?.pipelined();
    c.follow(h, method, path, headers, false);
  }

  /** Queued pipelinable requests go behind `conn`'s while it has room (the queue stays in order: a request that cannot be pipelined stops it). */
  private fillFollowers(conn: H1Connection): void {
    while (this.waiting > 0 && conn.canFollow() && this.pipeliningOn()) {
      const q = this.peekQueued();
      if (q === null || !q.pipe) return;
      this.nextQueued();
      this.follow(conn, q.h, q.method, q.path, q.headers);
    }
  }

  /** The first live queued request, left in the queue. */
  private peekQueued(): Queued | null {
    const q = this.queue;
    while (this.queueHead < q.length) {
      const e = q[this.queueHead]!;
      if (!e.cancelled) return e;
      q[this.queueHead++] = undefined as unknown as Queued;
    }
    return null;
  }

  private nextQueued(): Queued | null {
    const q = this.queue;
    while (this.queueHead < q.length) {
      const e = q[this.queueHead]!;
      q[this.queueHead++] = undefined as unknown as Queued;
      if (e.cancelled) continue;
      e.cancelled = true; // its abort is now the connection's
      this.waiting--;
      if (this.queueHead === q.length) {
        this.queue = [];
        this.queueHead = 0;
      }
      return e;
    }
    if (this.queueHead > 0) {
      this.queue = [];
      this.queueHead = 0;
    }
    return null;
  }

  private readonly sweep = (): void => {
    const now = performance.now();
    this.now = now;
    for (const c of this.all) c.sweep(now);
  };

  private stopSweep(): void {
    if (this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }
}
