// One request after the access phase (request-path.ts runs the phases before it): the
// uWS response on one side, a request through the endpoint's connection pool
// (src/worker/upstream) on the other. It is its own UpstreamHandler, so a proxied
// request costs one object and no promise. The file runs in the order a request does:
//   admit    start(), admit()           connection limit, load shedding, breaker and
//                                      concurrency limit, fallback upstream
//   body     request-body.ts            read whole or streamed, only when there is one
//   balance  dispatch()                 pick an endpoint, take its pool's place
//   upstream onConnect() … onError()    the pool's callbacks; retry on another endpoint
//   respond  writeHead(), onData() …    the response to the client, with backpressure;
//            fail(), respondLocal()     or an answer of our own
//   log      finish()                   exactly once: counters, policies' log phase,
//                                      request-log.ts (metrics, access log)
//
// Lifetime rules this file lives by:
// * `res` may be touched only while `!this.aborted` and before the response ended;
//   every write after an await-equivalent (a callback) happens inside res.cork.
// * the client going away aborts the upstream request; the upstream failing after the
//   response head went out closes the client connection (never a clean truncation).
import { Errors, type ErrorSpec } from '../errors.js';
import type { CompiledRoute } from './router.js';
import type { Runtime } from './runtime.js';
import { toWire, type RequestHead } from './request-head.js';
import type { Endpoint, UpstreamSet } from './upstream-set.js';
import type { HttpResponse } from './uws.js';
import { endLocal, writeError } from './error-response.js';
import { statusLine } from './status-lines.js';
import { countConnectionRefused, countRetry, shedByLoad, countUpstreamError, inFlightCount, isDraining, requestFinished } from './worker-state.js';
import type { ListenerScope } from './listener.js';
import { requestLogged, type FinishedRequest } from './request-log.js';
import { Admission, type UpstreamGuard } from './upstream-guard.js';
import type { WorkerFallback } from '../messages.js';
import type { AccessContext, PolicyInstance, StatusWatcher } from '../policies/policy.js';
import { HeadVerdict, type CacheHook } from './cache/cache-hook.js';
import { kBreakerStateMask } from '../shm/control-words.js';
import { BreakerState } from '../shm/layout.js';
import type { UpstreamHandler } from './upstream/upstream-handler.js';
import { classifyUpstreamError, IDEMPOTENT, NOT_SENT } from './upstream-errors.js';
import { readResponseFields, type ResponseFields } from './response-fields.js';
import { RequestBody, type BodyOwner } from './request-body.js';
import type { AccessOutcome } from './access-phase.js';
import { addForwardingHeaders } from './forwarding.js';
import { applyTraceContext } from './trace-context.js';

const peerDecoder = new TextDecoder('latin1');

const CLOSE_TOKEN = /(?:^|,)\s*close\s*(?:,|$)/i;

/**
 * On both overload refusals (connections, upstream queue): 1 s. The condition is a
 * queue that turns over in about one response time, and a new connection may land on
 * another worker (SO_REUSEPORT) or instance; a longer value would idle clients that
 * could be served at once, and a client's own backoff adds to it anyway.
 */
const RETRY_AFTER: readonly string[] = ['retry-after', '1'];

/** SHED_REASONS (src/metrics/snapshot.ts) index + 1 */
const enum ShedReason {
  Concurrency = 1,
  GatewayLoad = 2,
}

export class Exchange implements UpstreamHandler, BodyOwner, ResponseFields, AccessOutcome, FinishedRequest {
  // ---- the request, as the earlier phases left it ---------------------------------
  readonly res: HttpResponse;
  readonly head: RequestHead;
  readonly rt: Runtime;
  /** the listener the request came in on */
  readonly scope: ListenerScope;
  /** performance.now() when the head was read */
  readonly startedAt: number;
  /** the client sent `Connection: close` */
  readonly clientClose: boolean;
  requestId = '';
  // route phase
  route: CompiledRoute | null = null;
  upstream: UpstreamSet | null = null;
  /** the side of a split route the request was sent to (index into route.split.sides); -1 otherwise */
  side = -1;
  /** the fields to forward (the head's, with the forwarding fields added by forward()) */
  headers: string[] = [];
  /** forward() has run: `headers` holds the forwarding fields and the trace context */
  forwarded = false;
  private peerText: string | null = null;
  // access phase (AccessOutcome)
  /** name, value pairs added to whatever response goes out (policies put RateLimit fields here) */
  readonly responseHeaders: string[] = [];
  consumer: string | null = null;
  tenant: string | null = null;
  tier: string | null = null;
  priority = 2;
  watched: unknown[] | null = null;
  access: AccessContext | null = null;
  /** the response cache's interest in this request (src/worker/cache); null on routes without cache */
  cache: CacheHook | null = null;

