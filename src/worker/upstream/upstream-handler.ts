// The contract between the hot-path upstream client (h1-pool.ts) and whoever sent a
// request through it (the exchange, a cache refresh). It is undici's callback-style
// DispatchHandler, narrowed to what the proxy uses, so the request path reads the same
// whichever client carries it.
import type { Readable } from 'node:stream';

export interface UpstreamHandler {
  /**
   * The request is owned by a connection (or waits in the pool's queue): `abort` cancels
   * it from then on and calls onError synchronously. May be called again (with a new
   * `abort`) when the request moves to another connection.
   */
  onConnect(abort: (err?: Error) => void): void;
  /** The final response head (1xx are absorbed); `rawHeaders` are the handler's to keep. False: hold the body until `resume()`. */
  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean;
  /**
   * Body bytes: a view of the connection's read buffer, overwritten by the next read,
   * so a handler that keeps any of it copies it. False: hold further body bytes until `resume()`.
   */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(err: UpstreamError | (Error & { code?: string })): void;
}

export type RequestBody = Buffer | Readable | null;

/** Stable reasons a request through the pool failed, beside the socket's own (ECONNREFUSED, ECONNRESET, …). */
export const UpstreamErrorCode = {
  ConnectTimeout: 'TG_UP_CONNECT_TIMEOUT',
  HeadersTimeout: 'TG_UP_HEADERS_TIMEOUT',
  BodyTimeout: 'TG_UP_BODY_TIMEOUT',
  /** the response could not be read as HTTP/1.1 (response-parser.ts says why) */
  Protocol: 'TG_UP_PROTOCOL',
  /** the upstream closed (or reset) the connection before the response ended */
  Closed: 'TG_UP_CLOSED',
  /** the sender cancelled it */
  Aborted: 'TG_UP_ABORTED',
  /** the pool was destroyed with the request in it */
  Destroyed: 'TG_UP_DESTROYED',
} as const;
export type UpstreamErrorCode = (typeof UpstreamErrorCode)[keyof typeof UpstreamErrorCode];

export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
  ) {
    super(message);
  }
}
