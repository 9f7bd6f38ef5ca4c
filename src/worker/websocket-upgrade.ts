// The WebSocket handshake (RFC 6455 §4) for routes with `websocket`: the uWS `upgrade`
// handler reads the head, routes, runs the access policies and opens the upstream with
// `ws`; only once the upstream has switched protocols does the client get its 101
// (res.upgrade), answered with the subprotocol the upstream chose. An upstream that
// fails or refuses is answered with an HTTP error, like any proxied request.
//
// Requests this route table does not send to a WebSocket route fall through
// (req.setYield) to the HTTP handler, which proxies them as today: Upgrade is
// hop-by-hop and stripped, the request goes upstream as a plain GET.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import { Errors, type ErrorSpec } from '../errors.js';
import type { WorkerConfig, WorkerWebSocket } from '../messages.js';
import { writeError, writeLocal } from './error-response.js';
import { LocalResponse, type AccessContext, type StatusWatcher } from '../policies/policy.js';
import { accessPhase } from './access-phase.js';
import { addForwardingHeaders, clientIp } from './forwarding.js';
import type { RuntimeRef } from './request-path.js';
import { chooseSide } from './split-choice.js';
// NOT_SENT: nothing reached the upstream, so another endpoint may be tried.
import { classifyUpstreamError, NOT_SENT } from './upstream-errors.js';
import { normalizePath } from './path-normalize.js';
import { RequestHead, readRequestHead, toWire } from './request-head.js';
import type { CompiledRoute } from './router.js';
import type { Runtime } from './runtime.js';
import { statusLine } from './status-lines.js';
import { applyTraceContext } from './trace-context.js';
import type { UpstreamSet } from './upstream-set.js';
import type { HttpRequest, HttpResponse } from './uws.js';
import type { us_socket_context_t, WebSocketBehavior } from 'uWebSockets.js';
import { WebSocketRelay, type RelayData } from './websocket-relay.js';
import { countRetry, countUpstreamError, requestFinished, requestStarted } from './worker-state.js';

const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,200}$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const decoder = new TextDecoder('latin1');

/** A refusal body larger than this is not relayed (502 instead): it is held whole. */
const REFUSAL_BODY_LIMIT = 64 * 1024;


// Response fields of the upstream's 101 or refusal that belong to its connection, or that
// uWS writes itself.
const SKIP_RESPONSE = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'content-length',
  'date',
  'te',
  'trailer',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

/** The `ws` client, loaded once per thread, by the first generation with a WebSocket route. */
let WebSocketClient: typeof WebSocket | null = null;

export function workerConfigHasWebSocket(config: WorkerConfig): boolean {
  return config.routes.some((r) => r.websocket !== null);
}

/** Loads `ws` (≈1.5 MiB of heap) when this generation has a WebSocket route; a worker without one never does. */
export async function loadWebSocketClientFor(config: WorkerConfig): Promise<void> {
  if (WebSocketClient === null && workerConfigHasWebSocket(config)) WebSocketClient = (await import('ws')).default;
}

/** The uWS behaviour for `app.ws('/*', …)`: one per worker, settings fixed at start. */
export function websocketBehavior(ref: RuntimeRef): WebSocketBehavior<RelayData> {
  // The worker-wide ceiling; a route's smaller maxMessageSize is checked per message,
  // so it can answer 1009 (uWS itself would drop the connection without a close frame).
  // A reload cannot raise it (the primary says a restart is needed): routes are held to it.
  const ceiling = ref.current.config.limits.maxWebSocketMessageBytes;
  return {
    maxPayloadLength: ceiling,
    // 0: uWS never drops a message; relays bound their buffering themselves.
    maxBackpressure: 0,
    // 0: per-route idle timeouts run in the relay's sweep.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => upgrade(ref, ceiling, res, req, context),
    open: (ws) => ws.getUserData().relay.clientOpened(ws),
    message: (ws, message, isBinary) => ws.getUserData().relay.fromClient(message, isBinary),
    drain: (ws) => ws.getUserData().relay.clientDrained(),
    close: (ws, code, message) => ws.getUserData().relay.clientClosed(code, message),
    ping: (ws) => ws.getUserData().relay.touch(),
    pong: (ws) => ws.getUserData().relay.touch(),
  };
}

const peerDecoder = new TextDecoder('latin1');