  // ---- admit ----------------------------------------------------------------------
  // the guard this request is counted in flight by, or holds a half-open probe permit of
  private counted: UpstreamGuard | null = null;
  private probe: UpstreamGuard | null = null;
  /** why it was answered 503 TG_ERR_SHED: a SHED_REASONS index + 1 (0: not shed), and at which priority */
  shedReason = 0;
  shedPriority = 0;

  // ---- body -----------------------------------------------------------------------
  private body: RequestBody | null = null;

  // ---- balance and upstream ---------------------------------------------------------
  private endpoint = -1;
  private attempts = 0;
  /** the current attempt is counted in flight (picked, no response head yet, not failed) */
  private attemptOpen = false;
  /** the current attempt's endpoint while it holds (or waits for) one of its pool's connections */
  private holding: Endpoint | null = null;
  private upstreamAbort: ((err?: Error) => void) | null = null;
  /** performance.now(): upstream dispatch (last attempt), upstream response head */
  upstreamStartedAt = 0;
  upstreamHeadersAt = 0;

  // ---- respond (ResponseFields: what readResponseFields found) ------------------------
  respHeaders: Buffer[] | null = null;
  respVia: string | null = null;
  respDate: Buffer | null = null;
  total = -1; // response Content-Length, -1 when unknown
  private status = 0;
  private noBody = false;
  private written = 0;
  private pending: Buffer | null = null;
  private pendingOffset = 0;
  private resumeUpstream: (() => void) | null = null;
  /** the cache took over the response (HeadVerdict.Absorb): the upstream's body is read and dropped */
  private absorbing = false;
  aborted = false; // client connection gone
  private ended = false; // response fully handed to uWS

  /** The response was fully handed to uWS (the handler then needs no onAborted). */
  get responded(): boolean {
    return this.ended;
  }
  private headSent = false; // status line written to the client

  // ---- log --------------------------------------------------------------------------
  private finished = false; // bookkeeping done (exactly once)

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

  /**
   * The TCP peer's address. uWS asks the kernel for it on every call (getpeername), so
   * it is read once, and only by a request that needs it: a cache hit on a route
   * without policies never does. Only while `res` is alive (before the response ends).
   */
  get peer(): string {
    return (this.peerText ??= peerDecoder.decode(this.res.getRemoteAddressAsText()));
  }

  /**
   * Adds the forwarding fields (X-Forwarded-*, Via, Forwarded, the request id) and the
   * trace context to the fields to forward, once. Before the access phase when the
   * route has policies (they see the request as it will be forwarded), else at the
   * first step that needs them: start(), or a background refresh. A request the cache
   * answers never builds them, as nginx evaluates proxy_set_header only for an
   * upstream request.
   */
  forward(): void {
    if (this.forwarded) return;
    this.forwarded = true;
    const h = this.head;
    addForwardingHeaders(this.peer, h, this.rt, this.requestId);
    applyTraceContext(h.headers, this.rt.config.observability.tracing);
    this.headers = h.headers;
  }

  /** endpoint index of the last attempt, -1 if none was picked */
  get endpointIndex(): number {
    return this.endpoint;
  }

  get requestBytes(): number {
    return this.body === null ? 0 : this.body.bytes;
  }

  get responseBytes(): number {
    return this.written;
  }

  get attemptCount(): number {
    return this.attempts;
  }

  readonly onClientAborted = (): void => {
    if (this.aborted) return;
    this.aborted = true;
    if (this.body !== null) {
      this.body.stopTimer();
      this.body.drop();
    }
    // A request still in the pool's queue is withdrawn too (its onError frees its place).
    const abort = this.upstreamAbort;
    this.upstreamAbort = null;
    abort?.(new Error('client aborted'));
    this.finish(this.ended ? this.status : 0);
  };

  // ---- admit ----------------------------------------------------------------------

