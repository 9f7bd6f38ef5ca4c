// The primary's one writer of split rows (src/shm/split-table.ts). Each route with a
// `split` owns the row of its position among split routes (the order compile.ts gives
// workers). Run-time weights (an operator's PUT, a split override, a rollout step) are
// kept per route and written again after a reload while the route still has the same
// sides; a reload that changes the sides drops them and says so.
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
  /** who set the weights in force: "config", or the run-time source (an override, "api", "rollout:<name>") */
  readonly source: string;
}

export class SplitWriter {
  readonly table: SplitTable;
  private metas = new Map<string, SplitMeta>();
  private sticky = new Map<string, string | null>();
  /** route → run-time weights and their source */
  private readonly runtime = new Map<string, { weights: number[]; source: string }>();

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
    for (const [route, w] of this.runtime) {
      const prev = this.metas.get(route);
      const now = next.get(route);
      if (now !== undefined && prev !== undefined && now.sides.join('\u0000') === prev.sides.join('\u0000')) continue;
      this.runtime.delete(route);
      decision(this.log).warn({ event: 'split-weights-dropped', route, source: w.source, reason: now === undefined ? 'the route has no split any more' : 'the reload changed the split sides' }, `run-time split weights of ${route} dropped by the reload`);
    }
    this.metas = next;
    for (const m of next.values()) this.table.write(m.row, this.runtime.get(m.route)?.weights ?? m.configured);
  }

  /** The route's sides, or null when it has no split. */
  sides(route: string): readonly string[] | null {
    return this.metas.get(route)?.sides ?? null;
  }

  /** Sets every side's percent (in side order) at once: one seqlocked row write, so a blue/green flip is atomic for every request. */
  set(route: string, weights: readonly number[], source: string): void {
    const m = this.metas.get(route);
    if (m === undefined) throw new RangeError(`route ${route} has no split`);
    if (weights.length !== m.sides.length) throw new RangeError(`route ${route} has ${m.sides.length} sides`);
    this.table.write(m.row, weights);
    this.runtime.set(route, { weights: [...weights], source });
  }

  /** Puts the configured weights back. */
  restore(route: string): void {
    const m = this.metas.get(route);
    this.runtime.delete(route);
    if (m !== undefined) this.table.write(m.row, m.configured);
  }

  /** Percent per side in force now, in side order. */
  weights(route: string): number[] | null {
    const m = this.metas.get(route);
    if (m === undefined) return null;
    return this.runtime.get(route)?.weights ?? [...m.configured];
  }

  source(route: string): string {
    return this.runtime.get(route)?.source ?? 'config';
  }

  status(): SplitStatus[] {
    return [...this.metas.values()].map((m) => {
      const w = this.weights(m.route)!;
      return {
        route: m.route,
        row: m.row,
        sticky: this.sticky.get(m.route) ?? null,
        weights: Object.fromEntries(m.sides.map((s, i) => [s, w[i]!])),
        configured: Object.fromEntries(m.sides.map((s, i) => [s, m.configured[i]!])),
        source: this.source(m.route),
      };
    });
  }
}
