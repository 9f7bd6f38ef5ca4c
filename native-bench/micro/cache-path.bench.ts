// Micro-benchmark of tidegate's cache paths without the network: the shared store
// filled as the cache scenario fills it (the most popular keys of its object set, 1–16
// KiB bodies, the origin's header fields), then per op:
//   find+read   hash the key, look it up, copy meta and body out (CacheStore only)
//   handle      RouteCache.handle() for a GET hit: request facts, key, sketch touch,
//               lookup, copy, the entry's decoded head (decoded at its first hit and
//               kept per entry version), freshness, and serveEntry() writing status
//               line with stored fields, the rest of the header fields and body to a
//               response object that only counts calls
//               (uWS's own C++ work and the socket write are not in this figure)
//   handle 304  the same with If-None-Match matching the stored ETag
//   pass        what a caching route adds to a request for a key whose last response
//               was not storable (hit-for-pass): handle() (facts, key, sketch, lookup,
//               the mark); the request path's own work is not in it
//   miss        what it adds to a request for a key never seen whose response it cannot
//               store (nginx's head, no freshness; the worst case of the miss-cost
//               A/B): handle() (lookup, reservation, the fill) and the fill's onHead
//               (the response's evaluation, the reservation given back) and onFinish
// Prints ns/op, median of several runs.
//
//   npx tsc -p tsconfig.json && node dist/native-bench/micro/cache-path.bench.js [case…]
import { CacheStore, newEntryFields } from '../../src/shm/cache-store.js';
import { RecordFlag } from '../../src/shm/cache-layout.js';
import { attachCache } from '../../src/worker/cache/worker-cache.js';
import { RouteCache } from '../../src/worker/cache/route-cache.js';
import type { Exchange } from '../../src/worker/exchange.js';
import type { WorkerRouteCache } from '../../src/messages.js';
import { normaliseHost } from '../../src/worker/router.js';
import { objectSize } from '../cache/objects.js';

const KEYS = 998; // what the scenario's pure-hit run uses with its default sizes
const HOST = '127.0.0.1:8080';
const store = CacheStore.create(17_410_607, 64 * 1024);
attachCache(store.buffer);

const now = Date.now();
for (let k = 1; k <= KEYS; k++) {
  const key = `${normaliseHost(HOST)}/obj/${k}`;
  const meta = ['', '', `"v${k}"`, '', 'content-type', 'application/octet-stream', 'cache-control', 'max-age=3600'].join('\n');
  const body = Buffer.alloc(objectSize(k), k & 0xff);
  const f = newEntryFields();
  f.status = 200;
  f.bornAt = now;
  f.freshUntil = now + 3_600_000;
  store.hash(key);
  store.publish(-1, 0, key, store.hA, store.hB, meta, [body], body.length, f, -1);
}

// A key whose response was not storable: marked uncacheable (hit-for-pass) for the whole run.
const PASS_KEY = `${normaliseHost(HOST)}/pass`;
{
  const f = newEntryFields();
  f.flags = RecordFlag.Uncacheable;
  f.status = 200;
  f.bornAt = now;
  f.freshUntil = f.swrUntil = f.sieUntil = now + 3_600_000;
  store.hash(PASS_KEY);
  store.publish(-1, 0, PASS_KEY, store.hA, store.hB, '', null, 0, f, -1);
}

const cfg: WorkerRouteCache = { ttlDefault: 0, ttlMin: 0, ttlMax: 0, staleWhileRevalidate: 0, staleIfError: 0, staleIfBusy: 0, keyHeaders: [], bypassHeader: null, bypassCookie: null, stripSetCookie: false };
const rc = new RouteCache(cfg, store, 0, 5_000, true);

let sink = 0;
const res = {
  cork(cb: () => void): void {
    cb();
  },
  writeStatus(s: string): void {
    sink += s.length;
  },
  writeHeader(n: string, v: string): void {
    sink += n.length + v.length;
  },
  end(b: Uint8Array): void {
    sink += b.length;
  },
  endWithoutBody(): void {
    sink++;
  },
};
const rt = { viaToken: null, requestIdHeader: 'x-request-id' };

