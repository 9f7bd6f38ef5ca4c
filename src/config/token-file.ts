// The admin token file (`admin.tokens`): named tokens with scopes. Parsed here so
// `tidegate --check` reports its problems with the rest of the config; the primary's
// TokenStore re-reads it when it changes.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export const SCOPES = ['read', 'traffic', 'access', 'events', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenEntry {
  readonly name: string;
  readonly digest: Buffer;
  readonly scopes: ReadonlySet<Scope>;
}

export function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Parses a token file's text; returns the entries or every problem with its path. */
export function parseTokenFile(text: string): { tokens: TokenEntry[] } | { issues: string[] } {
  const issues: string[] = [];
  let doc: unknown;
  try {
    doc = parse(text) as unknown;
  } catch (e) {
    return { issues: [`not valid YAML/JSON: ${(e as Error).message}`] };
  }
  const list = (doc as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(list)) return { issues: ['tokens: must be a list of { name, token | sha256, scopes }'] };
  const tokens: TokenEntry[] = [];
  const names = new Set<string>();
  list.forEach((raw: unknown, i) => {
    const at = `tokens[${i}]`;
    if (typeof raw !== 'object' || raw === null) return void issues.push(`${at}: must be an object`);
    const t = raw as Record<string, unknown>;
    for (const k of Object.keys(t)) if (!['name', 'token', 'sha256', 'scopes'].includes(k)) issues.push(`${at}.${k}: unknown key`);
    const name = t.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.@-]{1,64}$/.test(name)) issues.push(`${at}.name: must be 1–64 characters of [A-Za-z0-9_.@-]`);
    else if (names.has(name)) issues.push(`${at}.name: "${name}" appears twice`);
    else names.add(name);
    let digest: Buffer | null = null;
    if (typeof t.token === 'string' && t.sha256 !== undefined) issues.push(`${at}: give token or sha256, not both`);
    else if (typeof t.token === 'string') {
      if (t.token.length < 16) issues.push(`${at}.token: must be at least 16 characters`);
      else digest = sha256(t.token);
    } else if (typeof t.sha256 === 'string') {
      if (!/^[0-9a-f]{64}$/i.test(t.sha256)) issues.push(`${at}.sha256: must be 64 hexadecimal digits`);
      else digest = Buffer.from(t.sha256, 'hex');
    } else issues.push(`${at}: token or sha256 is required`);
    const scopes = new Set<Scope>();
    if (!Array.isArray(t.scopes) || t.scopes.length === 0) issues.push(`${at}.scopes: must be a non-empty list of ${SCOPES.join(', ')}`);
    else
      t.scopes.forEach((s: unknown, j) => {
        if (typeof s === 'string' && (SCOPES as readonly string[]).includes(s)) scopes.add(s as Scope);
        else issues.push(`${at}.scopes[${j}]: unknown scope ${JSON.stringify(s)} (known: ${SCOPES.join(', ')})`);
      });
    if (digest && typeof name === 'string') tokens.push({ name, digest, scopes });
  });
  return issues.length > 0 ? { issues } : { tokens };
}

/** Config-check: the token file's problems, at path `admin.tokens`. */
export function tokenFileIssues(raw: unknown): { path: (string | number)[]; message: string }[] {
  const file = (raw as { admin?: { tokens?: unknown } } | null)?.admin?.tokens;
  if (typeof file !== 'string' || file === '') return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return [{ path: ['admin', 'tokens'], message: `cannot read ${file}: ${(e as Error).message}` }];
  }
  const parsed = parseTokenFile(text);
  return 'issues' in parsed ? parsed.issues.map((message) => ({ path: ['admin', 'tokens'], message: `${file}: ${message}` })) : [];
}
