// One proxied request: the uWS response on one side, a request through the endpoint's
// connection pool (src/worker/upstream) on the other. It is its own UpstreamHandler, so
// a request costs one object and no promise.
//
// Lifetime rules this file lives by:
// * `res` may be touched only while `!this.aborted` and before the response ended;
//   every write after an await-equivalent (a callback) happens inside res.cork.
// * the client going away aborts the upstream request; the upstream failing after the
//   response head went out closes the client connection (never a clean truncation).
import { Readable } from 'node:stream';
import { Errors, type ErrorSpec } from '../errors.js';
import type { CompiledRoute } from './router.js';
import type { Runtime } from './runtime.js';
import type { RequestHead } from './request-head.js';
import type { Endpoint, UpstreamSet } from './upstream-set.js';
import type { HttpResponse } from './uws.js';
import { endLocal, writeError } from './error-response.js';
import { statusLine } from './status-lines.js';
import { countConnectionRefused, countRetry, shedByLoad, countUpstreamError, inFlightCount, isDraining, requestFinished } from './worker-state.js';
import type { ListenerScope } from './listener.js';
import { requestLogged } from './request-log.js';
import { Admission, type UpstreamGuard } from './upstream-guard.js';
import type { WorkerFallback } from '../messages.js';
import type { AccessContext, PolicyInstance, StatusWatcher } from '../policies/policy.js';
import { HeadVerdict, type CacheHook } from './cache/cache-hook.js';
import { kBreakerStateMask } from '../shm/control-words.js';
import { BreakerState } from '../shm/layout.js';
import { UpstreamErrorCode, type UpstreamHandler } from './upstream/upstream-handler.js';

/** Request bodies up to this size are read whole before dispatch, so a retry can resend them. */
export const BUFFER_BODY_LIMIT = 64 * 1024;

const CLOSE_TOKEN = /(?:^|,)\s*close\s*(?:,|$)/i;

/**
 * On both overload refusals (connections, upstream queue): 1 s. The condition is a
 * queue that turns over in about one response time, and a new connection may land on
 * another worker (SO_REUSEPORT) or instance; a longer value would idle clients that
 * could be served at once, and a client's own backoff adds to it anyway.
 */
const RETRY_AFTER: readonly string[] = ['retry-after', '1'];

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

