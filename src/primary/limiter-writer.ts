// The primary's writer of rate-limit policy rows (src/shm/limiter-table.ts). Each
// `rate-limit` policy in the config owns the row of its position among all rate-limit
// policies (routes in order, policies in order: the `kindIndex` workers use too).
//
// API:
//   applyConfig(config)                    writes every policy's rate and burst (start, reload)
//   setRate(row, ratePerSecond, burst?)    changes a policy at run time; workers use it
//                                          from their next request
//   setMultiplier(row, factor)             adaptive scaling (1 = as configured)
//   find(route, name?) → row | -1          a policy's row by route name (and policy name)
//   configured(row)                        the config's rate and burst (overrides restore it)
//   status()                               every policy: route, rate, burst, counters
//   rows()                                 every policy's row and config
import { StartupCodes, StartupError } from '../errors.js';
import type { Config } from '../config/schema.js';
import type { RateLimitConfig } from '../policies/rate-limit.js';
import { LimiterTable, type LimiterPolicyInfo } from '../shm/limiter-table.js';
import type { SharedState } from '../shm/shared-state.js';

export interface PolicyMeta {
  readonly row: number;
  readonly route: string;
  readonly name: string;
  readonly key: readonly string[];
  readonly configuredRate: string;
  readonly config: RateLimitConfig;
  readonly ratePerSecond: number;
  readonly burst: number;
}

export interface LimiterPolicyStatus extends LimiterPolicyInfo {
  readonly route: string;
  readonly name: string;
  readonly key: readonly string[];
  readonly configuredRate: string;
}

export class LimiterWriter {
  readonly table: LimiterTable;
  private metas: PolicyMeta[] = [];

  constructor(shm: SharedState) {
    this.table = new LimiterTable(shm);
  }

  /** Throws TG_ERR_SHM_CAPACITY (and writes nothing) when the config has more policies than rows. */
  applyConfig(cfg: Config): void {
    const found: { route: string; c: RateLimitConfig }[] = [];
    cfg.routes.forEach((r, i) => {
      for (const p of r.policies) if (p.name === 'rate-limit') found.push({ route: r.name ?? `route-${i}`, c: p.config as RateLimitConfig });
    });
    if (found.length > this.table.policies) {
      throw new StartupError(StartupCodes.SHM_CAPACITY, `capacity.limiterPolicies: the config has ${found.length} rate-limit policies but shared memory was sized for ${this.table.policies}; raise capacity.limiterPolicies (takes effect on restart)`);
    }
    found.forEach(({ c }, row) => this.table.setPolicy(row, c.rate.perSecond, c.burst, 1));
    for (let row = found.length; row < this.metas.length; row++) this.table.clearPolicy(row);
    this.metas = found.map(({ route, c }, row) => ({ row, route, name: c.name, key: c.key, configuredRate: c.tier ? 'tier' : `${c.rate.count}/${c.rate.periodSeconds}s`, config: c, ratePerSecond: c.rate.perSecond, burst: c.burst }));
  }

  setRate(row: number, ratePerSecond: number, burst?: number): void {
    const cur = this.table.policy(row);
    if (!(ratePerSecond > 0)) throw new RangeError('rate must be above zero');
    this.table.setPolicy(row, ratePerSecond, burst ?? cur.burst, cur.multiplier || 1);
  }

  setMultiplier(row: number, factor: number): void {
    if (!(factor > 0)) throw new RangeError('multiplier must be above zero');
    this.table.setMultiplier(row, factor);
  }

  /** every policy's row, route, name and config (the cluster limiter takes its `scope: cluster` ones) */
  rows(): readonly PolicyMeta[] {
    return this.metas;
  }

  /** the config's rate and burst of a row (what an override's removal restores) */
  configured(row: number): { ratePerSecond: number; burst: number } | null {
    const m = this.metas[row];
    return m === undefined ? null : { ratePerSecond: m.ratePerSecond, burst: m.burst };
  }

  find(route: string, name?: string): number {
    const m = this.metas.find((x) => x.route === route && (name === undefined || x.name === name));
    return m ? m.row : -1;
  }

  status(): LimiterPolicyStatus[] {
    return this.metas.map((m) => ({ ...this.table.policy(m.row), route: m.route, name: m.name, key: m.key, configuredRate: m.configuredRate }));
  }
}
