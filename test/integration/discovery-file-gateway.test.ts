// File discovery end to end: the real gateway (two workers) in front of real upstreams,
// with the endpoints file rewritten while traffic flows. An added endpoint must start
// taking requests and a removed one must stop, in every worker, with nothing failing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool, request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';

const CONNECTIONS = 16;

test('file discovery through the gateway: traffic reaches an added endpoint and leaves a removed one', async () => {
  const names = ['a', 'b', 'c'] as const;
  const ups = new Map<string, TestUpstream>();
  for (const n of names) {
    ups.set(
      n,
      await startUpstream((req, res) => {
        req.resume();
        res.end(n);
      }),
    );
  }
  const addr = (n: string): string => ups.get(n)!.address;
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-file-e2e-'));
  const file = join(dir, 'endpoints.yaml');
  // Written by rename, as deploy tools do, so the provider never reads half a file.
  const publish = (list: string[]): void => {
    writeFileSync(join(dir, 'next'), list.map((a) => `- ${a}\n`).join(''));
    renameSync(join(dir, 'next'), file);
  };
  publish([addr('a')]);
  const gw = await startGateway(
    baseConfig([], {
      workers: 2,
      upstreams: { app: { discovery: { type: 'file', path: file, debounce: '50ms' }, timeouts: { connect: '1s', response: '5s' } } },
    }),
  );
  const pool = new Pool(gw.url, { connections: CONNECTIONS });
  /** One round of CONNECTIONS concurrent requests: who answered each. */
  const round = async (): Promise<string[]> =>
    Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        const r = await pool.request({ path: '/x', method: 'GET' });
        const body = await r.body.text();
        assert.equal(r.statusCode, 200, body);
        return body;
      }),
    );
  /** Sends rounds until `done` holds for the answers of the latest round (or the deadline). */
  const until = async (what: string, done: (answers: string[]) => boolean, ms = 10_000): Promise<void> => {
    const end = Date.now() + ms;
    for (;;) {
      const answers = await round();
      if (done(answers)) return;
      if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}; last round: ${answers.join(',')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    // The first set lands a moment after "started"; /readyz says when, as it would
    // tell a load balancer.
    const readyBy = Date.now() + 5_000;
    while ((await request(`${gw.adminUrl}/readyz`).then(async (r) => (await r.body.dump(), r.statusCode))) !== 200) {
      if (Date.now() > readyBy) assert.fail('not ready within 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(new Set(await round()), new Set(['a']));

    publish([addr('a'), addr('b')]);
    await until('traffic on the added endpoint b', (got) => got.includes('b'));

    // Remove a, add c. Once a round has no `a` the change is in; from then on `a`
    // must get nothing more, whichever worker serves.
    publish([addr('b'), addr('c')]);
    await until('traffic on c and none on a', (got) => got.includes('c') && !got.includes('a'));
    const aBefore = ups.get('a')!.requests.length;
    const before = await workerRequests(gw.adminUrl);
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) for (const g of await round()) seen.add(g);
    assert.equal(ups.get('a')!.requests.length, aBefore, 'the removed endpoint received requests after the change');
    assert.deepEqual([...seen].sort(), ['b', 'c']);
    await assertEveryWorkerServed(gw.adminUrl, 2, before);

    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { upstreams: { name: string; endpoints: string[] }[] };
    assert.deepEqual(s.upstreams.find((u) => u.name === 'app')!.endpoints.sort(), [addr('b'), addr('c')].sort());
    const changes = gw.logs.filter((l) => l.event === 'discovery-updated' && l.upstream === 'app');
    assert.ok(changes.length >= 3, `one discovery-updated event per published set, got ${changes.length}`);
  } finally {
    await pool.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    for (const u of ups.values()) await u.close();
  }
});
