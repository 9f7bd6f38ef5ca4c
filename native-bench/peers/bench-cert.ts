// The certificate both TLS peers serve: made with openssl for the run (EC P-256, the
// usual choice today), so nginx-tls and tidegate-tls do the same handshake work.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../processes.js';
import { writeReadable } from './peer.js';

export async function benchCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'bench.crt');
  const key = join(dir, 'bench.key');
  if (!existsSync(cert) || !existsSync(key)) {
    await run('openssl req', 'openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=bench.test', '-addext', 'subjectAltName=DNS:bench.test'], {
      timeoutMs: 15_000,
    });
    // nginx workers drop to "nobody" when started as root and must still read them.
    writeReadable(cert, readFileSync(cert));
    writeReadable(key, readFileSync(key));
  }
  return { cert, key };
}

/** TLS 1.2 suites both peers offer: ECDHE + AEAD only, what tidegate's listener allows. */
export const BENCH_TLS12_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';
