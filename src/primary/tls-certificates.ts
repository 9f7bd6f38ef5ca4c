// The primary's view of the data plane's certificates: what is loaded (for /status and
// metrics), and whether a reload brings new files. The files were checked when the
// config was validated; they are read again here for their digests, so a renewal
// that rewrote the same paths is noticed.
import type { TlsConfig } from '../config/schema.js';
import { checkPemFiles, type CertificateInfo } from '../config/tls-files.js';

export interface LoadedCertificate extends CertificateInfo {
  /** null for the default certificate (clients without SNI or with an unlisted name) */
  readonly serverName: string | null;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TlsStatus {
  readonly enabled: boolean;
  /** what the listener negotiates (BoringSSL inside uWS 20.30: 1.0 and 1.1 are refused) */
  readonly protocols: readonly string[];
  readonly certificates: readonly LoadedCertificate[];
  readonly reloads: { readonly applied: number; readonly failed: number };
  readonly lastReload: { readonly at: string; readonly revision: number; readonly outcome: 'applied' | 'failed'; readonly failedWorkers: readonly { slot: number; message: string }[] } | null;
}

export interface TlsSnapshot {
  readonly certificates: readonly LoadedCertificate[];
  /** changes when any path or any file's bytes change */
  readonly digest: string;
}

/** Reads the certificate files of a config; throws if one became unusable since validation. */
export function snapshotTls(tls: TlsConfig | undefined): TlsSnapshot | null {
  if (tls === undefined) return null;
  const entries = [{ serverName: null, ...tls }, ...tls.sni.map((s) => ({ ...s, serverName: s.serverName }))];
  const certificates: LoadedCertificate[] = [];
  const digests: string[] = [];
  for (const e of entries) {
    const r = checkPemFiles(e);
    if (!r.ok) throw Object.assign(new Error(r.issues.map((i) => i.message).join('; ')), { code: 'TG_ERR_CONFIG_INVALID' });
    certificates.push({ serverName: e.serverName, certFile: e.cert, keyFile: e.key, ...r.info });
    digests.push(`${e.serverName ?? ''}|${e.cert}|${e.key}|${r.digest}`);
  }
  return { certificates, digest: digests.join('\n') };
}

export class TlsCertificates {
  private snapshot: TlsSnapshot | null;
  private applied = 0;
  private failed = 0;
  private last: TlsStatus['lastReload'] = null;
  revision = 0;

  constructor(tls: TlsConfig | undefined) {
    this.snapshot = snapshotTls(tls);
  }

  /** Whether `next` differs from what the workers serve. */
  changed(next: TlsSnapshot | null): boolean {
    return (next?.digest ?? null) !== (this.snapshot?.digest ?? null);
  }

  /** Records a reload's outcome; the new snapshot counts as served once any worker took it. */
  recordReload(next: TlsSnapshot, revision: number, failedWorkers: readonly { slot: number; message: string }[], workers: number): void {
    const outcome = failedWorkers.length === 0 ? 'applied' : 'failed';
    if (outcome === 'applied') this.applied++;
    else this.failed++;
    if (failedWorkers.length < workers) this.snapshot = next;
    this.last = { at: new Date().toISOString(), revision, outcome, failedWorkers };
  }

  status(): TlsStatus {
    return {
      enabled: this.snapshot !== null,
      protocols: this.snapshot === null ? [] : ['TLSv1.2', 'TLSv1.3'],
      certificates: this.snapshot?.certificates ?? [],
      reloads: { applied: this.applied, failed: this.failed },
      lastReload: this.last,
    };
  }
}
