// One uWS app and its listen socket: plain, or TLS with SNI certificates. A worker
// normally has one; a certificate reload starts a second on the same port (uSockets
// sets SO_REUSEPORT for a non-zero port) and retires the first, the way nginx swaps
// worker processes: the old listen socket closes (stopAccepting), its open connections
// keep being served (after retire(), each is closed after its next response), and the
// old app closes once nothing is in flight on it and uWS has timed out its idle
// connections. The primary runs these steps on all workers in lockstep. uWS 20.30
// offers no way to swap the certificate of a live app: removeServerName/addServerName
// covers SNI names only, never the default certificate.
import type { TlsConfig } from '../config/schema.js';
import { checkPemFiles, type PemFiles } from '../config/tls-files.js';
import type { loadUws, TemplatedApp, us_listen_socket } from './uws.js';

type Uws = ReturnType<typeof loadUws>;

/** What a request's exchange reads and updates about the listener that accepted it. */
export interface ListenerScope {
  /** requests started on this listener and not finished */
  inFlight: number;
  /** requests ever started on this listener */
  started: number;
  /** set once a newer listener took over: responses close their connection */
  retiring: boolean;
}

/**
 * TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only (Mozilla "intermediate").
 * BoringSSL's default also offers static-RSA key exchange and CBC-SHA1 suites
 * (measured with openssl s_client against uWS 20.30). TLS 1.3 suites are not
 * configurable in BoringSSL and are all AEAD.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** uWS closes an HTTP connection idle for this long (compile-time HTTP_IDLE_TIMEOUT_S = 10 s), plus a margin. */
const UWS_IDLE_CLOSE_MS = 11_000;
const RETIRE_CHECK_MS = 1_000;

function appOptions(files: PemFiles): { key_file_name: string; cert_file_name: string; passphrase?: string; ssl_ciphers: string } {
  return { key_file_name: files.key, cert_file_name: files.cert, ssl_ciphers: TLS12_CIPHERS, ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}) };
}

/** Re-checks every file right before uWS loads it; null when all are usable. */
export function tlsFilesProblem(tls: TlsConfig): string | null {
  const entries: [string, PemFiles][] = [['listen.tls', tls], ...tls.sni.map((s, i): [string, PemFiles] => [`listen.tls.sni[${i}]`, s])];
  for (const [path, files] of entries) {
    const r = checkPemFiles(files);
    if (!r.ok) return r.issues.map((i) => `${path}.${i.field}: ${i.message}`).join('; ');
  }
  return null;
}

export class Listener implements ListenerScope {
  inFlight = 0;
  started = 0;
  retiring = false;
  /** the port it listens on, once listening */
  port = 0;
  readonly app: TemplatedApp;
  private socket: us_listen_socket | null = null;
  private retireTimer: NodeJS.Timeout | null = null;
  private closed = false;

  /**
   * `register` attaches the routes to the app it is given; it runs once for the default
   * certificate and once per SNI name, because uWS routes requests of an SNI name only
   * through the routes added under `app.domain(name)`, never through the default ones.
   * The caller must have checked the files (tlsFilesProblem) first.
   */
  constructor(
    private readonly uws: Uws,
    tls: TlsConfig | undefined,
    register: (app: TemplatedApp, scope: ListenerScope) => void,
  ) {
    if (tls === undefined) {
      this.app = uws.App();
      register(this.app, this);
      return;
    }
    // Throws "App construction failed" for files BoringSSL refuses.
    this.app = uws.SSLApp(appOptions(tls));
    register(this.app, this);
    for (const s of tls.sni) {
      this.app.addServerName(s.serverName, appOptions(s));
      // domain() switches the app's route table until the next domain() call.
      register(this.app.domain(s.serverName), this);
    }
  }

  listen(host: string, port: number): Promise<number | null> {
    return new Promise((resolve) => {
      this.app.listen(host, port, (ls) => {
        if (!ls) return resolve(null);
        this.socket = ls;
        this.port = this.uws.us_socket_local_port(ls);
        resolve(this.port);
      });
    });
  }

  /** Stops accepting; open connections stay. */
  stopAccepting(): void {
    if (this.socket !== null) {
      this.uws.us_listen_socket_close(this.socket);
      this.socket = null;
    }
  }

  /** Stops accepting and closes the app once it is idle; `closed` runs then. */
  retire(closed: () => void): void {
    this.stopAccepting();
    this.retiring = true;
    let seen = this.started;
    let quietSince = Date.now();
    this.retireTimer = setInterval(() => {
      if (this.started !== seen || this.inFlight > 0) {
        seen = this.started;
        quietSince = Date.now();
        return;
      }
      // No request for longer than uWS keeps an idle connection: every connection
      // still open has nothing to say, so closing the app drops no request.
      if (Date.now() - quietSince >= UWS_IDLE_CLOSE_MS) {
        this.close();
        closed();
      }
    }, RETIRE_CHECK_MS);
    this.retireTimer.unref();
  }

  /** Closes the listen socket and every connection at once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retireTimer !== null) clearInterval(this.retireTimer);
    this.socket = null;
    (this.app as TemplatedApp & { close?: () => void }).close?.();
  }
}
