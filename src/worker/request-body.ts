// The request body on its way to the upstream: read whole first when it is small and
// has a Content-Length (so a retry can resend it), streamed with backpressure otherwise.
// Created only for a request that has a body. `limits.clientBodyTimeout` bounds each gap.
import { Readable } from 'node:stream';
import { Errors, type ErrorSpec } from '../errors.js';
import type { HttpResponse } from './uws.js';

/** Request bodies up to this size are read whole before dispatch, so a retry can resend them. */
export const BUFFER_BODY_LIMIT = 64 * 1024;

/** What the body needs of its request. */
export interface BodyOwner {
  readonly res: HttpResponse;
  /** the client connection is gone */
  readonly aborted: boolean;
  /** the response is over or the client gone: the rest of the body has nowhere to go */
  bodyUnwanted(): boolean;
  /** a buffered body is complete: send the request */
  bodyReady(): void;
  /** the client broke the request (too large, too slow) */
  abandon(spec: ErrorSpec): void;
}

export class RequestBody {
  /** false: read whole into `chunks` before dispatch */
  readonly streaming: boolean;
  private chunks: Buffer[] | null = null;
  private stream: BodyStream | null = null;
  bytes = 0;
  /** the client sent its last byte */
  complete = false;
  private timer: NodeJS.Timeout | null;
  private clientPaused = false;

  constructor(
    private readonly owner: BodyOwner,
    contentLength: number,
    private readonly maxBytes: number,
    timeoutMs: number,
  ) {
    this.streaming = !(contentLength >= 0 && contentLength <= BUFFER_BODY_LIMIT);
    if (this.streaming) this.stream = new BodyStream(this);
    else this.chunks = [];
    owner.res.onData(this.onClientData);
    this.timer = setTimeout(this.onTimeout, timeoutMs);
  }

  /** What the upstream connection sends: the whole buffer (kept for a retry), the stream, or nothing. */
  payload(): Buffer | Readable | null {
    if (this.streaming) return this.stream;
    const c = this.chunks!;
    if (c.length === 0) return null;
    if (c.length > 1) this.chunks = [Buffer.concat(c)];
    return this.chunks![0]!;
  }

  private readonly onClientData = (chunk: ArrayBuffer, isLast: boolean): void => {
    // After the response ended (an early error, or an upstream that answered before
    // reading everything) the rest of the body has nowhere to go.
    if (this.owner.bodyUnwanted()) return;
    const n = chunk.byteLength;
    this.bytes += n;
    if (this.bytes > this.maxBytes) {
      // Only a chunked body can get here (a too-large Content-Length was refused up front).
      this.owner.abandon(Errors.LIMIT_BODY_TOO_LARGE);
      return;
    }
    if (isLast) {
      this.complete = true;
      this.stopTimer();
    } else {
      this.timer?.refresh();
    }
    // uWS reuses the chunk's memory after this callback: copy it.
    const copy = n > 0 ? Buffer.copyBytesFrom(new Uint8Array(chunk)) : null;
    if (!this.streaming) {
      if (copy) this.chunks!.push(copy);
      if (isLast) this.owner.bodyReady();
      return;
    }
    const s = this.stream!;
    if (copy && !s.push(copy)) {
      // Backpressure towards the client is per socket in uWS (res.pause/resume only).
      this.clientPaused = true;
      this.owner.res.pause();
    }
    if (isLast) s.push(null);
  };

  /** The upstream connection wants more. */
  pull(): void {
    if (this.clientPaused && !this.owner.aborted) {
      this.clientPaused = false;
      this.owner.res.resume();
    }
  }

  private readonly onTimeout = (): void => {
    this.timer = null;
    if (this.owner.bodyUnwanted()) return;
    this.owner.abandon(Errors.CLIENT_BODY_TIMEOUT);
  };

  stopTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** The request will not be sent (again): a streamed body's reader goes. */
  drop(): void {
    this.stream?.destroy();
  }
}

/** The request body as the upstream connection reads it: pushed from uWS onData, pulled by the connection. */
class BodyStream extends Readable {
  constructor(private readonly body: RequestBody) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    this.body.pull();
  }
}
