import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import * as hdr from 'hdr-histogram-js';
import { HistogramStore, decodeV2Sparse } from '../../src/metrics/histogram-store.js';
import { HDR_DIGITS, HDR_HIGHEST_US, HDR_LOWEST_US, V2_COMPRESSED_ENCODING_COOKIE, V2_ENCODING_COOKIE, bucketCounts, type CountsView } from '../../src/metrics/hdr.js';

hdr.initWebAssemblySync();
// Intervals are encoded the way workers do it: WASM histograms, V2 uncompressed.
function interval(values: number[]): Uint8Array {
  const h = hdr.build({ lowestDiscernibleValue: HDR_LOWEST_US, highestTrackableValue: HDR_HIGHEST_US, numberOfSignificantValueDigits: HDR_DIGITS, autoResize: false, useWebAssembly: true });
  for (const v of values) h.recordValue(v);
  const bytes = (h as unknown as { encode(): Uint8Array }).encode();
  h.destroy();
  return bytes;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 1];

test('per-worker histograms add up to the merged one, bucket by bucket', () => {
  const store = new HistogramStore(BOUNDS);
  const rnd = seeded(7);
  const all: number[] = [];
  for (let round = 0; round < 5; round++) {
    const entries = [];
    for (let w = 0; w < 4; w++) {
      const vals = Array.from({ length: 200 + w * 50 }, () => Math.floor(100 + rnd() ** 2 * 300_000));
      all.push(...vals);
      entries.push({ key: 'request:api', worker: w, bytes: interval(vals), sumUs: vals.reduce((a, b) => a + b, 0) });
    }
    store.ingest(entries);
  }
  const exports = store.exportAll().filter((e) => e.key === 'request:api');
  const merged = exports.find((e) => e.worker === -1)!;
  const workers = exports.filter((e) => e.worker >= 0);
  assert.equal(workers.length, 4);
  assert.equal(merged.count, all.length);
  assert.equal(workers.reduce((s, e) => s + e.count, 0), merged.count);
  assert.equal(workers.reduce((s, e) => s + e.sumUs, 0), merged.sumUs);
  for (let i = 0; i < BOUNDS.length; i++) assert.equal(workers.reduce((s, e) => s + e.buckets[i]!, 0), merged.buckets[i], `bucket le=${BOUNDS[i]}`);
  // Buckets match the raw values within HDR precision: only values within 0.1 % of a bound may land on the other side.
  for (let i = 0; i < BOUNDS.length; i++) {
    const b = BOUNDS[i]! * 1e6;
    const lo = all.filter((v) => v <= b * 0.999).length;
    const hi = all.filter((v) => v <= b * 1.001).length;
    assert.ok(merged.buckets[i]! >= lo && merged.buckets[i]! <= hi, `le=${BOUNDS[i]}: ${merged.buckets[i]} not in [${lo}, ${hi}]`);
  }
  const s = store.summary('request:api', null)!;
  const sorted = [...all].sort((a, b) => a - b);
  const exactP99 = sorted[Math.ceil(0.99 * sorted.length) - 1]!;
  assert.ok(Math.abs(s.percentilesUs.p99! - exactP99) <= exactP99 * 0.001 + 1, `p99 ${s.percentilesUs.p99} vs exact ${exactP99}`);
});

