// Table-driven framing checks over raw sockets (RFC 9112 §6, RFC 9110 §5), one fresh
// connection per row. Outcomes, and what each row pins for this build:
//   'reject'  tidegate answers 400/413/414/431 with its JSON error, and the connection
//             closes;
//   'dropped' uWS 20.30's own parser refuses the bytes before tidegate sees them: it
//             sends nothing and closes the connection, at once or at its fixed ~10 s
//             idle timeout (newer uWS builds answer 400; README "Known limitations");
//   'closed'  bytes were pipelined behind a head tidegate rejects: uWS closes the
//             connection when it parses a request behind one still unanswered, so the
//             client gets at most the 400 and never an answer to the smuggled request;
//   'ok'      forwarded.
// In every case but 'ok', nothing may reach the upstream, and the connection must end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

interface Row {
  name: string;
  /** the request bytes; `PATH` is replaced by a path unique to the row */
  bytes: string;
  outcome: 'reject' | 'dropped' | 'closed' | 'ok';
  status?: number;
  code?: string;
  /**
   * the request head may reach the upstream before the row's outcome: a streamed
   * (chunked) body is forwarded as it arrives; a head that looks valid to tidegate is
   * dispatched before uWS closes the connection over the bytes pipelined behind it
   */
  headMayReach?: boolean;
}

