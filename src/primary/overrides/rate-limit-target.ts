// `rate-limit`: a rate-limit policy's rate and burst, by route name and policy name.
//   target: { route, policy? }   value: { rate?: "50/s", burst?: n, scale?: factor }
// `scale` multiplies the configured rate (and burst, unless `burst` is given); an
// adaptive policy's multiplier still applies on top.
import type { Config } from '../../config/schema.js';
import { parseRate } from '../../units/units.js';
import type { RateLimitConfig } from '../../policies/rate-limit.js';
import type { LimiterWriter } from '../limiter-writer.js';
import type { OverrideTarget, ParseResult } from './target.js';

export interface RateLimitSpec {
  readonly route: string;
  readonly policy: string;
  readonly ratePerSecond: number;
  readonly burst: number;
}

function findPolicy(cfg: Config, route: string, policy: string | null): RateLimitConfig[] {
  const found: RateLimitConfig[] = [];
  cfg.routes.forEach((r, i) => {
    if ((r.name ?? `route-${i}`) !== route) return;
    for (const p of r.policies) if (p.name === 'rate-limit' && (policy === null || (p.config as RateLimitConfig).name === policy)) found.push(p.config as RateLimitConfig);
  });
  return found;
}

export function rateLimitTarget(limiter: LimiterWriter): OverrideTarget<RateLimitSpec> {
  const configured = (cfg: Config, s: RateLimitSpec): RateLimitConfig | undefined => findPolicy(cfg, s.route, s.policy)[0];
  return {
    kind: 'rate-limit',
    parse(raw, config): ParseResult<RateLimitSpec> {
      const issues: string[] = [];
      const t = raw.target as { route?: unknown; policy?: unknown } | null;
      const v = raw.value as { rate?: unknown; burst?: unknown; scale?: unknown } | null;
      const route = typeof t?.route === 'string' ? t.route : null;
      const policy = typeof t?.policy === 'string' ? t.policy : null;
      if (route === null) issues.push('target.route: required, a route name');
      if (t?.policy !== undefined && policy === null) issues.push('target.policy: a rate-limit policy name');
      const found = route === null ? [] : findPolicy(config, route, policy);
      if (route !== null && found.length === 0) issues.push(`target: route "${route}" has no rate-limit policy${policy === null ? '' : ` named "${policy}"`}`);
      if (found.length > 1) issues.push(`target.policy: route "${route}" has ${found.length} rate-limit policies; name one (${found.map((f) => f.name).join(', ')})`);
      let rate: number | null = null;
      let burst: number | null = null;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) issues.push('value: an object { rate?, burst?, scale? }');
      else {
        for (const k of Object.keys(v)) if (!['rate', 'burst', 'scale'].includes(k)) issues.push(`value.${k}: unknown field (rate, burst, scale)`);
        if (v.rate !== undefined && v.scale !== undefined) issues.push('value: rate or scale, not both');
        if (v.rate !== undefined) {
          const r = parseRate(v.rate);
          if (!r.ok) issues.push(`value.rate: ${r.expected}`);
          else rate = r.value.perSecond;
        }
        if (v.scale !== undefined && !(typeof v.scale === 'number' && v.scale > 0 && v.scale <= 1000)) issues.push('value.scale: a number above 0, at most 1000');
        if (v.burst !== undefined) {
          if (!(typeof v.burst === 'number' && Number.isInteger(v.burst) && v.burst >= 1 && v.burst <= 1_000_000_000)) issues.push('value.burst: a whole number ≥ 1');
          else burst = v.burst;
        }
        if (v.rate === undefined && v.scale === undefined && v.burst === undefined) issues.push('value: rate, scale or burst');
      }
      if (issues.length > 0) return { ok: false, issues };
      const c = found[0]!;
      const scale = typeof v!.scale === 'number' ? v!.scale : 1;
      const ratePerSecond = rate ?? c.rate.perSecond * scale;
      return { ok: true, spec: { route: route!, policy: c.name, ratePerSecond, burst: burst ?? Math.max(1, Math.round(c.burst * scale)) }, key: `${route}/${c.name}` };
    },
    apply(spec) {
      const row = limiter.find(spec.route, spec.policy);
      if (row >= 0) limiter.setRate(row, spec.ratePerSecond, spec.burst);
    },
    restore(spec) {
      const row = limiter.find(spec.route, spec.policy);
      const c = row >= 0 ? limiter.configured(row) : null;
      if (c !== null) limiter.setRate(row, c.ratePerSecond, c.burst);
    },
    conflict(spec, prev, next) {
      const before = configured(prev, spec);
      const now = configured(next, spec);
      if (now === undefined) return `route "${spec.route}" no longer has rate-limit policy "${spec.policy}"`;
      if (before !== undefined && (before.rate.perSecond !== now.rate.perSecond || before.burst !== now.burst)) return `the configured rate or burst of "${spec.route}/${spec.policy}" changed`;
      return null;
    },
  };
}
