// One upgraded connection: a uWS WebSocket towards the client, a `ws` client towards the
// upstream, frames relayed both ways. Created by websocket-upgrade.ts once the upstream
// has accepted; the uWS side attaches in its `open` handler, which uWS runs inside
// res.upgrade().
//
// Bounds, per relay (the gateway never buffers without limit):
// * upstream → client: when uWS holds more than `maxBackpressure` for the client, the
//   upstream socket is paused (TCP backpressure reaches the upstream) and resumed by
//   uWS's `drain` once half of it is out. What can still arrive after the pause is the
//   rest of the socket chunk `ws` is parsing: held ≤ maxBackpressure + one message + one
//   read chunk.
// * client → upstream: uWS 20.30 cannot pause a WebSocket's reads (no pause() on its
//   WebSocket), so a client that outruns its upstream by more than `maxBackpressure`
//   is disconnected with 1013 rather than slowed down.
//
// Close codes (RFC 6455 §7.4): a close frame's code and reason pass through both ways.
// Codes that must not be sent on the wire are mapped: no code (1005) goes on as a close
// frame without one; the client's side dropping without a close frame (1006) becomes
// 1001 upstream ("going away"); the upstream dropping without one becomes 1011 to the
// client (the server side hit an unexpected condition), and invalid frames from the
// upstream 1014 (bad gateway, IANA registry). The gateway's own reasons: 1009 message
// over maxMessageSize, 1013 upstream not reading, 1001 idle timeout or shutdown.
import type WebSocket from 'ws';
import type { WorkerWebSocket } from '../messages.js';
import type { UpstreamSet } from './upstream-set.js';
import type { WebSocket as UwsWebSocket } from 'uWebSockets.js';
import { onDrainStart, wsClosed, wsMessageIn, wsMessageOut, wsOpened } from './worker-state.js';

export interface RelayData {
  readonly relay: WebSocketRelay;
}

export const enum CloseCode {
  Normal = 1000,
  GoingAway = 1001,
  NoStatus = 1005,
  Abnormal = 1006,
  TooBig = 1009,
  InternalError = 1011,
  TryAgainLater = 1013,
  BadGateway = 1014,
}

// Close reasons are at most 123 bytes (a control frame's 125 minus the code).
const MAX_REASON = 123;

