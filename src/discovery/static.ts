// `discovery: { type: static, endpoints: [127.0.0.1:9001, ...] }` — the set in the config.
import { z } from 'zod';
import { hostPortValue } from './config-units.js';
import type { DiscoveryProvider, ProviderContext } from './provider.js';

export const staticDiscoverySchema = z.strictObject({
  type: z.literal('static'),
  endpoints: z.array(hostPortValue).min(1, 'at least one endpoint is required'),
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
