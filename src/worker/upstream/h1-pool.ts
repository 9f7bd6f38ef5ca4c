// The keep-alive connections of one worker to one upstream endpoint (nginx's
// `keepalive` connections, per worker process): at most `connections` at once, the
// idle ones reused most-recently-used first (so the rest age out at the keep-alive
// limit instead of all staying warm and stale), and a FIFO of requests waiting for one.
// The bound on that FIFO is the caller's (UpstreamSet.full, pool.maxPending).
//
// One timer per pool, running only while it has connections, checks every
// connection's timeouts against a coarse clock; requests themselves set no timers.
import { H1Connection, type ConnectionOwner } from './h1-connection.js';
import { UpstreamError, UpstreamErrorCode, type RequestBody, type UpstreamHandler } from './upstream-handler.js';

export interface H1PoolOptions {
  readonly connections: number;
  /** ms an idle connection is kept (less when the upstream's Keep-Alive says so) */
  readonly keepAliveTimeout: number;
  readonly connectTimeout: number;
  /** ms from sending the request to the response head */
  readonly headersTimeout: number;
  /** longest ms between two reads of the response body */
  readonly bodyTimeout: number;
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

  dispatch(h: UpstreamHandler, method: string, path: string, headers: readonly string[], body: RequestBody): void {
    this.place(h, method, path, headers, body, false);
  }

  /** `retried`: a request lost to the keep-alive race, sent again on a new connection (never an idle one: those are as likely to be stale). */
  private place(h: UpstreamHandler, method: string, path: string, headers: readonly string[], body: RequestBody, retried: boolean): void {
    if (this.destroyed || (this.closing && !retried)) {
      h.onError(new UpstreamError(UpstreamErrorCode.Destroyed, 'the connection pool is closed'));
      return;
    }
    const idle = this.idle;
    if (!retried && idle.length > 0) {
      idle.pop()!.send(h, method, path, headers, body, retried);
      return;
    }
    if (this.all.size < this.max) {
      this.open().send(h, method, path, headers, body, retried);
      return;
    }
    const q = new Queued(this, h, method, path, headers, body, retried);
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
      if (q !== null) this.open().send(q.h, q.method, q.path, q.headers, q.body, q.retried);
    }
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
