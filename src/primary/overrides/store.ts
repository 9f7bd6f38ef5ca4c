// The override store: every run-time change an operator or an event action makes,
// on top of the config. It owns what targets do not: ids, the caller's identity and
// reason, expiry on the primary's timer, persistence to the state file, re-applying
// after a restart or reload, and the decision event of every change. A second override
// of the same thing (same kind and key) replaces the first.
//
// On reload an override is kept and re-applied unless its target reports a conflict
// (the thing is gone, or the reload changed the value it overrides): then it is
// DROPPED, the new config's value stands, and the drop is a decision event and stays
// listed in /status. The new config is the operator's newer word about that thing.
import { randomUUID } from 'node:crypto';
import { parseDuration } from '../../units/units.js';
import type { Config } from '../../config/schema.js';
import { AdminErrors } from '../../errors.js';
import { ApiError } from '../admin/api-router.js';
import { decision } from '../decisions/decision-log.js';
import type { Logger } from '../logger.js';
import type { StateFile } from '../state-file.js';
import type { OverrideTarget } from './target.js';
import type { Scope } from '../admin/tokens.js';

export type OverrideSource = 'api' | 'event';

/** What created an override from an event: resolving that alert removes it. */
export interface OverrideOrigin {
  readonly rule: string;
  /** the alert's fingerprint (or the plain event's name and labels) */
  readonly fingerprint: string;
}

export interface OverrideRecord {
  readonly id: string;
  readonly kind: string;
  readonly target: unknown;
  readonly value: unknown;
  /** the thing overridden, as the target names it (one override per kind and key) */
  readonly key: string;
  readonly reason: string | null;
  /** the token's name, or `event:<rule>` */
  readonly createdBy: string;
  readonly source: OverrideSource;
  readonly origin: OverrideOrigin | null;
  readonly createdAt: string;
  readonly expiresAt: string | null;
}

export interface OverrideInput {
  readonly kind: unknown;
  readonly target: unknown;
  readonly value: unknown;
  /** "15m" (as the API takes it) */
  readonly for?: unknown;
  /** the same in ms, from a caller that parsed it already (an event rule's `for`) */
  readonly forMs?: number;
  readonly reason?: unknown;
}

interface Live {
  readonly record: OverrideRecord;
  spec: unknown;
  readonly target: OverrideTarget;
  readonly expiresMs: number | null;
}

export interface DroppedOverride {
  readonly override: OverrideRecord;
  readonly at: string;
  readonly why: string;
}

export interface OverrideStoreOptions {
  readonly log: Logger;
  readonly config: () => Config;
  readonly file: StateFile | null;
}

/** the longest `for` an override may ask */
const MAX_FOR_MS = 366 * 24 * 3600 * 1000;
const DROPPED_KEPT = 50;
const SECTION = 'overrides';

export class OverrideStore {
  private readonly targets = new Map<string, OverrideTarget>();
  private readonly live = new Map<string, Live>();
  private timer: NodeJS.Timeout | null = null;
  private readonly dropped: DroppedOverride[] = [];
  /** reload bookkeeping for /status */
  private lastReload: { generation: number; kept: number; dropped: number } | null = null;
  private file: StateFile | null;
  private persistError: string | null = null;

  constructor(private readonly opts: OverrideStoreOptions) {
    this.file = opts.file;
  }

  register<S>(target: OverrideTarget<S>): void {
    if (this.targets.has(target.kind)) throw new Error(`override target "${target.kind}" registered twice`);
    // The store hands each target only specs that target's parse made.
    this.targets.set(target.kind, target as unknown as OverrideTarget);
  }

  /** The scope creating or deleting an override of `kind` needs. */
  scopeOf(kind: string): Scope {
    return this.targets.get(kind)?.scope ?? 'traffic';
  }

  get kinds(): string[] {
    return [...this.targets.keys()];
  }

  /**
   * Checks an override without applying it: the target and the `issues` it would be
   * refused with. Event rules are checked this way at config load.
   */
  check(kind: string, raw: { target: unknown; value: unknown }, config: Config): string[] {
    const t = this.targets.get(kind);
    if (t === undefined) return [`unknown override kind "${kind}" (known: ${this.kinds.join(', ')})`];
    const r = t.parse(raw, config);
    return r.ok ? [] : r.issues;
  }

