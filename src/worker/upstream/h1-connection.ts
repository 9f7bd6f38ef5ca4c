// One keep-alive HTTP/1.1 connection to an upstream endpoint, carrying one request at
// a time (or, with pool.pipelining, several in order: below). Written for the proxy's hot path: the request head goes out as one latin1
// string (with a buffered body, one writev), the response is read into the thread's one
// read buffer and parsed there by the strict parser in response-parser.ts (body pieces
// are handed on as views of it, valid during the callback), timeouts are
// checked by the pool's sweep against a coarse clock (no timer per request), and every
// callback it registers is allocated once per connection, not per request.
//
// Lifetime: Connecting → (Busy ⇄ Idle)* → gone. Any error, any response that cannot
// be followed by another (Connection: close, HTTP/1.0, close-delimited, a request body
// not fully sent), and any byte that arrives while idle end the connection.
//
// Pipelining (pool.pipelining > 1): behind a bodiless GET/HEAD/OPTIONS at the head of
// the line, up to pipelining − 1 more such requests ("followers", a ring allocated once
// per connection) may be outstanding. Request heads written in one event-loop turn go
// out as one string in one write (flushed from setImmediate). Responses are matched in
// order: each one completes the head, the next follower becomes the head and the
// parser is reset for its method (HEAD framing). Whatever breaks that order — a parse
// error, the upstream closing with followers outstanding, an HTTP/1.0 or close-delimited
// response, bytes with nothing outstanding — closes the connection, tells the pool
// (which stops pipelining for a while) and re-sends each follower once on a fresh
// connection; a follower is never given another request's response. A follower that is
// aborted or times out is answered at once and its response, when it comes, is read
// and dropped; an aborted head closes the connection and its followers are re-sent.
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ResponseParser, type ResponseSink } from './response-parser.js';
import { UpstreamError, UpstreamErrorCode, type RequestBody, type UpstreamHandler } from './upstream-handler.js';
import { PipelineAnomaly } from '../../shm/layout.js';

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
  /** requests one connection may have outstanding (pool.pipelining; 1 = one at a time) */
  readonly pipelining: number;
  /** a follower became the head: the connection has room for one more */
  onSlotFree(conn: H1Connection): void;
  /** the response order could not be trusted on a pipelining connection (a PipelineAnomaly code) */
  onPipelineAnomaly(kind: number): void;
  /** `heads` request heads went out in one write (counted when more than one) */
  onBatchWrite(heads: number): void;
}

/** The handler of a request whose caller is gone (aborted, timed out): its response is read and dropped. */
const DROP: UpstreamHandler = {
  onConnect(): void {},
  onHeaders(): boolean {
    return true;
  },
  onData(): boolean {
    return true;
  },
  onComplete(): void {},
  onError(): void {},
};

