import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as hdr from 'hdr-histogram-js';
import { Aggregator } from '../../src/metrics/aggregator.js';

hdr.initWebAssemblySync();
function interval(values: number[]): Uint8Array {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3, autoResize: false, useWebAssembly: true });
  for (const v of values) h.recordValue(v);
  return (h as unknown as { encode(): Uint8Array }).encode();
}

test('the piscina aggregator merges batches, survives a corrupt interval, and serves exports and encodings', async () => {
  const errors: string[] = [];
  const agg = new Aggregator([0.001, 0.01], (e) => errors.push(e.message));
  try {
    agg.push([{ key: 'request:a', worker: 0, bytes: interval([500, 5000, 50_000]), sumUs: 55_500 }]);
    agg.push([{ key: 'request:a', worker: 1, bytes: interval([700]), sumUs: 700 }]);
    await agg.flush();
    const merged = agg.series.get('-1\u0000request:a')!;
    assert.deepEqual({ count: merged.count, sumUs: merged.sumUs, buckets: merged.buckets }, { count: 4, sumUs: 56_200, buckets: [2, 3] });
    assert.equal(agg.series.get('1\u0000request:a')!.count, 1);

    agg.push([
      { key: 'request:a', worker: 0, bytes: new Uint8Array([1, 2, 3, 4]), sumUs: 1 },
      { key: 'request:a', worker: 0, bytes: interval([900]), sumUs: 900 },
    ]);
    await agg.flush();
    assert.equal(errors.length, 1, 'the bad interval is reported');
    assert.match(errors[0]!, /1 of 2 interval histograms/);
    assert.equal(agg.series.get('-1\u0000request:a')!.count, 5, 'the good interval of the batch still counts');
    const b64 = (await agg.encode('request:a', null))!;
    assert.equal(hdr.decodeFromCompressedBase64(b64).totalCount, 5);
    assert.equal((await agg.summary('request:a', 0))!.count, 4);
    const f = await agg.fitForecasts([{ name: 'x', values: [1, 2, 3, 4, 5, 6] }], 10, 1);
    assert.equal(f[0]!.result.model, 'holt');
  } finally {
    await agg.close();
  }
});

test('the aggregation thread starts with the first work for it, with the bounds set before then', async () => {
  const agg = new Aggregator([0.001, 0.01], () => {});
  try {
    assert.equal(agg.running, false);
    // Reads and bound changes with nothing recorded answer without starting the thread.
    assert.deepEqual(await agg.takeWindow(99), {});
    assert.deepEqual(await agg.takeHistoryWindow([50, 99]), {});
    assert.equal(await agg.encode('request:a', null), null);
    assert.equal(await agg.summary('request:a', null), null);
    await agg.setBounds([0.002, 0.02, 0.2]);
    await agg.refreshHeap();
    assert.equal(agg.running, false);
    assert.equal(agg.heapStats(), null);

    agg.push([{ key: 'request:a', worker: 0, bytes: interval([1500, 15_000, 150_000]), sumUs: 166_500 }]);
    await agg.flush();
    assert.equal(agg.running, true);
    assert.deepEqual(agg.series.get('-1\u0000request:a')!.buckets, [1, 2, 3], 'the bounds set while it was not running');
    await agg.refreshHeap();
    const h = agg.heapStats()!;
    assert.ok(h.usedBytes > 0 && h.totalBytes >= h.usedBytes, JSON.stringify(h));
  } finally {
    await agg.close();
  }
});
