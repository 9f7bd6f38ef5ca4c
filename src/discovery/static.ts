// `discovery: { type: static, endpoints: [127.0.0.1:9001, ...] }` — the set in the config.
import { z } from 'zod';
import { hostPortValue } from '../units/zod-units.js';
import type { DiscoveryProvider, ProviderContext } from './provider.js';

const weightedEndpoint = z.strictObject({ address: hostPortValue, weight: z.number().int().min(1).max(1_000_000).default(1) });

/**
 * "host:port", or { address: "host:port", weight } for weighted balancers. Not a
 * z.union: a union reports only "Invalid input", and a mistyped address must keep
 * its precise message.
 */
const staticEndpoint = z.unknown().transform((v, ctx): { host: string; port: number; weight?: number } => {
  const r = typeof v === 'object' && v !== null ? weightedEndpoint.safeParse(v) : hostPortValue.safeParse(v);
  if (!r.success) {
    for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
    return z.NEVER;
  }
  const d = r.data;
  return 'address' in d ? { host: d.address.host, port: d.address.port, weight: d.weight } : d;
});

export const staticDiscoverySchema = z.strictObject({
  type: z.literal('static'),
  endpoints: z.array(staticEndpoint).min(1, 'at least one endpoint is required'),
});
export type StaticDiscoveryConfig = z.output<typeof staticDiscoverySchema>;

export class StaticProvider implements DiscoveryProvider {
  readonly type = 'static';
  constructor(private readonly cfg: StaticDiscoveryConfig) {}
  start(ctx: ProviderContext): void {
    ctx.update(this.cfg.endpoints, 'static config');
  }
  async stop(): Promise<void> {}
}
