// Self-signed certificates made by the openssl command line for TLS tests, in a fresh
// temporary directory. openssl is a Debian package (scripts/install-test-deps.sh).
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  readonly cert: string;
  readonly key: string;
}

export function certDir(): string {
  return mkdtempSync(join(tmpdir(), 'tidegate-certs-'));
}

/**
 * A self-signed EC P-256 (or RSA 2048) certificate for `commonName` (also its only DNS SAN), written
 * to `<dir>/<file>.crt` and `.key`; with `passphrase`, the key is encrypted (AES-256).
 */
export function makeCert(dir: string, file: string, commonName: string, opts: { passphrase?: string; rsa?: boolean; /** an IP SAN too, for servers reached by address */ ip?: string } = {}): TestCert {
  const cert = join(dir, `${file}.crt`);
  const key = join(dir, `${file}.key`);
  if (opts.rsa) execFileSync('openssl', ['genrsa', '-out', `${key}.plain`, '2048'], { stdio: 'pipe' });
  else execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${key}.plain`], { stdio: 'pipe' });
  execFileSync(
    'openssl',
    ['req', '-x509', '-new', '-key', `${key}.plain`, '-out', cert, '-days', '2', '-subj', `/CN=${commonName}`, '-addext', `subjectAltName=DNS:${commonName}${opts.ip ? `,IP:${opts.ip}` : ''}`],
    { stdio: 'pipe' },
  );
  const pkcs8 = ['pkcs8', '-topk8', '-in', `${key}.plain`, '-out', key];
  execFileSync('openssl', opts.passphrase === undefined ? [...pkcs8, '-nocrypt'] : [...pkcs8, '-v2', 'aes-256-cbc', '-passout', `pass:${opts.passphrase}`], { stdio: 'pipe' });
  return { cert, key };
}