  /** Admits, starts reading the request body (if any) and dispatches. Called synchronously from the uWS handler (or after a cache wait). */
  start(): void {
    this.forward();
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
    if (h.wide) toWire(this.headers);
    if (h.contentLength > 0 || h.chunked) {
      const limits = this.rt.config.limits;
      const body = (this.body = new RequestBody(this, h.contentLength, limits.maxBodyBytes, limits.clientBodyTimeout));
      if (!body.streaming) return; // dispatched when the last chunk arrives (bodyReady)
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

  /** 503 TG_ERR_SHED, remembered (reason, priority) for the route's shed counters. */
  private shed(reason: ShedReason, priority: number): void {
    this.shedReason = reason;
    this.shedPriority = priority;
    this.fail(Errors.SHED, false, RETRY_AFTER);
  }

  // ---- body (BodyOwner) -----------------------------------------------------------------

  bodyUnwanted(): boolean {
    return this.aborted || this.ended;
  }

  bodyReady(): void {
    this.dispatch();
  }

  /**
   * The client broke the request while the upstream may be working on it. Answer
   * first, so the upstream error that aborting raises (synchronously) finds the
   * response already ended and does not answer 502 instead.
   */
  abandon(spec: ErrorSpec): void {
    if (this.headSent) {
      this.abortUpstream();
      this.closeClient();
      return;
    }
    this.fail(spec, true);
    this.abortUpstream();
  }

  /** A body we did not read whole would be parsed as the next request: such a response closes. */
  private bodyUnread(): boolean {
    return (this.head.contentLength > 0 || this.head.chunked) && (this.body === null || !this.body.complete);
  }

  // ---- balance --------------------------------------------------------------------------

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
      this.body?.drop();
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
    // headers[0..1] is always the Host pair (see request-head.ts)
    if (this.route!.route.rewriteHost) this.headers[1] = ep.authority;
    const h = this.head;
    const target = h.query.length > 0 ? h.path + '?' + h.query : h.path;
    ep.pool.dispatch(this, h.method, target, this.headers, this.body === null ? null : this.body.payload());
  }

  /** The attempt's request left its pool (completed or failed): its connection or queue place is free. */
  private releaseConnection(): void {
    const ep = this.holding;
    if (ep === null) return;
    this.holding = null;
    this.upstream!.release(ep);
  }

  // ---- upstream (UpstreamHandler) ---------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) {
      abort(new Error('client aborted'));
      return;
    }
    this.upstreamAbort = abort;
  }

  private abortUpstream(): void {
    const abort = this.upstreamAbort;
    this.upstreamAbort = null;
    abort?.(new Error('request abandoned'));
    this.body?.drop();
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
    readResponseFields(rawHeaders, this);
    const rp = this.rt.responsePhase[this.route!.index]!;
    if (rp.length > 0 && !this.responsePhase(rp, statusCode)) return false;
    this.noBody = this.head.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    if (this.cache !== null && this.cache.onHead(statusCode, rawHeaders, this) === HeadVerdict.Absorb) this.absorbing = true;
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

  onData(chunk: Buffer): boolean {
    if (this.aborted) return false;
    if (this.noBody || this.absorbing) return true; // a HEAD/204/304 body is a framing error the parser refuses before it gets here
    if (this.cache !== null) this.cache.onBody(chunk);
    this.written += chunk.length;
    return this.total >= 0 ? this.sendKnownLength(chunk) : this.sendChunked(chunk);
  }

  onComplete(): void {
    this.upstreamAbort = null;
    this.releaseConnection();
    if (this.cache !== null) {
      // Stores the response (it is complete even if the client went), or answers from the cache when absorbing.
      this.cache.onComplete();
      // A known-length response is over for the client with its last body byte, before the upstream's completion: see finish().
      if (this.finished) this.cache.onFinish();
      if (this.absorbing) return;
    }
    if (this.aborted || this.ended) return;
    // With a known length and a body, tryEnd finished the response when its last byte went out (sendKnownLength/onWritable).
    if (this.total >= 0 && !this.noBody && this.written > 0) return;
    this.endResponse();
  }

  onError(err: Error & { code?: string }): void {
    this.upstreamAbort = null;
    this.releaseConnection();
    if (this.finished && this.cache !== null) this.cache.onFinish();
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
    this.body?.drop();
    if (this.cache !== null && this.cache.onFailure()) return;
    this.fail(classifyUpstreamError(err), false);
  }

  private canRetry(err: Error & { code?: string }): boolean {
    const up = this.upstream!;
    if (this.attempts > up.retries || up.endpoints.length < 2) return false;
    // A streamed body is not kept, so it cannot be sent twice.
    if (this.body !== null && this.body.streaming) return false;
    // RFC 9110 §9.2.2: never repeat a non-idempotent request that may have been sent.
    return NOT_SENT.has(err.code ?? '') || IDEMPOTENT.has(this.head.method);
  }

  // ---- respond ----------------------------------------------------------------------------

  /** Status line and headers. uWS completes the header block with the first body write, so this is called inside that cork. */
  private writeHead(): void {
    const res = this.res;
    this.headSent = true;
    res.writeStatus(statusLine(this.status));
    const h = this.respHeaders!;
    for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, h[i + 1]!);
    // Our own fields go in one writeHeader call, the later ones after CRLFs in its value:
    // each call turns its two JS strings into UTF-8 with a malloc apiece inside uWS. No
    // name or value here can hold CR or LF: the upstream's Via passed the response
    // parser, policies write constants, plugins' fields are checked where they are set.
    const via = this.rt.viaToken;
    let name: string;
    let value: string;
    if (via !== null) {
      name = 'via';
      value = `${this.respVia === null ? via : this.respVia + ', ' + via}\r\n${this.rt.requestIdHeader}: ${this.requestId}`;
    } else {
      name = this.rt.requestIdHeader;
      value = this.requestId;
    }
    // uWS closes after answering a request that said `Connection: close` but does not
    // say so in the response; RFC 9112 §9.6 wants the field, so we write it. (When we
    // ask uWS to close — draining — it writes the field itself.)
    if (this.clientClose) value += '\r\nconnection: close';
    const extra = this.responseHeaders;
    for (let i = 0; i < extra.length; i += 2) value += `\r\n${extra[i]!}: ${extra[i + 1]!}`;
    res.writeHeader(name, value);
  }

  /** Known length: tryEnd streams it and writes Content-Length itself. */
  private sendKnownLength(chunk: Buffer): boolean {
    const res = this.res;
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
      // The chunk is borrowed from the upstream read (upstream-handler.ts); uWS took only part of it.
      this.pending = Buffer.from(chunk);
      res.onWritable(this.onWritable);
      return false;
    }
    return true;
  }

  /** Unknown length: uWS writes chunked encoding; write() buffers what the socket refuses. */
  private sendChunked(chunk: Buffer): boolean {
    const res = this.res;
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
  };

  /** The upstream's response is complete and its end is still to be written: an empty or unknown-length body, or none. */
  private endResponse(): void {
    const res = this.res;
    const draining = this.closeAfter();
    res.cork(() => {
      if (this.headSent) {
        res.end(); // the last chunk of a chunked response
        return;
      }
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
      // Content-Length: 0, or a close-delimited or chunked body that turned out empty
      // (a length mismatch never gets here: the pool raises it as an error).
      res.end(undefined, draining);
    });
    this.ended = true;
    this.finish(this.status);
  }

  /** Responds with an error; framing-class errors close the connection. */
  fail(spec: ErrorSpec, close: boolean, extra?: readonly string[]): void {
    if (this.aborted || this.ended) return;
    this.ended = true;
    this.headSent = true;
    this.status = spec.status;
    let headers = this.responseHeaders.length > 0 ? (extra ? [...this.responseHeaders, ...extra] : this.responseHeaders) : extra;
    if (this.clientClose) headers = [...(headers ?? []), 'connection', 'close']; // see writeHead
    writeError(this.res, spec, this.rt.requestIdHeader, this.requestId, close || this.bodyUnread() || this.closeAfter(), headers, this.head.method === 'HEAD');
    this.finish(spec.status);
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
    const close = this.bodyUnread() || this.closeAfter();
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

  /** Someone else (the cache) wrote the whole response: do the bookkeeping. */
  answered(status: number, bodyBytes: number): void {
    this.ended = true;
    this.headSent = true;
    this.status = status;
    this.written = bodyBytes;
    this.finish(status);
  }

  private closeClient(): void {
    if (this.aborted || this.ended) return;
    // Runs onClientAborted synchronously, which does the bookkeeping.
    this.res.close();
  }

  // ---- log ------------------------------------------------------------------------------

  private finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.body?.stopTimer();
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
    // While the upstream attempt is still open the cache may yet store its response
    // (the client's response ends with the last body byte, the upstream's just after):
    // onComplete or onError lets go of it then.
    if (this.cache !== null && this.upstreamAbort === null) this.cache.onFinish();
    requestFinished(status, this.requestBytes, this.written);
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
