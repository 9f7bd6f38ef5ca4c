// The upstream-side conformance suite (native-bench/conformance/upstream) through the
// real gateway: malformed upstream responses must come out as a 502 or a cut-short
// message, valid ones intact, and no response hidden behind another may ever reach a
// client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, baseConfig } from '../helpers/gateway.js';
import { runResponseSuite, startMalformedUpstream } from '../../native-bench/conformance/upstream/suite.js';
import { RESPONSE_VECTORS } from '../../native-bench/conformance/upstream/responses.js';

test('upstream-side conformance: every malformed response is refused or cut short, nothing smuggled reaches a client', async () => {
  const upstream = await startMalformedUpstream();
  const gw = await startGateway(baseConfig([`127.0.0.1:${upstream.port}`]));
  try {
    const results = await runResponseSuite({ proxyPort: gw.port, upstream });
    assert.equal(results.length, RESPONSE_VECTORS.length);
    const wrong = results.filter((r) => !r.pass);
    assert.deepEqual(wrong.map((r) => `${r.vector.id}: ${r.verdict} (${r.detail})`), []);
    assert.equal(results.filter((r) => r.verdict === 'desync').length, 0);
    // tidegate's refusals are its own stable error, not a bare 502.
    const refused = results.filter((r) => r.verdict === 'bad-gateway' && r.first.response !== null);
    assert.ok(refused.length >= 15, `${refused.length} refusals`);
    for (const r of refused) assert.match(r.first.response!.body, /"code":"TG_ERR_UPSTREAM_(PROTOCOL|RESET)"/, `${r.vector.id}: ${r.first.response!.body}`);
    // Every vector reached the upstream, and every follow-up on a kept connection was answered by it.
    for (const r of results) assert.ok((upstream.seen.get(r.tag) ?? 0) >= 1, `${r.vector.id} never reached the upstream`);
  } finally {
    await gw.stop();
    await upstream.close();
  }
});
