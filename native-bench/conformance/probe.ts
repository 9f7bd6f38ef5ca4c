// One vector over one fresh TCP connection: write the bytes, read every response,
// and note whether and when the server closed. Nothing here sleeps: each wait ends on
// an event (response complete, socket closed) or on its deadline.
import { connect } from 'node:net';

export interface ProbeOptions {
  readonly host: string;
  readonly port: number;
  /** written in order; part i+1 once i final responses have arrived */
  readonly parts: readonly string[];
  readonly halfClose: boolean;
  /** final responses after which there is nothing more to wait for but a close */
  readonly expectResponses: number;
  /** how long a silent or rejecting server may take to close (uWS: its ≈ 10 s idle timer) */
  readonly closeBoundMs: number;
  /** after the expected answers, how long to watch for more (a smuggled response) */
  readonly settleMs: number;
  /** even after good answers, wait (up to the bound) for the server to close */
  readonly waitForClose: boolean;
}

export interface ProbeResponse {
  readonly status: number;
  readonly head: string;
}

export interface ProbeResult {
  /** final (non-1xx) responses, in order */
  readonly responses: ProbeResponse[];
  /** bytes after the last parseable response (garbage, or a response cut short) */
  readonly trailing: string;
  readonly closed: boolean;
  /** ms from the first write to the close; null if still open */
  readonly closedAfterMs: number | null;
  /** the close was a reset (ECONNRESET) rather than a FIN */
  readonly reset: boolean;
  readonly connectError: string | null;
}

interface Parsed {
  responses: ProbeResponse[];
  rest: string;
}

/** Splits what arrived into complete responses; `eof` completes a read-until-close body. */
export function parseResponses(data: string, eof: boolean): Parsed {
  const responses: ProbeResponse[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const head = data.slice(at, end);
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(head);
    if (!m) break;
    const status = Number(m[1]);
    let next = end + 4;
    if (status >= 200 && status !== 204 && status !== 304) {
      const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
      if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
        const done = data.indexOf('\r\n0\r\n\r\n', next - 2);
        if (done === -1) break;
        next = done + 7;
      } else if (cl) {
        if (data.length < next + Number(cl[1])) break;
        next += Number(cl[1]);
      } else {
        if (!eof) break;
        next = data.length;
      }
    }
    if (status >= 200) responses.push({ status, head });
    at = next;
  }
  return { responses, rest: data.slice(at) };
}

export function probe(o: ProbeOptions): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect(o.port, o.host);
    const parts = [...o.parts];
    let data = '';
    let written = 0;
    let started = 0;
    let closedAfterMs: number | null = null;
    let reset = false;
    let connectError: string | null = null;
    let settle: NodeJS.Timeout | undefined;
    let finished = false;

    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(bound);
      clearTimeout(settle);
      socket.destroy();
      const { responses, rest } = parseResponses(data, closedAfterMs !== null);
      resolve({ responses, trailing: rest.slice(0, 512), closed: closedAfterMs !== null, closedAfterMs, reset, connectError });
    };
    const bound = setTimeout(finish, o.closeBoundMs);

    const writeNext = (): void => {
      const p = parts.shift();
      if (p === undefined) return;
      written++;
      socket.write(Buffer.from(p, 'latin1'));
      if (parts.length === 0 && o.halfClose) socket.end();
    };

    socket.once('connect', () => {
      started = Date.now();
      writeNext();
    });
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      const { responses } = parseResponses(data, false);
      if (responses.length >= written && parts.length > 0) writeNext();
      // An error answer: what matters now is whether the server closes, so keep waiting
      // (up to the bound). Enough good answers: watch briefly for extra ones, then stop.
      if (!o.waitForClose && responses.length >= o.expectResponses && responses.every((r) => r.status < 400) && settle === undefined) {
        settle = setTimeout(finish, o.settleMs);
      }
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') reset = true;
      else if (started === 0) connectError = e.message;
    });
    socket.on('close', () => {
      closedAfterMs = started === 0 ? 0 : Date.now() - started;
      finish();
    });
  });
}
