// `jwt`: a bearer token (RFC 7519) signed by a key of a JWKS, checked on the worker.
//
//   policies:
//     - jwt:
//         jwks: { url: https://idp.example.com/.well-known/jwks.json, refresh: 5m }   # or { file: jwks.json }
//         issuer: https://idp.example.com/
//         audience: api
//         algorithms: [RS256, ES256]
//         leeway: 30s
//         tenantClaim: org
//
// The key set is loaded on the primary (a file, watched; or an HTTPS URL fetched in the
// background every `refresh`, never on the request path), validated there with jose,
// and sent to every worker as public JWKs (src/policies/policy-data.ts).
//
// XXX: the worker verifies with node:crypto directly, not jose: jose's verify is async
// (WebCrypto), and the hot path answers synchronously inside the uWS handler. So this
// file does what jwtVerify would for the algorithms it lists: the key is the one whose
// `kid` the token names (or the only one that fits the algorithm), the key's type and
// curve must fit `alg` (and its `alg`, if it has one, must equal it), the signature is
// checked with crypto.verify (ECDSA in its JOSE form, IEEE P1363), then exp / nbf
// (with `leeway`), iss and aud. Symmetric (HS*) keys are not accepted, so no public key
// can be used as an HMAC secret.
//
// Missing token: 401 TG_ERR_AUTH_REQUIRED with `WWW-Authenticate: Bearer`; a token that
// fails any check: the same with `error="invalid_token"` (RFC 6750 §3). No key set
// loaded yet: 503 TG_ERR_AUTH_UNAVAILABLE. The consumer is the `consumerClaim` (default
// `sub`); `tenantClaim` names the tenant claim. A worker remembers tokens that passed
// (bounded, until their exp, forgotten when the key set changes), so a client's
// repeated token is checked once.
import { createPublicKey, constants, verify, type KeyObject, type JsonWebKey } from 'node:crypto';
import { resolve } from 'node:path';
import type { z as ZodNamespace } from 'zod';
import { Errors, type ErrorSpec } from '../errors.js';
import { dataSlot, type DataSlot } from './policy-data.js';
import { durationOf } from './policy-units.js';
import type { AccessContext, PolicyDefinition, PolicyInstance, Zod } from './policy.js';

export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export function jwtSchema(z: Zod) {
  const ms = durationOf(z);
  const oneOrMany = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));
  const claim = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected a claim name');
  const jwks = z.union([
    z.strictObject({
      /** a JWKS document (JSON); watched and re-read when it changes */
      file: z
        .string()
        .min(1)
        .transform((p) => resolve(p)),
    }),
    z.strictObject({
      url: z.string().url().refine((u) => u.startsWith('https://'), 'expected an https:// URL'),
      /** how often the key set is fetched again */
      refresh: ms.pipe(z.number().min(1000).max(86_400_000)).default(300_000),
      /** a fetch that takes longer fails (the key set in force stays) */
      timeout: ms.pipe(z.number().min(100).max(60_000)).default(5_000),
      /** PEM file of the CA(s) the URL's certificate must chain to, instead of the system store */
      ca: z
        .string()
        .min(1)
        .transform((p) => resolve(p))
        .optional(),
    }),
  ]);
  return z.strictObject({
    jwks,
    issuer: oneOrMany.optional(),
    audience: oneOrMany.optional(),
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(['RS256', 'ES256']),
    /** clock skew tolerated on exp and nbf */
    leeway: ms.pipe(z.number().min(0).max(3_600_000)).default(30_000),
    /** a token without exp is refused unless this is false */
    requireExp: z.boolean().default(true),
    consumerClaim: claim.default('sub'),
    tenantClaim: claim.optional(),
  });
}

export type JwtConfig = ZodNamespace.output<ReturnType<typeof jwtSchema>>;

/** The worker data key of a policy's key set: one per file or URL. */
export function jwksDataKey(cfg: JwtConfig): string {
  return 'file' in cfg.jwks ? `jwt:${cfg.jwks.file}` : `jwt:${cfg.jwks.url}`;
}

interface Key {
  readonly kid: string | null;
  readonly alg: string | null;
  readonly key: KeyObject;
  /** `rsa`, `ec:<curve>`, `ed25519`, `ed448` */
  readonly shape: string;
}

