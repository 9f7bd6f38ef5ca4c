// Micro-benchmark of reading a request head on the hot path: readRequestHead (one
// forEach pass: framing checks, header-name token check, Host syntax) and
// normalizePath, on a typical browser-like GET with 12 fields, against a fake uWS
// request that replays them. Prints ns/op, median of 7 runs of 200k each.
//
//   npx tsc -p tsconfig.json && node dist/native-bench/micro/request-head.bench.js
import { RequestHead, readRequestHead } from '../../src/worker/request-head.js';
import { normalizePath } from '../../src/worker/path-normalize.js';
import type { HttpRequest } from '../../src/worker/uws.js';

const fields: [string, string][] = [
  ['host', 'api.example.com'],
  ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'],
  ['accept', 'application/json, text/plain, */*'],
  ['accept-language', 'en-GB,en;q=0.9'],
  ['accept-encoding', 'gzip, deflate, br'],
  ['referer', 'https://app.example.com/dashboard'],
  ['origin', 'https://app.example.com'],
  ['connection', 'keep-alive'],
  ['cookie', 'session=abcdef0123456789; theme=dark'],
  ['sec-fetch-mode', 'cors'],
  ['x-request-id', '7c9e6679-7425-40de-944b-e07fc1f90ae7'],
  ['authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc'],
];
const path = '/v1/users/12345/orders';
const req = {
  getCaseSensitiveMethod: () => 'GET',
  getUrl: () => path,
  getQuery: () => 'page=2',
  forEach: (cb: (k: string, v: string) => void) => {
    for (const [k, v] of fields) cb(k, v);
  },
} as unknown as HttpRequest;
const limits = { maxHeaderBytes: 16384, maxHeaderCount: 48, maxUrlBytes: 8192, maxBodyBytes: 1 << 20 };
const opts = { mergeSlashes: false, escapedSlashes: 'keep' } as const;

let sink = 0;
const cases: Record<string, (n: number) => void> = {
  readRequestHead: (n) => {
    for (let i = 0; i < n; i++) {
      const h = new RequestHead();
      if (readRequestHead(req, h, limits, 'x-request-id') === null) sink += h.headers.length;
    }
  },
  normalizePath: (n) => {
    for (let i = 0; i < n; i++) {
      const p = normalizePath(path, opts);
      if (typeof p === 'string') sink += p.length;
    }
  },
  'normalizePath (dot segment + %2e)': (n) => {
    for (let i = 0; i < n; i++) {
      const p = normalizePath('/v1/users/%2e%2e/admin/./x', opts);
      if (typeof p === 'string') sink += p.length;
    }
  },
};

const N = Number(process.env.BENCH_N ?? 200_000);
const only = process.env.BENCH_CASE;
for (const [name, fn] of Object.entries(cases)) {
  if (only !== undefined && name !== only) continue;
  fn(N); // warm-up
  const runs: number[] = [];
  for (let r = 0; r < (only !== undefined ? 1 : 7); r++) {
    const t0 = process.hrtime.bigint();
    fn(N);
    runs.push(Number(process.hrtime.bigint() - t0) / N);
  }
  runs.sort((a, b) => a - b);
  console.log(`${name.padEnd(36)} ${runs[runs.length >> 1]!.toFixed(1)} ns/op`);
}
if (sink === 42) console.log('');
