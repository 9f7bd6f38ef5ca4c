// `discovery: { type: consul, address: http://127.0.0.1:8500, service: api }` — the
// passing instances of a Consul service, followed with blocking queries on the health
// API (https://developer.hashicorp.com/consul/api-docs/features/blocking).
// undici is loaded when the watch starts: only a gateway with Consul discovery loads it.
import type { Pool } from 'undici';
import { z } from 'zod';
import { durationMs } from '../units/zod-units.js';
import { sleep, type DiscoveredEndpoint, type DiscoveryProvider, type ProviderContext } from './provider.js';

export const consulDiscoverySchema = z.strictObject({
  type: z.literal('consul'),
  /** the agent's HTTP API, scheme included */
  address: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL like "http://127.0.0.1:8500"' }).default('http://127.0.0.1:8500'),
  service: z.string().min(1),
  datacenter: z.string().min(1).optional(),
  tag: z.string().min(1).optional(),
  /** sent as X-Consul-Token */
  token: z.string().min(1).optional(),
  /** how long one blocking query may hang; Consul caps it at 10 minutes */
  wait: durationMs.default(30_000).refine((ms) => ms >= 1_000 && ms <= 600_000, 'wait must be between 1s and 10m'),
  /** wait before retrying a failed query (the last good set stays in use meanwhile) */
  retry: durationMs.default(5_000),
});
export type ConsulDiscoveryConfig = z.output<typeof consulDiscoverySchema>;

/** The fields of one /v1/health/service entry that are used here. */
interface HealthEntry {
  Node?: { Address?: string };
  Service?: { Address?: string; Port?: number; Weights?: { Passing?: number } };
}

/**
 * The index for the next blocking query, by the rules in Consul's "Implementation
 * Details": an index lower than the previous one is reset to 0 (a full, non-blocking
 * query restarts the loop), and any other index below 1 (0, missing, garbage) becomes 1,
 * because index 0 does not block and a client that keeps sending it busy-loops.
 */
export function nextConsulIndex(previous: number, header: string | string[] | undefined): number {
  const raw = Number(Array.isArray(header) ? header[0] : header);
  const index = Number.isSafeInteger(raw) ? raw : 0;
  if (index < previous) return 0;
  return Math.max(1, index);
}

/** Endpoints of a health-service answer; throws on a shape that is not one. */
export function parseConsulHealth(body: unknown): DiscoveredEndpoint[] {
  if (!Array.isArray(body)) throw new Error('expected a JSON array of health entries');
  const out: DiscoveredEndpoint[] = [];
  for (const e of body as HealthEntry[]) {
    const svc = e?.Service;
    const port = svc?.Port;
    // Service.Address is empty when the service registered without one: it then
    // listens on its node's address.
    const host = svc?.Address || e?.Node?.Address;
    if (!host || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) continue;
    const w = svc?.Weights?.Passing;
    out.push(typeof w === 'number' && Number.isFinite(w) ? { host, port, weight: Math.max(1, Math.round(w)) } : { host, port });
  }
  return out;
}

const MIN_QUERY_INTERVAL_MS = 100;

export class ConsulProvider implements DiscoveryProvider {
  readonly type = 'consul';
  private readonly abort = new AbortController();
  private pool: Pool | null = null;
  private loop: Promise<void> | null = null;
  /** last X-Consul-Index seen; 0 before the first answer and after a reset */
  private index = 0;

  constructor(private readonly cfg: ConsulDiscoveryConfig) {}

  start(ctx: ProviderContext): void {
    this.loop = this.run(ctx);
  }

  /** The path of the next query. Public for tests. */
  path(): string {
    const q = new URLSearchParams({ passing: '1' });
    if (this.cfg.datacenter) q.set('dc', this.cfg.datacenter);
    if (this.cfg.tag) q.set('tag', this.cfg.tag);
    q.set('index', String(this.index));
    q.set('wait', `${Math.max(1, Math.round(this.cfg.wait / 1000))}s`);
    const base = new URL(this.cfg.address).pathname.replace(/\/$/, '');
    return `${base}/v1/health/service/${encodeURIComponent(this.cfg.service)}?${q}`;
  }

  private async run(ctx: ProviderContext): Promise<void> {
    const { signal } = this.abort;
    const what = `consul service ${this.cfg.service}`;
    let lastStart = 0;
    const { Pool } = await import('undici');
    if (signal.aborted) return;
    // Consul adds up to wait/16 to the wait; the headers come only when the query returns.
    const limit = this.cfg.wait + Math.ceil(this.cfg.wait / 16) + 10_000;
    const pool = (this.pool = new Pool(new URL(this.cfg.address).origin, { connections: 2, headersTimeout: limit, bodyTimeout: limit }));
    while (!signal.aborted) {
      // Consul's docs ask clients to rate-limit blocking loops: a server (or a proxy in
      // front of it) that answers at once every time must not turn this into a busy loop.
      const since = Date.now() - lastStart;
      if (since < MIN_QUERY_INTERVAL_MS) await sleep(MIN_QUERY_INTERVAL_MS - since, signal);
      if (signal.aborted) return;
      lastStart = Date.now();
      try {
        const headers: Record<string, string> = { accept: 'application/json' };
        if (this.cfg.token) headers['x-consul-token'] = this.cfg.token;
        const res = await pool.request({ method: 'GET', path: this.path(), headers, signal });
        const text = await res.body.text();
        if (signal.aborted) return;
        if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200).trim()}`);
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new Error('bad JSON in the answer');
        }
        const eps = parseConsulHealth(body);
        const prev = this.index;
        this.index = nextConsulIndex(prev, res.headers['x-consul-index']);
        if (eps.length === 0) ctx.fail(`${what}: no passing instances`);
        else ctx.update(eps, `${what} index=${this.index}`);
        // A reset index makes the next query return at once; that is the documented
        // way to restart the loop, and it happens once per reset, not in a loop.
        continue;
      } catch (err) {
        if (signal.aborted) return;
        const e = err as Error & { code?: string };
        ctx.fail(`${what}: ${e.code ?? 'error'} ${e.message}`);
      }
      await sleep(this.cfg.retry, signal);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop?.catch(() => {});
    await this.pool?.destroy().catch(() => {});
  }
}
