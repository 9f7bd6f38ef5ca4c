// The primary's one writer of split rows (src/shm/split-table.ts). Each route with a
// `split` owns the row of its position among split routes (the order compile.ts gives
// workers). Run-time weights come in two layers over the configured ones: a rollout's
// (its step, kept while the rollout has moved them) and a split override's (an
// operator's PUT, an event action) on top. The row holds the top layer present; an
// override that ends uncovers the rollout's weights, or the configured ones. Layers are
// written again after a reload while the route keeps the same sides; a reload that
// changes the sides drops them, and one that changes the configured weights drops the
// override (its target reports the same conflict to the override store).
import type { Config } from '../../config/schema.js';
import { SplitTable } from '../../shm/split-table.js';
import type { SharedState } from '../../shm/shared-state.js';
import type { Logger } from '../logger.js';
import { decision } from '../decisions/decision-log.js';

interface SplitMeta {
  readonly row: number;
  readonly route: string;
  readonly sides: readonly string[];
  readonly configured: readonly number[];
}

export interface SplitStatus {
  readonly route: string;
  readonly row: number;
  readonly sticky: string | null;
  /** percent per side, in force now */
  readonly weights: Record<string, number>;
  readonly configured: Record<string, number>;
  /** who set the weights in force: "config", "rollout:<name>" or "override" */
  readonly source: string;
  /** the rollout's weights a split override covers (they come back when it ends); null when none */
  readonly beneath: Record<string, number> | null;
}

interface Layer {
  readonly weights: readonly number[];
  readonly source: string;
}

export class SplitWriter {
  readonly table: SplitTable;
  private metas = new Map<string, SplitMeta>();
  private sticky = new Map<string, string | null>();
  /** route → a rollout's weights */
  private readonly rollout = new Map<string, Layer>();
  /** route → a split override's weights (over the rollout's) */
  private readonly override = new Map<string, Layer>();
  /** called after a split override is put on a route (the rollout manager holds its rollout) */
  onOverride: ((route: string) => void) | null = null;

  constructor(
    shm: SharedState,
    private readonly log: Logger,
  ) {
    this.table = new SplitTable(shm);
  }

  applyConfig(cfg: Config): void {
    const next = new Map<string, SplitMeta>();
    let row = 0;
    this.sticky.clear();
    cfg.routes.forEach((r, i) => {
      if (r.split === undefined) return;
      const route = r.name ?? `route-${i}`;
      next.set(route, { row: row++, route, sides: r.split.map((s) => s.upstream), configured: r.split.map((s) => s.weight) });
      this.sticky.set(route, r.sticky === undefined ? null : `${r.sticky.on}${r.sticky.name === undefined ? '' : `:${r.sticky.name}`}`);
    });
    for (const [layers, kind] of [[this.rollout, 'rollout'], [this.override, 'override']] as const) {
      for (const [route, w] of layers) {
        const prev = this.metas.get(route);
        const now = next.get(route);
        const sameSides = now !== undefined && prev !== undefined && now.sides.join('\u0000') === prev.sides.join('\u0000');
        const sameWeights = sameSides && now.configured.join(',') === prev.configured.join(',');
        if (sameSides && (kind === 'rollout' || sameWeights)) continue;
        layers.delete(route);
        const reason = now === undefined ? 'the route has no split any more' : !sameSides ? 'the reload changed the split sides' : 'the reload changed the configured weights';
        decision(this.log).warn({ event: 'split-weights-dropped', route, source: w.source, reason }, `run-time split weights of ${route} (${w.source}) dropped: ${reason}`);
      }
    }
    this.metas = next;
    for (const m of next.values()) this.table.write(m.row, this.top(m)?.weights ?? m.configured);
  }

  /** The route's sides, or null when it has no split. */
  sides(route: string): readonly string[] | null {
    return this.metas.get(route)?.sides ?? null;
  }

  /**
   * A rollout's weights for the route (every side's percent, in side order). Written to
   * the row unless a split override covers them. One seqlocked row write: a step or a
   * blue/green flip changes every side at once for every request.
   */
  setRollout(route: string, weights: readonly number[], rollout: string): void {
    this.put(this.rollout, route, weights, `rollout:${rollout}`);
  }

  /** Forgets a rollout's weights (the rollout left the config). */
  clearRollout(route: string): void {
    this.rollout.delete(route);
    this.rewrite(route);
  }

  /** A split override's weights: they win over a rollout's and the configured ones. */
  setOverride(route: string, weights: readonly number[]): void {
    this.put(this.override, route, weights, 'override');
    this.onOverride?.(route);
  }

  /** Ends a split override: the rollout's weights, or the configured ones, come back. */
  clearOverride(route: string): void {
    this.override.delete(route);
    this.rewrite(route);
  }

  /** Whether a split override holds the route's weights. */
  overridden(route: string): boolean {
    return this.override.has(route);
  }

  private put(layers: Map<string, Layer>, route: string, weights: readonly number[], source: string): void {
    const m = this.metas.get(route);
    if (m === undefined) throw new RangeError(`route ${route} has no split`);
    if (weights.length !== m.sides.length) throw new RangeError(`route ${route} has ${m.sides.length} sides`);
    layers.set(route, { weights: [...weights], source });
    this.rewrite(route);
  }

  private top(m: SplitMeta): Layer | undefined {
    return this.override.get(m.route) ?? this.rollout.get(m.route);
  }

  private rewrite(route: string): void {
    const m = this.metas.get(route);
    if (m !== undefined) this.table.write(m.row, this.top(m)?.weights ?? m.configured);
  }

  /** Percent per side in force now, in side order. */
  weights(route: string): number[] | null {
    const m = this.metas.get(route);
    if (m === undefined) return null;
    return [...(this.top(m)?.weights ?? m.configured)];
  }

  source(route: string): string {
    const m = this.metas.get(route);
    return (m === undefined ? undefined : this.top(m)?.source) ?? 'config';
  }

  status(): SplitStatus[] {
    return [...this.metas.values()].map((m) => {
      const w = this.weights(m.route)!;
      const covered = this.override.has(m.route) ? this.rollout.get(m.route) : undefined;
      return {
        route: m.route,
        row: m.row,
        sticky: this.sticky.get(m.route) ?? null,
        weights: Object.fromEntries(m.sides.map((s, i) => [s, w[i]!])),
        configured: Object.fromEntries(m.sides.map((s, i) => [s, m.configured[i]!])),
        source: this.source(m.route),
        beneath: covered === undefined ? null : Object.fromEntries(m.sides.map((s, i) => [s, covered.weights[i]!])),
      };
    });
  }
}
