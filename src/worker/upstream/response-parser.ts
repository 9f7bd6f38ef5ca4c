// A strict HTTP/1.1 response parser for the proxy's upstream side (RFC 9112), fed the
// socket's reads as they come. It is stricter than a browser and about as strict as a
// careful proxy must be: anything that could make the gateway and the upstream read a
// different message boundary (two lengths, a length with chunked, an invalid chunk
// size, bytes after the end of a response that no pipelined request expects) is an
// error, because a proxy that guesses forwards a desync. The connection is then discarded; the caller answers 502.
//
// Where RFC 9112 leaves a choice, this parser takes the strict one (CRLF only, the SP
// after the status code even before an empty reason). What it refuses, and why, is
// listed in the README (Upstream connections).
//
// The bytes fed in are borrowed: the connection reads into one buffer per thread and
// reuses it for the next read (an owned Buffer per read costs measurably more:
// native-bench/PROFILE.md), so nothing here keeps a reference to them. A
// head is copied out once, and the header views the sink keeps point into that copy; a
// head that spans reads, and what is left of a read when the sink stops the feed, are
// copied too. Body pieces are views of the read: valid only during onResponseBody.
//
// Allocation per response: the head's copy and one Buffer view per header name and
// value, none for the framing.

/** Upstream response heads larger than this are refused (nginx's proxy_buffer_size is 4–8 KiB; undici's 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** chunk-size lines (with extensions) and the trailer section are bounded too */
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

export interface ResponseSink {
  /**
   * A final (non-1xx) response head; `headers` are the sink's to keep. False: stop
   * feeding (paused or abandoned); resume with `resume()`.
   */
  onResponseHead(status: number, headers: Buffer[]): boolean;
  /** Body bytes, de-chunked: a view of the borrowed read, to be copied if kept. False: stop feeding, as above. */
  onResponseBody(chunk: Buffer): boolean;
  /**
   * The response ended. Bytes after it in the same read are refused unless
   * `expectsAnother()` said yes before; the sink then calls `reset()` for the next
   * response inside this call, and parsing continues with those bytes.
   */
  onResponseComplete(): void;
  /** Whether a further response is expected on the connection (a pipelined request). */
  expectsAnother(): boolean;
  onResponseError(reason: string): void;
}

const enum State {
  Head,
  Length, // Content-Length body
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  Trailer, // inside a trailer line
  TrailerLf, // after a CR in the trailer section
  UntilClose,
  Done,
  Failed,
}

// tchar (RFC 9110 §5.6.2)
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

const EMPTY: Buffer[] = [];
const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const SEMI = 0x3b;

/** field-value bytes: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5); not CR, LF, NUL, other CTLs or DEL */
function valueByteOk(b: number): boolean {
  return b === HTAB || (b >= 0x20 && b !== 0x7f);
}

function hasBareLf(b: Buffer, from: number): boolean {
  for (let i = b.indexOf(LF, from); i >= 0; i = b.indexOf(LF, i + 1)) if (i === 0 || b[i - 1] !== CR) return true;
  return false;
}

