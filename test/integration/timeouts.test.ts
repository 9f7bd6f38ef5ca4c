// upstreams.<name>.timeouts.read: the longest gap between two response body chunks.
// Once the head went out a clean error response is impossible, so a stalled upstream
// body must cut the client connection: a truncated response never looks complete.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startRawUpstream } from '../helpers/upstream.js';
import { waitFor } from '../helpers/log-capture.js';

const READ_MS = 1000;
const BODY = 100;

interface Cut {
  readonly head: string;
  readonly bodyBytes: number;
  /** ms from the first response byte to the close */
  readonly gapMs: number;
  readonly closed: boolean;
}

/** One GET on a fresh connection; resolves when the gateway closes it (or after `limitMs`). */
function getUntilClosed(port: number, path: string, limitMs: number): Promise<Cut> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let firstAt = 0;
    const done = (closed: boolean): void => {
      clearTimeout(t);
      s.destroy();
      const text = data.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      resolve({ head: end < 0 ? text : text.slice(0, end), bodyBytes: end < 0 ? 0 : data.length - end - 4, gapMs: performance.now() - firstAt, closed });
    };
    const t = setTimeout(() => done(false), limitMs);
    s.on('data', (d: Buffer) => {
      if (firstAt === 0) firstAt = performance.now();
      data = Buffer.concat([data, d]);
    });
    s.on('close', () => done(true));
    s.on('error', () => {});
    s.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
  });
}

describe('timeouts.read', () => {
  let gw: RunningGateway;
  let upstreamClosed = 0;
  let stalling: Awaited<ReturnType<typeof startRawUpstream>>;
  let trickling: Awaited<ReturnType<typeof startRawUpstream>>;

  before(async () => {
    // Head and a tenth of the body, then nothing (the socket stays open).
    stalling = await startRawUpstream((s) => {
      s.on('close', () => upstreamClosed++);
      s.once('data', () => s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY}\r\n\r\n${'a'.repeat(BODY / 10)}`));
    });
    // The whole body in five parts, each gap well below the read timeout: the timeout
    // bounds a gap, not the response.
    trickling = await startRawUpstream((s) => {
      s.once('data', () => {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY}\r\n\r\n`);
        let sent = 0;
        const next = (): void => {
          s.write('b'.repeat(BODY / 5));
          sent++;
          if (sent < 5) setTimeout(next, READ_MS * 0.4);
        };
        next();
      });
    });
    gw = await startGateway(
      baseConfig([], {
        workers: 1,
        upstreams: {
          stall: { discovery: { type: 'static', endpoints: [stalling.address] }, retries: 0, timeouts: { response: '10s', read: `${READ_MS}ms` } },
          trickle: { discovery: { type: 'static', endpoints: [trickling.address] }, retries: 0, timeouts: { response: '10s', read: `${READ_MS}ms` } },
        },
        routes: [
          { match: { path: '/stall' }, upstream: 'stall' },
          { match: { path: '/trickle' }, upstream: 'trickle' },
        ],
      }),
    );
  });
  after(async () => {
    await gw?.stop();
    await stalling?.close();
    await trickling?.close();
  });

  async function upstreamErrors(): Promise<number> {
    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { workers: { upstreamErrors: number }[] };
    return s.workers.reduce((n, w) => n + w.upstreamErrors, 0);
  }

  test('an upstream that stalls mid-body: the client connection is cut after about the read timeout, and counted', async () => {
    const errorsBefore = await upstreamErrors();
    const cut = await getUntilClosed(gw.port, '/stall', 15_000);
    console.log(`stalled body: connection cut ${cut.gapMs.toFixed(0)} ms after the first response byte (timeouts.read ${READ_MS} ms)`);
    assert.ok(cut.closed, 'the gateway closed the connection');
    assert.match(cut.head, /^HTTP\/1\.1 200 /);
    assert.match(cut.head, new RegExp(`\r\ncontent-length: ${BODY}`, 'i'));
    assert.ok(cut.bodyBytes < BODY, `the client got ${cut.bodyBytes} of ${BODY} bytes: the response must not look complete`);
    // undici's timers are coarse (about 1 s granularity); a loaded machine adds more.
    assert.ok(cut.gapMs >= READ_MS * 0.8 && cut.gapMs < READ_MS + 4000, `cut after ${cut.gapMs.toFixed(0)} ms`);
    await waitFor(() => upstreamClosed >= 1, 5_000, 'the gateway to close its upstream connection');
    assert.equal(await upstreamErrors(), errorsBefore + 1, 'counted as an upstream error');
  });

  test('gaps below the read timeout do not cut a slow body', async () => {
    const r = await request(`${gw.url}/trickle`);
    assert.equal(r.statusCode, 200);
    assert.equal(await r.body.text(), 'b'.repeat(BODY));
  });
});