/** The methods that may be pipelined (idempotent and, here, always without a body). */
export function pipelinable(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
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
  /** the head request may have followers (a bodiless GET, HEAD or OPTIONS on a pipelining connection) */
  private headPipelinable = false;
  /** responses completed since the connection was last idle with nothing outstanding */
  private burst = 0;

  // followers: requests written behind the head, in order (a ring of pipelining − 1)
  private readonly cap: number;
  private readonly fH: (UpstreamHandler | null)[];
  private readonly fMethod: string[];
  private readonly fPath: string[];
  private readonly fHeaders: (readonly string[])[];
  private readonly fSent: number[];
  private readonly fRetried: boolean[];
  /** one abort per ring slot, made once */
  private readonly fAbort: ((err?: Error) => void)[];
  private fHead = 0;
  private fCount = 0;
  /** request heads not yet written (pipelining), flushed from setImmediate */
  private out = '';
  private outHeads = 0;
  private readonly flushFn = (): void => {
    const s = this.out;
    const n = this.outHeads;
    this.out = '';
    this.outHeads = 0;
    if (s.length === 0 || this.phase === Phase.Gone) return;
    this.socket.write(s, 'latin1');
    if (n > 1) this.owner.onBatchWrite(n);
  };

  /** handed to the handler as its abort: cancels whatever request this connection carries */
  private readonly abortFn = (err?: Error): void => {
    const h = this.handler;
    if (h === null || h === DROP) return;
    this.detach();
    this.destroy();
    h.onError(err ?? new UpstreamError(UpstreamErrorCode.Aborted, 'request aborted'));
    // Its response cannot be skipped without reading it all: the followers go elsewhere.
    this.resendFollowers(new UpstreamError(UpstreamErrorCode.Closed, 'the connection closed after another request on it was aborted'));
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
    const cap = owner.pipelining - 1;
    this.cap = cap;
    this.fH = new Array<UpstreamHandler | null>(cap).fill(null);
    this.fMethod = new Array<string>(cap).fill('');
    this.fPath = new Array<string>(cap).fill('');
    this.fHeaders = new Array<readonly string[]>(cap).fill(EMPTY);
    this.fSent = new Array<number>(cap).fill(0);
    this.fRetried = new Array<boolean>(cap).fill(false);
    this.fAbort = [];
    for (let i = 0; i < cap; i++) this.fAbort.push(this.followerAbort(i));
    const s = connect({ host: owner.host, port: owner.port, noDelay: true, onread: { buffer: READ_BUFFER, callback: this.onSocketRead } });
    this.socket = s;
    s.on('connect', this.onSocketConnect);
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
    this.headPipelinable = this.cap > 0 && body === null && pipelinable(method);
    h.onConnect(this.abortFn);
    if (this.handler !== h) return; // aborted at once
    if (this.phase === Phase.Connecting) return; // written on connect
    this.writeRequest();
  }

  /** Whether a bodiless GET/HEAD/OPTIONS may be written behind what it carries now. */
  canFollow(): boolean {
    return this.fCount < this.cap && this.headPipelinable && this.handler !== null && !this.paused && this.phase !== Phase.Gone;
  }

  /** requests outstanding (the head and its followers) */
  get outstanding(): number {
    return (this.handler === null ? 0 : 1) + this.fCount;
  }

  /** A request head is waiting to be written with others this turn (or on connect). */
  get batching(): boolean {
    return this.out.length > 0 || this.phase === Phase.Connecting;
  }

  /** Takes a bodiless GET/HEAD/OPTIONS behind the head (after `canFollow()`). */
  follow(h: UpstreamHandler, method: string, path: string, headers: readonly string[], retried: boolean): void {
    const i = (this.fHead + this.fCount) % this.cap;
    this.fCount++;
    this.fH[i] = h;
    this.fMethod[i] = method;
    this.fPath[i] = path;
    this.fHeaders[i] = headers;
    this.fSent[i] = this.owner.now;
    this.fRetried[i] = retried;
    h.onConnect(this.fAbort[i]!);
    // Written even when aborted at once: its slot in the line is taken, and its response is dropped.
    if (this.phase !== Phase.Connecting && this.phase !== Phase.Gone) this.queueHead(method, path, headers);
  }

  private followerAbort(i: number): (err?: Error) => void {
    return (err?: Error): void => {
      const h = this.fH[i];
      if (h === null || h === undefined || h === DROP) return;
      this.fH[i] = DROP;
      this.fHeaders[i] = EMPTY;
      h.onError(err ?? new UpstreamError(UpstreamErrorCode.Aborted, 'request aborted'));
    };
  }

  /** The pool put it on its idle list. */
  markIdle(): void {
    this.phase = Phase.Idle;
    this.since = this.owner.now;
  }

  /** Closes it now; a request it carries gets no callback (the caller settles it; followers: resendFollowers). */
  destroy(): void {
    if (this.phase === Phase.Gone) return;
    this.phase = Phase.Gone;
    this.parser.halt();
    this.out = '';
    this.socket.destroy();
    this.owner.onGone(this);
  }

  /** Closes it and forgets its requests without a callback: a thread dying mid-request (the crash test hook). */
  abandon(): void {
    this.handler = null;
    for (let i = 0; i < this.cap; i++) this.fH[i] = null;
    this.fCount = 0;
    this.destroy();
  }

  /** Ends its request with `err` and closes it; followers are re-sent once (or fail with `err`). */
  fail(err: Error, anomaly = 0): void {
    const h = this.handler;
    this.detach();
    this.destroy();
    if (anomaly !== 0) this.owner.onPipelineAnomaly(anomaly);
    h?.onError(err);
    this.resendFollowers(err);
  }

  /**
   * After the connection is gone: each follower still wanted is sent once more on a
   * fresh connection (idempotent by construction, and none of its response was read),
   * or fails with `err` when it was already re-sent once.
   */
  private resendFollowers(err: Error): void {
    while (this.fCount > 0) {
      const i = this.fHead;
      const h = this.fH[i]!;
      const method = this.fMethod[i]!;
      const path = this.fPath[i]!;
      const headers = this.fHeaders[i]!;
      const retried = this.fRetried[i]!;
      this.fH[i] = null;
      this.fHeaders[i] = EMPTY;
      this.fHead = (i + 1) % this.cap;
      this.fCount--;
      if (h === DROP) continue;
      if (retried) h.onError(err);
      else this.owner.retry(h, method, path, headers, null);
    }
  }

  /** The pool's periodic check: timeouts and the idle limit. */
  sweep(now: number): void {
    const o = this.owner;
    switch (this.phase) {
      case Phase.Connecting:
        if (now - this.since > o.connectTimeout) this.fail(new UpstreamError(UpstreamErrorCode.ConnectTimeout, `connecting to ${o.host}:${o.port} timed out`));
        return;
      case Phase.Waiting:
        if (now - this.since > o.headersTimeout) {
          this.fail(new UpstreamError(UpstreamErrorCode.HeadersTimeout, 'no response head within timeouts.response'));
          return;
        }
        break;
      case Phase.Reading:
        // A client that reads slowly pauses us; that is not the upstream being slow.
        if (!this.paused && now - this.since > o.bodyTimeout) {
          this.fail(new UpstreamError(UpstreamErrorCode.BodyTimeout, 'no response bytes within timeouts.read'));
          return;
        }
        break;
      case Phase.Idle:
        if (now - this.since > this.idleLimit) this.destroy();
        return;
    }
    // Followers wait behind the head (head-of-line blocking): each still has its own
    // timeouts.response from when it was written. One past it is answered now and its
    // response dropped when it comes; the connection and the others go on.
    for (let k = 0; k < this.fCount; k++) {
      const i = (this.fHead + k) % this.cap;
      const h = this.fH[i]!;
      if (h === DROP || now - this.fSent[i]! <= o.headersTimeout) continue;
      this.fH[i] = DROP;
      this.fHeaders[i] = EMPTY;
      h.onError(new UpstreamError(UpstreamErrorCode.HeadersTimeout, 'no response head within timeouts.response (pipelined behind another response)'));
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
      if (this.cap > 0) this.queueString(s + '\r\n');
      else sock.write(s + '\r\n', 'latin1');
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

  /** A follower's head, to go out with whatever else is written this turn. */
  private queueHead(method: string, path: string, h: readonly string[]): void {
    let s = method + ' ' + path + ' HTTP/1.1\r\n';
    for (let i = 0; i < h.length; i += 2) s += h[i] + ': ' + h[i + 1] + '\r\n';
    this.queueString(s + '\r\n');
  }

  private queueString(s: string): void {
    if (this.out.length === 0) setImmediate(this.flushFn);
    this.out += s;
    this.outHeads++;
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
    for (let k = 0; k < this.fCount; k++) {
      const i = (this.fHead + k) % this.cap;
      this.queueHead(this.fMethod[i]!, this.fPath[i]!, this.fHeaders[i]!);
    }
  };

  private readonly onSocketRead = (n: number, buf: Uint8Array): boolean => {
    this.onSocketData((buf as Buffer).subarray(0, n));
    return true;
  };

  /** `chunk` is a view of READ_BUFFER, valid until this returns. */
  private readonly onSocketData = (chunk: Buffer): void => {
    if (this.phase === Phase.Gone) return;
    if (this.handler === null) {
      // Bytes on an idle connection belong to no request: whatever they are, the
      // connection's framing can no longer be trusted.
      this.destroy();
      if (this.cap > 0 && this.reused) this.owner.onPipelineAnomaly(PipelineAnomaly.Unsolicited);
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
    // when repeating it is harmless. Not a pipelining anomaly, even with followers.
    const race = this.reused && this.burst === 0 && !this.parser.started;
    // A pipelined head with no byte of its response read is in the followers' place.
    const unanswered = !this.parser.started && (race || this.burst > 0 || this.fCount > 0);
    const anomaly = this.fCount > 0 && !race ? PipelineAnomaly.Closed : 0;
    if (h !== DROP && unanswered && !this.retried && idempotent(this.method) && (this.body === null || Buffer.isBuffer(this.body))) {
      const { method, path, headers, body } = this;
      this.detach();
      this.destroy();
      if (anomaly !== 0) this.owner.onPipelineAnomaly(anomaly);
      this.owner.retry(h, method, path, headers, body);
      this.resendFollowers(err);
      return;
    }
    this.fail(err, anomaly);
  }

  // ---- response (ResponseSink) -----------------------------------------------------------

  onResponseHead(status: number, headers: Buffer[]): boolean {
    this.phase = Phase.Reading;
    this.since = this.owner.now;
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
    if (this.fCount > 0) {
      if (reusable) {
        this.promote();
        this.owner.onSlotFree(this);
        h.onComplete();
        return;
      }
      // A framed HTTP/1.1 response with Connection: close is the upstream ending the
      // connection properly (nginx's keepalive_requests): the followers were not read.
      // HTTP/1.0 or a close-delimited body cannot carry a pipeline at all.
      const unframed = p.http10 || p.closeDelimited;
      this.destroy();
      if (unframed) this.owner.onPipelineAnomaly(PipelineAnomaly.Unframed);
      h.onComplete();
      this.resendFollowers(new UpstreamError(UpstreamErrorCode.Closed, 'the upstream closed the connection with pipelined requests outstanding'));
      return;
    }
    this.burst = 0;
    this.phase = Phase.Idle;
    this.owner.onFree(this, reusable);
    h.onComplete();
  }

  expectsAnother(): boolean {
    return this.fCount > 0;
  }

  /** The first follower becomes the head; the parser is set for its response. */
  private promote(): void {
    const i = this.fHead;
    const h = this.fH[i]!;
    this.handler = h;
    this.method = this.fMethod[i]!;
    this.path = this.fPath[i]!;
    this.headers = this.fHeaders[i]!;
    this.body = null;
    this.bodyDone = true;
    this.retried = this.fRetried[i]!;
    this.headPipelinable = true;
    this.since = this.fSent[i]!;
    this.fH[i] = null;
    this.fHeaders[i] = EMPTY;
    this.fHead = (i + 1) % this.cap;
    this.fCount--;
    this.burst++;
    this.phase = Phase.Waiting;
    // The order check: the next response is this request's, framed by its method.
    this.parser.reset(this.method === 'HEAD');
    if (h !== DROP) h.onConnect(this.abortFn);
  }

  onResponseError(reason: string): void {
    const anomaly = this.cap > 0 && (this.fCount > 0 || this.burst > 0) ? PipelineAnomaly.Protocol : 0;
    this.fail(new UpstreamError(UpstreamErrorCode.Protocol, reason), anomaly);
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }
}

const EMPTY: readonly string[] = [];

/**
 * Every upstream socket of the thread reads into this one buffer (net's `onread`): a
 * read is parsed to the end before the next one can arrive, and the parser copies out
 * what outlives it (response-parser.ts). A Buffer of its own per read, as a 'data'
 * listener gets, cost 2–4 % of a proxied request's CPU here, and about 10 % of a proxy
 * doing nothing else (native-bench/PROFILE.md).
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

function hasField(h: readonly string[], name: string): boolean {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return true;
  return false;
}
