// One active probe of one endpoint. Each endpoint gets its own small undici Client on
// the primary: the data-plane pools live on the workers and must not carry probe
// traffic (a probe queued behind real requests measures the queue, not the endpoint).
// undici is loaded with the first HTTP probe: a gateway without active HTTP checks never loads it.
import type { Client } from 'undici';
import { connect } from 'node:net';
import type { ActiveHealthConfig } from '../../config/schema-health.js';

export interface ProbeResult {
  readonly ok: boolean;
  /** why it failed, or what passed ("HTTP 200") */
  readonly detail: string;
}

export interface Prober {
  probe(): Promise<ProbeResult>;
  close(): Promise<void>;
}

function authority(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** undici error codes read better in an event than their messages. */
function describe(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return e?.code ? `${e.code}: ${e.message ?? ''}`.trim() : String(e?.message ?? err);
}

export class HttpProber implements Prober {
  private client: Client | null = null;
  private readonly origin: string;
  private readonly hostHeader: string;

  constructor(
    host: string,
    port: number,
    private readonly cfg: ActiveHealthConfig,
  ) {
    this.origin = `http://${authority(host, port)}`;
    this.hostHeader = cfg.host ?? authority(host, port);
  }

  private async getClient(): Promise<Client> {
    if (this.client !== null) return this.client;
    const { Client } = await import('undici');
    // One keep-alive connection, reused between probes (as nginx's and Envoy's checkers do),
    // so a check measures the endpoint, not a TCP handshake each time.
    this.client ??= new Client(this.origin, {
      pipelining: 1,
      connectTimeout: this.cfg.timeout,
      headersTimeout: this.cfg.timeout,
      bodyTimeout: this.cfg.timeout,
      keepAliveTimeout: Math.max(this.cfg.interval * 2, 4_000),
    });
    return this.client;
  }

  async probe(): Promise<ProbeResult> {
    const client = await this.getClient();
    try {
      const r = await client.request({
        method: 'GET',
        path: this.cfg.path,
        headers: { host: this.hostHeader, 'user-agent': 'tidegate-health-check' },
        // The undici timeouts cover connect and the header block; this bounds the whole
        // probe, body included, to one `timeout`.
        signal: AbortSignal.timeout(this.cfg.timeout),
      });
      await r.body.dump();
      const ok = this.cfg.expectedStatuses.some(([lo, hi]) => r.statusCode >= lo && r.statusCode <= hi);
      return { ok, detail: `HTTP ${r.statusCode}` };
    } catch (err) {
      // A failed socket may be half-dead (peer stopped, reset): start the next probe on a fresh one.
      this.client = null;
      void client.destroy().catch(() => {});
      return { ok: false, detail: describe(err) };
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.destroy().catch(() => {});
  }
}

/** TCP connect check: passes when the handshake completes within the timeout. */
export class TcpProber implements Prober {
  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly timeoutMs: number,
  ) {}

  probe(): Promise<ProbeResult> {
    return new Promise((resolve) => {
      const s = connect({ host: this.host, port: this.port });
      const done = (r: ProbeResult): void => {
        clearTimeout(t);
        s.destroy();
        resolve(r);
      };
      const t = setTimeout(() => done({ ok: false, detail: 'timeout' }), this.timeoutMs);
      s.once('connect', () => done({ ok: true, detail: 'TCP connected' }));
      s.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, detail: `${err.code ?? 'error'}: ${err.message}` }));
    });
  }

  async close(): Promise<void> {}
}

export function createProber(host: string, port: number, cfg: ActiveHealthConfig): Prober {
  return cfg.type === 'tcp' ? new TcpProber(host, port, cfg.timeout) : new HttpProber(host, port, cfg);
}
