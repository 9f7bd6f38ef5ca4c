// The `split` override target: a route's side weights at run time (a blue/green flip,
// an event action that drains a side), put back when the override is deleted or
// expires: to a rollout's weights if a rollout had moved them, else to the configured
// ones. Values are written through the SplitWriter: one seqlocked row write, so every
// side changes at once for every worker.
//
// An override wins over a rollout on the same route: it is an operator's (or an
// alert's) explicit word, and a rollout is automation. A progressing rollout is paused
// when a split override lands on its route and cannot be started, resumed or promoted
// while one holds (rollout-manager.ts), as a forced breaker stops its controller.
//
//   { kind: "split", target: "<route>", value: { "blue": 0, "green": 100 } }
//   (value may also be { weights: { … } }, the PUT /v1/routes/<route>/split body)
import type { Config } from '../../config/schema.js';
import { parseSplitWeights } from '../../config/schema-split.js';
import type { SplitWriter } from '../rollout/split-writer.js';
import type { OverrideTarget, ParseResult } from './target.js';

export interface SplitSpec {
  readonly route: string;
  readonly sides: readonly string[];
  /** percent per side, in side order */
  readonly weights: readonly number[];
}

function routeSides(config: Config, route: string): { sides: string[]; weights: number[] } | null {
  const i = config.routes.findIndex((r, j) => (r.name ?? `route-${j}`) === route);
  const split = i < 0 ? undefined : config.routes[i]!.split;
  return split === undefined ? null : { sides: split.map((s) => s.upstream), weights: split.map((s) => s.weight) };
}

/** the key of a route's split override (one per route) */
export function splitKey(route: string): string {
  return `split:${route}`;
}

export function splitTarget(writer: SplitWriter): OverrideTarget<SplitSpec> {
  return {
    kind: 'split',
    parse(raw, config): ParseResult<SplitSpec> {
      if (typeof raw.target !== 'string' || raw.target.length === 0) return { ok: false, issues: ['target: expected the name of a route with a split'] };
      const route = raw.target;
      const found = routeSides(config, route);
      if (found === null) return { ok: false, issues: [`target: route "${route}" has no split (or does not exist)`] };
      const v = raw.value as { weights?: unknown } | null;
      const value = typeof v === 'object' && v !== null && 'weights' in v ? v.weights : raw.value;
      const parsed = parseSplitWeights(found.sides, value);
      if (!parsed.ok) return { ok: false, issues: parsed.issues.map((i) => `value.${i}`) };
      return { ok: true, key: splitKey(route), spec: { route, sides: found.sides, weights: parsed.weights } };
    },
    apply(spec) {
      writer.setOverride(spec.route, spec.weights);
    },
    restore(spec) {
      writer.clearOverride(spec.route);
    },
    conflict(spec, prev, next) {
      const now = routeSides(next, spec.route);
      if (now === null) return `route "${spec.route}" has no split any more`;
      if (now.sides.join('\u0000') !== spec.sides.join('\u0000')) return `the split sides of "${spec.route}" changed (${spec.sides.join(', ')} → ${now.sides.join(', ')})`;
      const before = routeSides(prev, spec.route);
      if (before !== null && before.weights.join(',') !== now.weights.join(',')) return `the configured weights of "${spec.route}" changed (${before.weights.join('/')} → ${now.weights.join('/')})`;
      return null;
    },
  };
}
