// `flag`: a feature flag's value at run time.
//   target: "name" or { flag: "name" }   value: true | false | "25%" | 0…100
import { flagValue } from '../../config/schema-control.js';
import type { FlagWriter } from '../flag-writer.js';
import type { OverrideTarget, ParseResult } from './target.js';

export interface FlagSpec {
  readonly flag: string;
  /** basis points, 0–10000 */
  readonly value: number;
}

export function flagTarget(flags: FlagWriter): OverrideTarget<FlagSpec> {
  return {
    kind: 'flag',
    parse(raw, config): ParseResult<FlagSpec> {
      const issues: string[] = [];
      const t = raw.target;
      const name = typeof t === 'string' ? t : typeof (t as { flag?: unknown } | null)?.flag === 'string' ? (t as { flag: string }).flag : null;
      if (name === null) issues.push('target: a flag name, or { flag }');
      else if (config.flags[name] === undefined) issues.push(`target: unknown flag "${name}" (known: ${Object.keys(config.flags).join(', ') || 'none'})`);
      const v = flagValue.safeParse(raw.value);
      if (!v.success) issues.push('value: true, false, or a percentage of callers ("25%" or 0…100)');
      if (issues.length > 0 || !v.success) return { ok: false, issues };
      return { ok: true, spec: { flag: name!, value: v.data }, key: name! };
    },
    apply(spec) {
      flags.set(spec.flag, spec.value);
    },
    restore(spec) {
      flags.restore(spec.flag);
    },
    conflict(spec, prev, next) {
      const now = next.flags[spec.flag];
      if (now === undefined) return `flag "${spec.flag}" was removed`;
      const before = prev.flags[spec.flag];
      if (before !== undefined && before.value !== now.value) return `the configured value of flag "${spec.flag}" changed (${before.value / 100}% → ${now.value / 100}%)`;
      return null;
    },
  };
}