/** Codes a close frame may carry (what `ws` and RFC 6455 §7.4.2 accept on the wire). */
function sendable(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

const OPEN = 1; // WebSocket.OPEN, without importing ws at run time here
const BINARY = Object.freeze({ binary: true });
const TEXT = Object.freeze({ binary: false });

const live = new Set<WebSocketRelay>();
const SWEEP_MS = 1000;
let sweeper: NodeJS.Timeout | null = null;

// Idle timeouts are swept once a second instead of a timer per relay refreshed on every
// message: a message then costs one boolean store. (uWS's own idleTimeout is one value
// per app, fixed at start, so it could not follow per-route settings or reloads.)
function sweep(): void {
  for (const r of live) r.tick(SWEEP_MS);
  if (live.size === 0 && sweeper !== null) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

onDrainStart(() => {
  for (const r of [...live]) r.closeBoth(CloseCode.GoingAway, 'gateway shutting down');
});

export class WebSocketRelay {
  private client: UwsWebSocket<RelayData> | null = null;
  private opened = false;
  private clientOpen = false;
  /** the gateway ended the client side itself: its close handler must not echo upstream */
  private clientEnding = false;
  private upstreamClosing = false;
  private upstreamDone = false;
  private upstreamPaused = false;
  /** what made `ws` give up on the upstream (invalid frame, message too big) */
  private upstreamError: string | null = null;
  private active = true;
  private idleMs = 0;
  private finished = false;

  constructor(
    private readonly upstream: WebSocket,
    private readonly cfg: WorkerWebSocket,
    private readonly up: UpstreamSet,
    private readonly endpoint: number,
  ) {
    upstream.on('message', this.fromUpstream);
    upstream.on('close', this.onUpstreamClose);
    upstream.on('error', this.onUpstreamError);
    upstream.on('ping', this.touch);
    upstream.on('pong', this.touch);
    live.add(this);
    sweeper ??= setInterval(sweep, SWEEP_MS).unref();
    wsOpened();
  }

  // ---- client side (uWS handlers) ---------------------------------------------------

  /** whether uWS ran `open` (false after res.upgrade: the client socket was already gone) */
  get attached(): boolean {
    return this.opened;
  }

  clientOpened(ws: UwsWebSocket<RelayData>): void {
    this.opened = true;
    this.client = ws;
    this.clientOpen = true;
    // The upstream may have closed between its handshake and this call.
    if (this.upstreamDone) this.endClient(CloseCode.InternalError, 'upstream connection lost');
  }

  fromClient(message: ArrayBuffer, isBinary: boolean): void {
    // Also while the upstream's own close is under way: ws would count what it cannot send.
    if (this.upstreamClosing || this.upstream.readyState !== OPEN) return;
    this.active = true;
    const n = message.byteLength;
    if (n > this.cfg.maxMessageSize) {
      this.closeBoth(CloseCode.TooBig, 'message too big');
      return;
    }
    wsMessageIn(n);
    // uWS neuters `message` when this handler returns; ws may still be queueing it.
    this.upstream.send(message.slice(0), isBinary ? BINARY : TEXT);
    if (this.upstream.bufferedAmount > this.cfg.maxBackpressure) {
      // XXX: no way to pause a uWS 20.30 WebSocket's reads, so the only bound left is
      // to disconnect. The upstream is cut (terminate), dropping what it has not read.
      this.endClient(CloseCode.TryAgainLater, 'upstream is not reading fast enough');
      this.upstreamClosing = true;
      this.upstream.terminate();
    }
  }

  clientDrained(): void {
    if (this.upstreamPaused && this.client !== null && this.client.getBufferedAmount() <= this.cfg.maxBackpressure / 2) this.resumeUpstream();
  }

  clientClosed(code: number, message: ArrayBuffer): void {
    this.clientOpen = false;
    this.client = null;
    // A paused upstream would never deliver its close frame: read on, discarding.
    this.resumeUpstream();
    if (!this.clientEnding && !this.upstreamClosing) {
      this.upstreamClosing = true;
      if (code === 0 || code === CloseCode.NoStatus) this.upstream.close();
      else if (sendable(code)) this.upstream.close(code, Buffer.from(message.slice(0, MAX_REASON)));
      else this.upstream.close(CloseCode.GoingAway, 'client connection lost');
    }
    this.maybeFinish();
  }

  readonly touch = (): void => {
    this.active = true;
  };

  // ---- upstream side (ws events) ----------------------------------------------------

  private readonly fromUpstream = (data: WebSocket.RawData, isBinary: boolean): void => {
    const c = this.client;
    if (c === null || !this.clientOpen || this.clientEnding) return;
    this.active = true;
    const buf = data as Buffer; // binaryType 'nodebuffer' (the default): always one Buffer
    wsMessageOut(buf.length);
    // maxBackpressure 0 in the uWS behaviour: send never drops, it buffers and says so.
    c.send(buf, isBinary);
    if (!this.upstreamPaused && c.getBufferedAmount() > this.cfg.maxBackpressure) {
      this.upstreamPaused = true;
      this.upstream.pause();
    }
  };

  private readonly onUpstreamError = (err: Error & { code?: string }): void => {
    this.upstreamError = err.code ?? 'error';
  };

  private readonly onUpstreamClose = (code: number, reason: Buffer): void => {
    this.upstreamDone = true;
    this.upstreamClosing = true;
    if (this.clientOpen && !this.clientEnding) {
      if (this.upstreamError === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.endClient(CloseCode.TooBig, 'message too big');
      else if (this.upstreamError !== null) this.endClient(CloseCode.BadGateway, 'upstream sent an invalid frame');
      else if (code === CloseCode.NoStatus) this.endClient(CloseCode.NoStatus, '');
      else if (code === CloseCode.Abnormal || !sendable(code)) this.endClient(CloseCode.InternalError, 'upstream connection lost');
      else this.endClient(code, reason.subarray(0, MAX_REASON));
    }
    this.maybeFinish();
  };

  // ---- both ---------------------------------------------------------------------------

  /** The gateway ends the relay: both sides get `code`. */
  closeBoth(code: number, reason: string): void {
    this.endClient(code, reason);
    this.resumeUpstream();
    if (!this.upstreamClosing) {
      this.upstreamClosing = true;
      this.upstream.close(code, reason);
    }
  }

  /** Called by the sweep every `ms`. */
  tick(ms: number): void {
    if (this.active) {
      this.active = false;
      this.idleMs = 0;
      return;
    }
    this.idleMs += ms;
    if (this.cfg.idleTimeout > 0 && this.idleMs >= this.cfg.idleTimeout) this.closeBoth(CloseCode.GoingAway, 'idle timeout');
  }

  private resumeUpstream(): void {
    if (!this.upstreamPaused) return;
    this.upstreamPaused = false;
    this.upstream.resume();
  }

  private endClient(code: number, reason: string | Buffer): void {
    const c = this.client;
    if (c === null || !this.clientOpen || this.clientEnding) return;
    this.clientEnding = true;
    // end() runs the close handler synchronously; with no code uWS sends an empty close frame.
    if (code === CloseCode.NoStatus) c.end();
    else c.end(code, reason);
  }

  private maybeFinish(): void {
    if (this.finished || this.clientOpen || !this.upstreamDone) return;
    // A relay whose client never attached (uWS refused the upgrade) ends with its upstream.
    this.finished = true;
    live.delete(this);
    this.up.releaseRelay(this.endpoint);
    wsClosed();
  }
}
