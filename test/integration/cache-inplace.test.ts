// A hit's body goes to uWS as a view of the shared arena (src/shm/cache-store.ts, read
// sections). What the socket cannot take at once must not be read from the arena later:
// here a client asks for a large cached body and does not read, so megabytes of it
// wait in the gateway; meanwhile the entry is purged and the whole arena is filled
// with other bodies (its chunks reused). The client then reads, and must get the
// original bytes, every one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

const SIZE = 8 * 1024 * 1024;
// Position- and object-dependent, so a byte of another body or of another place in this one shows.
const byteOf = (n: number, j: number): number => (n * 31 + j * 7 + (j >>> 13)) & 0xff;
const bodyOf = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(SIZE);
  for (let j = 0; j < SIZE; j++) b[j] = byteOf(n, j);
  return b;
};

test('a large hit the client reads late is sent whole and intact while its chunks are purged and reused', async () => {
  const bodies = new Map<number, Buffer>();
  const up = await startUpstream((req, res) => {
    const n = Number(req.url!.split('/').pop());
    const body = bodies.get(n) ?? bodies.set(n, bodyOf(n)).get(n)!;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SIZE, 'cache-control': 'max-age=600' });
    res.end(body);
  });
  // 40 MiB holds four of them and a bit: five new ones reuse every chunk.
  const gw = await startGateway(baseConfig([up.address], { cache: { size: '40mb', maxObjectSize: '10mb', admission: false }, routes: [{ match: { path: '/' }, upstream: 'app', cache: {} }] }));
  try {
    const get = async (path: string): Promise<{ status: string; length: number }> => {
      const r = await request(`${gw.url}${path}`);
      const b = Buffer.from(await r.body.arrayBuffer());
      return { status: String(r.headers['cache-status']), length: b.length };
    };
    assert.match((await get('/big/0')).status, /stored/);
    assert.match((await get('/big/0')).status, /hit/);

    // The slow client: asks for the hit, then reads nothing for a while.
    const sock = connect(gw.port, '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    const chunks: Buffer[] = [];
    let got = 0;
    sock.pause();
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
    });
    sock.write(`GET /big/0 HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\n\r\n`); // the key's host: as undici sent it
    // Until the gateway has answered (it logs nothing per hit): its route counter moves.
    const hitsNow = async (): Promise<number> => {
      const s = (await (await request(`${gw.adminUrl}/v1/cache`)).body.json()) as { routes: { requests: { hit: number } }[] };
      return s.routes[0]!.requests.hit;
    };
    const deadline = Date.now() + 10_000;
    while ((await hitsNow()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await hitsNow(), 2, 'the slow client was answered from the cache');

    // Purge it and fill the arena with others: its chunks are reused.
    const listed = (await (await request(`${gw.adminUrl}/v1/cache?keys=10`)).body.json()) as { keys: string[] };
    const key = listed.keys.find((k) => k.endsWith('/big/0'));
    assert.ok(key !== undefined, `stored keys: ${listed.keys.join(', ')}`);
    const purged = (await (await request(`${gw.adminUrl}/v1/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) })).body.json()) as { purged: number };
    assert.equal(purged.purged, 1);
    for (let n = 1; n <= 5; n++) assert.match((await get(`/big/${n}`)).status, /stored|miss/, `/big/${n}`);
    const stats = (await (await request(`${gw.adminUrl}/v1/cache`)).body.json()) as { stored: number; evictions: number };
    assert.ok(stats.stored >= 6 && stats.evictions >= 1, `the arena was refilled (${JSON.stringify(stats)})`);

    // Now the slow client reads it all.
    sock.resume();
    const head = 'HTTP/1.1 200';
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      const all = Buffer.concat(chunks);
      const at = all.indexOf('\r\n\r\n');
      if (at >= 0 && all.length - at - 4 >= SIZE) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    sock.destroy();
    const all = Buffer.concat(chunks);
    const at = all.indexOf('\r\n\r\n');
    assert.ok(all.subarray(0, head.length).toString() === head, all.subarray(0, 40).toString());
    const body = all.subarray(at + 4, at + 4 + SIZE);
    assert.equal(body.length, SIZE, `got ${got} bytes`);
    let bad = 0;
    let first = -1;
    for (let j = 0; j < SIZE; j++) {
      if (body[j] !== byteOf(0, j)) {
        bad++;
        if (first < 0) first = j;
      }
    }
    assert.equal(bad, 0, `${bad} bytes differ from the stored body, the first at ${first}`);
  } finally {
    await gw.stop();
    await up.close();
  }
});