/** Whether buf[start, start+name.length) equals `name` (lower-case ASCII) ignoring case. */
function nameIs(buf: Buffer, start: number, len: number, name: string): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if ((buf[start + i]! | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

export class ResponseParser {
  private state = State.Done;
  /** the request was HEAD: whatever the head says, no body follows */
  private headRequest = false;
  /** a head that spans reads: the bytes so far */
  private partial: Buffer | null = null;
  private remaining = 0; // Length: body bytes left; ChunkData: bytes left in the chunk
  private chunkSize = 0;
  private lineBytes = 0; // chunk-size line or trailer section so far
  private trailerLine = 0; // bytes on the current trailer line
  private pendingBuf: Buffer | null = null; // where feeding stopped (paused)
  private pendingOff = 0;
  private extStarted = false;
  private headers: Buffer[] = EMPTY;

  // facts of the last final head
  status = 0;
  /** HTTP/1.0 response */
  http10 = false;
  /** the connection may carry another request after this response */
  keepAlive = true;
  /** Keep-Alive: timeout=N (seconds), -1 when absent */
  keepAliveHint = -1;
  /** the body is read until the upstream closes */
  closeDelimited = false;
  /** any byte of a response (interim or final) arrived since reset() */
  started = false;

  constructor(private readonly sink: ResponseSink) {}

  /** Before a request goes out on the connection. */
  reset(headRequest: boolean): void {
    this.state = State.Head;
    this.headRequest = headRequest;
    this.partial = null;
    this.pendingBuf = null;
    this.started = false;
    this.status = 0;
    this.keepAlive = true;
    this.keepAliveHint = -1;
    this.closeDelimited = false;
  }

  /** Stops parsing for good (the connection is closed); bytes still in a read are ignored. */
  halt(): void {
    this.state = State.Done;
    this.partial = null;
    this.pendingBuf = null;
  }

  /** Feeding stopped at a sink's false; `resume()` continues from there. */
  get paused(): boolean {
    return this.pendingBuf !== null;
  }

  execute(buf: Buffer): void {
    this.run(buf, 0);
  }

  /** Continues after a sink returned false. */
  resume(): void {
    const b = this.pendingBuf;
    if (b === null) return;
    this.pendingBuf = null;
    this.run(b, this.pendingOff);
  }

  /**
   * The upstream closed its side. True when that ends a response properly
   * (a close-delimited body); the caller then completes it.
   */
  finishOnClose(): boolean {
    if (this.state === State.UntilClose) {
      this.state = State.Done;
      return true;
    }
    return false;
  }

  /** (a method, so the compiler does not narrow `state` across a sink call that may change it) */
  private failed(): boolean {
    return this.state === State.Failed;
  }

  private fail(reason: string): void {
    this.state = State.Failed;
    this.partial = null;
    this.pendingBuf = null;
    this.sink.onResponseError(reason);
  }

  private stop(buf: Buffer, off: number): void {
    this.pendingBuf = Buffer.from(buf.subarray(off));
    this.pendingOff = 0;
  }

  /**
   * The message ended at `off`: nothing may follow it in this read unless another
   * response is expected. True: the sink reset us for that one; parse on from `off`.
   */
  private complete(buf: Buffer, off: number): boolean {
    const more = off < buf.length;
    if (more && !this.sink.expectsAnother()) {
      this.fail('bytes after the end of the response');
      return false;
    }
    this.state = State.Done;
    this.sink.onResponseComplete();
    return more && this.resetForNext();
  }

  /** (a method, so the compiler does not narrow `state` across the sink call that reset it) */
  private resetForNext(): boolean {
    return this.state === State.Head;
  }

  private run(buf: Buffer, off: number): void {
    const len = buf.length;
    for (;;) {
      switch (this.state) {
        case State.Head: {
          if (off >= len) return;
          this.started = true;
          let b = buf;
          let from = off;
          let searchFrom = off;
          if (this.partial !== null) {
            const prev = this.partial.length;
            b = Buffer.concat([this.partial, off === 0 ? buf : buf.subarray(off)]);
            from = 0;
            searchFrom = prev > 3 ? prev - 3 : 0;
          }
          const end = b.indexOf('\r\n\r\n', searchFrom, 'latin1');
          if (end < 0) {
            if (b.length - from > MAX_HEAD_BYTES) return this.fail(`response head over ${MAX_HEAD_BYTES} bytes`);
            // A head with bare-LF line endings never shows a CRLFCRLF: refuse it now rather than at a timeout.
            if (hasBareLf(b, searchFrom > from ? searchFrom : from)) return this.fail('bare LF in the response head');
            // (a joined head is already a copy of its own)
            this.partial = b !== buf ? (from === 0 ? b : b.subarray(from)) : Buffer.from(b.subarray(from));
            return;
          }
          this.partial = null;
          if (end + 4 - from > MAX_HEAD_BYTES) return this.fail(`response head over ${MAX_HEAD_BYTES} bytes`);
          let hb = b;
          let hFrom = from;
          let hEnd = end;
          if (b === buf) {
            // The head out of the borrowed read, for the header views the sink keeps.
            hb = Buffer.allocUnsafe(end + 4 - from);
            b.copy(hb, 0, from, end + 4);
            hFrom = 0;
            hEnd = end - from;
          }
          const next = this.parseHead(hb, hFrom, hEnd);
          if (next < 0) return; // failed (reported)
          if (next === 0) {
            // interim 1xx: its head is dropped; the final one follows
            if (b !== buf) {
              const rest = b.subarray(end + 4);
              this.run(rest, 0);
              return;
            }
            off = end + 4;
            continue;
          }
          // a final head: the body state is set; the sink may stop us
          const bodyBuf = b;
          const bodyOff = end + 4;
          const headers = this.headers;
          this.headers = EMPTY;
          if (!this.sink.onResponseHead(this.status, headers)) {
            if (!this.failed()) this.stop(bodyBuf, bodyOff);
            return;
          }
          if (bodyBuf !== buf) {
            this.run(bodyBuf, bodyOff);
            return;
          }
          off = bodyOff;
          continue;
        }
        case State.Length: {
          if (this.remaining === 0) {
            if (this.complete(buf, off)) continue;
            return;
          }
          if (off >= len) return;
          const avail = len - off;
          // More than the body: the next pipelined response, or (with none expected) an error found before any of it is passed on.
          if (avail > this.remaining && !this.sink.expectsAnother()) return this.fail('bytes after the end of the response');
          const take = avail < this.remaining ? avail : this.remaining;
          this.remaining -= take;
          const piece = off === 0 && take === len ? buf : buf.subarray(off, off + take);
          off += take;
          if (!this.sink.onResponseBody(piece)) {
            if (!this.failed()) this.stop(buf, off);
            return;
          }
          continue;
        }
        case State.ChunkSize: {
          if (off >= len) return;
          const c = buf[off]!;
          const d = HEX[c]!;
          if (d >= 0) {
            if (this.chunkSize > 0x1fffffffffffff / 16 - 1) return this.fail('chunk size too large');
            this.chunkSize = this.chunkSize * 16 + d;
            this.lineBytes++;
            off++;
            continue;
          }
          if (this.lineBytes === 0) return this.fail('invalid chunk size');
          if (c === CR) {
            this.state = State.ChunkSizeLf;
            off++;
            continue;
          }
          if (c === SEMI || c === SP || c === HTAB) {
            this.extStarted = false;
            this.state = State.ChunkExt;
            continue;
          }
          return this.fail('invalid chunk size');
        }
        case State.ChunkExt: {
          // BWS, then ";" chunk-ext (read and ignored; only its bytes are checked)
          while (off < len) {
            const c = buf[off]!;
            if (c === CR) break;
            if (!this.extStarted) {
              if (c === SEMI) this.extStarted = true;
              else if (c !== SP && c !== HTAB) return this.fail('invalid chunk size');
            } else if (!valueByteOk(c)) return this.fail('invalid chunk extension');
            off++;
            if (++this.lineBytes > MAX_CHUNK_LINE) return this.fail('chunk-size line too long');
          }
          if (off >= len) return;
          this.state = State.ChunkSizeLf;
          off++;
          continue;
        }
        case State.ChunkSizeLf: {
          if (off >= len) return;
          if (buf[off] !== LF) return this.fail('invalid chunk size line ending');
          off++;
          if (this.chunkSize === 0) {
            this.trailerLine = 0;
            this.lineBytes = 0;
            this.state = State.Trailer;
            continue;
          }
          this.remaining = this.chunkSize;
          this.state = State.ChunkData;
          continue;
        }
        case State.ChunkData: {
          if (off >= len) return;
          const avail = len - off;
          // When the chunk's end is in this read, its CRLF is checked before the data
          // goes on, so a flaw found with the head is a 502, not a cut response.
          if (avail > this.remaining) {
            const e = off + this.remaining;
            if (buf[e] !== CR || (e + 1 < len && buf[e + 1] !== LF)) return this.fail('chunk data not followed by CRLF');
          }
          const take = avail < this.remaining ? avail : this.remaining;
          const piece = off === 0 && take === len ? buf : buf.subarray(off, off + take);
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = State.ChunkDataCr;
          if (!this.sink.onResponseBody(piece)) {
            if (!this.failed()) this.stop(buf, off);
            return;
          }
          continue;
        }
        case State.ChunkDataCr: {
          if (off >= len) return;
          if (buf[off] !== CR) return this.fail('chunk data not followed by CRLF');
          off++;
          this.state = State.ChunkDataLf;
          continue;
        }
        case State.ChunkDataLf: {
          if (off >= len) return;
          if (buf[off] !== LF) return this.fail('chunk data not followed by CRLF');
          off++;
          this.chunkSize = 0;
          this.lineBytes = 0;
          this.state = State.ChunkSize;
          continue;
        }
        case State.Trailer: {
          // trailer fields are dropped (nothing downstream asked for them); an empty line ends the message
          while (off < len) {
            const c = buf[off]!;
            if (c === CR) break;
            if (c === LF || c === 0) return this.fail('invalid trailer section');
            off++;
            this.trailerLine++;
            if (++this.lineBytes > MAX_TRAILER_BYTES) return this.fail('trailer section too large');
          }
          if (off >= len) return;
          off++;
          this.state = State.TrailerLf;
          continue;
        }
        case State.TrailerLf: {
          if (off >= len) return;
          if (buf[off] !== LF) return this.fail('invalid trailer section');
          off++;
          if (this.trailerLine === 0) {
            if (this.complete(buf, off)) continue;
            return;
          }
          this.trailerLine = 0;
          this.state = State.Trailer;
          continue;
        }
        case State.UntilClose: {
          if (off >= len) return;
          const piece = off === 0 ? buf : buf.subarray(off);
          if (!this.sink.onResponseBody(piece)) {
            if (!this.failed()) this.stop(buf, len);
          }
          return;
        }
        case State.Done:
          return;
        case State.Failed:
          return;
      }
    }
  }

  /**
   * Parses the head in b[from, end) (end: index of the CRLFCRLF). Returns -1 after
   * failing, 0 for an interim response, 1 for a final one (body state set: Done when
   * there is no body).
   */
  private parseHead(b: Buffer, from: number, end: number): number {
    // status-line: HTTP-version SP 3DIGIT SP [reason]
    if (end - from < 12 || b[from] !== 0x48 || b[from + 1] !== 0x54 || b[from + 2] !== 0x54 || b[from + 3] !== 0x50 || b[from + 4] !== 0x2f || b[from + 5] !== 0x31 || b[from + 6] !== 0x2e) {
      this.fail('invalid status line');
      return -1;
    }
    const minor = b[from + 7]!;
    if ((minor !== 0x31 && minor !== 0x30) || b[from + 8] !== SP) {
      this.fail('invalid status line');
      return -1;
    }
    const d0 = b[from + 9]! - 0x30;
    const d1 = b[from + 10]! - 0x30;
    const d2 = b[from + 11]! - 0x30;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
      this.fail('invalid status code');
      return -1;
    }
    const status = d0 * 100 + d1 * 10 + d2;
    let i = from + 12;
    if (b[i] === SP) {
      i++;
      while (b[i] !== CR) {
        const c = b[i]!;
        if (!valueByteOk(c)) {
          this.fail('invalid reason phrase');
          return -1;
        }
        i++;
      }
    } else {
      this.fail('invalid status line (no SP after the status code)');
      return -1;
    }
    if (b[i + 1] !== LF) {
      this.fail('invalid status line ending');
      return -1;
    }
    i += 2;

    const http10 = minor === 0x30;
    let keepAlive = !http10;
    let keepAliveHint = -1;
    let cl = -1;
    let chunked = false;
    let te = false;
    const headers: Buffer[] = [];
    // each field line: name ":" OWS value OWS CRLF; `end` points at the final CRLFCRLF, so the last line ends at end
    while (i < end + 2) {
      const ns = i;
      const first = b[i]!;
      if (first === SP || first === HTAB) {
        this.fail('obsolete line folding in a response header');
        return -1;
      }
      while (TCHAR[b[i]!] === 1) i++;
      const ne = i;
      if (b[i] !== 0x3a || ne === ns) {
        this.fail(ne === ns ? 'invalid header line' : b[i] === SP || b[i] === HTAB ? 'whitespace before the colon in a response header' : 'invalid header name');
        return -1;
      }
      i++;
      while (b[i] === SP || b[i] === HTAB) i++;
      const vs = i;
      for (;;) {
        const c = b[i]!;
        if (c === CR) break;
        if (!valueByteOk(c)) {
          this.fail(c === LF ? 'bare LF in a response header' : 'invalid character in a response header value');
          return -1;
        }
        i++;
      }
      if (b[i + 1] !== LF) {
        this.fail('bare CR in a response header');
        return -1;
      }
      let ve = i;
      while (ve > vs && (b[ve - 1] === SP || b[ve - 1] === HTAB)) ve--;
      i += 2;
      const nlen = ne - ns;
      // framing fields, found by length first so most names cost one comparison
      if (nlen === 14 && nameIs(b, ns, nlen, 'content-length')) {
        const v = parseContentLength(b, vs, ve);
        if (v < 0 || (cl >= 0 && v !== cl)) {
          this.fail(v === -1 ? 'invalid Content-Length' : 'Content-Length values differ');
          return -1;
        }
        cl = v;
      } else if (nlen === 17 && nameIs(b, ns, nlen, 'transfer-encoding')) {
        // one field line, exactly "chunked": other codings would reach the client undecoded without the field that names them
        const r = readTransferEncoding(b, vs, ve);
        if (te || r !== 1) {
          this.fail(r === -1 ? 'unsupported Transfer-Encoding (only chunked is read)' : 'invalid Transfer-Encoding');
          return -1;
        }
        te = true;
        chunked = true;
      } else if (nlen === 10) {
        if (nameIs(b, ns, nlen, 'connection')) {
          const t = connectionTokens(b, vs, ve);
          if ((t & 1) !== 0) keepAlive = false;
          else if ((t & 2) !== 0 && http10) keepAlive = true;
        } else if (nameIs(b, ns, nlen, 'keep-alive')) {
          keepAliveHint = keepAliveTimeout(b, vs, ve);
        }
      }
      headers.push(b.subarray(ns, ne), b.subarray(vs, ve));
    }

    if (status < 200) {
      if (status === 101) {
        this.fail('101 Switching Protocols to a request that asked for no upgrade');
        return -1;
      }
      return 0;
    }
    if (cl >= 0 && te) {
      this.fail('both Content-Length and Transfer-Encoding');
      return -1;
    }
    this.status = status;
    this.http10 = http10;
    this.keepAliveHint = keepAliveHint;
    this.headers = headers;
    this.keepAlive = keepAlive;
    if (this.headRequest || status === 204 || status === 304) {
      // RFC 9112 §6.3 rules 1 and 2: no body, whatever the fields say
      this.remaining = 0;
      this.state = State.Length;
    } else if (chunked) {
      this.chunkSize = 0;
      this.lineBytes = 0;
      this.state = State.ChunkSize;
    } else if (cl >= 0) {
      this.remaining = cl;
      this.state = State.Length;
    } else {
      this.keepAlive = false;
      this.closeDelimited = true;
      this.state = State.UntilClose;
    }
    return 1;
  }
}


/**
 * 1*DIGIT, or a list of identical ones ("42, 42", RFC 9110 §8.6 lets a recipient take
 * it as one); -1 invalid, -2 differing values.
 */
function parseContentLength(b: Buffer, s: number, e: number): number {
  let value = -1;
  let i = s;
  while (i < e) {
    let v = 0;
    let digits = 0;
    while (i < e) {
      const c = b[i]! - 0x30;
      if (c < 0 || c > 9) break;
      if (++digits > 15) return -1;
      v = v * 10 + c;
      i++;
    }
    if (digits === 0) return -1;
    if (value >= 0 && v !== value) return -2;
    value = v;
    while (i < e && (b[i] === SP || b[i] === HTAB)) i++;
    if (i === e) break;
    if (b[i] !== 0x2c) return -1;
    i++;
    while (i < e && (b[i] === SP || b[i] === HTAB)) i++;
    if (i === e) return -1;
  }
  return value;
}

/** 1: exactly "chunked" (any case); -1: other codings; -2: malformed, or chunked twice */
function readTransferEncoding(b: Buffer, s: number, e: number): number {
  if (e - s === 7 && nameIs(b, s, 7, 'chunked')) return 1;
  let chunked = 0;
  for (const part of b.toString('latin1', s, e).toLowerCase().split(',')) {
    const t = part.trim();
    if (t.length === 0) return -2;
    if (t === 'chunked' && ++chunked > 1) return -2;
  }
  return -1;
}

/** bit 1: "close", bit 2: "keep-alive" */
function connectionTokens(b: Buffer, s: number, e: number): number {
  if (e - s === 10 && nameIs(b, s, 10, 'keep-alive')) return 2;
  if (e - s === 5 && nameIs(b, s, 5, 'close')) return 1;
  let r = 0;
  for (const t of b.toString('latin1', s, e).toLowerCase().split(',')) {
    const x = t.trim();
    if (x === 'close') r |= 1;
    else if (x === 'keep-alive') r |= 2;
  }
  return r;
}

/** Keep-Alive: timeout=N → N seconds; -1 when absent or unreadable */
function keepAliveTimeout(b: Buffer, s: number, e: number): number {
  const m = /(?:^|[,;\s])timeout\s*=\s*(\d{1,6})/i.exec(b.toString('latin1', s, e));
  return m === null ? -1 : Number(m[1]);
}
