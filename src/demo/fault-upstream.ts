// An upstream that fails on purpose, for tests, the demo and the overload benchmark.
//
// Capacity model: at most `capacity` requests are in service at once, each for
// `serviceMs` (± `jitterMs`, uniform); the rest wait in one FIFO queue of at most
// `queueLimit` requests. An arrival that finds the queue full is answered 503 at once
// (`x-fault: queue-full`), as a server with a bounded accept queue would. A queued
// request whose client has gone by the time it reaches the head is skipped: it costs no
// service time (a real server may still do the work; this one models the kinder case).
//
// Faults, drawn once per arrival, before queueing, with one random number:
//   stallRate  the request is read and never answered (until the client or server closes)
//   resetRate  the connection is reset (TCP RST) without an answer
//   errorRate  answered `errorStatus` (default 500) at once, without a service slot
// so the rates must sum to at most 1. Everything is changeable at run time:
//   GET  /_fault          → { settings, counters }
//   PUT  /_fault          ← any subset of the settings as JSON → { settings, counters }
//   POST /_fault/reset    zeroes the counters (settings stay)
//   GET  /health          200, or 503 when `health` is "down"; with "auto" (default) the
//                         health request takes the same fault draw as traffic (an error
//                         answers 503, a reset resets, a stall stalls) and answers 503
//                         while the queue is full — but never queues: active checks see
//                         the faults, not the backlog.
// The control and health paths never count as traffic. Every 200 carries `x-queued-ms`,
// the time it waited for a slot.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type HealthMode = 'auto' | 'up' | 'down';

export interface FaultSettings {
  /** requests in service at once */
  capacity: number;
  /** service time of one request, ms */
  serviceMs: number;
  /** uniform jitter around serviceMs, ± ms (never below 0) */
  jitterMs: number;
  /** requests that may wait for a slot; beyond it, 503 at once */
  queueLimit: number;
  /** share of arrivals answered errorStatus at once */
  errorRate: number;
  /** share of arrivals whose connection is reset */
  resetRate: number;
  /** share of arrivals never answered */
  stallRate: number;
  errorStatus: number;
  health: HealthMode;
}

export interface FaultCounters {
  /** traffic requests that arrived (control and health excluded) */
  received: number;
  /** answered 200 after their service time */
  served: number;
  /** waiting for a slot now */
  queuedNow: number;
  /** in service now */
  inService: number;
  /** longest queue since the counters were last reset */
  maxQueue: number;
  /** errorStatus answers injected */
  errors: number;
  /** connections reset */
  resets: number;
  /** requests stalled, and those still held open */
  stalls: number;
  stalledNow: number;
  /** answered 503 because the queue was full */
  rejected: number;
  /** queued requests skipped because their client had gone */
  abandoned: number;
  /** requests whose client went away while they were in service: the slot's work was wasted */
  goneInService: number;
  healthChecks: number;
}

export const DEFAULT_FAULT_SETTINGS: Readonly<FaultSettings> = {
  capacity: 8,
  serviceMs: 20,
  jitterMs: 0,
  queueLimit: 10_000,
  errorRate: 0,
  resetRate: 0,
  stallRate: 0,
  errorStatus: 500,
  health: 'auto',
};

const RATE_KEYS = ['errorRate', 'resetRate', 'stallRate'] as const;

