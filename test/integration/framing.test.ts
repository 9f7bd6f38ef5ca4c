// Table-driven framing checks over raw sockets (RFC 9112 §6, RFC 9110 §5).
// Two outcomes are acceptable for a malformed request, and each row says which one
// this build produces:
//   'reject'  tidegate answers 400/413/414/431 with its JSON error and closes;
//   'dropped' uWS 20.30's own parser refuses the bytes before tidegate sees them: it
//             sends nothing and closes the connection at its idle timeout (~10 s).
//             (Newer uWS builds answer 400 here; see README "Known limitations".)
// In both cases nothing may reach the upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { rawRequest } from '../helpers/raw-http.js';

interface Row {
  name: string;
  bytes: string;
  outcome: 'reject' | 'dropped' | 'ok';
  status?: number;
  code?: string;
  /** a streamed (chunked) body is forwarded as it arrives, so the upstream may see the start of it */
  streamed?: boolean;
}

const H = 'Host: a.test\r\n';
const rows: Row[] = [
  { name: 'valid GET', bytes: `GET /ok HTTP/1.1\r\n${H}\r\n`, outcome: 'ok', status: 200 },
  { name: 'duplicate Content-Length', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_CONTENT_LENGTH' },
  { name: 'duplicate identical Content-Length', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_CONTENT_LENGTH' },
  { name: 'invalid Content-Length', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3x\r\n\r\nabc`, outcome: 'dropped' },
  { name: 'Content-Length of 10^9 or more (uWS limit)', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 1000000000\r\n\r\nabc`, outcome: 'dropped' },
  { name: 'Content-Length list', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, outcome: 'dropped' },
  { name: 'Content-Length and Transfer-Encoding', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'dropped' },
  { name: 'Transfer-Encoding gzip, chunked', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_TRANSFER_ENCODING' },
  { name: 'Transfer-Encoding twice', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_TRANSFER_ENCODING' },
  { name: 'Transfer-Encoding gzip only', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_TRANSFER_ENCODING' },
  { name: 'missing Host', bytes: 'GET / HTTP/1.1\r\n\r\n', outcome: 'dropped' },
  { name: 'duplicate Host', bytes: `GET / HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'empty Host', bytes: 'GET / HTTP/1.1\r\nHost: \r\n\r\n', outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'invalid Host', bytes: 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HOST' },
  { name: 'control character in value', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\x01c\r\n\r\n`, outcome: 'dropped' },
  { name: 'header name not a token', bytes: `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`, outcome: 'dropped' },
  { name: 'DEL in value', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\x7fc\r\n\r\n`, outcome: 'reject', status: 400, code: 'TG_ERR_FRAMING_HEADER_VALUE' },
  { name: 'bare CR in value', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`, outcome: 'dropped' },
  { name: 'space before colon', bytes: `GET / HTTP/1.1\r\nHost : a.test\r\n\r\n`, outcome: 'dropped' },
  { name: 'obs-fold', bytes: `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`, outcome: 'dropped' },
  { name: 'absolute-form target', bytes: `GET http://a.test/x HTTP/1.1\r\n${H}\r\n`, outcome: 'dropped' },
  { name: 'URL over limits.maxUrlBytes', bytes: `GET /${'u'.repeat(3000)} HTTP/1.1\r\n${H}\r\n`, outcome: 'reject', status: 414, code: 'TG_ERR_LIMIT_URL_TOO_LONG' },
  { name: 'header block over limits.maxHeaderBytes', bytes: `GET / HTTP/1.1\r\n${H}X-Big: ${'x'.repeat(5000)}\r\n\r\n`, outcome: 'reject', status: 431, code: 'TG_ERR_LIMIT_HEADERS_TOO_LARGE' },
  { name: 'more headers than limits.maxHeaderCount', bytes: `GET / HTTP/1.1\r\n${H}${Array.from({ length: 30 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, outcome: 'reject', status: 431, code: 'TG_ERR_LIMIT_HEADER_COUNT' },
  { name: 'more header lines than uWS accepts (48)', bytes: `GET / HTTP/1.1\r\n${H}${Array.from({ length: 60 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`, outcome: 'dropped' },
  { name: 'Content-Length over limits.maxBodyBytes', bytes: `POST / HTTP/1.1\r\n${H}Content-Length: 999999\r\n\r\nabc`, outcome: 'reject', status: 413, code: 'TG_ERR_LIMIT_BODY_TOO_LARGE' },
  { name: 'chunked body over limits.maxBodyBytes', bytes: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${'4000\r\n' + 'z'.repeat(0x4000) + '\r\n'}${'4000\r\n' + 'z'.repeat(0x4000) + '\r\n'}0\r\n\r\n`, outcome: 'reject', status: 413, code: 'TG_ERR_LIMIT_BODY_TOO_LARGE', streamed: true },
  { name: 'HTTP/1.0', bytes: `GET / HTTP/1.0\r\n${H}\r\n`, outcome: 'dropped' },
];

describe('request framing', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway(baseConfig([up.address], { limits: { maxUrlBytes: '2kb', maxHeaderBytes: '4kb', maxHeaderCount: 20, maxBodyBytes: '20kb' } }));
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  for (const row of rows) {
    test(`${row.outcome}: ${row.name}`, async () => {
      const before = up.requests.length;
      const r = await rawRequest(gw.port, row.bytes, row.outcome === 'dropped' ? 800 : 2000);
      if (row.outcome === 'ok') {
        assert.equal(r.status, row.status);
        assert.equal(up.requests.length, before + 1);
        return;
      }
      if (!row.streamed) assert.equal(up.requests.length, before, 'nothing reaches the upstream');
      if (row.outcome === 'dropped') {
        assert.equal(r.data, '', 'uWS sends nothing for what its parser refuses');
        return;
      }
      assert.equal(r.status, row.status, r.data);
      assert.ok(r.closed, 'the connection is closed after a framing error');
      assert.match(r.data, /content-type: application\/json/i);
      const body = JSON.parse(r.data.slice(r.data.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
      assert.equal(body.error.code, row.code);
      assert.ok(body.error.message.length > 0);
    });
  }
});
