// Reads and checks the PEM files of one certificate entry (listen.tls or one of its
// sni entries). Used twice: at config check on the primary, so a bad file is refused
// with its path, and by a worker right before it hands the paths to uWS — uWS 20.30
// segfaults the whole process when addServerName() is given a file it cannot load
// (measured), and the file may have changed since the check. No zod here: workers
// import this module.
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** a DNS name, or a wildcard of one label: "api.example.com", "*.example.com" */
export const SERVER_NAME_RE = /^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;

export interface PemFiles {
  readonly cert: string;
  readonly key: string;
  readonly passphrase?: string | undefined;
}

/** What /status and the reload log show about a loaded certificate. */
export interface CertificateInfo {
  readonly subject: string;
  readonly subjectAltName: string | null;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly fingerprint256: string;
}

export type PemCheck =
  | { readonly ok: true; readonly info: CertificateInfo; readonly certificate: X509Certificate; readonly digest: string }
  | { readonly ok: false; readonly issues: readonly { readonly field: 'cert' | 'key'; readonly message: string }[] };

function read(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, 'latin1') };
  } catch (err) {
    return { error: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
}

function firstLine(err: unknown): string {
  return String((err as Error).message ?? err).split('\n')[0]!;
}

export function checkPemFiles(files: PemFiles): PemCheck {
  const issues: { field: 'cert' | 'key'; message: string }[] = [];
  let certificate: X509Certificate | null = null;
  let key: KeyObject | null = null;
  const certText = read(files.cert);
  if ('error' in certText) issues.push({ field: 'cert', message: certText.error });
  // uWS loads the chain with SSL_CTX_use_certificate_chain_file: PEM only, leaf first.
  else if (!certText.text.includes('-----BEGIN CERTIFICATE-----')) issues.push({ field: 'cert', message: `${files.cert} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")` });
  else {
    try {
      certificate = new X509Certificate(certText.text);
    } catch (err) {
      issues.push({ field: 'cert', message: `${files.cert} is not a valid PEM certificate: ${firstLine(err)}` });
    }
  }
  const keyText = read(files.key);
  if ('error' in keyText) issues.push({ field: 'key', message: keyText.error });
  else if (!/-----BEGIN (?:[A-Z]+ )?(?:ENCRYPTED )?PRIVATE KEY-----/.test(keyText.text)) issues.push({ field: 'key', message: `${files.key} holds no PEM private key` });
  else if (files.passphrase === undefined && keyText.text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) issues.push({ field: 'key', message: `${files.key} is encrypted: set passphrase` });
  else {
    try {
      key = createPrivateKey({ key: keyText.text, format: 'pem', ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}) });
    } catch (err) {
      const msg = firstLine(err);
      const hint = files.passphrase !== undefined && /decrypt|passphrase|interrupted/i.test(msg) ? ' (wrong passphrase?)' : '';
      issues.push({ field: 'key', message: `${files.key} is not a usable PEM private key: ${msg}${hint}` });
    }
  }
  if (certificate !== null && key !== null && !certificate.checkPrivateKey(key)) {
    issues.push({ field: 'key', message: `${files.key} does not match the certificate in ${files.cert}` });
  }
  if (issues.length > 0 || certificate === null || 'error' in certText || 'error' in keyText) return { ok: false, issues };
  return {
    ok: true,
    certificate,
    // The files' bytes, not their names: a renewal usually rewrites the same paths.
    digest: createHash('sha256').update(certText.text).update('\0').update(keyText.text).digest('hex'),
    info: {
      subject: certificate.subject.replace(/\n/g, ', '),
      subjectAltName: certificate.subjectAltName ?? null,
      issuer: certificate.issuer.replace(/\n/g, ', '),
      serialNumber: certificate.serialNumber,
      validFrom: new Date(certificate.validFrom).toISOString(),
      validTo: new Date(certificate.validTo).toISOString(),
      fingerprint256: certificate.fingerprint256,
    },
  };
}

/** Whether the certificate covers a configured server name ("*.example.com" included). */
export function coversServerName(certificate: X509Certificate, serverName: string): boolean {
  // checkHost matches a concrete name against the certificate's names (wildcards in
  // the certificate included); a wildcard server name is checked through one label.
  const probe = serverName.startsWith('*.') ? `tidegate-probe${serverName.slice(1)}` : serverName;
  return certificate.checkHost(probe) !== undefined;
}
