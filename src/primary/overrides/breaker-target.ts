// `breaker`: an upstream's circuit breaker forced open or closed, or `auto` (the
// controller decides, as without an override). Only an upstream with a `breaker`
// section can be forced: workers consult the breaker word of guarded upstreams only,
// which keeps the hot path of every other upstream free of it.
//   target: { upstream } or "upstream"   value: "open" | "closed" | "auto"
import type { ControllerScheduler } from '../../controllers/scheduler.js';
import type { OverrideTarget, ParseResult } from './target.js';

export interface BreakerSpec {
  readonly upstream: string;
  readonly state: 'open' | 'closed' | 'auto';
}

export function breakerTarget(controllers: ControllerScheduler): OverrideTarget<BreakerSpec> {
  return {
    kind: 'breaker',
    parse(raw, config): ParseResult<BreakerSpec> {
      const issues: string[] = [];
      const t = raw.target;
      const upstream = typeof t === 'string' ? t : typeof (t as { upstream?: unknown } | null)?.upstream === 'string' ? (t as { upstream: string }).upstream : null;
      if (upstream === null) issues.push('target: an upstream name, or { upstream }');
      else if (config.upstreams[upstream] === undefined) issues.push(`target.upstream: unknown upstream "${upstream}" (known: ${Object.keys(config.upstreams).join(', ')})`);
      else if (config.upstreams[upstream]!.breaker === undefined) issues.push(`target.upstream: upstream "${upstream}" has no breaker to force (add \`breaker: {}\` to its config)`);
      const v = typeof raw.value === 'string' ? raw.value : (raw.value as { state?: unknown } | null)?.state;
      if (v !== 'open' && v !== 'closed' && v !== 'auto') issues.push('value: "open", "closed" or "auto"');
      if (issues.length > 0) return { ok: false, issues };
      return { ok: true, spec: { upstream: upstream!, state: v as BreakerSpec['state'] }, key: upstream! };
    },
    apply(spec) {
      if (controllers.hasBreaker(spec.upstream)) controllers.force(spec.upstream, spec.state === 'auto' ? null : spec.state);
    },
    restore(spec) {
      if (controllers.hasBreaker(spec.upstream)) controllers.force(spec.upstream, null);
    },
    conflict(spec, _prev, next) {
      const u = next.upstreams[spec.upstream];
      if (u === undefined) return `upstream "${spec.upstream}" was removed`;
      if (u.breaker === undefined) return `upstream "${spec.upstream}" no longer has a breaker`;
      return null;
    },
  };
}
