import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFlags } from '../../native-bench/flags.js';
import { parseOverloadOptions } from '../../native-bench/overload/run.js';

test('bench flags: "--f v" and "--f=v" both read, a value is consumed once, a missing one is named', () => {
  // Values are read while iterating, as the parsers do: that is what consumes them.
  const seen: string[][] = [];
  for (const f of readFlags(['--a', '1', '--b=2', '--c'])) seen.push(f.flag === '--c' ? [f.flag] : [f.flag, f.value()]);
  assert.deepEqual(seen, [['--a', '1'], ['--b', '2'], ['--c']]);
  const [only] = [...readFlags(['--n'])];
  assert.throws(() => only!.value(), /--n needs a value/);
  assert.throws(() => parseOverloadOptions(['--capacity', '0']), /--capacity: expected a number ≥ 1/);
  const o = parseOverloadOptions(['--capacity=4', '--service', '10', '--peers', 'tidegate-off']);
  assert.equal(o.capacity, 4);
  assert.equal(o.serviceMs, 10);
  assert.deepEqual(o.peers, ['tidegate-off']);
});
