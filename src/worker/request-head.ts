// Reads a uWS request's head in one synchronous pass (the HttpRequest dies when the
// handler returns) and applies the framing rules of RFC 9112 §6 and RFC 9110 §5,
// which the uWS 20.30 parser does not all enforce: it accepts a duplicate
// Content-Length (using the first), "gzip, chunked", and duplicate Host. Header names
// need no check here: uWS refuses any name byte outside [A-Za-z0-9-] (measured over
// all 256 byte values), and a line with an empty name ends its header list, so no
// handler ever sees either.
//
// Hop-by-hop fields (RFC 9110 §7.6.1) are left out of `headers` here, so forwarding
// never has to filter again. Names listed in Connection are removed afterwards.
import { Errors, type ErrorSpec } from '../errors.js';
import type { HttpRequest } from './uws.js';

export interface HeadLimits {
  readonly maxHeaderBytes: number;
  readonly maxHeaderCount: number;
  readonly maxUrlBytes: number;
  readonly maxBodyBytes: number;
}

export class RequestHead {
  method = '';
  path = '';
  query = '';
  /**
   * end-to-end request fields to forward: name (lower-case), value, … The Host pair
   * always comes first, so a route that rewrites Host changes index 1 in place.
   */
  headers: string[] = ['host', ''];
  host = '';
  /** -1 when absent */
  contentLength = -1;
  chunked = false;
  connection: string | null = null;
  forwardedFor: string | null = null;
  forwardedProto: string | null = null;
  forwardedHost: string | null = null;
  via: string | null = null;
  forwarded: string | null = null;
  requestId: string | null = null;
  /**
   * A field value holds a character over 0x7F. uWS's field iterator decodes values as
   * UTF-8, so such a value is written upstream as UTF-8 again (its bytes as the client
   * sent them when they were valid UTF-8; an invalid sequence arrives as U+FFFD).
   */
  wide = false;
}

// Field values may hold HTAB and visible characters and obs-text; any other control
// character (CR, LF, NUL, …) is a smuggling vector.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
// One test per value finds both: anything outside HTAB and printable ASCII.
const BAD_OR_WIDE = /[\x00-\x08\x0a-\x1f\x7f-\uffff]/;
const CONTENT_LENGTH = /^\d{1,15}$/;


// State for the forEach callback, so reading a head allocates no closure.
let cur: RequestHead;
let count = 0;
let bytes = 0;
let hostCount = 0;
let clCount = 0;
let clRaw = '';
let teCount = 0;
let teRaw = '';
let badValue = false;
let requestIdHeader = 'x-request-id';

function onHeader(key: string, value: string): void {
  count++;
  bytes += key.length + value.length + 4;
  if (BAD_OR_WIDE.test(value)) {
    if (BAD_VALUE.test(value)) badValue = true;
    else cur.wide = true;
  }
  switch (key) {
    case 'host':
      hostCount++;
      cur.host = value;
      return; // sent separately: either as received or rewritten
    case 'content-length':
      clCount++;
      clRaw = value;
      return; // undici frames the body it sends
    case 'transfer-encoding':
      teCount++;
      teRaw = value;
      return;
    case 'connection':
      cur.connection = cur.connection === null ? value : `${cur.connection},${value}`;
      return;
    case 'keep-alive':
    case 'proxy-connection':
    case 'te':
    case 'trailer':
    case 'upgrade':
    case 'http2-settings':
    case 'expect': // uWS already answered 100-continue; undici refuses to send it
      return;
    case 'x-forwarded-for':
      cur.forwardedFor = cur.forwardedFor === null ? value : `${cur.forwardedFor}, ${value}`;
      return;
    case 'x-forwarded-proto':
      cur.forwardedProto = value;
      return;
    case 'x-forwarded-host':
      cur.forwardedHost = value;
      return;
    case 'via':
      cur.via = cur.via === null ? value : `${cur.via}, ${value}`;
      return;
    case 'forwarded':
      cur.forwarded = cur.forwarded === null ? value : `${cur.forwarded}, ${value}`;
      return;
    default:
      if (key === requestIdHeader) {
        cur.requestId = value;
        return;
      }
      cur.headers.push(key, value);
  }
}

