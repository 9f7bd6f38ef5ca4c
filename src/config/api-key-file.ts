// The key file of `api-key` policies: consumers, their tenants and their keys (plain or
// as SHA-256). Parsed on the primary, at config check and whenever the file changes;
// workers receive only the digests (src/policies/api-key.ts).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { ApiKeyTable } from '../policies/api-key.js';

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function parseApiKeyFile(text: string): { table: ApiKeyTable; consumers: number } | { issues: string[] } {
  let doc: unknown;
  try {
    doc = parse(text) as unknown;
  } catch (e) {
    return { issues: [`not valid YAML/JSON: ${(e as Error).message}`] };
  }
  const list = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) return { issues: ['keys: must be a list of { consumer, tenant?, key | sha256 }'] };
  const issues: string[] = [];
  const table = new Map<string, readonly [string, string | null]>();
  const consumers = new Set<string>();
  list.forEach((raw: unknown, i) => {
    const at = `keys[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return void issues.push(`${at}: must be an object`);
    const k = raw as Record<string, unknown>;
    for (const f of Object.keys(k)) if (!['consumer', 'tenant', 'key', 'sha256'].includes(f)) issues.push(`${at}.${f}: unknown key`);
    if (typeof k.consumer !== 'string' || !NAME.test(k.consumer)) issues.push(`${at}.consumer: must be 1–64 characters of [A-Za-z0-9._-]`);
    if (k.tenant !== undefined && (typeof k.tenant !== 'string' || !NAME.test(k.tenant))) issues.push(`${at}.tenant: must be 1–64 characters of [A-Za-z0-9._-]`);
    let digest: string | null = null;
    if (k.key !== undefined && k.sha256 !== undefined) issues.push(`${at}: give key or sha256, not both`);
    else if (typeof k.key === 'string') {
      if (k.key.length < 16) issues.push(`${at}.key: must be at least 16 characters`);
      else if (!/^[\x21-\x7e]+$/.test(k.key)) issues.push(`${at}.key: must be printable ASCII without spaces (a header value)`);
      else digest = createHash('sha256').update(k.key, 'utf8').digest('hex');
    } else if (typeof k.sha256 === 'string') {
      if (!/^[0-9a-f]{64}$/i.test(k.sha256)) issues.push(`${at}.sha256: must be 64 hexadecimal digits`);
      else digest = k.sha256.toLowerCase();
    } else issues.push(`${at}: key or sha256 is required`);
    if (digest !== null) {
      if (table.has(digest)) issues.push(`${at}: the same key is listed twice`);
      else if (typeof k.consumer === 'string') table.set(digest, [k.consumer, typeof k.tenant === 'string' ? k.tenant : null]);
    }
    if (typeof k.consumer === 'string') consumers.add(k.consumer);
  });
  return issues.length > 0 ? { issues } : { table, consumers: consumers.size };
}

export function readApiKeyFile(file: string): { table: ApiKeyTable; consumers: number } | { issues: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { issues: [`cannot read: ${(e as Error).message}`] };
  }
  return parseApiKeyFile(text);
}
