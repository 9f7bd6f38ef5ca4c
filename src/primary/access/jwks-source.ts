// A JWT key set for `jwt` policies, loaded on the primary and sent to every worker:
// from a file (watched and re-read when it changes) or an HTTPS URL fetched in the
// background every `refresh` (optionally against its own CA). jose parses and checks
// the set (createLocalJWKSet) and each key (importJWK), so a malformed set is refused
// here, off the request path; workers receive only the public members of the keys.
// A failed load or fetch keeps the set in force and logs why.
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { get } from 'node:https';
// jose is loaded with the first set to parse: a gateway without a JWKS source never loads it.
import type { JWK } from 'jose';
import type { JwtConfig } from '../../policies/jwt.js';

const FILE_POLL_MS = 500;
/** a JWKS document larger than this is refused (real ones are a few KiB) */
const MAX_BYTES = 1024 * 1024;

/** JWK members that are public; the rest (d, p, q, dp, dq, qi, k, oth) never leave this module */
const PUBLIC = ['kty', 'kid', 'alg', 'use', 'key_ops', 'n', 'e', 'crv', 'x', 'y'] as const;

const DEFAULT_ALG: Record<string, string> = { RSA: 'RS256', 'EC:P-256': 'ES256', 'EC:P-384': 'ES384', 'EC:P-521': 'ES512', 'OKP:Ed25519': 'EdDSA', 'OKP:Ed448': 'EdDSA' };

/** Parses and checks a JWKS document; returns its usable public keys, or why it cannot be used. */
export async function parseJwks(text: string): Promise<{ keys: JWK[]; skipped: string[] } | { error: string }> {
  let doc: unknown;
  try {
    doc = JSON.parse(text) as unknown;
  } catch (e) {
    return { error: `not JSON: ${(e as Error).message}` };
  }
  const { createLocalJWKSet, importJWK } = await import('jose');
  try {
    createLocalJWKSet(doc as { keys: JWK[] }); // throws JWKSInvalid when the shape is wrong
  } catch (e) {
    return { error: (e as Error).message };
  }
  const keys: JWK[] = [];
  const skipped: string[] = [];
  for (const [i, raw] of (doc as { keys: JWK[] }).keys.entries()) {
    const name = raw.kid ?? `keys[${i}]`;
    if (raw.kty === 'oct') {
      skipped.push(`${name}: symmetric keys are not accepted`);
      continue;
    }
    if (raw.use !== undefined && raw.use !== 'sig') {
      skipped.push(`${name}: use is "${raw.use}", not "sig"`);
      continue;
    }
    const alg = raw.alg ?? DEFAULT_ALG[raw.kty === 'RSA' ? 'RSA' : `${raw.kty}:${raw.crv}`];
    if (alg === undefined) {
      skipped.push(`${name}: unsupported key type ${raw.kty}${raw.crv ? ` ${raw.crv}` : ''}`);
      continue;
    }
    try {
      await importJWK(raw, alg);
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message}`);
      continue;
    }
    const pub: Record<string, unknown> = {};
    for (const m of PUBLIC) if (raw[m] !== undefined) pub[m] = raw[m];
    keys.push(pub as unknown as JWK);
  }
  if (keys.length === 0) return { error: `no usable key${skipped.length ? ` (${skipped.join('; ')})` : ''}` };
  return { keys, skipped };
}

function fetchText(url: string, timeoutMs: number, ca: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs, ...(ca !== undefined ? { ca: readFileSync(ca) } : {}), headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BYTES) req.destroy(new Error(`larger than ${MAX_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export interface JwksEvents {
  loaded(source: string, keys: JWK[], skipped: string[]): void;
  failed(source: string, error: string): void;
}

export class JwksSource {
  readonly source: string;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  loadedAt = 0;
  keys = 0;
  lastError: string | null = null;
  private readonly onFile = (): void => void this.load();

  constructor(
    readonly cfg: JwtConfig['jwks'],
    private readonly events: JwksEvents,
  ) {
    this.source = 'file' in cfg ? cfg.file : cfg.url;
  }

  /** First load now (resolves when it is done, loaded or failed), then watch or refresh in the background. */
  start(): Promise<void> {
    const first = this.load();
    if ('file' in this.cfg) watchFile(this.cfg.file, { interval: FILE_POLL_MS, persistent: false }, this.onFile);
    else {
      this.timer = setInterval(() => void this.load(), this.cfg.refresh);
      this.timer.unref();
    }
    return first;
  }

  stop(): void {
    this.stopped = true;
    if ('file' in this.cfg) unwatchFile(this.cfg.file, this.onFile);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = 'file' in this.cfg ? readFileSync(this.cfg.file, 'utf8') : await fetchText(this.cfg.url, this.cfg.timeout, this.cfg.ca);
    } catch (e) {
      return this.fail((e as Error).message);
    }
    const parsed = await parseJwks(text);
    if (this.stopped) return;
    if ('error' in parsed) return this.fail(parsed.error);
    this.lastError = null;
    this.loadedAt = Date.now();
    this.keys = parsed.keys.length;
    this.events.loaded(this.source, parsed.keys, parsed.skipped);
  }

  private fail(error: string): void {
    if (this.stopped) return;
    this.lastError = error;
    this.events.failed(this.source, error);
  }

  status(): unknown {
    return { source: this.source, keys: this.keys, loadedAt: this.loadedAt > 0 ? new Date(this.loadedAt).toISOString() : null, lastError: this.lastError, ...('url' in this.cfg ? { refreshMs: this.cfg.refresh } : {}) };
  }
}