const H = 'Host: a.test\r\n';
const SMUGGLED = `GET /smuggled-PATH HTTP/1.1\r\n${H}\r\n`;
const chunkedSmuggle = `0\r\n\r\n${SMUGGLED}`;
const rows: Row[] = [
  // (Connection: close only so the row ends when the answer is complete)
  { name: 'valid GET', bytes: `GET /PATH HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, outcome: 'ok', status: 200 },
  { name: 'valid POST with Content-Length', bytes: `POST /PATH HTTP/1.1\r\n${H}Connection: close\r\nContent-Length: 3\r\n\r\nabc`, outcome: 'ok', status: 200 },
  { name: 'valid chunked POST (Chunked, any case)', bytes: `POST /PATH HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'ok', status: 200 },
  { name: 'duplicate Content-Length', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_CONTENT_LENGTH' },
  { name: 'duplicate identical Content-Length', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_CONTENT_LENGTH' },
  { name: 'invalid Content-Length', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 3x\r\n\r\nabc`, outcome: 'dropped' },
  { name: 'Content-Length of 10^9 or more (uWS limit)', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 1000000000\r\n\r\nabc`, outcome: 'dropped' },
  { name: 'Content-Length list', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, outcome: 'dropped' },
  { name: 'Content-Length and Transfer-Encoding', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'dropped' },
  { name: 'Transfer-Encoding gzip, chunked', bytes: `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'reject', status: 501, code: 'TG_ERR_FRAMING_TE_NOT_IMPLEMENTED' },
  { name: 'Transfer-Encoding chunked, chunked', bytes: `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_TRANSFER_ENCODING' },
  { name: 'Transfer-Encoding twice', bytes: `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_TRANSFER_ENCODING' },
  { name: 'Transfer-Encoding gzip only', bytes: `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_TRANSFER_ENCODING' },
  { name: 'missing Host', bytes: 'GET /PATH HTTP/1.1\r\n\r\n', outcome: 'dropped' },
  { name: 'duplicate Host', bytes: `GET /PATH HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'empty Host', bytes: 'GET /PATH HTTP/1.1\r\nHost: \r\n\r\n', outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'invalid Host', bytes: 'GET /PATH HTTP/1.1\r\nHost: a b\r\n\r\n', outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'Host list', bytes: 'GET /PATH HTTP/1.1\r\nHost: a.test,b.test\r\n\r\n', outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'Host with userinfo', bytes: 'GET /PATH HTTP/1.1\r\nHost: user@a.test\r\n\r\n', outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'Host with a port out of range', bytes: 'GET /PATH HTTP/1.1\r\nHost: a.test:70000\r\n\r\n', outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  // uWS 20.30 ends its header list at a line with an empty name: neither it nor
  // tidegate sees that line or any field after it, so the Content-Length here does not
  // exist for either, and the body is parsed as a pipelined request. In one segment
  // uWS closes over it (below); README "Known limitations" says what a front proxy
  // must do about the split case.
  { name: 'empty header name hiding a Content-Length', bytes: `POST /PATH HTTP/1.1\r\n${H}: x\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, outcome: 'closed', headMayReach: true },
  { name: 'control character in value', bytes: `GET /PATH HTTP/1.1\r\n${H}X-A: b\x01c\r\n\r\n`, outcome: 'dropped' },
  { name: 'header name not a token', bytes: `GET /PATH HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, outcome: 'dropped' },
  { name: 'underscore in a header name (uWS takes only [A-Za-z0-9-])', bytes: `GET /PATH HTTP/1.1\r\n${H}X_A: b\r\n\r\n`, outcome: 'dropped' },
  { name: 'DEL in value', bytes: `GET /PATH HTTP/1.1\r\n${H}X-A: b\x7fc\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HEADER_VALUE' },
  { name: 'bare CR in value', bytes: `GET /PATH HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`, outcome: 'dropped' },
  { name: 'space before colon', bytes: `GET /PATH HTTP/1.1\r\nHost : a.test\r\n\r\n`, outcome: 'dropped' },
  { name: 'obs-fold', bytes: `GET /PATH HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, outcome: 'dropped' },
  { name: 'absolute-form target', bytes: `GET http://a.test/PATH HTTP/1.1\r\n${H}\r\n`, outcome: 'dropped' },
  { name: 'URL over limits.maxUrlBytes', bytes: `GET /PATH${'u'.repeat(3000)} HTTP/1.1\r\n${H}\r\n`, outcome: 'reject', status: 414, code: 'TG_ERR_LIMIT_URL_TOO_LONG' },
  { name: 'header block over limits.maxHeaderBytes', bytes: `GET /PATH HTTP/1.1\r\n${H}X-Big: ${'x'.repeat(5000)}\r\n\r\n`, outcome: 'reject', status: 431, code: 'TG_ERR_LIMIT_HEADERS_TOO_LARGE' },
  { name: 'more headers than limits.maxHeaderCount', bytes: `GET /PATH HTTP/1.1\r\n${H}${Array.from({ length: 30 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, outcome: 'reject', status: 431, code: 'TG_ERR_LIMIT_HEADER_COUNT' },
  { name: 'more header lines than uWS accepts (48)', bytes: `GET /PATH HTTP/1.1\r\n${H}${Array.from({ length: 60 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, outcome: 'dropped' },
  { name: 'Content-Length over limits.maxBodyBytes', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 999999\r\n\r\nabc`, outcome: 'reject', status: 413, code: 'TG_ERR_LIMIT_BODY_TOO_LARGE' },
  { name: 'chunked body over limits.maxBodyBytes', bytes: `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${'4000\r\n' + 'z'.repeat(0x4000) + '\r\n'}${'4000\r\n' + 'z'.repeat(0x4000) + '\r\n'}0\r\n\r\n`, outcome: 'reject', status: 413, code: 'TG_ERR_LIMIT_BODY_TOO_LARGE', headMayReach: true },
  { name: 'HTTP/1.0', bytes: `GET /PATH HTTP/1.0\r\n${H}\r\n`, outcome: 'dropped' },
  // Desync vectors: what a front proxy sends as one request with a body, which a
  // back end that reads the framing differently would see as two requests.
  { name: 'CL.CL smuggle (0 then 37)', bytes: `POST /PATH HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`, outcome: 'closed' },
  ...['gzip', 'chunk', 'xchunked', '"chunked"', ',chunked', 'chunked, chunked', 'gzip, chunked', 'chunked, gzip'].map(
    (te): Row => ({ name: `TE.TE smuggle (Transfer-Encoding: ${te})`, bytes: `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: ${te}\r\n\r\n${chunkedSmuggle}`, outcome: 'closed' }),
  ),
  { name: 'TE.TE smuggle (two Transfer-Encoding lines)', bytes: `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${chunkedSmuggle}`, outcome: 'closed' },
  { name: 'smuggle behind a duplicate Host', bytes: `GET /PATH HTTP/1.1\r\n${H}Host: b.test\r\n\r\n${SMUGGLED}`, outcome: 'closed' },
];

interface Result {
  data: string;
  closed: boolean;
}

/**
 * Writes `parts[0]` on a fresh connection, and each later part once the server's first
 * bytes arrived (if the socket is still writable); resolves when the server closes
 * the connection or at the deadline.
 */
function exchange(port: number, parts: string[], deadlineMs: number): Promise<Result> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ data, closed });
    };
    s.on('data', (d: Buffer) => {
      const first = data.length === 0;
      data += d.toString('latin1');
      if (first) for (const p of parts.slice(1)) if (s.writable) s.write(p);
    });
    s.on('close', () => done(true));
    s.on('error', () => {});
    const timer = setTimeout(() => done(false), deadlineMs);
    s.write(parts[0]!);
  });
}

function statusOf(data: string): number | null {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
  return m ? Number(m[1]) : null;
}

function assertJsonError(data: string, status: number, code: string): void {
  assert.equal(statusOf(data), status, data);
  assert.match(data, /content-type: application\/json/i);
  assert.match(data, /\r\nconnection: close\r\n/i, 'the response says the connection closes');
  const body = JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
  assert.equal(body.error.code, code);
  assert.ok(body.error.message.length > 0);
}

// uWS closes what it refuses at once or at its ~10 s idle timeout; allow for a loaded machine.
const CLOSE_DEADLINE_MS = 15_000;

describe('request framing', { concurrency: true }, () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  const seen = (token: string): boolean => up.requests.some((r) => r.url.includes(token));
  before(async () => {
    up = await startUpstream();
    gw = await startGateway(baseConfig([up.address], { limits: { maxUrlBytes: '2kb', maxHeaderBytes: '4kb', maxHeaderCount: 20, maxBodyBytes: '20kb' } }));
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  rows.forEach((row, i) => {
    test(`${row.outcome}: ${row.name}`, async () => {
      const token = `row${i}x`;
      const bytes = row.bytes.replaceAll('PATH', token);
      const r = await exchange(gw.port, [bytes], row.outcome === 'ok' ? 5_000 : CLOSE_DEADLINE_MS);
      if (row.outcome === 'ok') {
        assert.equal(statusOf(r.data), row.status, r.data);
        assert.ok(seen(token), 'forwarded');
        return;
      }
      assert.ok(r.closed, `the connection is closed (got ${JSON.stringify(r.data.slice(0, 200))})`);
      assert.ok(!seen(`smuggled-${token}`), 'the smuggled request never reaches the upstream');
      if (!row.headMayReach) assert.ok(!seen(token), 'nothing reaches the upstream');
      switch (row.outcome) {
        case 'dropped':
          assert.equal(r.data, '', 'uWS sends nothing for what its parser refuses');
          return;
        case 'closed':
          // At most the 400 for the bad head; never a second response.
          assert.ok(r.data === '' || (statusOf(r.data) === 400 && r.data.indexOf('HTTP/1.1', 1) < 0), r.data);
          return;
        case 'reject':
          assertJsonError(r.data, row.status!, row.code!);
          return;
      }
    });
  });

  // The same desync vectors with the smuggled bytes sent only once the answer arrived:
  // the client gets the 400 and the close, and the late bytes are never read as a request.
  const late: [string, string, string][] = [
    ['CL.CL', `POST /PATH HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n`, 'TG_ERR_FRAMING_CONTENT_LENGTH'],
    ['TE.TE (xchunked)', `POST /PATH HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 'TG_ERR_FRAMING_TRANSFER_ENCODING'],
    ['duplicate Host', `GET /PATH HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`, 'TG_ERR_FRAMING_HOST'],
  ];
  late.forEach(([name, head, code], i) => {
    test(`reject and close: ${name} smuggle sent after the answer`, async () => {
      const token = `late${i}x`;
      const r = await exchange(gw.port, [head.replaceAll('PATH', token), SMUGGLED.replaceAll('PATH', token)], CLOSE_DEADLINE_MS);
      assert.ok(r.closed, 'closed after the 400');
      assertJsonError(r.data, 400, code);
      assert.equal(r.data.indexOf('HTTP/1.1', 1), -1, 'one response only');
      assert.ok(!seen(token), 'nothing reaches the upstream');
    });
  });
});
