// Sends raw bytes over a socket and collects what comes back, for framing tests
// that no well-behaved client library would let us write.
import { connect } from 'node:net';

export interface RawResult {
  readonly data: string;
  /** the server closed the connection (within the wait) */
  readonly closed: boolean;
  readonly status: number | null;
}

/**
 * `payload` may be a list: each part is written once the previous got a response
 * (uWS 20.30 closes a connection on which a request is pipelined behind one still
 * being proxied, so tests of connection reuse send one request at a time).
 */
export function rawRequest(port: number, payload: string | Buffer | (string | Buffer)[], waitMs = 1500): Promise<RawResult> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      resolve({ data, closed, status: m ? Number(m[1]) : null });
    };
    const parts = Array.isArray(payload) ? [...payload] : [payload];
    s.on('data', (d) => {
      data += d.toString('latin1');
      const next = parts.shift();
      if (next !== undefined) setTimeout(() => s.write(next), 50);
    });
    s.on('close', () => finish(true));
    s.on('error', () => {});
    const t = setTimeout(() => finish(false), waitMs);
    s.write(parts.shift()!);
  });
}
