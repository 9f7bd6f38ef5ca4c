// File discovery: a real file rewritten under a real fs.watch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileDiscoverySchema, parseEndpointsFile } from '../../src/discovery/file.js';
import { staticDiscoverySchema } from '../../src/discovery/static.js';
import { DiscoveryManager } from '../../src/primary/discovery-manager.js';
import { endpointKey } from '../../src/discovery/provider.js';
import { captureLog, waitFor } from '../helpers/log-capture.js';

test('file: picks up rewrites (in place and by rename), debounces bursts, keeps the last set on a bad or empty file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-file-disco-'));
  const file = join(dir, 'endpoints.yaml');
  writeFileSync(file, '- 127.0.0.1:9001\n- { host: 127.0.0.1, port: 9002, weight: 3 }\n');
  const cap = captureLog();
  const sets: string[][] = [];
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints: (_u, eps) => sets.push(eps.map((e) => `${endpointKey(e)}*${e.weight ?? 1}`)) } });
  t.after(() => mgr.stop());
  await mgr.apply({ app: { discovery: fileDiscoverySchema.parse({ type: 'file', path: file, debounce: '100ms' }) } });
  await waitFor(() => sets.length === 1, 3_000, 'first set');
  assert.deepEqual(sets[0], ['127.0.0.1:9001*1', '127.0.0.1:9002*3']);

  // A burst of writes lands as one update (the debounce), with the final content.
  for (let i = 3; i <= 6; i++) writeFileSync(file, JSON.stringify({ endpoints: [`127.0.0.1:900${i}`] }));
  await waitFor(() => sets.length >= 2, 3_000, 'update after the burst');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(sets.length, 2, `one update for the burst, got ${JSON.stringify(sets)}`);
  assert.deepEqual(sets[1], ['127.0.0.1:9006*1']);

  // Broken YAML: logged, counted, the set stays.
  writeFileSync(file, '- 127.0.0.1:9007\n  bad: [\n');
  await waitFor(() => cap.events('discovery-failed').length >= 1, 3_000, 'discovery-failed for bad YAML');
  writeFileSync(file, '[]');
  await waitFor(() => cap.events('discovery-failed').length >= 2, 3_000, 'discovery-failed for an empty list');
  assert.match(String(cap.events('discovery-failed')[1]!.reason), /lists no endpoints/);
  writeFileSync(file, '- "not an endpoint"\n');
  await waitFor(() => cap.events('discovery-failed').length >= 3, 3_000, 'discovery-failed for a bad entry');
  assert.match(String(cap.events('discovery-failed')[2]!.reason), /expected "host:port"/);
  assert.equal(sets.length, 2);
  assert.deepEqual(mgr.endpoints('app')!.map(endpointKey), ['127.0.0.1:9006']);
  assert.equal(mgr.stats().app!.failures, 3);

  // Replaced by rename (how deploy tools write atomically).
  writeFileSync(join(dir, 'tmp'), '- 127.0.0.1:9008\n');
  renameSync(join(dir, 'tmp'), file);
  await waitFor(() => sets.length >= 3, 3_000, 'update after rename');
  assert.deepEqual(sets[2], ['127.0.0.1:9008*1']);
});

test('file: a missing file at start is a failure, and the first good write is picked up', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-file-disco-'));
  const file = join(dir, 'later.json');
  const cap = captureLog();
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints() {} } });
  t.after(() => mgr.stop());
  await mgr.apply({ app: { discovery: fileDiscoverySchema.parse({ type: 'file', path: file, debounce: '50ms' }) } });
  await waitFor(() => cap.events('discovery-failed').length >= 1, 3_000, 'failure for the missing file');
  assert.match(String(cap.events('discovery-failed')[0]!.reason), /ENOENT/);
  assert.equal(mgr.endpoints('app'), null);
  writeFileSync(file, '["127.0.0.1:9100"]');
  await waitFor(() => mgr.endpoints('app'), 3_000, 'first set');
});

test('manager: apply() keeps unchanged providers, restarts changed ones and stops removed ones', async (t) => {
  const cap = captureLog();
  const calls: string[] = [];
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints: (u, eps) => calls.push(`${u}=${eps.map(endpointKey).join(',')}`) } });
  t.after(() => mgr.stop());
  const a = staticDiscoverySchema.parse({ type: 'static', endpoints: ['127.0.0.1:1'] });
  const b = staticDiscoverySchema.parse({ type: 'static', endpoints: ['127.0.0.1:2'] });
  await mgr.apply({ a: { discovery: a }, b: { discovery: b } });
  assert.deepEqual(calls, ['a=127.0.0.1:1', 'b=127.0.0.1:2']);
  await mgr.apply({ a: { discovery: a }, b: { discovery: staticDiscoverySchema.parse({ type: 'static', endpoints: ['127.0.0.1:3'] }) } });
  assert.deepEqual(calls.slice(2), ['b=127.0.0.1:3']);
  await mgr.apply({ a: { discovery: a } });
  assert.deepEqual(Object.keys(mgr.stats()), ['a']);
});

test('file format: host:port strings, objects with weights, or { endpoints }', () => {
  assert.deepEqual(parseEndpointsFile('["[::1]:80", {"host": "h", "port": 1, "weight": 2}]'), [
    { host: '::1', port: 80 },
    { host: 'h', port: 1, weight: 2 },
  ]);
  assert.throws(() => parseEndpointsFile('{ endpoints: [ { host: h } ] }'), /endpoints\.0/);
});