function upgrade(ref: RuntimeRef, ceiling: number, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  const rt = ref.current;
  const head = new RequestHead();
  const bad = readRequestHead(req, head, rt.config.limits, rt.requestIdHeader);
  // Routed by the normalised path, as HTTP requests are, so a WebSocket route and its
  // policies cannot be reached or dodged by spelling the path differently.
  const path = bad === null ? normalizePath(head.path, rt.pathOptions) : null;
  const peer = typeof path === 'string' ? peerDecoder.decode(res.getRemoteAddressAsText()) : '';
  const route = typeof path === 'string' ? rt.router.match(head.host, head.method, path, head, peer) : null;
  const maintenance = route?.route.maintenance ?? null;
  if (route === null || route.route.websocket === null || (maintenance !== null && rt.flags.on(maintenance, head, peer))) {
    // Not ours (or a bad head or path, or in maintenance): the HTTP handler answers it exactly as it always has.
    req.setYield(true);
    return;
  }
  head.path = path as string;
  // The request object dies when this handler returns: copy what the 101 needs.
  const ws = route.route.websocket;
  const cfg = ws.maxMessageSize <= ceiling ? ws : { ...ws, maxMessageSize: ceiling };
  const hs = new Handshake(res, head, rt, route, cfg, context, req.getHeader('sec-websocket-key'));
  res.onAborted(hs.onClientAborted);
  requestStarted();
  hs.requestId = head.requestId !== null && REQUEST_ID.test(head.requestId) ? head.requestId : randomUUID();
  try {
    if (req.getHeader('sec-websocket-version') !== '13') {
      // RFC 6455 §4.4: say which version we speak.
      hs.fail(Errors.WEBSOCKET_VERSION, ['sec-websocket-version', '13']);
      return;
    }
    const protocols = parseProtocols(req.getHeader('sec-websocket-protocol'));
    if (protocols === null) {
      hs.fail(Errors.WEBSOCKET_HANDSHAKE);
      return;
    }
    hs.protocols = protocols;
    const peer = decoder.decode(res.getRemoteAddressAsText());
    const split = route.route.split;
    hs.upstream = rt.upstreams[split === null ? route.route.upstream : split.sides[chooseSide(rt.splits, split, head.headers, split.sticky?.on === 'client-ip' ? clientIp(peer, head.forwardedFor, rt) : peer)]!]!;
    addForwardingHeaders(peer, head, rt, hs.requestId);
    applyTraceContext(head.headers, rt.config.observability.tracing);
    const denied = accessPhase(rt, route, head, peer, hs.responseHeaders, hs);
    if (denied !== null) {
      if (denied instanceof LocalResponse) hs.respondLocal(denied);
      else hs.fail(denied);
      return;
    }
    if (head.wide) toWire(head.headers);
    hs.connect();
  } catch (err) {
    process.emitWarning(err as Error);
    hs.fail(Errors.INTERNAL);
  }
}

/** "chat, superchat" → ["chat", "superchat"]; null when not a list of distinct tokens. */
function parseProtocols(v: string): string[] | null {
  if (v.length === 0) return [];
  const out: string[] = [];
  for (const p of v.split(',')) {
    const t = p.trim();
    if (!TOKEN.test(t) || out.includes(t)) return null;
    out.push(t);
  }
  return out;
}

/** The upstream handshake's request fields: end-to-end ones (ws adds its own Sec-WebSocket-*), duplicates joined. */
function upstreamHeaders(h: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    if (name.startsWith('sec-websocket-')) continue;
    const prev = out[name];
    out[name] = prev === undefined ? h[i + 1]! : `${prev}${name === 'cookie' ? '; ' : ', '}${h[i + 1]!}`;
  }
  return out;
}

const enum State {
  Connecting,
  Done,
}

class Handshake {
  requestId = '';
  protocols: string[] = [];
  upstream: UpstreamSet | null = null;
  readonly responseHeaders: string[] = [];
  // what the access phase identified (AccessOutcome); a ban's watcher hears refused handshakes
  consumer: string | null = null;
  tenant: string | null = null;
  tier: string | null = null;
  // XXX: relays are not shed (no guard admits them), so a tier's priority does not apply to them
  priority = 2;
  watched: unknown[] | null = null;
  access: AccessContext | null = null;
  private state = State.Connecting;
  private aborted = false;
  private endpoint = -1;
  /** the pick of this attempt has had its one onDone (or passed to the relay) */
  private settled = true;
  private attempts = 0;
  private startedAt = 0;
  private ws: WebSocket | null = null;
  private upgradeHeaders: string[] = [];

