// The one catalogue of tidegate's error codes. Callers branch on `code`, never on
// the message. Every code a client can see is listed in the README's error table;
// test/unit/errors.test.ts keeps the two in step.

export interface ErrorSpec {
  readonly code: string;
  readonly status: number;
  readonly message: string;
}

function spec(code: string, status: number, message: string): ErrorSpec {
  return Object.freeze({ code, status, message });
}

/** Errors a client can receive, as JSON `{ "error": { "code", "message" } }`. */
export const Errors = Object.freeze({
  // 400 (and one 501): request framing (RFC 9112 §6); the connection is always closed after these.
  FRAMING_CL_AND_TE: spec('TG_ERR_FRAMING_CL_AND_TE', 400, 'both Content-Length and Transfer-Encoding are present'),
  FRAMING_CONTENT_LENGTH: spec('TG_ERR_FRAMING_CONTENT_LENGTH', 400, 'Content-Length is invalid or appears more than once'),
  FRAMING_TRANSFER_ENCODING: spec('TG_ERR_FRAMING_TRANSFER_ENCODING', 400, 'Transfer-Encoding must be exactly "chunked"'),
  FRAMING_TE_NOT_IMPLEMENTED: spec('TG_ERR_FRAMING_TE_NOT_IMPLEMENTED', 501, 'a transfer coding other than chunked is not supported'),
  FRAMING_HOST: spec('TG_ERR_FRAMING_HOST', 400, 'exactly one valid Host header is required'),
  FRAMING_HEADER_VALUE: spec('TG_ERR_FRAMING_HEADER_VALUE', 400, 'a header value contains a control character'),
  FRAMING_TARGET: spec('TG_ERR_FRAMING_TARGET', 400, 'the request target must be an absolute path'),
  // 400: the path cannot be normalised (the connection stays open: the framing is sound).
  PATH_INVALID_ENCODING: spec('TG_ERR_PATH_INVALID_ENCODING', 400, 'the path holds a malformed percent-encoding'),
  PATH_NUL: spec('TG_ERR_PATH_NUL', 400, 'the path holds an encoded NUL (%00)'),
  PATH_ESCAPED_SLASH: spec('TG_ERR_PATH_ESCAPED_SLASH', 400, 'the path holds an escaped slash (%2F or %5C), refused by proxy.escapedSlashes'),
  // Limits.
  LIMIT_URL_TOO_LONG: spec('TG_ERR_LIMIT_URL_TOO_LONG', 414, 'the request target is longer than limits.maxUrlBytes'),
  LIMIT_HEADERS_TOO_LARGE: spec('TG_ERR_LIMIT_HEADERS_TOO_LARGE', 431, 'the header block is larger than limits.maxHeaderBytes'),
  LIMIT_HEADER_COUNT: spec('TG_ERR_LIMIT_HEADER_COUNT', 431, 'the request has more headers than limits.maxHeaderCount'),
  LIMIT_BODY_TOO_LARGE: spec('TG_ERR_LIMIT_BODY_TOO_LARGE', 413, 'the request body is larger than limits.maxBodyBytes'),
  LIMIT_CONNECTIONS: spec('TG_ERR_LIMIT_CONNECTIONS', 503, 'this worker has limits.maxConnections connections with a request in progress'),
  CLIENT_BODY_TIMEOUT: spec('TG_ERR_CLIENT_BODY_TIMEOUT', 408, 'the client sent no body data within limits.clientBodyTimeout'),
  // Routing.
  ROUTE_NOT_FOUND: spec('TG_ERR_ROUTE_NOT_FOUND', 404, 'no route matches this host, path and method'),
  // Upstream.
  UPSTREAM_NO_ENDPOINT: spec('TG_ERR_UPSTREAM_NO_ENDPOINT', 503, 'the upstream has no endpoint available'),
  UPSTREAM_OVERLOADED: spec('TG_ERR_UPSTREAM_OVERLOADED', 503, 'too many requests are waiting for this upstream (pool.maxPending)'),
  UPSTREAM_CONNECT: spec('TG_ERR_UPSTREAM_CONNECT', 502, 'could not connect to the upstream'),
  UPSTREAM_CONNECT_TIMEOUT: spec('TG_ERR_UPSTREAM_CONNECT_TIMEOUT', 504, 'connecting to the upstream timed out'),
  UPSTREAM_RESET: spec('TG_ERR_UPSTREAM_RESET', 502, 'the upstream closed the connection before responding'),
  UPSTREAM_TIMEOUT: spec('TG_ERR_UPSTREAM_TIMEOUT', 504, 'the upstream did not respond within timeouts.response'),
  UPSTREAM_PROTOCOL: spec('TG_ERR_UPSTREAM_PROTOCOL', 502, 'the upstream sent an invalid HTTP response'),
  // WebSocket upgrades (routes with `websocket`).
  WEBSOCKET_VERSION: spec('TG_ERR_WEBSOCKET_VERSION', 426, 'only WebSocket version 13 is supported'),
  WEBSOCKET_HANDSHAKE: spec('TG_ERR_WEBSOCKET_HANDSHAKE', 400, 'the WebSocket handshake is invalid (Sec-WebSocket-Protocol must be a list of distinct tokens)'),
  UPSTREAM_WEBSOCKET_REFUSED: spec('TG_ERR_UPSTREAM_WEBSOCKET_REFUSED', 502, 'the upstream answered the WebSocket upgrade without switching protocols'),
  // Adaptive protection (upstreams.<name>.breaker, .concurrency).
  CIRCUIT_OPEN: spec('TG_ERR_CIRCUIT_OPEN', 503, "the upstream's circuit breaker is open"),
  SHED: spec('TG_ERR_SHED', 503, "the upstream is at its concurrency limit"),
  // Response cache (routes with `cache`).
  CACHE_NOT_CACHED: spec('TG_ERR_CACHE_NOT_CACHED', 504, 'only-if-cached: the response is not in the cache'),
  // Access policies.
  RATE_LIMITED: spec('TG_ERR_RATE_LIMITED', 429, 'rate limit exceeded'),
  RATE_LIMIT_UNAVAILABLE: spec('TG_ERR_RATE_LIMIT_UNAVAILABLE', 503, 'the cluster rate-limit store (Redis) is unreachable and redis.onFailure is deny'),
  AUTH_REQUIRED: spec('TG_ERR_AUTH_REQUIRED', 401, 'a valid credential is required (API key or bearer token)'),
  FORBIDDEN: spec('TG_ERR_FORBIDDEN', 403, 'the client is not allowed on this route'),
  BANNED: spec('TG_ERR_BANNED', 403, 'the client is banned for a while after repeated refusals'),
  AUTH_UNAVAILABLE: spec('TG_ERR_AUTH_UNAVAILABLE', 503, 'the keys to check the credential are not loaded yet'),
  // Plugins (config `plugins`, the `plugin` policy).
  PLUGIN: spec('TG_ERR_PLUGIN', 500, 'a plugin failed while handling this request'),
  // Anything else; the message never carries internals.
  INTERNAL: spec('TG_ERR_INTERNAL', 500, 'internal gateway error'),
});

