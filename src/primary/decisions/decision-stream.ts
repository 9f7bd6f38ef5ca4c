// GET /v1/decisions/stream: the decision feed as Server-Sent Events.
//
// * Resume: a client that reconnects with `Last-Event-ID` (or `?since=`) first gets
//   every decision after that id still in the ring; when the ring has moved past it,
//   a `gap` event says how many were lost before the replay starts. Ids start at 1
//   with each process: an id beyond the newest means the gateway restarted, so a
//   `reset` event comes first and the whole ring is replayed.
// * Heartbeat: a comment line every `heartbeat`, so idle proxies keep the connection
//   and the client notices a dead one.
// * Bounded buffering: each client may have at most `clientBufferBytes` written but
//   not yet taken by its socket. Past that the server closes the stream instead of
//   growing a queue; the client reconnects with its Last-Event-ID and resumes from
//   the ring. (Bytes, not a count of write() === false: node:http corks a response
//   for the rest of the tick, so a burst reads as "full" even for a fast reader.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision, DecisionFeed } from './decision-feed.js';
import { parseDecisionQuery } from './decision-query.js';

export interface DecisionStreamOptions {
  readonly heartbeatMs: number;
  readonly clientBufferBytes: number;
  readonly maxClients: number;
}

export interface DecisionStreamStats {
  clients: number;
  /** streams closed because the client read too slowly */
  overflows: number;
  /** connections refused over maxClients */
  refused: number;
}

function frame(d: Decision): string {
  // One JSON line: `data:` cannot hold a raw newline, and JSON.stringify never emits one.
  return `id: ${d.id}\nevent: decision\ndata: ${JSON.stringify(d)}\n\n`;
}

export class DecisionStream {
  readonly stats: DecisionStreamStats = { clients: 0, overflows: 0, refused: 0 };
  private readonly open = new Set<ServerResponse>();

  constructor(
    private readonly feed: DecisionFeed,
    private opts: DecisionStreamOptions,
  ) {}

  setOptions(opts: DecisionStreamOptions): void {
    this.opts = opts;
  }

  handle(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const q = parseDecisionQuery(url); // throws a 400 error before anything is written
    if (this.open.size >= this.opts.maxClients) {
      this.stats.refused++;
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' });
      res.end(JSON.stringify({ error: { code: 'TG_ERR_ADMIN_TOO_MANY_STREAMS', message: `at most ${this.opts.maxClients} decision streams at once` } }));
      return;
    }
    const header = req.headers['last-event-id'];
    const asked = typeof header === 'string' && /^\d{1,15}$/.test(header.trim()) ? Number(header.trim()) : (q.since ?? this.feed.latestId);
    const restarted = asked > this.feed.latestId;
    const lastId = restarted ? 0 : asked;
    const kinds = q.kinds && q.kinds.length > 0 ? new Set(q.kinds) : null;

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    this.open.add(res);
    this.stats.clients = this.open.size;

    let closed = false;
    let unsubscribe = (): void => {};
    let hb: NodeJS.Timeout | undefined;
    const close = (): void => {
      if (closed) return;
      closed = true;
      unsubscribe();
      clearInterval(hb);
      this.open.delete(res);
      this.stats.clients = this.open.size;
    };
    const send = (chunk: string, counts: boolean): void => {
      if (closed) return;
      if (counts && res.writableLength > this.opts.clientBufferBytes) {
        this.stats.overflows++;
        close();
        // The client resumes with Last-Event-ID; the ring still holds what it missed.
        res.destroy();
        return;
      }
      res.write(chunk);
    };
    res.on('close', close);

    send(`retry: 2000\n: tidegate decision feed; latest id ${this.feed.latestId}\n\n`, false);
    if (restarted) send(`event: reset\ndata: ${JSON.stringify({ lastEventId: asked, latestId: this.feed.latestId })}\n\n`, false);
    const oldest = this.feed.oldestId;
    if (lastId > 0 && oldest > lastId + 1) send(`event: gap\ndata: ${JSON.stringify({ lost: oldest - lastId - 1, resumeFrom: oldest })}\n\n`, false);
    // The replay is bounded by the ring, so it is not held to clientBufferBytes; it
    // and the subscription happen in one synchronous step, so nothing falls between.
    for (const d of this.feed.query({ since: lastId, ...(q.kinds ? { kinds: q.kinds } : {}) })) send(frame(d), false);
    unsubscribe = this.feed.subscribe((d) => {
      if (kinds === null || kinds.has(d.kind)) send(frame(d), true);
    });
    hb = setInterval(() => send(`: heartbeat ${new Date().toISOString()}\n\n`, false), this.opts.heartbeatMs);
    hb.unref();
  }

  /** Ends every open stream (shutdown). */
  closeAll(): void {
    for (const res of this.open) res.end();
  }
}
