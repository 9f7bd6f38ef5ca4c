// Discovery providers by `type`. Each provider file holds its config schema and its
// implementation; adding one touches that file and the two lists below.
import { z } from 'zod';
import type { DiscoveryProvider } from './provider.js';
import { StaticProvider, staticDiscoverySchema } from './static.js';
import { FileProvider, fileDiscoverySchema } from './file.js';
import { DnsProvider, dnsDiscoverySchema } from './dns.js';
import { ConsulProvider, consulDiscoverySchema } from './consul.js';
import { KubernetesProvider, kubernetesDiscoverySchema } from './kubernetes.js';

export const discoverySchema = z.discriminatedUnion('type', [
  staticDiscoverySchema,
  fileDiscoverySchema,
  dnsDiscoverySchema,
  consulDiscoverySchema,
  kubernetesDiscoverySchema,
]);
export type DiscoveryConfig = z.output<typeof discoverySchema>;

export function createProvider(cfg: DiscoveryConfig): DiscoveryProvider {
  switch (cfg.type) {
    case 'static':
      return new StaticProvider(cfg);
    case 'file':
      return new FileProvider(cfg);
    case 'dns':
      return new DnsProvider(cfg);
    case 'consul':
      return new ConsulProvider(cfg);
    case 'kubernetes':
      return new KubernetesProvider(cfg);
  }
}