test('compressed base64 export round-trips and carries a spec-conformant V2 header', () => {
  const store = new HistogramStore(BOUNDS);
  const vals = [120, 950, 1500, 2500, 40_000, 40_010, 999_000, 59_000_000];
  store.ingest([{ key: 'upstream:app', worker: 1, bytes: interval(vals), sumUs: 0 }]);
  const b64 = store.encode('upstream:app', 1)!;
  assert.ok(b64.startsWith('HISTFAAA'), b64.slice(0, 12));
  const decoded = hdr.decodeFromCompressedBase64(b64);
  assert.equal(decoded.totalCount, vals.length);
  assert.equal(decoded.maxValue >= 59_000_000 * 0.999, true);
  for (const p of [10, 50, 90, 100]) assert.equal(decoded.getValueAtPercentile(p), store.summary('upstream:app', 1)!.percentilesUs[`p${p}`] ?? decoded.getValueAtPercentile(p));
  // Header per HdrHistogram's encoding spec (big-endian): compressed cookie, length, zlib payload;
  // inside: V2 cookie, payload length, normalizingIndexOffset 0, digits, lowest, highest, ratio 1.0.
  const outer = Buffer.from(b64, 'base64');
  assert.equal(outer.readUInt32BE(0), V2_COMPRESSED_ENCODING_COOKIE);
  const inner = inflateSync(outer.subarray(8, 8 + outer.readUInt32BE(4)));
  assert.equal(inner.readUInt32BE(0), V2_ENCODING_COOKIE);
  assert.equal(inner.readInt32BE(4), inner.length - 40, 'payload length = bytes after the 40-byte header');
  assert.equal(inner.readInt32BE(8), 0, 'normalizingIndexOffset');
  assert.equal(inner.readInt32BE(12), HDR_DIGITS);
  assert.equal(inner.readBigInt64BE(16), BigInt(HDR_LOWEST_US));
  assert.equal(inner.readBigInt64BE(24), BigInt(HDR_HIGHEST_US));
  assert.equal(inner.readDoubleBE(32), 1.0, 'integerToDoubleValueConversionRatio');
  assert.equal(store.encode('upstream:app', 7), null);
});

test('takeWindow reports the recent percentile and starts a new window', () => {
  const store = new HistogramStore(BOUNDS);
  store.ingest([{ key: 'upstream:app', worker: 0, bytes: interval(Array.from({ length: 100 }, (_, i) => (i + 1) * 1000)), sumUs: 0 }]);
  const w = store.takeWindow(99)['upstream:app']!;
  assert.equal(w.count, 100);
  assert.ok(Math.abs(w.valueUs - 99_000) <= 99);
  assert.equal(store.takeWindow(99)['upstream:app']!.count, 0);
  assert.equal(store.summary('upstream:app', null)!.count, 100, 'cumulative histograms are untouched');
});

test('sparse V2 decoding equals hdr-histogram-js decoding; incremental buckets equal a full scan', () => {
  const rnd = seeded(11);
  // counts large enough to need multi-byte LEB128, values across the whole range
  const vals = Array.from({ length: 5000 }, () => Math.floor(1 + rnd() ** 4 * (HDR_HIGHEST_US - 1)));
  for (let i = 0; i < 300; i++) vals.push(777);
  const bytes = interval(vals);
  const sp = decodeV2Sparse(bytes)!;
  const ref = (hdr.JsHistogram as unknown as { decode(b: Uint8Array, w: 64): CountsView }).decode(bytes, 64);
  const refIdx: number[] = [];
  const refCnt: number[] = [];
  for (let i = 0; i < ref.countsArrayLength; i++) {
    const c = ref.getCountAtIndex(i);
    if (c !== 0) {
      refIdx.push(i);
      refCnt.push(c);
    }
  }
  assert.deepEqual(sp.idx, refIdx);
  assert.deepEqual(sp.cnt, refCnt);
  assert.equal(sp.total, vals.length);

  const store = new HistogramStore(BOUNDS);
  store.ingest([{ key: 'request:a', worker: 0, bytes, sumUs: 0 }]);
  store.ingest([{ key: 'request:a', worker: 0, bytes: interval([5, 5000, 50_000]), sumUs: 0 }]);
  const check = (bounds: number[]) => {
    const full = hdr.decodeFromCompressedBase64(store.encode('request:a', 0)!) as unknown as CountsView;
    const exp = store.exportAll().find((e) => e.worker === 0)!;
    assert.deepEqual(exp.buckets, bucketCounts(full, bounds));
    assert.equal(exp.count, vals.length + 3);
  };
  check(BOUNDS);
  const next = [0.0001, 0.002, 0.3, 30];
  store.setBounds(next);
  check(next);
});
