// Override target `ban`: bans a client key (an address, or a header value for
// header-keyed policies) for the override's lifetime, so an event action or an
// operator's change can block someone. target: the key; value: { policy?, for? } —
// `policy` names one ban policy (default: every one), `for` how long the table holds
// the ban (default 1h; the override's own expiry lifts it earlier). Restoring lifts it.
import type { Config } from '../../config/schema.js';
import { parseDuration } from '../../units/units.js';
import { banPolicies, type BanWriter } from '../access/ban-writer.js';
import type { OverrideTarget, ParseResult } from './target.js';

export interface BanSpec {
  readonly key: string;
  readonly policies: readonly string[];
  readonly forMs: number;
}

const DEFAULT_FOR_MS = 3_600_000;

/** Checks a ban request against the config; shared with POST /v1/bans. */
export function parseBan(target: unknown, value: unknown, config: Config): ParseResult<BanSpec> {
  const issues: string[] = [];
  const known = [...banPolicies(config).keys()];
  if (typeof target !== 'string' || target.length === 0 || target.length > 256) issues.push('target: the key to ban (a client address or header value) is required');
  const v = (value ?? {}) as Record<string, unknown>;
  if (typeof v !== 'object' || Array.isArray(v)) return { ok: false, issues: ['value: expected { policy?, for? }'] };
  for (const k of Object.keys(v)) if (k !== 'policy' && k !== 'for') issues.push(`value.${k}: unknown key`);
  let policies = known;
  if (v.policy !== undefined) {
    if (typeof v.policy !== 'string' || !known.includes(v.policy)) issues.push(`value.policy: no ban policy ${JSON.stringify(v.policy)} (known: ${known.join(', ') || 'none'})`);
    else policies = [v.policy];
  } else if (known.length === 0) issues.push('the config has no ban policy');
  let forMs = DEFAULT_FOR_MS;
  if (v.for !== undefined) {
    const d = parseDuration(v.for);
    if (!d.ok || d.value <= 0) issues.push(`value.for: ${d.ok ? 'must be above zero' : d.expected}`);
    else forMs = d.value;
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, key: `ban:${target as string}`, spec: { key: target as string, policies, forMs } };
}

export function banTarget(bans: BanWriter): OverrideTarget<BanSpec> {
  return {
    kind: 'ban',
    scope: 'access',
    parse: (raw, config) => parseBan(raw.target, raw.value, config),
    apply: (spec) => void bans.ban(spec.key, spec.forMs, spec.policies),
    restore: (spec) => void bans.lift(spec.key, spec.policies),
    conflict(spec, _prev, next) {
      const names = [...banPolicies(next).keys()];
      const gone = spec.policies.filter((p) => !names.includes(p));
      return gone.length > 0 ? `the ban polic${gone.length === 1 ? 'y' : 'ies'} ${gone.join(', ')} ${gone.length === 1 ? 'is' : 'are'} no longer in the config` : null;
    },
  };
}
