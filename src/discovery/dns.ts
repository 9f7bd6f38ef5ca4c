// `discovery: { type: dns, name: api.internal, recordType: A|AAAA|SRV, port: 8080 }`.
// Re-resolves when the answer's TTL runs out, clamped to [minTtl, maxTtl]: a TTL of 0
// must not turn into a query loop, and a TTL of a day must not hide a failover.
import { Resolver } from 'node:dns/promises';
import { z } from 'zod';
import { durationMs } from '../units/zod-units.js';
import { sleep, type DiscoveredEndpoint, type DiscoveryProvider, type ProviderContext } from './provider.js';

const serverAddress = z.string().regex(/^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\])(:\d{1,5})?$/, 'expected a DNS server like "127.0.0.1", "127.0.0.1:5353" or "[::1]:53"');

export const dnsDiscoverySchema = z
  .strictObject({
    type: z.literal('dns'),
    /** the name to resolve; for SRV the full "_service._proto.name" */
    name: z.string().min(1).regex(/^[A-Za-z0-9_.-]+$/, 'expected a DNS name'),
    recordType: z.enum(['A', 'AAAA', 'SRV']).default('A'),
    /** the endpoints' port for A/AAAA (SRV records carry their own) */
    port: z.number().int().min(1).max(65535).optional(),
    /** resolvers to ask instead of the system's (/etc/resolv.conf) */
    servers: z.array(serverAddress).min(1).optional(),
    minTtl: durationMs.default(1_000),
    maxTtl: durationMs.default(300_000),
    /** wait before retrying a failed lookup (the last good set stays in use meanwhile) */
    retry: durationMs.default(5_000),
    /** per query; the resolver tries twice */
    timeout: durationMs.default(2_000),
  })
  .superRefine((c, ctx) => {
    if (c.recordType !== 'SRV' && c.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: `a port is required for ${c.recordType} records` });
    if (c.recordType === 'SRV' && c.port !== undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'SRV records carry their own ports; remove port' });
    if (c.minTtl > c.maxTtl) ctx.addIssue({ code: 'custom', path: ['minTtl'], message: 'minTtl must not exceed maxTtl' });
  });
export type DnsDiscoveryConfig = z.output<typeof dnsDiscoverySchema>;

export interface Resolution {
  readonly endpoints: DiscoveredEndpoint[];
  /** seconds, the smallest TTL in the answer; null when the API gives none */
  readonly ttl: number | null;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

export class DnsProvider implements DiscoveryProvider {
  readonly type = 'dns';
  private readonly resolver: Resolver;
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(private readonly cfg: DnsDiscoveryConfig) {
    this.resolver = new Resolver({ timeout: cfg.timeout, tries: 2 });
    if (cfg.servers) this.resolver.setServers(cfg.servers);
  }

  start(ctx: ProviderContext): void {
    this.loop = this.run(ctx);
  }

  private async run(ctx: ProviderContext): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      let wait: number;
      try {
        const r = await this.resolve();
        if (signal.aborted) return;
        const ttlMs = r.ttl === null ? this.cfg.minTtl : r.ttl * 1000;
        wait = clamp(ttlMs, this.cfg.minTtl, this.cfg.maxTtl);
        if (r.endpoints.length === 0) {
          ctx.fail(`${this.cfg.recordType} ${this.cfg.name}: empty answer`);
        } else {
          ctx.update(r.endpoints, `dns ${this.cfg.recordType} ${this.cfg.name} ttl=${r.ttl ?? 'n/a'}s next=${wait}ms`);
        }
      } catch (err) {
        if (signal.aborted) return;
        const e = err as NodeJS.ErrnoException;
        ctx.fail(`${this.cfg.recordType} ${this.cfg.name}: ${e.code ?? 'error'} ${e.message}`);
        wait = this.cfg.retry;
      }
      await sleep(wait, signal);
    }
  }

  /** One lookup. Public for tests. */
  async resolve(): Promise<Resolution> {
    const { name } = this.cfg;
    if (this.cfg.recordType === 'A' || this.cfg.recordType === 'AAAA') {
      const port = this.cfg.port!;
      const rrs = this.cfg.recordType === 'A' ? await this.resolver.resolve4(name, { ttl: true }) : await this.resolver.resolve6(name, { ttl: true });
      return { endpoints: rrs.map((r) => ({ host: r.address, port })), ttl: rrs.length ? Math.min(...rrs.map((r) => r.ttl)) : null };
    }
    const srv = await this.resolver.resolveSrv(name);
    if (srv.length === 0) return { endpoints: [], ttl: null };
    // RFC 2782: clients use the lowest-numbered priority; higher numbers are backups.
    // XXX: backups are not kept warm here; a whole priority group failing its health
    // checks does not fall over to the next group (that is the balancer's panic mode).
    const best = Math.min(...srv.map((s) => s.priority));
    const group = srv.filter((s) => s.priority === best);
    // RFC 2782: weight 0 means "very small chance" when others have weight; when all
    // are 0 they are equal. Map to 1 and (when mixed) keep 0 → 1 too: a table weight of
    // 0 would mean "never", which is stronger than the RFC asks.
    const endpoints: DiscoveredEndpoint[] = [];
    // node's resolveSrv has no { ttl: true } option (its records carry no TTL), so the TTL used is the
    // smallest of the targets' address records, which we must resolve anyway.
    let ttl: number | null = null;
    for (const s of group) {
      const target = s.name.replace(/\.$/, '');
      const addrs = await this.addressesOf(target);
      for (const a of addrs.list) endpoints.push({ host: a, port: s.port, weight: Math.max(1, s.weight) });
      if (addrs.ttl !== null) ttl = ttl === null ? addrs.ttl : Math.min(ttl, addrs.ttl);
    }
    return { endpoints, ttl };
  }

  private async addressesOf(target: string): Promise<{ list: string[]; ttl: number | null }> {
    const out: string[] = [];
    let ttl: number | null = null;
    // A first, then AAAA: a target with only one family is normal, so "no data" for
    // one is not an error; no address at all is.
    for (const fam of [4, 6] as const) {
      try {
        const rrs = fam === 4 ? await this.resolver.resolve4(target, { ttl: true }) : await this.resolver.resolve6(target, { ttl: true });
        for (const r of rrs) {
          out.push(r.address);
          ttl = ttl === null ? r.ttl : Math.min(ttl, r.ttl);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENODATA' && code !== 'ENOTFOUND') throw err;
      }
    }
    if (out.length === 0) throw Object.assign(new Error(`SRV target ${target} has no A/AAAA records`), { code: 'ENODATA' });
    return { list: out, ttl };
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.resolver.cancel();
    await this.loop?.catch(() => {});
  }
}
