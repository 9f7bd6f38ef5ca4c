// `endpoint`: an endpoint's weight, or drained / enabled, whatever discovery and
// health checks say while the override holds.
//   target: { upstream, endpoint: "host:port" }   value: { weight?: 1…1000000, state?: "drain" | "enable" }
import type { Config } from '../../config/schema.js';
import { parseHostPort } from '../../units/units.js';
import { endpointAddress, type EndpointPin, type EndpointWriter } from '../endpoint-writer.js';
import type { OverrideTarget, ParseResult } from './target.js';

export interface EndpointSpec {
  readonly upstream: string;
  readonly endpoint: string;
  readonly pin: EndpointPin;
}

function configuredWeight(cfg: Config, upstream: string, endpoint: string): number | null {
  const d = cfg.upstreams[upstream]?.discovery;
  if (d?.type !== 'static') return null;
  const e = d.endpoints.find((x) => endpointAddress(x) === endpoint);
  return e === undefined ? null : (e.weight ?? 1);
}

export function endpointTarget(writer: EndpointWriter): OverrideTarget<EndpointSpec> {
  return {
    kind: 'endpoint',
    parse(raw, config): ParseResult<EndpointSpec> {
      const issues: string[] = [];
      const t = raw.target as { upstream?: unknown; endpoint?: unknown } | null;
      const v = raw.value as { weight?: unknown; state?: unknown } | null;
      const upstream = typeof t?.upstream === 'string' ? t.upstream : null;
      if (upstream === null) issues.push('target.upstream: required, an upstream name');
      else if (config.upstreams[upstream] === undefined) issues.push(`target.upstream: unknown upstream "${upstream}" (known: ${Object.keys(config.upstreams).join(', ')})`);
      const hp = parseHostPort(t?.endpoint);
      if (!hp.ok) issues.push(`target.endpoint: ${hp.expected}`);
      const endpoint = hp.ok ? endpointAddress(hp.value) : '';
      if (upstream !== null && hp.ok && config.upstreams[upstream]?.discovery.type === 'static' && configuredWeight(config, upstream, endpoint) === null) {
        issues.push(`target.endpoint: upstream "${upstream}" has no endpoint ${endpoint}`);
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) issues.push('value: an object { weight?, state?: "drain" | "enable" }');
      else {
        for (const k of Object.keys(v)) if (k !== 'weight' && k !== 'state') issues.push(`value.${k}: unknown field (weight, state)`);
        if (v.weight !== undefined && !(typeof v.weight === 'number' && Number.isInteger(v.weight) && v.weight >= 1 && v.weight <= 1_000_000)) issues.push('value.weight: a whole number 1…1000000');
        if (v.state !== undefined && v.state !== 'drain' && v.state !== 'enable') issues.push('value.state: "drain" or "enable"');
        if (v.weight === undefined && v.state === undefined) issues.push('value: weight, state or both');
      }
      if (issues.length > 0) return { ok: false, issues };
      const pin: EndpointPin = {
        ...(v!.weight !== undefined ? { weight: v!.weight as number } : {}),
        ...(v!.state !== undefined ? { state: v!.state === 'drain' ? ('draining' as const) : ('healthy' as const) } : {}),
      };
      return { ok: true, spec: { upstream: upstream!, endpoint, pin }, key: `${upstream}/${endpoint}` };
    },
    apply(spec) {
      writer.pin(spec.upstream, spec.endpoint, spec.pin, 'override');
    },
    restore(spec) {
      writer.pin(spec.upstream, spec.endpoint, null, 'override');
    },
    conflict(spec, prev, next) {
      if (next.upstreams[spec.upstream] === undefined) return `upstream "${spec.upstream}" was removed`;
      if (next.upstreams[spec.upstream]!.discovery.type === 'static') {
        const now = configuredWeight(next, spec.upstream, spec.endpoint);
        if (now === null) return `endpoint ${spec.endpoint} was removed from upstream "${spec.upstream}"`;
        const before = configuredWeight(prev, spec.upstream, spec.endpoint);
        if (spec.pin.weight !== undefined && before !== now) return `the configured weight of ${spec.endpoint} changed (${before ?? 'none'} → ${now})`;
      }
      return null;
    },
  };
}
