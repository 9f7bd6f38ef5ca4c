// The worker's view of the `tenants` section (src/config/schema-tenants.ts): a tenant's
// tier, built once per config generation. A tenant the section does not assign, and a
// caller with no tenant, get the default tier.
import type { WorkerTenants, WorkerTier } from '../messages.js';

export class TenantDirectory {
  readonly header: string | null;
  readonly tiers: readonly WorkerTier[];
  private readonly assign: ReadonlyMap<string, number>;
  private readonly defaultTier: number;

  constructor(t: WorkerTenants) {
    this.header = t.header;
    this.tiers = t.tiers;
    this.assign = new Map(Object.entries(t.assign));
    this.defaultTier = t.defaultTier;
  }

  /** index into `tiers` */
  tierOf(tenant: string | null): number {
    if (tenant === null) return this.defaultTier;
    return this.assign.get(tenant) ?? this.defaultTier;
  }
}
