// One keep-alive HTTP/1.1 connection to an upstream endpoint, carrying one request at
// a time. Written for the proxy's hot path: the request head goes out as one latin1
// string (with a buffered body, one writev), the response is read by the strict
// parser in response-parser.ts and handed on as the socket's own Buffers, timeouts are
// checked by the pool's sweep against a coarse clock (no timer per request), and every
// callback it registers is allocated once per connection, not per request.
//
// Lifetime: Connecting → (Busy ⇄ Idle)* → gone. Any error, any response that cannot
// be followed by another (Connection: close, HTTP/1.0, close-delimited, a request body
// not fully sent), and any byte that arrives while idle end the connection.
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ResponseParser, type ResponseSink } from './response-parser.js';
import { UpstreamError, UpstreamErrorCode, type RequestBody, type UpstreamHandler } from './upstream-handler.js';

export interface ConnectionOwner {
  readonly host: string;
  readonly port: number;
  /** coarse clock (performance.now() at the pool's last sweep) */
  readonly now: number;
  readonly connectTimeout: number;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  readonly keepAliveTimeout: number;
  /** the connection's request ended; `reusable`: it may carry another */
  onFree(conn: H1Connection, reusable: boolean): void;
  /** the connection is closed and must be forgotten */
  onGone(conn: H1Connection): void;
  /** a request lost to the keep-alive race, to be sent once more on a new connection */
  retry(h: UpstreamHandler, method: string, path: string, headers: readonly string[], body: RequestBody): void;
}

const enum Phase {
  Connecting,
  Idle,
  /** request written (or being written), no response head yet */
  Waiting,
  /** response head read, body being read */
  Reading,
  Gone,
}

/** RFC 9110 §9.2.2 */
function idempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
  }
  return false;
}

/** methods whose request without content still says Content-Length: 0 (RFC 9110 §8.6) */
function expectsContent(method: string): boolean {
  return method === 'POST' || method === 'PUT' || method === 'PATCH';
}

export class H1Connection implements ResponseSink {
  private readonly socket: Socket;
  private readonly parser: ResponseParser;
  private phase = Phase.Connecting;
  /** coarse time of the last progress (connect started, request sent, bytes read) */
  private since: number;
  private idleLimit: number;
  /** a response completed on this connection before (so it may have gone stale while idle) */
  private reused = false;
  /** the read side is paused for the handler's backpressure */
  private paused = false;

  // the request in progress
  private handler: UpstreamHandler | null = null;
  private method = '';
  private path = '';
  private headers: readonly string[] = [];
  private body: RequestBody = null;
  /** every request byte was handed to the socket */
  private bodyDone = false;
  private chunkedBody = false;
  /** this request was already re-sent once after the keep-alive race */
  private retried = false;

  /** handed to the handler as its abort: cancels whatever request this connection carries */
  private readonly abortFn = (err?: Error): void => {
    const h = this.handler;
    if (h === null) return;
    this.detach();
    this.destroy();
    h.onError(err ?? new UpstreamError(UpstreamErrorCode.Aborted, 'request aborted'));
  };

  private readonly resumeFn = (): void => {
    if (!this.paused || this.phase === Phase.Gone) return;
    // Not synchronously: the handler calls this from inside its own write callback.
    setImmediate(this.resumeNow);
  };

  private readonly resumeNow = (): void => {
    if (!this.paused || this.phase === Phase.Gone || this.handler === null) return;
    this.paused = false;
    this.since = this.owner.now;
    this.parser.resume();
    if (!this.paused && !this.gone) this.socket.resume();
  };

  constructor(private readonly owner: ConnectionOwner) {
    this.parser = new ResponseParser(this);
    this.since = owner.now;
    this.idleLimit = owner.keepAliveTimeout;
    const s = connect({ host: owner.host, port: owner.port, noDelay: true });
    this.socket = s;
    s.on('connect', this.onSocketConnect);
    s.on('data', this.onSocketData);
    s.on('end', this.onSocketEnd);
    s.on('error', this.onSocketError);
    s.on('close', this.onSocketClose);
    s.on('drain', this.onSocketDrain);
  }

  private get gone(): boolean {
    return this.phase === Phase.Gone;
  }