/** What key shape an algorithm needs, and how crypto.verify is called for it. */
const ALG: Record<JwtAlgorithm, { shape: (s: string) => boolean; digest: string | null; pss?: true; p1363?: true }> = {
  RS256: { shape: (s) => s === 'rsa', digest: 'sha256' },
  RS384: { shape: (s) => s === 'rsa', digest: 'sha384' },
  RS512: { shape: (s) => s === 'rsa', digest: 'sha512' },
  PS256: { shape: (s) => s === 'rsa', digest: 'sha256', pss: true },
  PS384: { shape: (s) => s === 'rsa', digest: 'sha384', pss: true },
  PS512: { shape: (s) => s === 'rsa', digest: 'sha512', pss: true },
  ES256: { shape: (s) => s === 'ec:prime256v1', digest: 'sha256', p1363: true },
  ES384: { shape: (s) => s === 'ec:secp384r1', digest: 'sha384', p1363: true },
  ES512: { shape: (s) => s === 'ec:secp521r1', digest: 'sha512', p1363: true },
  EdDSA: { shape: (s) => s === 'ed25519' || s === 'ed448', digest: null },
};

function shapeOf(k: KeyObject): string {
  const t = k.asymmetricKeyType;
  if (t === 'ec') return `ec:${k.asymmetricKeyDetails?.namedCurve ?? '?'}`;
  return t ?? '?';
}

/** Public JWKs → key objects; a key node:crypto cannot load is skipped (the primary already refused bad ones). */
export function importKeys(jwks: readonly JsonWebKey[]): Key[] {
  const out: Key[] = [];
  for (const j of jwks) {
    try {
      const key = createPublicKey({ key: j, format: 'jwk' });
      out.push({ kid: typeof j.kid === 'string' ? j.kid : null, alg: typeof j.alg === 'string' ? j.alg : null, key, shape: shapeOf(key) });
    } catch {
      // skipped
    }
  }
  return out;
}

interface Claims {
  readonly [name: string]: unknown;
}

/** Verified tokens a worker remembers (see `cache`); beyond this the map is cleared, not grown. */
const CACHE_MAX = 4096;

interface Verified {
  /** exp in seconds (Infinity without exp) */
  readonly exp: number;
  readonly consumer: string | null;
  readonly tenant: string | null;
}

class Jwt implements PolicyInstance {
  readonly name = 'jwt';
  private keys: Key[] = [];
  /**
   * Tokens that passed every check, until their exp (less leeway): a client sends the
   * same token with many requests, and a signature check costs tens to hundreds of
   * microseconds. Cleared when the key set changes, so a key dropped from the set stops
   * every token it signed at once. Only tokens whose nbf has passed are kept, so a
   * cached token stays valid until exp.
   */
  private readonly cache = new Map<string, Verified>();
  private version = -1;
  private readonly allowed: ReadonlySet<string>;
  private readonly issuers: ReadonlySet<string> | null;
  private readonly audiences: readonly string[] | null;
  private readonly leewayS: number;

  constructor(
    private readonly cfg: JwtConfig,
    private readonly slot: DataSlot<readonly JsonWebKey[]>,
  ) {
    this.allowed = new Set(cfg.algorithms);
    this.issuers = cfg.issuer ? new Set(cfg.issuer) : null;
    this.audiences = cfg.audience ?? null;
    this.leewayS = cfg.leeway / 1000;
  }

