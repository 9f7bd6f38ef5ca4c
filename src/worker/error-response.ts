// Error responses: JSON `{ "error": { "code", "message" } }` with the stable code,
// bodies encoded once per code. The request id goes in a header so bodies stay static.
import type { ErrorSpec } from '../errors.js';
import { statusLine } from './status-lines.js';
import type { HttpResponse } from './uws.js';

const bodies = new Map<ErrorSpec, string>();

export function errorBody(spec: ErrorSpec): string {
  let b = bodies.get(spec);
  if (b === undefined) {
    b = JSON.stringify({ error: { code: spec.code, message: spec.message } });
    bodies.set(spec, b);
  }
  return b;
}

/**
 * Ends a response the gateway wrote itself. A HEAD gets its fields and no body
 * (RFC 9110 §9.3.2): the length as a plain field, since uWS 20.30's
 * endWithoutBody(length) leaves the connection expecting that many body bytes; closing
 * (which endWithoutBody cannot do) falls back to an empty body, Content-Length: 0.
 */
export function endLocal(res: HttpResponse, body: string, close: boolean, headRequest: boolean): void {
  if (!headRequest) res.end(body, close);
  else if (close) res.end(undefined, true);
  else {
    res.writeHeader('content-length', String(Buffer.byteLength(body)));
    res.endWithoutBody();
  }
}

/**
 * Writes the error response. `close` ends the connection after it (framing errors
 * must: the rest of the stream cannot be trusted). Caller guarantees `res` is live.
 */
export function writeError(res: HttpResponse, spec: ErrorSpec, requestIdHeader: string, requestId: string, close: boolean, extra?: readonly string[], headRequest = false): void {
  res.cork(() => {
    res.writeStatus(statusLine(spec.status));
    res.writeHeader('content-type', 'application/json');
    res.writeHeader(requestIdHeader, requestId);
    if (extra) for (let i = 0; i < extra.length; i += 2) res.writeHeader(extra[i]!, extra[i + 1]!);
    endLocal(res, errorBody(spec), close, headRequest);
  });
}

/** A response a policy gives itself (a plugin's respond()): status, body and its header pairs. Caller guarantees `res` is live. */
export function writeLocal(res: HttpResponse, status: number, body: string, headers: readonly string[], requestIdHeader: string, requestId: string, close: boolean): void {
  res.cork(() => {
    res.writeStatus(statusLine(status));
    for (let i = 0; i < headers.length; i += 2) res.writeHeader(headers[i]!, headers[i + 1]!);
    res.writeHeader(requestIdHeader, requestId);
    res.end(body, close);
  });
}
