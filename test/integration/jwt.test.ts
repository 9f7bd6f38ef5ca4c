// JWT through the real gateway: keys generated here, the JWKS served by a loopback
// HTTPS server whose certificate only the test's CA vouches for, tokens signed with
// jose; two workers check them with the key set the primary fetched. Then the server
// rotates its keys and the gateway picks up the new set in the background.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { Pool, request } from 'undici';
import { baseConfig, startGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { certDir, makeCert } from '../helpers/certs.js';
import { assertEveryWorkerServed, workerRequests } from '../helpers/workers.js';
import { until } from '../helpers/poll.js';

const CONNECTIONS = 16;
const ISS = 'https://idp.test/';
const AUD = 'orders-api';

interface Signer {
  readonly kid: string;
  readonly alg: string;
  readonly key: KeyLike;
  readonly jwk: JWK;
}

async function signer(alg: 'RS256' | 'ES256' | 'PS256', kid: string): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { kid, alg, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

function token(s: Signer, claims: Record<string, unknown> = {}, opts: { exp?: number; nbf?: number; iss?: string; aud?: string; kid?: string | null } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const header = opts.kid === null ? { alg: s.alg } : { alg: s.alg, kid: opts.kid ?? s.kid };
  let j = new SignJWT({ sub: 'alice', org: 'acme', ...claims }).setProtectedHeader(header).setIssuer(opts.iss ?? ISS).setAudience(opts.aud ?? AUD).setIssuedAt().setExpirationTime(opts.exp ?? now + 300);
  if (opts.nbf !== undefined) j = j.setNotBefore(opts.nbf);
  return j.sign(s.key);
}

test('jwt: JWKS over HTTPS (test CA), RS256 and ES256 verified on both workers, exp/nbf with leeway, iss, aud, algorithms; keys rotated in the background', async () => {
  const rsa = await signer('RS256', 'rsa-1');
  const ec = await signer('ES256', 'ec-1');
  const pss = await signer('PS256', 'pss-1');
  const next = await signer('ES256', 'ec-2');
  let served: JWK[] = [rsa.jwk, ec.jwk, pss.jwk];
  let fetches = 0;
  const dir = certDir();
  const cert = makeCert(dir, 'jwks', 'jwks.test', { ip: '127.0.0.1' });
  const jwksServer: Server = createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const jwksUrl = `https://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      observability: { snapshotInterval: '100ms', accessLog: { sampleRate: 1 } },
      routes: [
        {
          name: 'orders',
          match: { path: '/' },
          upstream: 'app',
          policies: [{ jwt: { jwks: { url: jwksUrl, ca: cert.cert, refresh: '1s' }, issuer: ISS, audience: [AUD, 'other'], algorithms: ['RS256', 'ES256'], leeway: '30s', tenantClaim: 'org' } }],
        },
      ],
    }),
  );
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1 });
  const call = async (t: string | null): Promise<{ status: number; code: string | null; challenge: string | null }> => {
    const r = await pool.request({ path: '/orders', method: 'GET', headers: t === null ? {} : { authorization: `Bearer ${t}` } });
    const text = await r.body.text();
    return { status: r.statusCode, code: r.statusCode >= 400 ? (JSON.parse(text) as { error: { code: string } }).error.code : null, challenge: (r.headers['www-authenticate'] as string | undefined) ?? null };
  };
  try {
    const sec = (): number => Math.floor(Date.now() / 1000);
    // Valid tokens of both allowed algorithms, on both workers.
    const before = await workerRequests(gw.adminUrl);
    const good = await Promise.all(Array.from({ length: CONNECTIONS * 2 }, async (_, i) => call(await token(i % 2 ? rsa : ec))));
    assert.deepEqual(new Set(good.map((r) => r.status)), new Set([200]));
    await assertEveryWorkerServed(gw.adminUrl, 2, before);
    assert.equal((await call(await token(rsa, {}, { kid: null }))).status, 200, 'no kid: the one RSA key that fits RS256');
    assert.equal((await call(await token(ec, {}, { exp: sec() - 10 }))).status, 200, 'expired 10 s ago, within the 30 s leeway');
    assert.equal((await call(await token(ec, {}, { nbf: sec() + 10 }))).status, 200, 'not before in 10 s, within the leeway');
    const logged = await until('access log with the consumer and tenant from the claims', () => gw.logs.filter((l) => l.event === 'access' && l.consumer === 'alice'), (l) => l.length > 0);
    assert.equal(logged[0]!.tenant, 'acme');

    // Every failed check: 401 with the RFC 6750 challenge.
    const missing = await call(null);
    assert.deepEqual(missing, { status: 401, code: 'TG_ERR_AUTH_REQUIRED', challenge: 'Bearer' });
    const t = await token(rsa);
    const [h, p] = t.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ sub: 'mallory', iss: ISS, aud: AUD, exp: sec() + 300 })).toString('base64url')}.${t.split('.')[2]}`;
    const bad: [string, string][] = [
      ['expired beyond the leeway', await token(rsa, {}, { exp: sec() - 120 })],
      ['not yet valid beyond the leeway', await token(rsa, {}, { nbf: sec() + 120 })],
      ['wrong issuer', await token(rsa, {}, { iss: 'https://evil.test/' })],
      ['wrong audience', await token(rsa, {}, { aud: 'billing' })],
      ['algorithm not allowed (PS256)', await token(pss)],
      ['unknown kid', await token(rsa, {}, { kid: 'nope' })],
      ['kid of a key of another type', await token(rsa, {}, { kid: 'ec-1' })],
      ['tampered payload', tampered],
      ['signature of another token', `${h}.${p}.${(await token(ec)).split('.')[2]}`],
      ['not a JWT', 'abc.def'],
    ];
    for (const [what, tok] of bad) assert.deepEqual(await call(tok), { status: 401, code: 'TG_ERR_AUTH_REQUIRED', challenge: 'Bearer error="invalid_token"' }, what);
    assert.equal(up.requests.filter((r) => r.url === '/orders').length, CONNECTIONS * 2 + 3, 'only valid tokens reached the upstream');

    // Rotation: the server drops rsa-1/ec-1 and serves ec-2; the primary refreshes every second.
    const fetchedBefore = fetches;
    served = [next.jwk];
    await until('a token of the new key admitted on every connection', async () => Promise.all(Array.from({ length: CONNECTIONS }, async () => (await call(await token(next))).status)), (s) => s.every((c) => c === 200), 8000);
    assert.ok(fetches > fetchedBefore);
    assert.equal((await call(await token(ec))).status, 401, 'a key no longer in the set is refused');
    const status = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { access: { jwks: { source: string; keys: number; lastError: string | null }[] } };
    assert.deepEqual(status.access.jwks.map((j) => [j.source, j.keys, j.lastError]), [[jwksUrl, 1, null]]);
    assert.ok(gw.logs.some((l) => l.event === 'jwks-loaded' && Array.isArray(l.kids) && (l.kids as string[]).includes('ec-2')));
  } finally {
    await pool.close();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
    await new Promise<void>((r) => jwksServer.close(() => r()));
  }
});

test('jwt: a JWKS URL whose certificate the gateway does not trust is never loaded: 503 TG_ERR_AUTH_UNAVAILABLE, jwks-failed logged', async () => {
  const dir = certDir();
  const cert = makeCert(dir, 'jwks', 'jwks.test', { ip: '127.0.0.1' });
  const s = await signer('ES256', 'ec-1');
  const jwksServer: Server = createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [s.jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const up = await startUpstream();
  const gw = await startGateway(
    baseConfig([up.address], {
      workers: 2,
      routes: [{ match: { path: '/' }, upstream: 'app', policies: [{ jwt: { jwks: { url: `https://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`, refresh: '1s' } } }] }],
    }),
  );
  try {
    const r = await request(`${gw.url}/x`, { headers: { authorization: `Bearer ${await token(s)}` } });
    assert.equal(r.statusCode, 503);
    assert.equal(((await r.body.json()) as { error: { code: string } }).error.code, 'TG_ERR_AUTH_UNAVAILABLE');
    assert.ok(gw.logs.some((l) => l.event === 'jwks-failed' && /self[- ]signed|certificate/i.test(String(l.error))));
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
    await new Promise<void>((r) => jwksServer.close(() => r()));
  }
});
