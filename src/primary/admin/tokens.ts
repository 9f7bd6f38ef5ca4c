// Admin tokens and their scopes. `admin.token` is one token with every scope; a
// token file (`admin.tokens`) may hold several, each with a name (the identity in the
// audit log) and the scopes it grants. Tokens are kept as SHA-256 digests only, so a
// heap dump or /status never shows one, and the file may hold digests instead of
// secrets. The file is re-read when it changes (checked at most once a second, on
// use), so a token can be revoked without a reload.
import { timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parseTokenFile, SCOPES, sha256, type Scope, type TokenEntry } from '../../config/token-file.js';

export { SCOPES, type Scope } from '../../config/token-file.js';

export interface Caller {
  /** the token's name, or "anonymous" when the API needs no token */
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
}

const ALL: ReadonlySet<Scope> = new Set(SCOPES);
export const ANONYMOUS: Caller = Object.freeze({ name: 'anonymous', scopes: ALL });
/** A loopback peer without a token, with `admin.loopbackRead`: it may read, never change. */
export const LOOPBACK_READER: Caller = Object.freeze({ name: 'loopback', scopes: new Set<Scope>(['read']) });

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

export interface TokenStoreOptions {
  /** `admin.token`: every scope */
  readonly token?: string | undefined;
  /** `admin.tokens`: path of a token file */
  readonly file?: string | undefined;
  /** `admin.loopbackRead`: a loopback peer without a token reads (GET/HEAD) as LOOPBACK_READER */
  readonly loopbackRead?: boolean;
  readonly onFileError?: (issues: readonly string[]) => void;
  readonly onFileLoaded?: (count: number) => void;
}

export class TokenStore {
  private fileTokens: TokenEntry[] = [];
  private stamp = '';
  private checkedAt = 0;
  private base: TokenEntry[] = [];

  constructor(private opts: TokenStoreOptions) {
    this.configure(opts);
  }

  /** Applies `admin.token` / `admin.tokens` from a (re)loaded config. */
  configure(opts: TokenStoreOptions): void {
    this.opts = opts;
    this.base = opts.token ? [{ name: 'admin-token', digest: sha256(opts.token), scopes: ALL }] : [];
    this.stamp = '';
    this.fileTokens = [];
    this.refresh(true);
  }

  /** No token configured at all: the API is open (it binds to loopback; the config refuses otherwise). */
  get open(): boolean {
    return this.base.length === 0 && this.opts.file === undefined;
  }

  /**
   * The caller of one request: who its bearer token names; with `admin.loopbackRead`,
   * a loopback GET/HEAD without an Authorization header reads as LOOPBACK_READER (a
   * wrong token stays wrong: it is refused, not downgraded).
   */
  identifyRequest(authorization: string | undefined, peer: string | undefined, method: string | undefined): Caller | null {
    const caller = this.identify(authorization);
    if (caller !== null || authorization !== undefined || this.opts.loopbackRead !== true) return caller;
    return (method === 'GET' || method === 'HEAD') && isLoopback(peer) ? LOOPBACK_READER : null;
  }

  /** The caller a bearer token identifies, or null when it matches none. */
  identify(authorization: string | undefined): Caller | null {
    if (this.open) return ANONYMOUS;
    this.refresh(false);
    const h = authorization ?? '';
    if (!h.startsWith('Bearer ')) return null;
    const given = sha256(h.slice(7));
    let found: TokenEntry | null = null;
    // Compare against every entry so the time taken does not say which one matched.
    for (const t of [...this.base, ...this.fileTokens]) if (timingSafeEqual(given, t.digest) && found === null) found = t;
    return found === null ? null : { name: found.name, scopes: found.scopes };
  }

  private refresh(force: boolean): void {
    const file = this.opts.file;
    if (file === undefined) return;
    const now = Date.now();
    if (!force && now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    let stamp: string;
    try {
      const st = statSync(file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (e) {
      stamp = 'missing';
      if (stamp !== this.stamp) {
        this.stamp = stamp;
        // A vanished file revokes its tokens: failing closed is the safe reading.
        this.fileTokens = [];
        this.opts.onFileError?.([`${file}: ${(e as Error).message}`]);
      }
      return;
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    const parsed = parseTokenFile(readFileSync(file, 'utf8'));
    if ('issues' in parsed) {
      // Keep the tokens that worked: a typo in the file must not lock operators out mid-incident.
      this.opts.onFileError?.(parsed.issues);
      return;
    }
    this.fileTokens = parsed.tokens;
    this.opts.onFileLoaded?.(parsed.tokens.length);
  }
}