/** Fills `head` from `req`; returns the error to answer with, or null when the head is acceptable. */
export function readRequestHead(req: HttpRequest, head: RequestHead, limits: HeadLimits, idHeader: string): ErrorSpec | null {
  head.method = req.getCaseSensitiveMethod();
  head.path = req.getUrl();
  head.query = req.getQuery() ?? '';
  cur = head;
  count = 0;
  bytes = 0;
  hostCount = 0;
  clCount = 0;
  teCount = 0;
  badValue = false;
  requestIdHeader = idHeader;
  req.forEach(onHeader);
  head.headers[1] = head.host;

  // Limits first: they tell the client what to shrink.
  if (head.path.length + head.query.length + 1 > limits.maxUrlBytes) return Errors.LIMIT_URL_TOO_LONG;
  if (count > limits.maxHeaderCount) return Errors.LIMIT_HEADER_COUNT;
  if (bytes > limits.maxHeaderBytes) return Errors.LIMIT_HEADERS_TOO_LARGE;
  if (badValue) return Errors.FRAMING_HEADER_VALUE;
  if (head.path.charCodeAt(0) !== 47 /* / */) return Errors.FRAMING_TARGET;
  if (hostCount !== 1 || head.host.length === 0 || !validHost(head.host)) return Errors.FRAMING_HOST;
  if (teCount > 0) {
    if (clCount > 0) return Errors.FRAMING_CL_AND_TE;
    // A lone "chunked" only: a coding list ("gzip, chunked") would have us forward a
    // body whose framing the upstream may read differently.
    if (teCount !== 1) return Errors.FRAMING_TRANSFER_ENCODING;
    const te = teRaw.trim().toLowerCase();
    if (te !== 'chunked') return transferCodingError(te);
    head.chunked = true;
  } else if (clCount > 0) {
    if (clCount !== 1 || !CONTENT_LENGTH.test(clRaw)) return Errors.FRAMING_CONTENT_LENGTH;
    head.contentLength = Number(clRaw);
  }
  if (head.contentLength > limits.maxBodyBytes) return Errors.LIMIT_BODY_TOO_LARGE;
  if (head.connection !== null) dropConnectionListed(head);
  return null;
}

const KNOWN_CODINGS = new Set(['gzip', 'x-gzip', 'deflate', 'compress', 'x-compress']);

/**
 * RFC 9112 §6.3: when chunked is not the final coding the body length is unknowable
 * (400); §6.1: a list ending in chunked whose other codings are well-formed but not
 * supported here is 501 — tidegate forwards bodies as they are and will not decode or
 * re-frame them. Anything else (chunked twice, empty list members, unknown tokens) is 400.
 */
function transferCodingError(te: string): ErrorSpec {
  const codings = te.split(',').map((c) => c.trim());
  if (codings.length < 2 || codings[codings.length - 1] !== 'chunked') return Errors.FRAMING_TRANSFER_ENCODING;
  for (let i = 0; i < codings.length - 1; i++) if (!KNOWN_CODINGS.has(codings[i]!)) return Errors.FRAMING_TRANSFER_ENCODING;
  return Errors.FRAMING_TE_NOT_IMPLEMENTED;
}

// uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2): reg-name or IPv4 (whose
// characters reg-name covers), or an IP-literal in brackets. A comma is a sub-delim
// the RFC allows in reg-name, but no DNS name holds one and "a, b" is how a field
// list looks: a Host list is refused. No userinfo ("@"), and a percent sign only as
// a complete pct-encoding.
const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9._~!$&'()*+;=-]|%[0-9A-Fa-f]{2})+)(?::\d{1,5})?$/;
function validHost(h: string): boolean {
  if (!HOST_RE.test(h)) return false;
  // Only a five-digit port can be out of range.
  const colon = h.lastIndexOf(':');
  return colon < 0 || h.length - colon - 1 < 5 || h.charCodeAt(h.length - 1) === 93 /* ] */ || Number(h.slice(colon + 1)) <= 65535;
}

/** RFC 9110 §7.6.1: every field named in Connection is hop-by-hop for this connection. */
function dropConnectionListed(head: RequestHead): void {
  const names = new Set<string>();
  for (const t of head.connection!.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive') names.add(n);
  }
  if (names.size === 0) return;
  const kept: string[] = [head.headers[0]!, head.headers[1]!];
  for (let i = 2; i < head.headers.length; i += 2) {
    if (!names.has(head.headers[i]!)) kept.push(head.headers[i]!, head.headers[i + 1]!);
  }
  head.headers = kept;
  // Forwarding fields we rebuild ourselves: a client may not make them vanish, but if
  // it lists them we must not pass its values on.
  if (names.has('x-forwarded-for')) head.forwardedFor = null;
  if (names.has('x-forwarded-proto')) head.forwardedProto = null;
  if (names.has('x-forwarded-host')) head.forwardedHost = null;
  if (names.has('via')) head.via = null;
  if (names.has('forwarded')) head.forwarded = null;
}

const NON_ASCII = /[^\x00-\x7f]/;

/**
 * The forwarded fields as the upstream connection writes them (one latin1 char per
 * byte): a value uWS decoded from UTF-8 goes back to its UTF-8 bytes. Run once, after
 * the policies and the cache have read the values as text, for a head that is `wide`.
 */
export function toWire(headers: string[]): void {
  for (let i = 1; i < headers.length; i += 2) {
    const v = headers[i]!;
    if (NON_ASCII.test(v)) headers[i] = Buffer.from(v, 'utf8').toString('latin1');
  }
}
