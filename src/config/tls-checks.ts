// Config-time checks of listen.tls that need the file system: every certificate and
// key is read, parsed and matched, and each SNI certificate must cover its server
// name. Run on the raw (env-substituted) input beside the schema, like the
// cross-section checks, so a config is refused with every error at once.
import { resolve } from 'node:path';
import { checkPemFiles, coversServerName, SERVER_NAME_RE } from './tls-files.js';

type Issue = { path: (string | number)[]; message: string };

function entryIssues(entry: unknown, path: (string | number)[], out: Issue[], serverName?: string): void {
  if (typeof entry !== 'object' || entry === null) return;
  const e = entry as { cert?: unknown; key?: unknown; passphrase?: unknown };
  // Shape errors (missing or non-string fields) are the schema's to report.
  if (typeof e.cert !== 'string' || typeof e.key !== 'string' || e.cert === '' || e.key === '') return;
  const r = checkPemFiles({ cert: resolve(e.cert), key: resolve(e.key), passphrase: typeof e.passphrase === 'string' ? e.passphrase : undefined });
  if (!r.ok) {
    for (const i of r.issues) out.push({ path: [...path, i.field], message: i.message });
    return;
  }
  if (serverName !== undefined && SERVER_NAME_RE.test(serverName) && !coversServerName(r.certificate, serverName)) {
    out.push({ path: [...path, 'cert'], message: `the certificate in ${e.cert} does not cover "${serverName}" (it names ${r.info.subjectAltName ?? r.info.subject})` });
  }
}

export function tlsIssues(raw: unknown): Issue[] {
  const out: Issue[] = [];
  const tls = (raw as { listen?: { tls?: unknown } } | null)?.listen?.tls;
  if (typeof tls !== 'object' || tls === null) return out;
  entryIssues(tls, ['listen', 'tls'], out);
  const sni = (tls as { sni?: unknown }).sni;
  if (!Array.isArray(sni)) return out;
  const seen = new Map<string, number>();
  sni.forEach((s: unknown, i) => {
    const name = (s as { serverName?: unknown } | null)?.serverName;
    const lower = typeof name === 'string' ? name.toLowerCase() : undefined;
    if (lower !== undefined) {
      const first = seen.get(lower);
      if (first !== undefined) out.push({ path: ['listen', 'tls', 'sni', i, 'serverName'], message: `"${lower}" is already listed at listen.tls.sni[${first}]` });
      else seen.set(lower, i);
    }
    entryIssues(s, ['listen', 'tls', 'sni', i], out, lower);
  });
  return out;
}
