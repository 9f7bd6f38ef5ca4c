// Microseconds per request spent in the access policies on a worker: a JWT verify
// (RS256 with a 2048-bit key, ES256 on P-256) by the jwt policy — node:crypto,
// synchronous — against jose's own jwtVerify (async, WebCrypto) for reference, and the
// api-key and ip-access policies, each on its own. Median of 5 rounds.
//   node dist/test/bench/access-policies.bench.js
import { z } from 'zod';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT } from 'jose';
import { createHash } from 'node:crypto';
import { jwtPolicy, jwksDataKey, type JwtConfig } from '../../src/policies/jwt.js';
import { apiKeyDataKey, apiKeyPolicy, type ApiKeyConfig } from '../../src/policies/api-key.js';
import { ipAccessPolicy } from '../../src/policies/ip-access.js';
import { setPolicyData } from '../../src/policies/policy-data.js';
import type { AccessContext, PolicyEnv, PolicyInstance } from '../../src/policies/policy.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';

const env: PolicyEnv = { shm: new SharedArrayBuffer(8), maxWorkers: 1, routeIndex: 0, routeName: 'bench', policyIndex: 0, kindIndex: 0, tenants: null, plugins: new Map(), dicts: SharedDicts.empty() };
const ctx = (headers: string[]): AccessContext => ({ method: 'GET', path: '/', query: '', host: 'h', headers, peer: '127.0.0.1', clientIp: '127.0.0.1', routeIndex: 0, routeName: 'bench', responseHeaders: [], consumer: null, tenant: null, watched: null });

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
}

function perCall(p: PolicyInstance, c: AccessContext, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    c.responseHeaders.length = 0;
    if (p.access(c) !== null) throw new Error('refused');
  }
  return Number(process.hrtime.bigint() - t0) / n / 1000;
}

const out: Record<string, number> = {};
for (const alg of ['RS256', 'ES256'] as const) {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid: `${alg}-1`, alg };
  const cfg = jwtPolicy.schema(z).parse({ jwks: { file: `/dev/null/${alg}` }, issuer: 'https://idp/', audience: 'api', algorithms: [alg] }) as JwtConfig;
  setPolicyData(jwksDataKey(cfg), [jwk]);
  const policy = jwtPolicy.create(cfg, env);
  const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg, kid: jwk.kid }).setIssuer('https://idp/').setAudience('api').setExpirationTime('1h').sign(privateKey);
  // Distinct tokens, so every call verifies a signature (the cache never hits).
  const tokens = await Promise.all(Array.from({ length: 2000 }, (_, i) => new SignJWT({ sub: `u${i}` }).setProtectedHeader({ alg, kid: jwk.kid }).setIssuer('https://idp/').setAudience('api').setExpirationTime('1h').sign(privateKey)));
  const fresh = (n: number): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const c = ctx(['authorization', `Bearer ${tokens[i % tokens.length]}`]);
      if (policy.access(c) !== null) throw new Error('refused');
    }
    return Number(process.hrtime.bigint() - t0) / n / 1000;
  };
  const c = ctx(['authorization', `Bearer ${token}`]);
  perCall(policy, c, 200); // warm-up
  const n = 2000;
  const key = await importJWK(jwk, alg);
  // Interleaved rounds: the host's load moves between rounds, and both see the same.
  const mine: number[] = [];
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    setPolicyData(jwksDataKey(cfg), [jwk]); // a new key set version: the cache starts empty
    mine.push(fresh(n));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await jwtVerify(token, key, { issuer: 'https://idp/', audience: 'api', algorithms: [alg] });
    rounds.push(Number(process.hrtime.bigint() - t0) / n / 1000);
  }
  out[`jwt ${alg} (node:crypto, sync)`] = median(mine);
  // The same token again and again: the policy's cache of verified tokens answers.
  const repeat = ctx(['authorization', `Bearer ${token}`]);
  out[`jwt ${alg} repeated token (cached)`] = median(Array.from({ length: 5 }, () => perCall(policy, repeat, 100_000)));
  out[`jwt ${alg} (jose jwtVerify, async)`] = median(rounds);
}

const key = 'bench-key-0123456789abcdef';
const akCfg = apiKeyPolicy.schema(z).parse({ file: '/dev/null/keys' }) as ApiKeyConfig;
setPolicyData(apiKeyDataKey(akCfg.file), new Map([[createHash('sha256').update(key).digest('hex'), ['bench', 'acme'] as const]]));
const ak = apiKeyPolicy.create(akCfg, env);
const akCtx = ctx(['host', 'h', 'user-agent', 'wrk', 'x-api-key', key]);
perCall(ak, akCtx, 10_000);
out['api-key (SHA-256 + lookup)'] = median(Array.from({ length: 5 }, () => perCall(ak, akCtx, 200_000)));
const ip = ipAccessPolicy.create(ipAccessPolicy.schema(z).parse({ allow: ['10.0.0.0/8', '127.0.0.0/8', '::1'], deny: ['10.6.6.0/24'] }), env);
const ipCtx = ctx([]);
perCall(ip, ipCtx, 10_000);
out['ip-access (cached verdict)'] = median(Array.from({ length: 5 }, () => perCall(ip, ipCtx, 1_000_000)));
for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(36)} ${v.toFixed(3)} µs/request`);