/** Merge `patch` into `base`; every problem is listed (nothing is applied when there is one). */
export function mergeFaultSettings(base: Readonly<FaultSettings>, patch: unknown): { ok: true; settings: FaultSettings } | { ok: false; errors: string[] } {
  const errors: string[] = [];
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return { ok: false, errors: ['expected a JSON object of settings'] };
  const next: FaultSettings = { ...base };
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    switch (k) {
      case 'capacity':
      case 'queueLimit':
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (k === 'capacity' ? 1 : 0)) errors.push(`${k}: expected a whole number ≥ ${k === 'capacity' ? 1 : 0}`);
        else next[k] = v;
        break;
      case 'serviceMs':
      case 'jitterMs':
        if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 3_600_000) errors.push(`${k}: expected milliseconds between 0 and 3600000`);
        else next[k] = v;
        break;
      case 'errorRate':
      case 'resetRate':
      case 'stallRate':
        if (typeof v !== 'number' || !(v >= 0 && v <= 1)) errors.push(`${k}: expected a share between 0 and 1`);
        else next[k] = v;
        break;
      case 'errorStatus':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 500 || v > 599) errors.push('errorStatus: expected a 5xx status');
        else next.errorStatus = v;
        break;
      case 'health':
        if (v !== 'auto' && v !== 'up' && v !== 'down') errors.push('health: expected "auto", "up" or "down"');
        else next.health = v;
        break;
      default:
        errors.push(`${k}: unknown setting (known: ${Object.keys(DEFAULT_FAULT_SETTINGS).join(', ')})`);
    }
  }
  const sum = RATE_KEYS.reduce((s, k) => s + next[k], 0);
  if (sum > 1 + 1e-9) errors.push(`errorRate + resetRate + stallRate: ${+sum.toFixed(4)} is above 1`);
  return errors.length ? { ok: false, errors } : { ok: true, settings: next };
}

interface Waiting {
  req: IncomingMessage;
  res: ServerResponse;
  arrived: number;
}

type Fate = 'serve' | 'error' | 'reset' | 'stall';

export interface FaultUpstream {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  readonly name: string;
  settings(): FaultSettings;
  /** same rules as PUT /_fault; throws with every problem listed */
  set(patch: Partial<FaultSettings>): FaultSettings;
  counters(): FaultCounters;
  resetCounters(): void;
  /** closes the listener and every connection, stalled ones included */
  close(): Promise<void>;
}

export interface FaultUpstreamOptions {
  name?: string;
  host?: string;
  port?: number;
  settings?: Partial<FaultSettings>;
  /** a random source in [0, 1), for reproducible draws */
  random?: () => number;
}

function zeroCounters(): FaultCounters {
  return { received: 0, served: 0, queuedNow: 0, inService: 0, maxQueue: 0, errors: 0, resets: 0, stalls: 0, stalledNow: 0, rejected: 0, abandoned: 0, goneInService: 0, healthChecks: 0 };
}