  /** Takes a request: written now, or when the connection is up. */
  send(h: UpstreamHandler, method: string, path: string, headers: readonly string[], body: RequestBody, retried: boolean): void {
    this.handler = h;
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.body = body;
    this.retried = retried;
    this.bodyDone = false;
    h.onConnect(this.abortFn);
    if (this.handler !== h) return; // aborted at once
    if (this.phase === Phase.Connecting) return; // written on connect
    this.writeRequest();
  }

  /** The pool put it on its idle list. */
  markIdle(): void {
    this.phase = Phase.Idle;
    this.since = this.owner.now;
  }

  /** Closes it now; a request it carries gets no callback (the caller settles it). */
  destroy(): void {
    if (this.phase === Phase.Gone) return;
    this.phase = Phase.Gone;
    this.socket.destroy();
    this.owner.onGone(this);
  }

  /** Closes it and forgets its request without a callback: a thread dying mid-request (the crash test hook). */
  abandon(): void {
    this.handler = null;
    this.destroy();
  }

  /** Ends its request with `err` and closes it. */
  fail(err: Error): void {
    const h = this.handler;
    this.detach();
    this.destroy();
    h?.onError(err);
  }

  /** The pool's periodic check: timeouts and the idle limit. */
  sweep(now: number): void {
    const o = this.owner;
    switch (this.phase) {
      case Phase.Connecting:
        if (now - this.since > o.connectTimeout) this.fail(new UpstreamError(UpstreamErrorCode.ConnectTimeout, `connecting to ${o.host}:${o.port} timed out`));
        return;
      case Phase.Waiting:
        if (now - this.since > o.headersTimeout) this.fail(new UpstreamError(UpstreamErrorCode.HeadersTimeout, 'no response head within timeouts.response'));
        return;
      case Phase.Reading:
        // A client that reads slowly pauses us; that is not the upstream being slow.
        if (!this.paused && now - this.since > o.bodyTimeout) this.fail(new UpstreamError(UpstreamErrorCode.BodyTimeout, 'no response bytes within timeouts.read'));
        return;
      case Phase.Idle:
        if (now - this.since > this.idleLimit) this.destroy();
        return;
    }
  }

  // ---- request ----------------------------------------------------------------------

  private writeRequest(): void {
    this.phase = Phase.Waiting;
    this.since = this.owner.now;
    this.parser.reset(this.method === 'HEAD');
    const h = this.headers;
    let s = this.method + ' ' + this.path + ' HTTP/1.1\r\n';
    for (let i = 0; i < h.length; i += 2) s += h[i] + ': ' + h[i + 1] + '\r\n';
    const body = this.body;
    const sock = this.socket;
    if (body === null) {
      if (expectsContent(this.method)) s += 'content-length: 0\r\n';
      this.bodyDone = true;
      sock.write(s + '\r\n', 'latin1');
    } else if (Buffer.isBuffer(body)) {
      this.bodyDone = true;
      sock.cork();
      sock.write(s + 'content-length: ' + body.length + '\r\n\r\n', 'latin1');
      sock.write(body);
      sock.uncork();
    } else {
      this.chunkedBody = !hasField(h, 'content-length');
      if (this.chunkedBody) s += 'transfer-encoding: chunked\r\n';
      sock.write(s + '\r\n', 'latin1');
      body.on('data', this.onBodyData);
      body.on('end', this.onBodyEnd);
      body.on('error', this.onBodyError);
      body.on('close', this.onBodyClose);
    }
  }

  private readonly onBodyData = (chunk: Buffer): void => {
    if (this.handler === null || chunk.length === 0) return;
    const sock = this.socket;
    let ok: boolean;
    if (this.chunkedBody) {
      sock.cork();
      sock.write(chunk.length.toString(16) + '\r\n', 'latin1');
      sock.write(chunk);
      ok = sock.write('\r\n', 'latin1');
      sock.uncork();
    } else {
      ok = sock.write(chunk);
    }
    if (!ok) (this.body as Readable).pause();
  };

  private readonly onSocketDrain = (): void => {
    const b = this.body;
    if (b !== null && !Buffer.isBuffer(b) && !this.bodyDone) b.resume();
  };

