// Override target `ip-access`: replaces an ip-access policy's allow/deny lists at run
// time. target: the policy name; value: { allow?, deny? } (a list left out keeps the
// configured one). Restoring puts the configured lists back.
import type { Config } from '../../config/schema.js';
import { isCidr } from '../../policies/policy-units.js';
import type { IpAccessLists } from '../../policies/ip-access.js';
import { ipPolicies, type AccessControl } from '../access/access-control.js';
import type { OverrideTarget, ParseResult } from './target.js';

export interface IpAccessSpec {
  readonly name: string;
  readonly lists: IpAccessLists;
}

/** Checks `value` ({ allow?, deny? } of CIDRs) against the configured lists of `name`; shared with PUT /v1/access/:policy. */
export function parseIpLists(name: unknown, value: unknown, config: Config): ParseResult<IpAccessSpec> {
  if (typeof name !== 'string' || name === '') return { ok: false, issues: ['target: the name of an ip-access policy is required'] };
  const policy = ipPolicies(config).get(name);
  if (!policy) return { ok: false, issues: [`target: no ip-access policy "${name}" (known: ${[...ipPolicies(config).keys()].join(', ') || 'none'})`] };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, issues: ['value: expected { allow?: [cidr…], deny?: [cidr…] }'] };
  const v = value as Record<string, unknown>;
  const issues: string[] = [];
  for (const k of Object.keys(v)) if (k !== 'allow' && k !== 'deny') issues.push(`value.${k}: unknown key`);
  const list = (k: 'allow' | 'deny'): readonly string[] => {
    const raw = v[k];
    if (raw === undefined) return policy.configured[k];
    if (!Array.isArray(raw)) {
      issues.push(`value.${k}: expected a list of addresses or CIDRs`);
      return [];
    }
    raw.forEach((c: unknown, i) => {
      if (typeof c !== 'string' || !isCidr(c)) issues.push(`value.${k}[${i}]: expected an IP address or CIDR like "10.0.0.0/8", got ${JSON.stringify(c)}`);
    });
    return raw as string[];
  };
  const lists = { allow: list('allow'), deny: list('deny') };
  if (v.allow === undefined && v.deny === undefined) issues.push('value: give allow, deny or both');
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, key: `ip-access:${name}`, spec: { name, lists } };
}

export function ipAccessTarget(access: AccessControl): OverrideTarget<IpAccessSpec> {
  return {
    kind: 'ip-access',
    scope: 'access',
    parse: (raw, config) => parseIpLists(raw.target, raw.value, config),
    apply: (spec) => access.setIpLists(spec.name, spec.lists),
    restore: (spec) => void access.clearIpLists(spec.name),
    conflict(spec, prev, next) {
      const after = ipPolicies(next).get(spec.name);
      if (!after) return `the ip-access policy "${spec.name}" is no longer in the config`;
      const before = ipPolicies(prev).get(spec.name);
      if (before && JSON.stringify(before.configured) !== JSON.stringify(after.configured)) return `the reload changed the configured lists of ip-access "${spec.name}"`;
      return null;
    },
  };
}
