// Byte-for-byte check of a sample of each peer's answers with curl: status 200 and the
// body's SHA-256 equal to the upstream's. Run before measuring a peer, so a peer that
// answers quickly with the wrong thing is reported, not timed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { body, sha256, type SizeName } from './bodies.js';
import { run } from './processes.js';
import { RATE_LIMIT } from './peers/rate-limit.js';

export interface Verification {
  samples: number;
  ok: number;
  failures: string[];
}

export async function verifyBodies(port: number, size: SizeName, samples: number, scheme: 'http' | 'https' = 'http'): Promise<Verification> {
  const want = sha256(body(size));
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-bench-verify-'));
  const failures: string[] = [];
  let ok = 0;
  try {
    for (let i = 0; i < samples; i++) {
      const out = join(dir, `b${i}`);
      // -k: the TLS peers serve a self-signed certificate made for the run.
      const r = await run('curl', 'curl', ['-s', ...(scheme === 'https' ? ['-k'] : []), '-o', out, '-w', '%{http_code}', '-H', `${RATE_LIMIT.header}: ${RATE_LIMIT.headerValue}`, `${scheme}://127.0.0.1:${port}/${size}`], { timeoutMs: 10_000, allowFail: true });
      if (r.code !== 0) {
        failures.push(`curl exit ${r.code}`);
        continue;
      }
      const status = r.stdout.trim();
      let got = '';
      try {
        got = sha256(readFileSync(out));
      } catch {
        got = 'no body';
      }
      if (status !== '200') failures.push(`status ${status}`);
      else if (got !== want) failures.push(`body sha256 ${got.slice(0, 12)}… ≠ ${want.slice(0, 12)}…`);
      else ok++;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { samples, ok, failures };
}