export type ErrorName = keyof typeof Errors;

/**
 * Errors of the admin API (its own port, never seen by proxied clients), as
 * `{ "error": { "code", "message", "issues"? } }`; the README's admin error table lists them.
 */
export const AdminErrors = Object.freeze({
  UNAUTHORIZED: spec('TG_ERR_ADMIN_UNAUTHORIZED', 401, 'a valid bearer token is required'),
  FORBIDDEN: spec('TG_ERR_ADMIN_FORBIDDEN', 403, 'the token lacks the scope this endpoint needs'),
  NOT_FOUND: spec('TG_ERR_ADMIN_NOT_FOUND', 404, 'no such admin endpoint or object'),
  METHOD_NOT_ALLOWED: spec('TG_ERR_ADMIN_METHOD', 405, 'the method is not allowed on this admin endpoint'),
  BAD_QUERY: spec('TG_ERR_ADMIN_BAD_QUERY', 400, 'a query parameter is invalid'),
  BAD_JSON: spec('TG_ERR_ADMIN_BAD_JSON', 400, 'the request body is not a JSON document'),
  INVALID: spec('TG_ERR_ADMIN_INVALID', 422, 'the request is well-formed JSON but its content is invalid'),
  CONFLICT: spec('TG_ERR_ADMIN_CONFLICT', 409, 'the change conflicts with the current state'),
  BODY_TOO_LARGE: spec('TG_ERR_ADMIN_BODY_TOO_LARGE', 413, 'the request body is larger than 1 MiB'),
  TOO_MANY_STREAMS: spec('TG_ERR_ADMIN_TOO_MANY_STREAMS', 503, 'too many event streams are open'),
  CONFIG_REJECTED: spec('TG_ERR_CONFIG_INVALID', 400, 'the configuration was rejected; the running config stays'),
  INTERNAL: spec('TG_ERR_ADMIN_INTERNAL', 500, 'the admin API failed unexpectedly'),
});

/** A failure inside tidegate with a stable code, for errors that travel as exceptions. */
export class GatewayError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(spec: ErrorSpec, detail?: string) {
    super(detail ? `${spec.message}: ${detail}` : spec.message);
    this.name = 'GatewayError';
    this.code = spec.code;
    this.status = spec.status;
  }
}

/** Startup and configuration failures: these end the process (or are refused by a reload). */
export const StartupCodes = Object.freeze({
  CONFIG_INVALID: 'TG_ERR_CONFIG_INVALID',
  CONFIG_READ: 'TG_ERR_CONFIG_READ',
  UWS_FALLBACK: 'TG_ERR_UWS_NATIVE_MISSING',
  LISTEN: 'TG_ERR_LISTEN',
  SHM_CAPACITY: 'TG_ERR_SHM_CAPACITY',
});

export class StartupError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'StartupError';
    this.code = code;
  }
}

/** Raised by config validation; `issues` holds every problem, each with its path. */
export class ConfigError extends StartupError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(StartupCodes.CONFIG_INVALID, `invalid configuration (${issues.length} error${issues.length === 1 ? '' : 's'}):\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