// Errors that mean no byte of the request reached the upstream.
const NOT_SENT = new Set(['ECONNREFUSED', UpstreamErrorCode.ConnectTimeout, 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export function classifyUpstreamError(err: Error & { code?: string }): ErrorSpec {
  const code = err.code ?? '';
  switch (code) {
    case UpstreamErrorCode.ConnectTimeout:
    case 'UND_ERR_CONNECT_TIMEOUT':
      return Errors.UPSTREAM_CONNECT_TIMEOUT;
    case UpstreamErrorCode.HeadersTimeout:
    case UpstreamErrorCode.BodyTimeout:
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return Errors.UPSTREAM_TIMEOUT;
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return Errors.UPSTREAM_CONNECT;
    case UpstreamErrorCode.Closed:
    case UpstreamErrorCode.Destroyed:
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
      return Errors.UPSTREAM_RESET;
    default:
      // TG_UP_PROTOCOL (response-parser.ts), HPE_* (llhttp, WebSocket handshakes), and
      // anything unforeseen: the upstream's bytes could not be read as an HTTP response.
      return Errors.UPSTREAM_PROTOCOL;
  }
}

/** Whether `b` is `lower` (a lower-case ASCII name), ignoring case. */
function fieldIs(b: Buffer, lower: string): boolean {
  const n = lower.length;
  if (b.length !== n) return false;
  for (let i = 0; i < n; i++) if ((b[i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** SHED_REASONS (src/metrics/snapshot.ts) index + 1 */
const enum ShedReason {
  Concurrency = 1,
  GatewayLoad = 2,
}

const enum BodyMode {
  None,
  Buffering,
  Streaming,
}

export class Exchange implements UpstreamHandler {
  readonly res: HttpResponse;
  readonly head: RequestHead;
  readonly rt: Runtime;
  /** the listener the request came in on */
  readonly scope: ListenerScope;
  route: CompiledRoute | null = null;
  upstream: UpstreamSet | null = null;
  /** the side of a split route the request was sent to (index into route.split.sides); -1 otherwise */
  side = -1;
  requestId = '';
  headers: string[] = [];
  /** name, value pairs added to whatever response goes out (policies put RateLimit fields here) */
  readonly responseHeaders: string[] = [];
  /** who the access phase identified (api-key, jwt), for the access log */
  consumer: string | null = null;
  tenant: string | null = null;
  tier: string | null = null;
  /** the priority this request is shed as: its route's, or its tenant tier's */
  priority = 2;
  /** StatusWatcher, key pairs the access phase asked to be told the final status (ban) */
  watched: unknown[] | null = null;
  /** the access phase's view of the request, when the route has policies (the response and log phases read it) */
  access: AccessContext | null = null;
  /** performance.now() timestamps: request head read, upstream dispatch (last attempt), upstream response head */
  readonly startedAt: number;
  upstreamStartedAt = 0;
  upstreamHeadersAt = 0;

  aborted = false; // client connection gone
  private finished = false; // bookkeeping done (exactly once)
  private ended = false; // response fully handed to uWS
  private headSent = false; // status line written to the client

  // request body
  private bodyMode = BodyMode.None;
  private bodyChunks: Buffer[] | null = null;
  private bodyStream: BodyStream | null = null;
  private bodyBytes = 0;
  private bodyTimer: NodeJS.Timeout | null = null;
  private clientPaused = false;
  /** the client sent `Connection: close` */
  readonly clientClose: boolean;
  private bodyComplete = false;

  // upstream side
  private endpoint = -1;
  private attempts = 0;
  /** the current attempt is counted in flight (picked, no response head yet, not failed) */
  private attemptOpen = false;
  /** the current attempt's endpoint while it holds (or waits for) one of its pool's connections */
  private holding: Endpoint | null = null;
  private upstreamAbort: ((err?: Error) => void) | null = null;
  private status = 0;
  private respHeaders: Buffer[] | null = null;
  private respVia: string | null = null;
  private total = -1; // response Content-Length, -1 when unknown
  private noBody = false;
  private written = 0;
  private pending: Buffer | null = null;
  private pendingOffset = 0;
  private resumeUpstream: (() => void) | null = null;
  // adaptive protection: the guard this request is counted in flight by, or holds a half-open probe permit of
  private counted: UpstreamGuard | null = null;
  private probe: UpstreamGuard | null = null;
  /** why it was answered 503 TG_ERR_SHED: a SHED_REASONS index + 1 (0: not shed), and at which priority */
  shedReason = 0;
  shedPriority = 0;
  /** the response cache's interest in this request (src/worker/cache); null on routes without cache */
  cache: CacheHook | null = null;
  /** the cache took over the response (HeadVerdict.Absorb): the upstream's body is read and dropped */
  private absorbing = false;

  constructor(res: HttpResponse, head: RequestHead, rt: Runtime, scope: ListenerScope) {
    this.res = res;
    this.scope = scope;
    this.head = head;
    this.rt = rt;
    this.startedAt = performance.now();
    this.clientClose = head.connection !== null && CLOSE_TOKEN.test(head.connection);
  }

  /**
   * Whether this connection ends after the response: the client sent
   * `Connection: close` (RFC 9112 §9.6: we answer with it and close cleanly, instead
   * of letting uWS drop the socket), the worker is draining, or a certificate reload
   * retired the listener the connection came in on.
   */
  closeAfter(): boolean {
    return this.clientClose || isDraining() || this.scope.retiring;
  }

  /** endpoint index of the last attempt, -1 if none was picked */
  get endpointIndex(): number {
    return this.endpoint;
  }

  get requestBytes(): number {
    return this.bodyBytes;
  }

  get responseBytes(): number {
    return this.written;
  }

  get attemptCount(): number {
    return this.attempts;
  }

  // ---- client side ------------------------------------------------------------

  readonly onClientAborted = (): void => {
    if (this.aborted) return;
    this.aborted = true;
    this.clearBodyTimer();
    this.bodyStream?.destroy();
    // A request still in the pool's queue is withdrawn too (its onError frees its place).
    const abort = this.upstreamAbort;
    this.upstreamAbort = null;
    abort?.(new Error('client aborted'));
    this.finish(this.ended ? this.status : 0);
  };

  /** Responds with an error; framing-class errors close the connection. */
  /** 503 TG_ERR_SHED, remembered (reason, priority) for the route's shed counters. */
  private shed(reason: ShedReason, priority: number): void {
    this.shedReason = reason;
    this.shedPriority = priority;
    this.fail(Errors.SHED, false, RETRY_AFTER);
  }

  fail(spec: ErrorSpec, close: boolean, extra?: readonly string[]): void {
    if (this.aborted || this.ended) return;
    this.ended = true;
    this.headSent = true;
    this.status = spec.status;
    // A body we did not read would be parsed as the next request: close instead.
    const unread = (this.head.contentLength > 0 || this.head.chunked) && !this.bodyComplete;
    let headers = this.responseHeaders.length > 0 ? (extra ? [...this.responseHeaders, ...extra] : this.responseHeaders) : extra;
    if (this.clientClose) headers = [...(headers ?? []), 'connection', 'close']; // see writeHead
    writeError(this.res, spec, this.rt.requestIdHeader, this.requestId, close || unread || this.closeAfter(), headers, this.head.method === 'HEAD');
    this.finish(spec.status);
  }

  /** Someone else (the cache) wrote the whole response: do the bookkeeping. */
  answered(status: number, bodyBytes: number): void {
    this.ended = true;
    this.headSent = true;
    this.status = status;
    this.written = bodyBytes;
    this.finish(status);
  }

  /** Starts reading the request body (if any) and dispatches. Called synchronously from the uWS handler (or after a cache wait). */
  start(): void {
    // This request counts itself; uWS never runs two requests of one connection at
    // once (it closes a connection that pipelines behind an async response), so this
    // is the worker's connections with a request in progress.
    if (inFlightCount() > this.rt.config.limits.maxConnections) {
      countConnectionRefused();
      this.fail(Errors.LIMIT_CONNECTIONS, true, RETRY_AFTER);
      return;
    }
    const priority = this.priority;
    if (shedByLoad(priority)) {
      this.shed(ShedReason.GatewayLoad, priority);
      return;
    }
    const g = this.upstream!.guard;
    if (g !== null && !this.admit(g, true)) return;
    const h = this.head;
    if (h.contentLength > 0 || h.chunked) {
      this.res.onData(this.onClientData);
      this.bodyTimer = setTimeout(this.onBodyTimeout, this.rt.config.limits.clientBodyTimeout);
      if (h.contentLength >= 0 && h.contentLength <= BUFFER_BODY_LIMIT) {
        this.bodyMode = BodyMode.Buffering;
        this.bodyChunks = [];
        return; // dispatched when the last chunk arrives
      }
      this.bodyMode = BodyMode.Streaming;
      this.bodyStream = new BodyStream(this);
      if (h.contentLength >= 0) this.headers.push('content-length', String(h.contentLength));
    }
    this.dispatch();
  }

  /**
   * The upstream's breaker and concurrency limit: false when the request was answered
   * here (503, or a static fallback). An open breaker with a fallback upstream sends the
   * request there, through that upstream's own guard (whose fallback is not followed).
   */
  private admit(g: UpstreamGuard, followFallback: boolean): boolean {
    const priority = this.priority;
    switch (g.admit(priority)) {
      case Admission.Pass:
        return true;
      case Admission.Counted:
        this.counted = g;
        return true;
      case Admission.Probe:
        this.probe = g;
        return true;
      case Admission.Shed:
        if (this.cache !== null && this.cache.onRefused(true)) return false;
        this.shed(ShedReason.Concurrency, priority);
        return false;
    }
    // Half-open with every probe taken is the upstream being busy; open is it failing.
    if (this.cache !== null && this.cache.onRefused((g.words.word() & kBreakerStateMask) === BreakerState.HalfOpen)) return false;
    const fb = followFallback ? g.fallback : null;
    if (fb === null) {
      this.fail(Errors.CIRCUIT_OPEN, false, g.openRetryAfter());
      return false;
    }
    g.words.countFallback();
    if (fb.kind === 'static') {
      this.respondStatic(fb);
      return false;
    }
    const other = this.rt.upstreams[fb.upstream]!;
    this.upstream = other;
    return other.guard === null || this.admit(other.guard, false);
  }

  /** A configured answer (a breaker's static fallback, a route's maintenance response), no upstream involved. */
  respondStatic(f: Extract<WorkerFallback, { kind: 'static' }>): void {
    this.respondLocal(f.status, f.body, f.headers);
  }

  /** Answers without an upstream: a static fallback, or a policy's own response (a plugin's respond()). */
  respondLocal(status: number, body: string, headers: readonly string[]): void {
    if (this.aborted || this.ended) return;
    this.ended = true;
    this.headSent = true;
    this.status = status;
    const close = ((this.head.contentLength > 0 || this.head.chunked) && !this.bodyComplete) || this.closeAfter();
    const res = this.res;
    res.cork(() => {
      res.writeStatus(statusLine(status));
      const h = headers;
      for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, h[i + 1]!);
      res.writeHeader(this.rt.requestIdHeader, this.requestId);
      if (this.clientClose) res.writeHeader('connection', 'close');
      const extra = this.responseHeaders;
      for (let i = 0; i < extra.length; i += 2) res.writeHeader(extra[i]!, extra[i + 1]!);
      endLocal(res, body, close, this.head.method === 'HEAD');
    });
    this.finish(status);
  }

  private readonly onClientData = (chunk: ArrayBuffer, isLast: boolean): void => {
    // After the response ended (an early error, or an upstream that answered before
    // reading everything) the rest of the body has nowhere to go.
    if (this.aborted || this.ended) return;
    const n = chunk.byteLength;
    this.bodyBytes += n;
    if (this.bodyBytes > this.rt.config.limits.maxBodyBytes) {
      // Only a chunked body can get here (a too-large Content-Length was refused up front).
      this.abandon(Errors.LIMIT_BODY_TOO_LARGE);
      return;
    }
    if (isLast) {
      this.bodyComplete = true;
      this.clearBodyTimer();
    } else {
      this.bodyTimer?.refresh();
    }
    // uWS reuses the chunk's memory after this callback: copy it.
    const copy = n > 0 ? Buffer.copyBytesFrom(new Uint8Array(chunk)) : null;
    if (this.bodyMode === BodyMode.Buffering) {
      if (copy) this.bodyChunks!.push(copy);
      if (isLast) this.dispatch();
      return;
    }
    const s = this.bodyStream!;
    if (copy && !s.push(copy)) {
      // Backpressure towards the client is per socket in uWS (res.pause/resume only).
      this.clientPaused = true;
      this.res.pause();
    }
    if (isLast) s.push(null);
  };

  /** BodyStream calls this when the upstream connection wants more. */
  pullBody(): void {
    if (this.clientPaused && !this.aborted) {
      this.clientPaused = false;
      this.res.resume();
    }
  }

  private readonly onBodyTimeout = (): void => {
    this.bodyTimer = null;
    if (this.aborted || this.ended) return;
    this.abandon(Errors.CLIENT_BODY_TIMEOUT);
  };

  /**
   * The client broke the request while the upstream may be working on it. Answer
   * first, so the upstream error that aborting raises (synchronously) finds the
   * response already ended and does not answer 502 instead.
   */
  private abandon(spec: ErrorSpec): void {
    if (this.headSent) {
      this.abortUpstream();
      this.closeClient();
      return;
    }
    this.fail(spec, true);
    this.abortUpstream();
  }

  private clearBodyTimer(): void {
    if (this.bodyTimer !== null) {
      clearTimeout(this.bodyTimer);
      this.bodyTimer = null;
    }
  }

  private closeClient(): void {
    if (this.aborted || this.ended) return;
    // Runs onClientAborted synchronously, which does the bookkeeping.
    this.res.close();
  }

  // ---- upstream side ----------------------------------------------------------

  private dispatch(): void {
    const up = this.upstream!;
    const idx = up.pick(this.endpoint, this.headers);
    if (idx < 0) {
      if (this.cache !== null && this.cache.onFailure()) return;
      this.fail(Errors.UPSTREAM_NO_ENDPOINT, false);
      return;
    }
    const ep = up.endpoints[idx]!;
    if (up.full(ep)) {
      // Answered without touching the upstream: queueing more would only add latency
      // and memory (the pool's queue has no bound of its own).
      up.countOverloaded();
      this.bodyStream?.destroy();
      if (this.cache !== null && this.cache.onRefused(true)) return;
      this.fail(Errors.UPSTREAM_OVERLOADED, false, RETRY_AFTER);
      return;
    }
    this.endpoint = idx;
    this.attempts++;
    up.onPicked(idx);
    this.attemptOpen = true;
    up.acquire(ep);
    this.holding = ep;
    this.upstreamStartedAt = performance.now();
    // headers[0..1] is always the Host pair (see http-server.ts)
    if (this.route!.route.rewriteHost) this.headers[1] = ep.authority;
    let body: Buffer | Readable | null = null;
    if (this.bodyMode === BodyMode.Buffering) {
      const c = this.bodyChunks!;
      body = c.length === 1 ? c[0]! : c.length === 0 ? null : Buffer.concat(c);
      if (c.length > 1) this.bodyChunks = [body as Buffer];
    } else if (this.bodyMode === BodyMode.Streaming) {
      body = this.bodyStream;
    }
    const q = this.head.query;
    ep.pool.dispatch(this, this.head.method, q.length > 0 ? `${this.head.path}?${q}` : this.head.path, this.headers, body);
  }

  private abortUpstream(): void {
    const abort = this.upstreamAbort;
    this.upstreamAbort = null;
    abort?.(new Error('request abandoned'));
    this.bodyStream?.destroy();
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) {
      abort(new Error('client aborted'));
      return;
    }
    this.upstreamAbort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.aborted) return false;
    // Interim responses (100, 103) are absorbed: uWS can send only one status line.
    if (statusCode < 200) return true;
    this.status = statusCode;
    this.upstreamHeadersAt = performance.now();
    this.attemptOpen = false;
    this.upstream!.onDone(this.endpoint, statusCode, this.upstreamHeadersAt - this.upstreamStartedAt);
    if (this.probe !== null) {
      this.probe.words.recordProbe(statusCode >= 500);
      this.probe = null;
    }
    this.resumeUpstream = resume;
    // One pass: hop-by-hop fields dropped, framing read. The parser already validated
    // every name and value, so only names of the lengths below need a closer look, and
    // a plain `Connection: keep-alive` / `close` (nearly every response) lists no field.
    const out: Buffer[] = [];
    let connectionListed: Set<string> | null = null;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      switch (name.length) {
        case 2:
          if (fieldIs(name, 'te')) continue;
          break;
        case 3:
          if (fieldIs(name, 'via')) {
            this.respVia = rawHeaders[i + 1]!.toString('latin1');
            continue;
          }
          break;
        case 4:
          if (fieldIs(name, 'date')) continue; // uWS always writes its own Date
          break;
        case 7:
          if (fieldIs(name, 'trailer') || fieldIs(name, 'upgrade')) continue;
          break;
        case 10:
          if (fieldIs(name, 'connection')) {
            const v = rawHeaders[i + 1]!;
            if (!fieldIs(v, 'keep-alive') && !fieldIs(v, 'close')) {
              connectionListed ??= new Set();
              for (const t of v.toString('latin1').split(',')) connectionListed.add(t.trim().toLowerCase());
            }
            continue;
          }
          if (fieldIs(name, 'keep-alive')) continue;
          break;
        case 14:
          if (fieldIs(name, 'content-length')) {
            // digits only (response-parser.ts), so Number is exact
            this.total = Number(rawHeaders[i + 1]!.toString('latin1'));
            continue;
          }
          break;
        case 16:
          if (fieldIs(name, 'proxy-connection')) continue;
          break;
        case 17:
          if (fieldIs(name, 'transfer-encoding')) continue;
          break;
      }
      out.push(name, rawHeaders[i + 1]!);
    }
    if (connectionListed !== null) {
      const kept: Buffer[] = [];
      for (let i = 0; i < out.length; i += 2) {
        if (!connectionListed.has(out[i]!.toString('latin1').toLowerCase())) kept.push(out[i]!, out[i + 1]!);
      }
      this.respHeaders = kept;
    } else {
      this.respHeaders = out;
    }
    const rp = this.rt.responsePhase[this.route!.index]!;
    if (rp.length > 0 && !this.responsePhase(rp, statusCode)) return false;
    this.noBody = this.head.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    if (this.cache !== null && this.cache.onHead(statusCode, rawHeaders) === HeadVerdict.Absorb) this.absorbing = true;
    return true;
  }

  /**
   * The route's response-phase policies (plugins), before anything is written: false
   * when one refused the response, which is then answered with its error and the
   * upstream's response abandoned (as when the client breaks a request).
   */
  private responsePhase(list: readonly PolicyInstance[], status: number): boolean {
    const ctx = { access: this.access!, status, upstreamHeaders: this.respHeaders! };
    for (let i = 0; i < list.length; i++) {
      const denied = list[i]!.response!(ctx);
      if (denied !== null) {
        this.fail(denied, false);
        this.abortUpstream();
        return false;
      }
    }
    return true;
  }

  /** Status line and headers. uWS completes the header block with the first body write, so this is called inside that cork. */
  private writeHead(): void {
    const res = this.res;
    this.headSent = true;
    res.writeStatus(statusLine(this.status));
    const h = this.respHeaders!;
    for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, h[i + 1]!);
    const via = this.rt.viaToken;
    if (via !== null) res.writeHeader('via', this.respVia === null ? via : `${this.respVia}, ${via}`);
    res.writeHeader(this.rt.requestIdHeader, this.requestId);
    // uWS closes after answering a request that said `Connection: close` but does not
    // say so in the response; RFC 9112 §9.6 wants the field, so we write it. (When we
    // ask uWS to close — draining — it writes the field itself.)
    if (this.clientClose) res.writeHeader('connection', 'close');
    const extra = this.responseHeaders;
    for (let i = 0; i < extra.length; i += 2) res.writeHeader(extra[i]!, extra[i + 1]!);
  }

  onData(chunk: Buffer): boolean {
    if (this.aborted) return false;
    const res = this.res;
    if (this.noBody || this.absorbing) return true; // a HEAD/204/304 body is a framing error the parser refuses before it gets here
    if (this.cache !== null) this.cache.onBody(chunk);
    this.written += chunk.length;
    if (this.total >= 0) {
      // Known length: tryEnd streams it and writes Content-Length itself.
      let ok = false;
      let done = false;
      const draining = this.closeAfter();
      res.cork(() => {
        if (!this.headSent) {
          this.writeHead();
          if (chunk.length === this.total) {
            // Whole body in one chunk (the common case): end in one call, closing when draining.
            res.end(chunk, draining);
            ok = done = true;
            return;
          }
          if (draining && !this.clientClose) res.writeHeader('connection', 'close');
        }
        this.pendingOffset = res.getWriteOffset();
        [ok, done] = res.tryEnd(chunk, this.total);
      });
      if (done) {
        this.ended = true;
        this.finish(this.status);
        return true;
      }
      if (!ok) {
        this.pending = chunk;
        res.onWritable(this.onWritable);
        return false;
      }
      return true;
    }
    // Unknown length: uWS writes chunked encoding; write() buffers what the socket refuses.
    let ok = false;
    res.cork(() => {
      if (!this.headSent) {
        this.writeHead();
        if (isDraining() && !this.clientClose) res.writeHeader('connection', 'close');
      }
      ok = res.write(chunk);
    });
    if (!ok) {
      res.onWritable(this.onWritable);
      return false;
    }
    return true;
  }

  private readonly onWritable = (offset: number): boolean => {
    if (this.aborted) return true;
    const p = this.pending;
    if (p !== null) {
      const slice = p.subarray(offset - this.pendingOffset);
      this.pendingOffset = offset;
      const [ok, done] = this.res.tryEnd(slice, this.total);
      if (done) {
        this.pending = null;
        this.ended = true;
        this.finish(this.status);
        this.resumeUpstream?.();
        return true;
      }
      if (!ok) return false;
      this.pending = null;
    }
    this.resumeUpstream?.();
    return true;
  }

  /** The attempt's request left its pool (completed or failed): its connection or queue place is free. */
  private releaseConnection(): void {
    const ep = this.holding;
    if (ep === null) return;
    this.holding = null;
    this.upstream!.release(ep);
  }

  onComplete(): void {
    this.upstreamAbort = null;
    this.releaseConnection();
    if (this.cache !== null) {
      // Stores the response (it is complete even if the client went), or answers from the cache when absorbing.
      this.cache.onComplete();
      if (this.absorbing) return;
    }
    if (this.aborted || this.ended) return;
    const res = this.res;
    const draining = this.closeAfter();
    if (this.total >= 0 && !this.noBody) {
      if (this.written === 0) {
        // Content-Length: 0 (a mismatch never gets here: the pool raises it as an error)
        res.cork(() => {
          this.writeHead();
          res.end(undefined, draining);
        });
      } else {
        return; // tryEnd finishes the response when the last byte is out (see onData/onWritable)
      }
    } else {
      res.cork(() => {
        if (!this.headSent) {
          this.writeHead();
          if (this.noBody) {
            // HEAD keeps the upstream's Content-Length; 204 has none; 304 may carry one.
            // XXX: uWS 20.30's endWithoutBody(length) leaves the connection expecting
            // `length` body bytes (the next request on it is refused), and
            // endWithoutBody(undefined) writes "Content-Length: 2^63". So the length goes
            // out as a plain header and endWithoutBody() takes no arguments; it cannot
            // close the connection itself, so when draining we say so in a header and
            // the final app.close() ends it.
            if (this.status !== 204 && this.total >= 0) res.writeHeader('content-length', String(this.total));
            if (draining && !this.clientClose) res.writeHeader('connection', 'close');
            res.endWithoutBody();
            return;
          }
          if (this.written === 0) {
            res.end(undefined, draining); // close-delimited or chunked body that turned out empty
            return;
          }
        }
        res.end();
      });
    }
    this.ended = true;
    this.finish(this.status);
  }

  onError(err: Error & { code?: string }): void {
    this.upstreamAbort = null;
    this.releaseConnection();
    // Before the early return: every pick must be matched by one onDone or the shared
    // in-flight count leaks. -1: we cancelled it (client gone), not the upstream's fault.
    // Per attempt: an earlier attempt that got a head (then failed, and was retried)
    // says nothing about this one.
    if (this.attemptOpen) {
      this.attemptOpen = false;
      const verdict = this.aborted || this.ended ? -1 : 0;
      this.upstream!.onDone(this.endpoint, verdict, performance.now() - this.upstreamStartedAt);
      if (verdict === 0 && this.probe !== null) {
        this.probe.words.recordProbe(true);
        this.probe = null;
      }
    }
    if (this.aborted || this.ended) return;
    countUpstreamError();
    if (this.absorbing) {
      // The cache had already taken the response over (a revalidating 304, or a 5xx it hides).
      this.cache!.onComplete();
      return;
    }
    if (this.headSent) {
      // Some of the response is out: the only honest signal left is to cut the connection.
      this.closeClient();
      return;
    }
    if (this.canRetry(err)) {
      countRetry();
      this.status = 0;
      this.total = -1;
      this.written = 0;
      this.respHeaders = null;
      this.respVia = null;
      this.dispatch();
      return;
    }
    this.bodyStream?.destroy();
    if (this.cache !== null && this.cache.onFailure()) return;
    this.fail(classifyUpstreamError(err), false);
  }

  private canRetry(err: Error & { code?: string }): boolean {
    const up = this.upstream!;
    if (this.attempts > up.retries || up.endpoints.length < 2) return false;
    // A streamed body is not kept, so it cannot be sent twice.
    if (this.bodyMode === BodyMode.Streaming) return false;
    // RFC 9110 §9.2.2: never repeat a non-idempotent request that may have been sent.
    return NOT_SENT.has(err.code ?? '') || IDEMPOTENT.has(this.head.method);
  }

  // ---- bookkeeping --------------------------------------------------------------

  private finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.clearBodyTimer();
    if (this.counted !== null) {
      this.counted.words.leave();
      this.counted = null;
    }
    if (this.probe !== null) {
      // No verdict (client gone, no endpoint, refused locally): another request may probe.
      this.probe.words.returnProbe();
      this.probe = null;
    }
    const w = this.watched;
    if (w !== null) for (let i = 0; i < w.length; i += 2) (w[i] as StatusWatcher).onStatus(w[i + 1] as string, status);
    if (this.cache !== null) this.cache.onFinish();
    requestFinished(status, this.bodyBytes, this.written);
    this.scope.inFlight--;
    const now = performance.now();
    if (this.access !== null) {
      const lp = this.rt.logPhase[this.route!.index]!;
      if (lp.length > 0) {
        const ctx = { access: this.access, status, durationMs: now - this.startedAt };
        for (let i = 0; i < lp.length; i++) lp[i]!.log!(ctx);
      }
    }
    requestLogged(this, status, now);
  }
}

/** The request body as the upstream connection reads it: pushed from uWS onData, pulled by the connection. */
class BodyStream extends Readable {
  constructor(private readonly ex: Exchange) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    this.ex.pullBody();
  }
}