export async function startFaultUpstream(opts: FaultUpstreamOptions = {}): Promise<FaultUpstream> {
  const name = opts.name ?? 'fault';
  const random = opts.random ?? Math.random;
  const merged = mergeFaultSettings(DEFAULT_FAULT_SETTINGS, opts.settings ?? {});
  if (!merged.ok) throw new Error(`fault upstream ${name}: ${merged.errors.join('; ')}`);
  let settings = merged.settings;
  let c = zeroCounters();
  // FIFO with a moving head: shift() on a long array is O(n) per request.
  let queue: Waiting[] = [];
  let head = 0;
  const sockets = new Set<Socket>();

  const queued = (): number => queue.length - head;

  function draw(): Fate {
    const r = random();
    if (r < settings.stallRate) return 'stall';
    if (r < settings.stallRate + settings.resetRate) return 'reset';
    if (r < settings.stallRate + settings.resetRate + settings.errorRate) return 'error';
    return 'serve';
  }

  function reset(req: IncomingMessage): void {
    // resetAndDestroy sends RST (SO_LINGER 0) rather than a FIN: the proxy sees ECONNRESET.
    const s = req.socket;
    if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s.destroy();
  }

  function stall(req: IncomingMessage): void {
    c.stalls++;
    c.stalledNow++;
    req.socket.once('close', () => c.stalledNow--);
  }

  function serviceTime(): number {
    const j = settings.jitterMs;
    return Math.max(0, j > 0 ? settings.serviceMs + (random() * 2 - 1) * j : settings.serviceMs);
  }

  function startService(w: Waiting): void {
    c.inService++;
    const waited = String(Math.round(performance.now() - w.arrived));
    setTimeout(() => {
      c.inService--;
      if (!w.res.destroyed) {
        c.served++;
        const body = `{"upstream":${JSON.stringify(name)},"path":${JSON.stringify(w.req.url ?? '/')}}`;
        w.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': name, 'x-queued-ms': waited });
        w.res.end(body);
      } else c.goneInService++;
      next();
    }, serviceTime());
  }

  function next(): void {
    while (c.inService < settings.capacity && queued() > 0) {
      const w = queue[head]!;
      queue[head++] = undefined as unknown as Waiting;
      if (head > 1024 && head * 2 > queue.length) {
        queue = queue.slice(head);
        head = 0;
      }
      c.queuedNow = queued();
      if (w.res.destroyed) {
        c.abandoned++;
        continue;
      }
      startService(w);
    }
  }

  function traffic(req: IncomingMessage, res: ServerResponse): void {
    c.received++;
    const fate = draw();
    if (fate === 'stall') return stall(req);
    if (fate === 'reset') {
      c.resets++;
      return reset(req);
    }
    if (fate === 'error') {
      c.errors++;
      res.writeHead(settings.errorStatus, { 'content-type': 'text/plain', 'x-fault': 'error', 'x-upstream': name }).end('injected error\n');
      return;
    }
    if (queued() >= settings.queueLimit && c.inService >= settings.capacity) {
      c.rejected++;
      res.writeHead(503, { 'content-type': 'text/plain', 'x-fault': 'queue-full', 'x-upstream': name }).end('queue full\n');
      return;
    }
    queue.push({ req, res, arrived: performance.now() });
    c.queuedNow = queued();
    if (c.queuedNow > c.maxQueue) c.maxQueue = c.queuedNow;
    next();
  }

  function health(req: IncomingMessage, res: ServerResponse): void {
    c.healthChecks++;
    let ok = settings.health !== 'down';
    if (settings.health === 'auto') {
      const fate = draw();
      if (fate === 'stall') return stall(req);
      if (fate === 'reset') return reset(req);
      if (fate === 'error' || (queued() >= settings.queueLimit && c.inService >= settings.capacity)) ok = false;
    }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain', 'x-upstream': name }).end(ok ? 'ok\n' : 'unhealthy\n');
  }

  function snapshot(): { settings: FaultSettings; counters: FaultCounters } {
    return { settings: { ...settings }, counters: { ...c, queuedNow: queued() } };
  }

  function json(res: ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
  }

  function control(req: IncomingMessage, res: ServerResponse, body: string): void {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/_fault' && (req.method === 'GET' || req.method === 'HEAD')) return json(res, 200, snapshot());
    if (path === '/_fault' && (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH')) {
      let patch: unknown;
      try {
        patch = JSON.parse(body || '{}');
      } catch {
        return json(res, 400, { errors: ['body: expected JSON'] });
      }
      const m = mergeFaultSettings(settings, patch);
      if (!m.ok) return json(res, 400, { errors: m.errors });
      settings = m.settings;
      next(); // a larger capacity starts queued requests now
      return json(res, 200, snapshot());
    }
    if (path === '/_fault/reset' && req.method === 'POST') {
      c = { ...zeroCounters(), queuedNow: queued(), inService: c.inService, stalledNow: c.stalledNow };
      return json(res, 200, snapshot());
    }
    json(res, 405, { errors: [`${req.method} ${path}: use GET/PUT /_fault or POST /_fault/reset`] });
  }

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    const isControl = url === '/_fault' || url.startsWith('/_fault/') || url.startsWith('/_fault?');
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => {
      if (isControl) chunks.push(d);
    });
    req.on('end', () => {
      if (isControl) control(req, res, Buffer.concat(chunks).toString('utf8'));
      else if (url === '/health' || url.startsWith('/health?')) health(req, res);
      else traffic(req, res);
    });
  });
  // Stalls must stay stalled: Node's default requestTimeout (300 s) would end them.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    name,
    settings: () => ({ ...settings }),
    set(patch) {
      const m = mergeFaultSettings(settings, patch);
      if (!m.ok) throw new Error(`fault upstream ${name}: ${m.errors.join('; ')}`);
      settings = m.settings;
      next();
      return { ...settings };
    },
    counters: () => snapshot().counters,
    resetCounters() {
      c = { ...zeroCounters(), queuedNow: queued(), inService: c.inService, stalledNow: c.stalledNow };
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