  private readonly onBodyEnd = (): void => {
    if (this.handler === null) return;
    if (this.chunkedBody) this.socket.write('0\r\n\r\n', 'latin1');
    this.bodyDone = true;
    this.unlistenBody();
  };

  private readonly onBodyError = (err: Error): void => {
    if (this.handler !== null) this.fail(err);
  };

  private readonly onBodyClose = (): void => {
    // destroyed before its end: the request cannot be completed
    if (this.handler !== null && !this.bodyDone) this.fail(new UpstreamError(UpstreamErrorCode.Aborted, 'the request body ended early'));
  };

  private unlistenBody(): void {
    const b = this.body;
    if (b === null || Buffer.isBuffer(b)) return;
    b.removeListener('data', this.onBodyData);
    b.removeListener('end', this.onBodyEnd);
    b.removeListener('error', this.onBodyError);
    b.removeListener('close', this.onBodyClose);
  }

  /** Forgets the request (the caller settles its handler). */
  private detach(): void {
    this.unlistenBody();
    this.handler = null;
    this.body = null;
    this.headers = EMPTY;
  }

  // ---- socket -------------------------------------------------------------------------

  private readonly onSocketConnect = (): void => {
    if (this.phase !== Phase.Connecting) return;
    if (this.handler === null) {
      this.owner.onFree(this, true);
      return;
    }
    this.writeRequest();
  };

  private readonly onSocketData = (chunk: Buffer): void => {
    if (this.handler === null || this.phase === Phase.Gone) {
      // Bytes on an idle connection belong to no request: whatever they are, the
      // connection's framing can no longer be trusted.
      this.destroy();
      return;
    }
    this.since = this.owner.now;
    this.parser.execute(chunk);
  };

  private readonly onSocketEnd = (): void => {
    if (this.handler !== null && this.parser.finishOnClose()) {
      this.onResponseComplete();
      return;
    }
    this.lost(new UpstreamError(UpstreamErrorCode.Closed, 'the upstream closed the connection before the response ended'));
  };

  private readonly onSocketError = (err: Error): void => {
    this.lost(err);
  };

  private readonly onSocketClose = (): void => {
    this.lost(new UpstreamError(UpstreamErrorCode.Closed, 'the upstream connection closed'));
  };

  /** The connection died (end, error, close). */
  private lost(err: Error): void {
    const h = this.handler;
    if (h === null) {
      this.destroy();
      return;
    }
    // The keep-alive race: the upstream closed the idle connection as we reused it, so
    // the request may never have been read. Sent once more, on a new connection, only
    // when repeating it is harmless.
    if (this.reused && !this.retried && !this.parser.started && idempotent(this.method) && (this.body === null || Buffer.isBuffer(this.body))) {
      const { method, path, headers, body } = this;
      this.detach();
      this.destroy();
      this.owner.retry(h, method, path, headers, body);
      return;
    }
    this.fail(err);
  }

  // ---- response (ResponseSink) -----------------------------------------------------------

  onResponseHead(status: number, headers: Buffer[]): boolean {
    this.phase = Phase.Reading;
    const h = this.handler!;
    const ok = h.onHeaders(status, headers, this.resumeFn);
    if (this.handler !== h) return false; // aborted from inside
    if (!ok) this.pause();
    return ok;
  }

  onResponseBody(chunk: Buffer): boolean {
    const h = this.handler!;
    const ok = h.onData(chunk);
    if (this.handler !== h) return false;
    if (!ok) this.pause();
    return ok;
  }

  onResponseComplete(): void {
    const h = this.handler!;
    const p = this.parser;
    const reusable = p.keepAlive && this.bodyDone && this.phase !== Phase.Gone;
    if (p.keepAliveHint >= 0) this.idleLimit = Math.min(this.owner.keepAliveTimeout, Math.max(p.keepAliveHint * 1000 - 1000, 500));
    this.detach();
    this.reused = true;
    this.phase = Phase.Idle;
    this.owner.onFree(this, reusable);
    h.onComplete();
  }

  onResponseError(reason: string): void {
    this.fail(new UpstreamError(UpstreamErrorCode.Protocol, reason));
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }
}

const EMPTY: readonly string[] = [];

function hasField(h: readonly string[], name: string): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return true;
  return false;
}