function exchange(k: number | string, inm: string | null): Exchange {
  const headers = ['host', HOST, 'user-agent', 'wrk', 'accept', '*/*'];
  if (inm !== null) headers.push('if-none-match', inm);
  const ex = {
    aborted: false,
    res,
    rt,
    head: { method: 'GET', host: HOST, path: typeof k === 'string' ? k : `/obj/${k}`, query: '', headers, contentLength: 0, chunked: false },
    clientClose: false,
    requestId: '0af7651916cd43dd8448eb211c80319c',
    responseHeaders: [] as string[],
    cache: null,
    closeAfter: () => false,
    answered: (status: number, bytes: number) => {
      sink += status + bytes;
    },
  };
  return ex as unknown as Exchange;
}

// Exchanges made up front: building one is the request path's cost, not the cache's.
const POOL = 4096;
const keyOf = (i: number): number => 1 + ((Math.imul(i, 2654435761) >>> 0) % KEYS);
const plain = Array.from({ length: POOL }, (_, i) => exchange(keyOf(i), null));
const conditional = Array.from({ length: POOL }, (_, i) => exchange(keyOf(i), `"v${keyOf(i)}"`));
const keys = Array.from({ length: POOL }, (_, i) => `${normaliseHost(HOST)}/obj/${keyOf(i)}`);
const scratch = Buffer.allocUnsafe(store.maxObjectSize + 64 * 1024);
const passEx = exchange('/pass', null);
// The head nginx's `return 200` sends, as the upstream parser hands it over.
const missHead = ['server', 'nginx/1.22.1', 'date', new Date().toUTCString(), 'content-type', 'application/octet-stream', 'content-length', '1024', 'connection', 'keep-alive'].map((v) => Buffer.from(v, 'latin1'));
const missFields = { respHeaders: missHead, respVia: null, total: 1024, respDate: missHead[3]! };
let missSeq = 0;

const cases: Record<string, (n: number) => void> = {
  'find+read': (n) => {
    for (let i = 0; i < n; i++) {
      const key = keys[i & (POOL - 1)]!;
      store.hash(key);
      const r = store.find(key, store.hA, store.hB);
      if (r < 0 || !store.read(r, store.seq, scratch)) throw new Error(`miss on ${key}`);
      sink += store.bodyLen;
    }
  },
  handle: (n) => {
    for (let i = 0; i < n; i++) {
      const ex = plain[i & (POOL - 1)]!;
      (ex.responseHeaders as string[]).length = 0;
      if (!rc.handle(ex)) throw new Error('not a hit');
    }
  },
  'handle 304': (n) => {
    for (let i = 0; i < n; i++) {
      const ex = conditional[i & (POOL - 1)]!;
      (ex.responseHeaders as string[]).length = 0;
      if (!rc.handle(ex)) throw new Error('not a hit');
    }
  },
  miss: (n) => {
    for (let i = 0; i < n; i++) {
      const ex = exchange(`/once/${missSeq++}`, null);
      if (rc.handle(ex) || ex.cache === null) throw new Error('not a miss');
      const fill = ex.cache as unknown as { onHead(s: number, h: readonly Buffer[], f: typeof missFields): number; onFinish(): void };
      fill.onHead(200, missHead, missFields);
      fill.onFinish();
      sink += ex.responseHeaders.length;
    }
  },
  pass: (n) => {
    for (let i = 0; i < n; i++) {
      const ex = passEx;
      (ex.responseHeaders as string[]).length = 0;
      ex.cache = null;
      if (rc.handle(ex) || (ex.cache as unknown) !== null) throw new Error('not passed');
      sink += ex.responseHeaders.length;
    }
  },
};
const ITER = 100_000;
const RUNS = 9;

console.log(`cache-path micro-benchmark: ${KEYS} keys of 1–16 KiB, ${RUNS} runs of ${ITER} per case, median ns/op (node ${process.version})`);
// `node … pass handle`: only the cases named
const only = process.argv.slice(2);
for (const [name, fn] of Object.entries(cases)) {
  if (only.length > 0 && !only.includes(name)) continue;
  fn(ITER); // warm-up
  const t: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    fn(ITER);
    t.push(Number(process.hrtime.bigint() - t0) / ITER);
  }
  t.sort((a, b) => a - b);
  console.log(`${name.padEnd(12)} ${t[RUNS >> 1]!.toFixed(0).padStart(7)} ns/op  (min ${t[0]!.toFixed(0)}, max ${t[RUNS - 1]!.toFixed(0)})`);
}
if (sink === 0) console.log('');
