// What an upstream failure means for the client: the error it is answered with, and
// whether the request may be sent again (RFC 9110 §9.2.2). Shared by proxied requests
// and WebSocket handshakes.
import { Errors, type ErrorSpec } from '../errors.js';
import { UpstreamErrorCode } from './upstream/upstream-handler.js';

/** Methods RFC 9110 §9.2.2 lets a client (and so a proxy) repeat. */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors that mean no byte of the request reached the upstream. */
export const NOT_SENT: ReadonlySet<string> = new Set(['ECONNREFUSED', UpstreamErrorCode.ConnectTimeout, 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export function classifyUpstreamError(err: Error & { code?: string }): ErrorSpec {
  const code = err.code ?? '';
  switch (code) {
    case UpstreamErrorCode.ConnectTimeout:
      return Errors.UPSTREAM_CONNECT_TIMEOUT;
    case UpstreamErrorCode.HeadersTimeout:
    case UpstreamErrorCode.BodyTimeout:
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
    case 'ECONNRESET':
    case 'EPIPE':
      return Errors.UPSTREAM_RESET;
    default:
      // TG_UP_PROTOCOL (response-parser.ts), HPE_* (the WebSocket handshake's parser), and
      // anything unforeseen: the upstream's bytes could not be read as an HTTP response.
      return Errors.UPSTREAM_PROTOCOL;
  }
}
