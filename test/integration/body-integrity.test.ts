// Response bodies arrive byte for byte whatever the reads and the client's pace do to
// them. A worker reads every upstream socket into one shared buffer (h1-connection.ts),
// so any part of a response that outlives its read — the piece uWS could not take yet
// while a client reads slowly, a body the cache collects across reads — must have been
// copied before another upstream read on the same thread lands there. One worker, so
// that every stream shares that buffer; random bytes, so a stale copy cannot match.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { until } from '../helpers/poll.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const STREAMS = 4;
const SIZE = 4 * 1024 * 1024;
const bodies = Array.from({ length: STREAMS }, () => randomBytes(SIZE));
const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const expected = bodies.map(digest);
/** times the upstream's write of stream i returned false (the gateway stopped reading it) */
const waits = new Array<number>(STREAMS).fill(0);
const CACHED = randomBytes(200 * 1024);

/** Writes `body` in pieces of varying size, waiting for drain when the socket is full. */
function send(res: ServerResponse, body: Buffer, i: number): void {
  let at = 0;
  const more = (): void => {
    while (at < body.length) {
      const n = Math.min(body.length - at, 8192 + ((at / 8192) % 7) * 9000);
      const ok = res.write(body.subarray(at, at + n));
      at += n;
      if (!ok) {
        waits[i]!++;
        res.once('drain', more);
        return;
      }
    }
    res.end();
  };
  more();
}

let up: TestUpstream;
let gw: RunningGateway;
before(async () => {
  up = await startUpstream((req, res) => {
    if (req.url === '/cached') {
      res.writeHead(200, { 'content-length': String(CACHED.length), 'cache-control': 'max-age=60' });
      send(res, CACHED, 0);
      return;
    }
    const m = /^\/(cl|chunked)\/(\d)$/.exec(req.url ?? '');
    if (m === null) return void res.writeHead(404).end();
    const i = Number(m[2]);
    if (m[1] === 'cl') res.writeHead(200, { 'content-length': String(SIZE) });
    else res.writeHead(200); // no length: chunked
    send(res, bodies[i]!, i);
  });
  gw = await startGateway(
    baseConfig([up.address], {
      workers: 1,
      cache: { size: '8mb', maxObjectSize: '1mb' },
      routes: [
        { name: 'cached', match: { path: '/cached' }, upstream: 'app', cache: {} },
        { name: 'plain', match: { path: '/' }, upstream: 'app' },
      ],
    }),
  );
});
after(async () => {
  assert.equal(await gw.stop(), 0, gw.exitReport());
  await up.close();
});

async function readAll(body: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of body) h.update(c);
  return h.digest('hex');
}

describe('response bodies through one worker, one client held back while others stream', () => {
  for (const mode of ['cl', 'chunked'] as const) {
    test(mode === 'cl' ? 'Content-Length bodies' : 'chunked bodies', async () => {
      waits.fill(0);
      // Stream 0's client reads nothing until its upstream has been stopped: the gateway
      // then holds a piece of it that uWS did not take, while streams 1.. go through.
      const held = await request(`${gw.url}/${mode}/0`);
      assert.equal(held.statusCode, 200);
      await until('the held stream backs up to its upstream', () => waits[0]!, (n) => n >= 1, 10_000);
      const others = await Promise.all(
        Array.from({ length: STREAMS - 1 }, async (_, k) => {
          const r = await request(`${gw.url}/${mode}/${k + 1}`);
          assert.equal(r.statusCode, 200);
          return readAll(r.body);
        }),
      );
      assert.deepEqual(others, expected.slice(1));
      assert.equal(await readAll(held.body), expected[0], 'the held stream arrived intact');
    });
  }

  test('a cached body collected across reads is served intact from the cache', async () => {
    const first = await request(`${gw.url}/cached`);
    assert.equal(await readAll(first.body), digest(CACHED));
    await until('the entry is stored', async () => ((await (await request(`${gw.adminUrl}/v1/cache`)).body.json()) as { entries: number }).entries, (n) => n === 1);
    const hit = await request(`${gw.url}/cached`);
    assert.match(String(hit.headers['cache-status']), /hit/);
    assert.equal(await readAll(hit.body), digest(CACHED));
  });
});
