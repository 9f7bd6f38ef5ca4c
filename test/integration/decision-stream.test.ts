// GET /v1/decisions/stream served by the real admin server on loopback, read by a
// raw HTTP client: framing, Last-Event-ID resume, heartbeats, kind filter, the
// per-client buffer bound and the token rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAdminServer } from '../../src/primary/admin-server.js';
import { TokenStore } from '../../src/primary/admin/tokens.js';
import { DecisionFeed } from '../../src/primary/decisions/decision-feed.js';
import { DecisionStream, type DecisionStreamOptions } from '../../src/primary/decisions/decision-stream.js';
import { decisionRoutes } from '../../src/primary/decisions/decision-routes.js';
import { waitFor } from '../helpers/log-capture.js';

const TOKEN = 'a-long-enough-admin-token';

async function setup(opts: Partial<DecisionStreamOptions> = {}, size = 50) {
  const feed = new DecisionFeed(size);
  const stream = new DecisionStream(feed, { heartbeatMs: 60_000, clientBufferBytes: 1024 * 1024, maxClients: 4, ...opts });
  const routes = decisionRoutes(feed, stream);
  const server = await startAdminServer('127.0.0.1', 0, new TokenStore({ token: TOKEN }), { ready: () => true, status: () => ({}), reload: async () => ({ generation: 1 }), extra: routes.extra, streams: routes.streams });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let n = 0;
  const record = (kind: string, extra: Record<string, unknown> = {}) => feed.push({ time: new Date().toISOString(), kind, level: 'info', subject: { upstream: 'app' }, message: kind, why: { n: ++n, ...extra } });
  return {
    feed,
    stream,
    base,
    record,
    close: () =>
      new Promise<void>((r) => {
        stream.closeAll();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface SseClient {
  readonly res: IncomingMessage;
  readonly raw: string[];
  /** parsed events so far */
  readonly events: { id?: string; event?: string; data?: string }[];
  readonly comments: string[];
  close(): void;
}

function connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream', ...headers } }, (res) => {
      const client: SseClient = { res, raw: [], events: [], comments: [], close: () => req.destroy() };
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        client.raw.push(chunk);
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev: { id?: string; event?: string; data?: string } = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) client.comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) ev.id = line.slice(4);
            else if (line.startsWith('event: ')) ev.event = line.slice(7);
            else if (line.startsWith('data: ')) ev.data = line.slice(6);
          }
          if (ev.event !== undefined) client.events.push(ev);
        }
      });
      res.on('error', () => {});
      resolve(client);
    });
    req.on('error', reject);
    req.end();
  });
}

test('stream: live decisions as SSE; Last-Event-ID resumes after that id; heartbeats; kind filter', async (t) => {
  const s = await setup({ heartbeatMs: 150 });
  t.after(() => s.close());
  s.record('discovery-updated');
  s.record('endpoint-ejected');
  const live = await connect(`${s.base}/v1/decisions/stream`);
  t.after(() => live.close());
  assert.equal(live.res.statusCode, 200);
  assert.match(String(live.res.headers['content-type']), /^text\/event-stream/);
  await waitFor(() => live.comments.some((c) => c.startsWith('tidegate decision feed')), 5_000, 'the opening comment');
  assert.equal(live.events.length, 0, 'without Last-Event-ID only new decisions are sent');
  s.record('endpoint-readmitted');
  const ev = await waitFor(() => live.events[0], 5_000, 'a live event');
  assert.equal(ev.event, 'decision');
  assert.equal(ev.id, '3');
  const body = JSON.parse(ev.data!) as { id: number; kind: string; subject: { upstream: string } };
  assert.equal(body.id, 3);
  assert.equal(body.kind, 'endpoint-readmitted');
  assert.equal(body.subject.upstream, 'app');
  await waitFor(() => live.comments.some((c) => c.startsWith('heartbeat')), 5_000, 'a heartbeat comment');

  // A client that saw id 1 reconnects: it gets 2 and 3, in order, and then new ones.
  const resumed = await connect(`${s.base}/v1/decisions/stream`, { 'last-event-id': '1' });
  t.after(() => resumed.close());
  await waitFor(() => resumed.events.length >= 2, 5_000, 'the replay');
  assert.deepEqual(resumed.events.map((e) => e.id), ['2', '3']);
  s.record('worker-restart');
  await waitFor(() => resumed.events.length >= 3, 5_000, 'a live event after the replay');
  assert.deepEqual(resumed.events.map((e) => e.id), ['2', '3', '4']);

  const filtered = await connect(`${s.base}/v1/decisions/stream?since=0&kind=endpoint-ejected`);
  t.after(() => filtered.close());
  s.record('endpoint-ejected');
  await waitFor(() => filtered.events.length >= 2, 5_000, 'filtered events');
  assert.deepEqual(filtered.events.map((e) => e.id), ['2', '5']);
});

