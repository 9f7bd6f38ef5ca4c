// The primary's side of the shared ban table: lists bans, sets and lifts them (admin
// API, `ban` overrides), and turns the bans workers set into decision events. Workers
// set automatic bans themselves (src/policies/ban.ts); this module notices each one on
// its next sweep (every 500 ms) and logs `client-banned` with the numbers that caused it.
import type { Config } from '../../config/schema.js';
import { banHashes, type BanConfig } from '../../policies/ban.js';
import { BanTable } from '../../shm/ban-table.js';
import type { SharedState } from '../../shm/shared-state.js';
import type { Logger } from '../logger.js';
import { decision } from '../decisions/decision-log.js';

const SWEEP_MS = 500;

export interface BanPolicyInfo {
  readonly name: string;
  readonly routes: readonly string[];
  readonly config: BanConfig;
}

export interface BanView {
  readonly policy: string;
  readonly key: string;
  readonly until: string;
  /** when the ban was set */
  readonly since: string;
  readonly remainingSeconds: number;
  readonly source: 'automatic' | 'manual';
  /** bans this key has had under this policy since its slot was claimed */
  readonly trips: number;
}

/** Every ban policy of a config by name. */
export function banPolicies(cfg: Config): Map<string, BanPolicyInfo> {
  const out = new Map<string, BanPolicyInfo & { routes: string[] }>();
  cfg.routes.forEach((r, i) => {
    const route = r.name ?? `route-${i}`;
    for (const p of r.policies) {
      if (p.name !== 'ban') continue;
      const c = p.config as BanConfig;
      const name = c.name ?? route;
      const cur = out.get(name);
      if (cur) cur.routes.push(route);
      else out.set(name, { name, routes: [route], config: c });
    }
  });
  return out;
}

export class BanWriter {
  readonly table: BanTable;
  private policies = new Map<string, BanPolicyInfo>();
  private byHash = new Map<number, string>();
  /** slot → the setAt tick already reported */
  private readonly reported = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private bansSet = 0;

  constructor(
    shm: SharedState,
    private readonly log: Logger,
  ) {
    this.table = new BanTable(shm);
  }

  applyConfig(cfg: Config): void {
    this.policies = banPolicies(cfg);
    this.byHash = new Map([...this.policies.keys()].map((n) => [banHashes(n, '').policy, n]));
  }

  start(): void {
    this.timer ??= setInterval(() => this.sweep(), SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  policy(name: string): BanPolicyInfo | undefined {
    return this.policies.get(name);
  }

  policyNames(): string[] {
    return [...this.policies.keys()];
  }

  /** Logs each ban set since the last sweep (workers set automatic ones without telling anyone). */
  sweep(): void {
    const now = this.table.tick();
    for (const e of this.table.entries(now)) {
      const tick = this.table.tick(e.setAt);
      if (this.reported.get(e.slot) === tick) continue;
      this.reported.set(e.slot, tick);
      this.bansSet++;
      if (e.source !== 'automatic') continue; // manual bans are logged where they are made
      const name = this.byHash.get(e.policy) ?? 'unknown';
      const p = this.policies.get(name);
      decision(this.log).warn(
        { event: 'client-banned', policy: name, key: e.key, until: new Date(e.until).toISOString(), forMs: e.until - e.setAt, trips: e.trips, statuses: p?.config.when.statuses, count: p?.config.when.count, windowMs: p?.config.when.window },
        `ban ${name}: ${e.key} banned after ${p?.config.when.count ?? '?'} refusals within ${p?.config.when.window ?? '?'} ms`,
      );
    }
  }

  list(): BanView[] {
    const nowMs = Date.now();
    return this.table.entries(this.table.tick(nowMs)).map((e) => ({
      policy: this.byHash.get(e.policy) ?? 'unknown',
      key: e.key,
      until: new Date(e.until).toISOString(),
      since: new Date(e.setAt).toISOString(),
      remainingSeconds: Math.max(0, Math.ceil((e.until - nowMs) / 1000)),
      source: e.source,
      trips: e.trips,
    }));
  }

  /** Bans `key` under the named policies (default: every ban policy) for `forMs`; returns the policies it was set under. */
  ban(key: string, forMs: number, policies: readonly string[] = this.policyNames(), reason?: string): string[] {
    const now = this.table.tick();
    const until = this.table.tick(Date.now() + forMs);
    const done: string[] = [];
    for (const name of policies) {
      const h = banHashes(name, key);
      if (this.table.ban(h.policy, h.a, h.b, key, until, now)) done.push(name);
    }
    decision(this.log).warn({ event: 'client-banned', policy: done.join(','), key, forMs, source: 'manual', ...(reason ? { reason } : {}) }, `ban: ${key} banned for ${forMs} ms by the admin API`);
    return done;
  }

  /** Lifts every ban on `key` (under the named policies, default all); returns the policies lifted. */
  lift(key: string, policies?: readonly string[]): string[] {
    const now = this.table.tick();
    const lifted: string[] = [];
    for (const e of this.table.entries(now)) {
      if (e.key !== key) continue;
      const name = this.byHash.get(e.policy) ?? 'unknown';
      if (policies && !policies.includes(name)) continue;
      this.table.lift(e.base);
      lifted.push(name);
    }
    if (lifted.length > 0) decision(this.log).info({ event: 'ban-lifted', policy: lifted.join(','), key }, `ban: ${key} lifted`);
    return lifted;
  }

  status(): unknown {
    const bans = this.list();
    return { active: bans.length, set: this.bansSet, slots: this.table.slots, policies: [...this.policies.values()].map((p) => ({ name: p.name, routes: p.routes, statuses: p.config.when.statuses, count: p.config.when.count, windowMs: p.config.when.window, forMs: p.config.for, key: p.config.key, active: bans.filter((b) => b.policy === p.name).length })) };
  }

  /** For metrics: bans in force and bans set so far, by policy. */
  counts(): { policy: string; active: number }[] {
    const bans = this.list();
    return this.policyNames().map((policy) => ({ policy, active: bans.filter((b) => b.policy === policy).length }));
  }
}