  constructor(
    private readonly res: HttpResponse,
    private readonly head: RequestHead,
    private readonly rt: Runtime,
    private readonly route: CompiledRoute,
    private readonly cfg: WorkerWebSocket,
    private readonly context: us_socket_context_t,
    private readonly key: string,
  ) {}

  readonly onClientAborted = (): void => {
    if (this.aborted) return;
    this.aborted = true;
    if (this.state !== State.Connecting) return;
    this.state = State.Done;
    this.settle(-1);
    this.ws?.on('error', () => {}).terminate();
    requestFinished(0, 0, 0);
  };

  /** A policy's own answer (a plugin's respond()) instead of the upgrade. */
  respondLocal(r: LocalResponse): void {
    this.state = State.Done;
    if (this.aborted) return;
    writeLocal(this.res, r.status, r.body, this.responseHeaders.length > 0 ? [...r.headers, ...this.responseHeaders] : r.headers, this.rt.requestIdHeader, this.requestId, false);
    requestFinished(r.status, 0, 0);
  }

  fail(spec: ErrorSpec, extra?: readonly string[]): void {
    this.state = State.Done;
    if (this.aborted) return;
    const headers = this.responseHeaders.length > 0 ? (extra ? [...this.responseHeaders, ...extra] : this.responseHeaders) : extra;
    writeError(this.res, spec, this.rt.requestIdHeader, this.requestId, false, headers);
    // XXX: only refusals reach a ban's watcher; an upgrade the upstream answers is a relay, with no final status to count.
    const w = this.watched;
    if (w !== null) for (let i = 0; i < w.length; i += 2) (w[i] as StatusWatcher).onStatus(w[i + 1] as string, spec.status);
    requestFinished(spec.status, 0, 0);
  }

  connect(): void {
    const up = this.upstream!;
    const idx = up.pick(this.endpoint, this.head.headers);
    if (idx < 0) {
      this.fail(Errors.UPSTREAM_NO_ENDPOINT);
      return;
    }
    this.endpoint = idx;
    this.attempts++;
    up.onPicked(idx);
    this.settled = false;
    this.startedAt = performance.now();
    const ep = up.endpoints[idx]!;
    if (this.route.route.rewriteHost) this.head.headers[1] = ep.authority;
    const q = this.head.query;
    // Only a generation with a WebSocket route routes here, and it loaded the client first.
    const ws = new WebSocketClient!(`ws://${ep.authority}${this.head.path}${q.length > 0 ? `?${q}` : ''}`, this.protocols, {
      headers: upstreamHeaders(this.head.headers),
      // A relay passes messages on as they are; compressing would cost CPU twice per hop.
      perMessageDeflate: false,
      maxPayload: this.cfg.maxMessageSize,
      handshakeTimeout: up.timeouts.connect + up.timeouts.response,
      followRedirects: false,
    });
    this.ws = ws;
    ws.on('upgrade', this.onUpgrade);
    ws.on('open', this.onOpen);
    ws.on('unexpected-response', this.onRefused);
    ws.on('error', this.onError);
  }

  private readonly onUpgrade = (response: IncomingMessage): void => {
    this.upgradeHeaders = endToEnd(response.rawHeaders);
  };

  private readonly onOpen = (): void => {
    const ws = this.ws!;
    if (this.state !== State.Connecting || this.aborted) {
      ws.terminate(); // onError stays attached and ignores what follows
      return;
    }
    this.state = State.Done;
    const up = this.upstream!;
    // The relay keeps the endpoint in flight and releases it when it closes.
    this.settled = true;
    up.onHandshake(this.endpoint, performance.now() - this.startedAt);
    const relay = new WebSocketRelay(ws, this.cfg, up, this.endpoint);
    ws.off('error', this.onError); // the relay has its own now
    const res = this.res;
    res.cork(() => {
      // Fields must follow an explicit 101 status, or uWS writes "200 OK" first.
      res.writeStatus('101 Switching Protocols');
      const h = this.upgradeHeaders;
      let via: string | null = null;
      for (let i = 0; i < h.length; i += 2) {
        if (h[i] === 'via') via = h[i + 1]!;
        else res.writeHeader(h[i]!, h[i + 1]!);
      }
      const token = this.rt.viaToken;
      if (token !== null) res.writeHeader('via', via === null ? token : `${via}, ${token}`);
      res.writeHeader(this.rt.requestIdHeader, this.requestId);
      const extra = this.responseHeaders;
      for (let i = 0; i < extra.length; i += 2) res.writeHeader(extra[i]!, extra[i + 1]!);
      // No extensions: permessage-deflate is not offered upstream, so none is accepted here.
      res.upgrade<RelayData>({ relay }, this.key, ws.protocol, '', this.context);
    });
    requestFinished(101, 0, 0);
    if (!relay.attached) relay.closeBoth(1001, 'client connection lost');
  };