  access(ctx: AccessContext): ErrorSpec | null {
    if (this.slot.version !== this.version) {
      this.version = this.slot.version;
      this.keys = this.slot.value === undefined ? [] : importKeys(this.slot.value);
      this.cache.clear();
    }
    const h = ctx.headers;
    let auth: string | null = null;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === 'authorization') {
        auth = h[i + 1]!;
        break;
      }
    }
    if (auth === null || auth.length < 8 || auth.slice(0, 7).toLowerCase() !== 'bearer ') {
      ctx.responseHeaders.push('www-authenticate', 'Bearer');
      return Errors.AUTH_REQUIRED;
    }
    if (this.slot.value === undefined) return Errors.AUTH_UNAVAILABLE;
    const token = auth.slice(7).trim();
    let v = this.cache.get(token);
    if (v !== undefined && Date.now() / 1000 - this.leewayS >= v.exp) {
      this.cache.delete(token);
      v = undefined;
    }
    if (v === undefined) {
      const claims = this.verify(token);
      if (claims === null) {
        ctx.responseHeaders.push('www-authenticate', 'Bearer error="invalid_token"');
        return Errors.AUTH_REQUIRED;
      }
      const sub = claims[this.cfg.consumerClaim];
      const t = this.cfg.tenantClaim === undefined ? undefined : claims[this.cfg.tenantClaim];
      v = { exp: typeof claims.exp === 'number' ? claims.exp : Infinity, consumer: typeof sub === 'string' ? sub : null, tenant: typeof t === 'string' ? t : null };
      if (typeof claims.nbf !== 'number' || claims.nbf <= Date.now() / 1000) {
        if (this.cache.size >= CACHE_MAX) this.cache.clear();
        this.cache.set(token, v);
      }
    }
    ctx.consumer = v.consumer;
    if (this.cfg.tenantClaim !== undefined) ctx.tenant = v.tenant;
    return null;
  }

  /** The token's claims when every check passes, else null. */
  verify(token: string): Claims | null {
    const d1 = token.indexOf('.');
    const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
    if (d1 <= 0 || d2 < 0 || token.indexOf('.', d2 + 1) !== -1) return null;
    let header: { alg?: unknown; kid?: unknown; crit?: unknown };
    let claims: Claims;
    try {
      header = JSON.parse(Buffer.from(token.slice(0, d1), 'base64url').toString('utf8')) as typeof header;
      if (typeof header !== 'object' || header === null) return null;
      // RFC 7515 §4.1.11: an extension we do not understand must be refused.
      if (header.crit !== undefined) return null;
      const alg = header.alg;
      if (typeof alg !== 'string' || !this.allowed.has(alg)) return null;
      const spec = ALG[alg as JwtAlgorithm];
      const key = this.pick(alg, spec.shape, typeof header.kid === 'string' ? header.kid : null);
      if (key === null) return null;
      const data = Buffer.from(token.slice(0, d2), 'latin1');
      const sig = Buffer.from(token.slice(d2 + 1), 'base64url');
      const ok = spec.pss
        ? verify(spec.digest, data, { key: key.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig)
        : spec.p1363
          ? verify(spec.digest, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, sig)
          : verify(spec.digest, data, key.key, sig);
      if (!ok) return null;
      claims = JSON.parse(Buffer.from(token.slice(d1 + 1, d2), 'base64url').toString('utf8')) as Claims;
      if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return null;
    } catch {
      return null;
    }
    const now = Date.now() / 1000;
    const exp = claims.exp;
    if (exp === undefined ? this.cfg.requireExp : typeof exp !== 'number' || now - this.leewayS >= exp) return null;
    const nbf = claims.nbf;
    if (nbf !== undefined && (typeof nbf !== 'number' || now + this.leewayS < nbf)) return null;
    if (this.issuers !== null && (typeof claims.iss !== 'string' || !this.issuers.has(claims.iss))) return null;
    const auds = this.audiences;
    if (auds !== null) {
      const aud = claims.aud;
      const hit = typeof aud === 'string' ? auds.includes(aud) : Array.isArray(aud) && aud.some((a) => typeof a === 'string' && auds.includes(a));
      if (!hit) return null;
    }
    return claims;
  }

  private pick(alg: string, fits: (shape: string) => boolean, kid: string | null): Key | null {
    let only: Key | null = null;
    let n = 0;
    for (const k of this.keys) {
      if (kid !== null && k.kid !== kid) continue;
      if (!fits(k.shape) || (k.alg !== null && k.alg !== alg)) continue;
      if (kid !== null) return k;
      only = k;
      n++;
    }
    // Without a kid, only an unambiguous key: trying each in turn would multiply the work a forged token costs.
    return n === 1 ? only : null;
  }
}

export const jwtPolicy: PolicyDefinition = {
  name: 'jwt',
  schema: jwtSchema,
  create(config: unknown): PolicyInstance {
    const cfg = config as JwtConfig;
    return new Jwt(cfg, dataSlot<readonly JsonWebKey[]>(jwksDataKey(cfg)));
  },
};