test('stream: a resume older than the ring gets a gap event saying how many were lost', async (t) => {
  const s = await setup({}, 10);
  t.after(() => s.close());
  for (let i = 0; i < 25; i++) s.record('discovery-updated'); // ids 1..25, ring keeps 16..25
  const c = await connect(`${s.base}/v1/decisions/stream`, { 'last-event-id': '3' });
  t.after(() => c.close());
  await waitFor(() => c.events.length >= 11, 5_000, 'gap + replay');
  assert.equal(c.events[0]!.event, 'gap');
  assert.deepEqual(JSON.parse(c.events[0]!.data!), { lost: 12, resumeFrom: 16 });
  assert.deepEqual(c.events.slice(1).map((e) => Number(e.id)), [16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
});

test('stream: an id beyond the newest (the gateway restarted) gets a reset event and the whole ring', async (t) => {
  const s = await setup();
  t.after(() => s.close());
  s.record('discovery-updated');
  s.record('endpoint-ejected');
  const c = await connect(`${s.base}/v1/decisions/stream`, { 'last-event-id': '900' });
  t.after(() => c.close());
  await waitFor(() => c.events.length >= 3, 5_000, 'reset + replay');
  assert.equal(c.events[0]!.event, 'reset');
  assert.deepEqual(JSON.parse(c.events[0]!.data!), { lastEventId: 900, latestId: 2 });
  assert.deepEqual(c.events.slice(1).map((e) => e.id), ['1', '2']);
});

test('stream: a client that stops reading is cut off at clientBufferBytes, others keep streaming; JSON pages forward', async (t) => {
  const s = await setup({ clientBufferBytes: 256 * 1024 }, 100);
  t.after(() => s.close());
  const slow = await connect(`${s.base}/v1/decisions/stream`);
  const fast = await connect(`${s.base}/v1/decisions/stream`);
  t.after(() => {
    slow.close();
    fast.close();
  });
  slow.res.pause(); // reads nothing more: the kernel buffers fill, then res.write() reports full
  let slowClosed = false;
  slow.res.socket.on('close', () => (slowClosed = true));
  await waitFor(() => s.stream.stats.clients === 2, 5_000, 'two clients');
  const pad = 'x'.repeat(16 * 1024);
  // Bounded: at 16 KiB each, 2,000 events (32 MiB) are far beyond any loopback socket buffer.
  for (let i = 0; i < 2000 && s.stream.stats.overflows === 0; i++) {
    s.record('discovery-updated', { pad });
    if (i % 8 === 0) await new Promise((r) => setTimeout(r, 1)); // 128 KiB a turn: the fast reader keeps up
  }
  assert.equal(s.stream.stats.overflows, 1, 'the slow client was cut off');
  await waitFor(() => s.stream.stats.clients === 1, 5_000, 'one client left');
  // The server's end is closed; the slow client sees it once it reads what was queued.
  slow.res.resume();
  await waitFor(() => slowClosed, 10_000, 'the slow connection to close');
  const before = fast.events.length;
  s.record('endpoint-ejected');
  await waitFor(() => fast.events.length > before && fast.events.at(-1)!.data!.includes('endpoint-ejected'), 10_000, 'the fast client still streams');

  const page = (await (await fetch(`${s.base}/v1/decisions?since=0&limit=3`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { more: boolean; decisions: { id: number }[]; latestId: number };
  assert.equal(page.more, true);
  assert.deepEqual(page.decisions.map((d) => d.id), [page.latestId - 99, page.latestId - 98, page.latestId - 97], 'with since: the oldest after it');
});

test('stream and JSON: the admin token is required; too many streams are refused with 503; bad queries are 400', async (t) => {
  const s = await setup({ maxClients: 1 });
  t.after(() => s.close());
  const noToken = await fetch(`${s.base}/v1/decisions/stream`);
  assert.equal(noToken.status, 401);
  assert.equal(((await noToken.json()) as { error: { code: string } }).error.code, 'TG_ERR_ADMIN_UNAUTHORIZED');
  assert.equal((await fetch(`${s.base}/v1/decisions`)).status, 401);
  const bad = await fetch(`${s.base}/v1/decisions/stream?since=-4`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'TG_ERR_ADMIN_BAD_QUERY');
  const one = await connect(`${s.base}/v1/decisions/stream`);
  t.after(() => one.close());
  const two = await fetch(`${s.base}/v1/decisions/stream`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(two.status, 503);
  assert.equal(((await two.json()) as { error: { code: string } }).error.code, 'TG_ERR_ADMIN_TOO_MANY_STREAMS');
  assert.equal(s.stream.stats.refused, 1);
});