  /** Applies an override; throws ApiError TG_ERR_ADMIN_INVALID with every issue. */
  create(input: OverrideInput, createdBy: string, source: OverrideSource = 'api', origin: OverrideOrigin | null = null): OverrideRecord {
    const issues: string[] = [];
    const kind = typeof input.kind === 'string' ? input.kind : null;
    if (kind === null) issues.push('kind: required, a string');
    const target = kind === null ? undefined : this.targets.get(kind);
    if (kind !== null && target === undefined) issues.push(`kind: unknown override kind "${kind}" (known: ${this.kinds.join(', ')})`);
    let forMs: number | null = input.forMs ?? null;
    if (forMs === null && input.for !== undefined && input.for !== null) {
      const d = parseDuration(input.for);
      if (!d.ok) issues.push(`for: ${d.expected}`);
      else if (d.value <= 0 || d.value > MAX_FOR_MS) issues.push('for: must be above 0 and at most 366 days');
      else forMs = d.value;
    }
    if (input.reason !== undefined && (typeof input.reason !== 'string' || input.reason.length > 1024)) issues.push('reason: a string of at most 1024 characters');
    const parsed = target?.parse({ target: input.target, value: input.value }, this.opts.config());
    if (parsed && !parsed.ok) issues.push(...parsed.issues);
    if (issues.length > 0 || !parsed || !parsed.ok || target === undefined) throw new ApiError(AdminErrors.INVALID, `the override is not valid: ${issues.join('; ')}`, issues);
    const now = Date.now();
    const record: OverrideRecord = {
      id: randomUUID(),
      kind: target.kind,
      target: input.target,
      value: input.value,
      key: parsed.key,
      reason: typeof input.reason === 'string' ? input.reason : null,
      createdBy,
      source,
      origin,
      createdAt: new Date(now).toISOString(),
      expiresAt: forMs === null ? null : new Date(now + forMs).toISOString(),
    };
    const replaced = this.findByKey(record.kind, record.key);
    if (replaced !== undefined) this.live.delete(replaced.record.id);
    target.apply(parsed.spec);
    this.live.set(record.id, { record, spec: parsed.spec, target, expiresMs: forMs === null ? null : now + forMs });
    decision(this.opts.log).info(
      { event: 'override-applied', id: record.id, kind: record.kind, key: record.key, target: record.target, value: record.value, createdBy, source, reason: record.reason, expiresAt: record.expiresAt, ...(replaced ? { replaced: replaced.record.id } : {}), ...subject(parsed.spec) },
      `override ${record.kind} ${record.key} = ${JSON.stringify(record.value)} by ${createdBy}${record.expiresAt ? ` until ${record.expiresAt}` : ''}`,
    );
    this.changed();
    return record;
  }

  list(): OverrideRecord[] {
    return [...this.live.values()].map((l) => l.record);
  }

  get(id: string): OverrideRecord | undefined {
    return this.live.get(id)?.record;
  }

  findByKey(kind: string, key: string): Live | undefined {
    for (const l of this.live.values()) if (l.record.kind === kind && l.record.key === key) return l;
    return undefined;
  }

  /** Removes an override and restores the configured value; false when there is none. */
  remove(id: string, by: string, why: 'deleted' | 'expired' | 'resolved'): boolean {
    const l = this.live.get(id);
    if (l === undefined) return false;
    this.live.delete(id);
    l.target.restore(l.spec);
    const r = l.record;
    decision(this.opts.log).info({ event: 'override-removed', id, kind: r.kind, key: r.key, why, by, createdBy: r.createdBy, ...subject(l.spec) }, `override ${r.kind} ${r.key} ${why} (by ${by}); configured value restored`);
    this.changed();
    return true;
  }

  /** The overrides an event created (its rule and fingerprint). */
  byOrigin(rule: string, fingerprint: string): OverrideRecord[] {
    return this.list().filter((r) => r.origin !== null && r.origin.rule === rule && r.origin.fingerprint === fingerprint);
  }

