// `ip-access`: allow and deny lists of addresses and CIDRs (IPv4 and IPv6), matched
// against the client address (after proxy.trustedProxies).
//
//   policies:
//     - ip-access: { name: office, allow: [10.0.0.0/8, "2001:db8::/32"], deny: [10.6.6.0/24] }
//
// A client in `deny` is refused; with a non-empty `allow`, so is every client not in it
// (deny wins over allow). Refusals are 403 TG_ERR_FORBIDDEN.
//
// The lists are compiled once into immutable CIDR sets (src/policies/ip-allow-list.ts).
// They can be replaced at run time (PUT /v1/access/<name>, or an `ip-access` override):
// the primary sends the new lists to every worker (src/policies/policy-data.ts), and
// the policy rebuilds its sets when its data slot's version moves; clearing the slot
// puts the configured lists back. Policies with the same name share one run-time list.
import type { z as ZodNamespace } from 'zod';
import { Errors, type ErrorSpec } from '../errors.js';
import { IpAllowList } from './ip-allow-list.js';
import { dataSlot, type DataSlot } from './policy-data.js';
import { cidrOf, policyNameOf } from './policy-units.js';
import type { AccessContext, PolicyDefinition, PolicyEnv, PolicyInstance, Zod } from './policy.js';

export function ipAccessSchema(z: Zod) {
  const list = z.array(cidrOf(z)).max(100_000).default([]);
  return z
    .strictObject({
      /** what the admin API calls this list; default: the route's name */
      name: policyNameOf(z).optional(),
      allow: list,
      deny: list,
    })
    .refine((c) => c.allow.length > 0 || c.deny.length > 0, { message: 'give allow, deny or both (an empty ip-access admits everyone)' });
}

export type IpAccessConfig = ZodNamespace.output<ReturnType<typeof ipAccessSchema>>;

/** What the primary sends for a run-time change: both lists, replacing the configured ones. */
export interface IpAccessLists {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

export function ipAccessKey(name: string): string {
  return `ip-access:${name}`;
}

class IpAccess implements PolicyInstance {
  readonly name = 'ip-access';
  private allow: IpAllowList;
  private deny: IpAllowList;
  private version = 0;

  constructor(
    private readonly cfg: IpAccessConfig,
    private readonly slot: DataSlot<IpAccessLists>,
  ) {
    this.allow = new IpAllowList(cfg.allow);
    this.deny = new IpAllowList(cfg.deny);
    this.refresh();
  }

  private refresh(): void {
    this.version = this.slot.version;
    const lists = this.slot.value ?? this.cfg;
    this.allow = new IpAllowList(lists.allow);
    this.deny = new IpAllowList(lists.deny);
  }

  access(ctx: AccessContext): ErrorSpec | null {
    if (this.slot.version !== this.version) this.refresh();
    const ip = ctx.clientIp;
    if (this.deny.has(ip)) return Errors.FORBIDDEN;
    if (!this.allow.empty && !this.allow.has(ip)) return Errors.FORBIDDEN;
    return null;
  }
}

export const ipAccessPolicy: PolicyDefinition = {
  name: 'ip-access',
  schema: ipAccessSchema,
  create(config: unknown, env: PolicyEnv): PolicyInstance {
    const cfg = config as IpAccessConfig;
    return new IpAccess(cfg, dataSlot<IpAccessLists>(ipAccessKey(cfg.name ?? env.routeName)));
  },
};