  /** The upstream answered with something other than 101. */
  private readonly onRefused = (req: unknown, response: IncomingMessage): void => {
    if (this.state !== State.Connecting) {
      response.destroy();
      return;
    }
    const status = response.statusCode ?? 0;
    this.settle(status);
    if (status < 400) {
      // A 2xx/3xx to an upgrade is no WebSocket server: say so in our own words.
      this.giveUp();
      this.fail(Errors.UPSTREAM_WEBSOCKET_REFUSED);
      return;
    }
    // 4xx/5xx: the upstream's own refusal (authentication, overload) reaches the client
    // as it was sent, like a proxied response.
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (c: Buffer) => {
      if (this.state !== State.Connecting) return;
      size += c.length;
      if (size > REFUSAL_BODY_LIMIT) {
        this.giveUp();
        this.fail(Errors.UPSTREAM_WEBSOCKET_REFUSED);
        return;
      }
      chunks.push(c);
    });
    response.on('end', () => {
      if (this.state !== State.Connecting) return;
      this.giveUp();
      if (this.aborted) return;
      const h = endToEnd(response.rawHeaders);
      const res = this.res;
      res.cork(() => {
        res.writeStatus(statusLine(status));
        for (let i = 0; i < h.length; i += 2) res.writeHeader(h[i]!, h[i + 1]!);
        res.writeHeader(this.rt.requestIdHeader, this.requestId);
        res.end(Buffer.concat(chunks));
      });
      requestFinished(status, 0, 0);
    });
    response.on('error', () => {
      if (this.state !== State.Connecting) return;
      this.giveUp();
      this.fail(Errors.UPSTREAM_RESET);
    });
  };

  private readonly onError = (err: Error & { code?: string }): void => {
    if (this.state !== State.Connecting) return;
    const code = err.code ?? '';
    this.settle(0);
    countUpstreamError();
    const up = this.upstream!;
    if (NOT_SENT.has(code) && this.attempts <= up.retries && up.endpoints.length > 1) {
      countRetry();
      this.ws = null;
      this.connect();
      return;
    }
    this.state = State.Done;
    this.fail(classify(err));
  };

  /** The one onDone for this attempt's pick: `status` 0 failed, -1 cancelled (no health judgement). */
  private settle(status: number): void {
    if (this.settled) return;
    this.settled = true;
    this.upstream!.onDone(this.endpoint, status, performance.now() - this.startedAt);
  }

  /** Ends the upstream attempt without letting its error/close events act. */
  private giveUp(): void {
    this.state = State.Done;
    const ws = this.ws!;
    ws.off('error', this.onError);
    ws.on('error', () => {}); // terminate() in CONNECTING emits one
    ws.terminate();
  }
}

/** The HTTP answer for a failed upstream handshake: undici's codes mean what they mean for a request; ws adds two it reports by message only. */
function classify(err: Error & { code?: string }): ErrorSpec {
  if (err.code === undefined) {
    if (err.message.includes('handshake has timed out')) return Errors.UPSTREAM_TIMEOUT;
    if (err.message === 'socket hang up') return Errors.UPSTREAM_RESET;
  }
  // Connect errors, resets; anything else (a bad Sec-WebSocket-Accept, a subprotocol we
  // did not offer) is a protocol error, as an unreadable HTTP response is.
  return classifyUpstreamError(err);
}

/** Lower-cased name/value pairs of a response, minus the connection's own fields. */
function endToEnd(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!SKIP_RESPONSE.has(name)) out.push(name, raw[i + 1]!);
  }
  return out;
}