  /** At start: the state file's overrides, re-applied; expired and invalid ones are dropped and said so. */
  restoreFromFile(): void {
    if (this.file === null) return;
    const read = this.file.read();
    if (read.problem !== null) {
      decision(this.opts.log).error({ event: 'state-file-unreadable', file: this.file.path, problem: read.problem }, `state file ${this.file.path} unusable (${read.problem}); starting without overrides`);
      return;
    }
    const saved = read.sections[SECTION];
    if (!Array.isArray(saved)) return;
    const now = Date.now();
    let restored = 0;
    for (const raw of saved as OverrideRecord[]) {
      const expiresMs = raw.expiresAt === null ? null : Date.parse(raw.expiresAt);
      if (expiresMs !== null && !(expiresMs > now)) {
        decision(this.opts.log).info({ event: 'override-removed', id: raw.id, kind: raw.kind, key: raw.key, why: 'expired', by: 'restart' }, `override ${raw.kind} ${raw.key} expired while stopped`);
        continue;
      }
      const target = this.targets.get(raw.kind);
      const parsed = target?.parse({ target: raw.target, value: raw.value }, this.opts.config());
      if (target === undefined || !parsed || !parsed.ok) {
        this.drop(raw, target === undefined ? `unknown kind "${raw.kind}"` : parsed && !parsed.ok ? parsed.issues.join('; ') : 'invalid');
        continue;
      }
      target.apply(parsed.spec);
      this.live.set(raw.id, { record: { ...raw, key: parsed.key }, spec: parsed.spec, target, expiresMs });
      restored++;
    }
    if (restored > 0 || saved.length > 0) decision(this.opts.log).info({ event: 'overrides-restored', file: this.file.path, restored, saved: saved.length }, `${restored} of ${saved.length} overrides restored from ${this.file.path}`);
    this.changed();
  }

  /**
   * After a reload's config is applied (which wrote configured values everywhere):
   * re-apply each override that still fits, drop the ones whose target conflicts.
   */
  reconcile(prev: Config, next: Config, generation: number): void {
    let kept = 0;
    let droppedNow = 0;
    for (const l of [...this.live.values()]) {
      const why = l.target.conflict(l.spec, prev, next);
      const parsed = why === null ? l.target.parse({ target: l.record.target, value: l.record.value }, next) : null;
      if (why !== null || parsed === null || !parsed.ok) {
        this.live.delete(l.record.id);
        this.drop(l.record, why ?? (parsed !== null && !parsed.ok ? parsed.issues.join('; ') : 'no longer valid'), generation);
        droppedNow++;
        continue;
      }
      l.spec = parsed.spec;
      l.target.apply(parsed.spec);
      kept++;
    }
    this.lastReload = { generation, kept, dropped: droppedNow };
    if (kept > 0 || droppedNow > 0) decision(this.opts.log).info({ event: 'overrides-kept', generation, kept, dropped: droppedNow }, `reload: ${kept} overrides kept, ${droppedNow} dropped`);
    if (droppedNow > 0) this.changed();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  status(): unknown {
    return {
      active: this.list(),
      dropped: [...this.dropped],
      lastReload: this.lastReload,
      stateFile: this.file === null ? null : { path: this.file.path, writes: this.file.writes, error: this.persistError },
    };
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(this.kinds.map((k) => [k, 0]));
    for (const l of this.live.values()) out[l.record.kind] = (out[l.record.kind] ?? 0) + 1;
    return out;
  }

  private drop(record: OverrideRecord, why: string, generation?: number): void {
    this.dropped.push({ override: record, at: new Date().toISOString(), why });
    if (this.dropped.length > DROPPED_KEPT) this.dropped.shift();
    decision(this.opts.log).warn({ event: 'override-dropped', id: record.id, kind: record.kind, key: record.key, why, ...(generation === undefined ? {} : { generation }) }, `override ${record.kind} ${record.key} dropped: ${why}`);
  }

  /** Persist and re-arm the expiry timer after any change. */
  private changed(): void {
    this.persist();
    this.arm();
  }

  private persist(): void {
    if (this.file === null) return;
    try {
      this.file.write(SECTION, this.list());
      this.persistError = null;
    } catch (e) {
      // The override still holds in memory; /status and the log say it would not survive a restart.
      this.persistError = (e as Error).message;
      decision(this.opts.log).error({ event: 'state-file-write-failed', file: this.file.path, error: this.persistError }, `state file ${this.file.path} not written: ${this.persistError}`);
    }
  }

  private arm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    let next = Infinity;
    for (const l of this.live.values()) if (l.expiresMs !== null && l.expiresMs < next) next = l.expiresMs;
    if (next === Infinity) return;
    // setTimeout takes at most 2^31-1 ms; a longer wait re-arms when it fires.
    this.timer = setTimeout(() => this.expire(), Math.min(Math.max(0, next - Date.now()), 0x7fffffff));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = null;
    const now = Date.now();
    const due = [...this.live.values()].filter((l) => l.expiresMs !== null && l.expiresMs <= now);
    for (const l of due) this.remove(l.record.id, 'timer', 'expired');
    if (due.length === 0) this.arm();
  }
}

/** Decision-feed subject fields (upstream, route, endpoint) a target's spec carries. */
function subject(spec: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof spec !== 'object' || spec === null) return out;
  for (const k of ['upstream', 'route', 'endpoint'] as const) {
    const v = (spec as Record<string, unknown>)[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}
