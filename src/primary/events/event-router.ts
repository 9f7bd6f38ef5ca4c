// External events → overrides. `POST /v1/events` takes an Alertmanager webhook (version
// 4: one event per alert, its labels plus `status`) or a plain `{ event, labels,
// status? }`; each config rule whose `on` labels all equal the event's runs its
// actions, and every action becomes an override (visible, expiring, audited like an
// operator's) that remembers the rule and the alert's fingerprint.
//
// A resolved alert removes what its firing created (by fingerprint); a rule acts on a
// resolution only when its `on` names `status: resolved`. A re-sent firing
// (Alertmanager repeats a group every repeat_interval, and retries deliveries) with the
// same fingerprint and startsAt changes nothing, even after its overrides expired: the
// rule's `for` bounds the reaction to one incident. A plain event has no startsAt: it
// is a duplicate while the overrides it created still hold.
//
// A `purge` action is not an override: it removes entries from the shared cache once,
// when the event fires, and there is nothing to put back, so a resolved event does
// nothing for it. A re-sent firing is caught as a duplicate like any other (same
// fingerprint and startsAt): it does not purge again.
import { createHash } from 'node:crypto';
import type { Config } from '../../config/schema.js';
import type { EventAction } from '../../config/schema-control.js';
import { AdminErrors } from '../../errors.js';
import { ApiError } from '../admin/api-router.js';
import { decision } from '../decisions/decision-log.js';
import type { Logger } from '../logger.js';
import type { OverrideInput, OverrideStore } from '../overrides/store.js';
import type { PurgeRequest } from '../cache/cache-admin.js';

export interface IncomingEvent {
  readonly labels: Readonly<Record<string, string>>;
  readonly status: 'firing' | 'resolved';
  readonly fingerprint: string;
  /** Alertmanager's startsAt; null for a plain event */
  readonly startsAt: string | null;
  readonly summary: string | null;
}

export interface EventOutcome {
  readonly fingerprint: string;
  readonly status: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly applied: { rule: string; overrides: string[] }[];
  readonly duplicates: string[];
  readonly resolved: string[];
  /** the purges a firing ran: the rule, what it named, and how many entries went */
  readonly purged: { rule: string; purge: PurgeRequest; removed: number }[];
  readonly errors: string[];
}

/** Removes what a purge names from the shared cache; the count of entries removed. */
export type CachePurge = (req: PurgeRequest) => number;

/** the firings remembered for duplicate detection */
const SEEN_MAX = 10_000;

export function ruleName(rule: Config['events'][number], index: number): string {
  return rule.name ?? `events[${index}]`;
}

/** An action as the override it becomes; null for a purge, which is not one. */
export function actionOverride(a: EventAction): Pick<OverrideInput, 'kind' | 'target' | 'value'> | null {
  if ('purge' in a) return null;
  if ('override' in a) return a.override;
  if ('scaleRateLimit' in a) return { kind: 'rate-limit', target: { route: a.scaleRateLimit.route, ...(a.scaleRateLimit.policy === undefined ? {} : { policy: a.scaleRateLimit.policy }) }, value: { scale: a.scaleRateLimit.factor } };
  if ('breaker' in a) return { kind: 'breaker', target: { upstream: a.breaker.upstream }, value: a.breaker.state };
  if ('flag' in a) return { kind: 'flag', target: a.flag.name, value: a.flag.value };
  const { upstream, address, ...value } = a.endpoint;
  return { kind: 'endpoint', target: { upstream, endpoint: address }, value };
}

/** Every action of every rule checked against `cfg` by its target, as config issues with paths. */
export function eventRuleIssues(cfg: Config, store: OverrideStore): string[] {
  const out: string[] = [];
  cfg.events.forEach((rule, i) =>
    rule.do.forEach((a, j) => {
      const o = actionOverride(a);
      if (o === null) {
        if ('purge' in a && [a.purge.key, a.purge.prefix, a.purge.tag].filter((v) => v !== undefined).length !== 1) out.push(`events[${i}].do[${j}].purge: exactly one of key, prefix, tag`);
        if (!cfg.routes.some((r) => r.cache !== undefined)) out.push(`events[${i}].do[${j}].purge: no route has \`cache\`, so there is no cache to purge`);
        return;
      }
      for (const issue of store.check(String(o.kind), { target: o.target, value: o.value }, cfg)) out.push(`events[${i}].do[${j}]: ${issue}`);
    }),
  );
  return out;
}

function labelsOf(v: unknown, what: string): Record<string, string> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError(AdminErrors.INVALID, `${what} must be an object of strings`, [`${what}: expected an object of strings`]);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string') throw new ApiError(AdminErrors.INVALID, `${what}.${k} must be a string`, [`${what}.${k}: expected a string`]);
    out[k] = x;
  }
  return out;
}

function digest(labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16);
}

/** The events a request body holds; throws ApiError TG_ERR_ADMIN_INVALID for a shape that is neither. */
export function parseEvents(body: unknown): IncomingEvent[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(AdminErrors.INVALID, 'expected an Alertmanager webhook (version "4") or { event, labels }', ['(body): expected an object']);
  const b = body as Record<string, unknown>;
  if (b.version !== undefined || b.alerts !== undefined) {
    if (b.version !== '4') throw new ApiError(AdminErrors.INVALID, `unsupported Alertmanager webhook version ${JSON.stringify(b.version)} (expected "4")`, ['version: expected "4"']);
    if (!Array.isArray(b.alerts)) throw new ApiError(AdminErrors.INVALID, 'alerts must be an array', ['alerts: expected an array']);
    return b.alerts.map((raw: unknown, i) => {
      const a = (raw ?? {}) as Record<string, unknown>;
      const labels = labelsOf(a.labels, `alerts[${i}].labels`);
      const status = a.status ?? b.status;
      if (status !== 'firing' && status !== 'resolved') throw new ApiError(AdminErrors.INVALID, `alerts[${i}].status must be "firing" or "resolved"`, [`alerts[${i}].status: expected "firing" or "resolved"`]);
      const annotations = labelsOf(a.annotations, `alerts[${i}].annotations`);
      return {
        labels: { ...labels, status },
        status,
        fingerprint: typeof a.fingerprint === 'string' && a.fingerprint.length > 0 ? a.fingerprint : digest(labels),
        startsAt: typeof a.startsAt === 'string' ? a.startsAt : null,
        summary: annotations.summary ?? annotations.description ?? null,
      };
    });
  }
  if (typeof b.event !== 'string' || b.event.length === 0) throw new ApiError(AdminErrors.INVALID, 'expected an Alertmanager webhook (version "4") or { event, labels }', ['event: required, a name']);
  const labels = labelsOf(b.labels, 'labels');
  const status = b.status ?? 'firing';
  if (status !== 'firing' && status !== 'resolved') throw new ApiError(AdminErrors.INVALID, 'status must be "firing" or "resolved"', ['status: expected "firing" or "resolved"']);
  const all = { ...labels, event: b.event };
  return [{ labels: { ...all, status }, status, fingerprint: `event:${digest(all)}`, startsAt: null, summary: null }];
}

export class EventRouter {
  /** `rule\nfingerprint` → startsAt of the firing already acted on */
  private readonly seen = new Map<string, string>();
  private received = 0;
  private unmatched = 0;

  constructor(
    private readonly store: OverrideStore,
    private readonly config: () => Config,
    private readonly log: Logger,
    /** the shared cache's purge; null when no route caches (a purge action is then a config error) */
    private readonly purge: CachePurge | null = null,
  ) {}

  handle(events: readonly IncomingEvent[]): EventOutcome[] {
    const rules = this.config().events;
    return events.map((ev) => {
      this.received++;
      const out: EventOutcome = { fingerprint: ev.fingerprint, status: ev.status, labels: ev.labels, applied: [], duplicates: [], resolved: [], purged: [], errors: [] };
      if (ev.status === 'resolved') {
        // Undo what its firing did, whichever rule that was.
        for (const r of this.store.list()) {
          if (r.origin?.fingerprint !== ev.fingerprint) continue;
          if (this.store.remove(r.id, `event:${r.origin.rule}`, 'resolved')) out.resolved.push(r.id);
        }
        for (const k of [...this.seen.keys()]) if (k.endsWith(`\n${ev.fingerprint}`)) this.seen.delete(k);
      }
      let matched = false;
      rules.forEach((rule, i) => {
        // A rule that names no status acts on firing events only: a resolution undoes
        // (above) and must not then run the same actions again until their `for` ran out.
        if ((rule.on.status ?? 'firing') !== ev.status) return;
        if (!Object.entries(rule.on).every(([k, v]) => ev.labels[k] === v)) return;
        matched = true;
        const name = ruleName(rule, i);
        const seenKey = `${name}\n${ev.fingerprint}`;
        const live = this.store.byOrigin(name, ev.fingerprint);
        if (live.length > 0 || (ev.startsAt !== null && this.seen.get(seenKey) === ev.startsAt)) {
          out.duplicates.push(name);
          return;
        }
        const ids: string[] = [];
        for (const a of rule.do) {
          if ('purge' in a) {
            if (ev.status === 'firing') this.runPurge(name, ev, a.purge, out);
            continue;
          }
          try {
            const o = actionOverride(a)!;
            const rec = this.store.create({ ...o, ...(rule.for === undefined ? {} : { forMs: rule.for }), reason: ev.summary ?? `${ev.labels.alertname ?? ev.labels.event ?? 'event'} ${ev.status}` }, `event:${name}`, 'event', { rule: name, fingerprint: ev.fingerprint });
            ids.push(rec.id);
          } catch (e) {
            out.errors.push(`${name}: ${(e as Error).message}`);
          }
        }
        if (ev.startsAt !== null && ev.status === 'firing') {
          this.seen.set(seenKey, ev.startsAt);
          if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.keys().next().value!);
        }
        out.applied.push({ rule: name, overrides: ids });
      });
      if (!matched && out.resolved.length === 0) this.unmatched++;
      decision(this.log).info(
        { event: 'external-event', fingerprint: ev.fingerprint, status: ev.status, labels: ev.labels, rules: out.applied.map((a) => a.rule), duplicates: out.duplicates, resolved: out.resolved.length, purged: out.purged.reduce((n, p) => n + p.removed, 0), errors: out.errors },
        `event ${ev.labels.alertname ?? ev.labels.event ?? ev.fingerprint} ${ev.status}: ${out.applied.length} rules applied, ${out.duplicates.length} duplicate, ${out.resolved.length} overrides undone`,
      );
      return out;
    });
  }

  private runPurge(rule: string, ev: IncomingEvent, raw: { key?: string | undefined; prefix?: string | undefined; tag?: string | undefined }, out: EventOutcome): void {
    if (this.purge === null) {
      out.errors.push(`${rule}: purge: no route caches, so there is no cache to purge`);
      return;
    }
    // Exactly one is set (the config schema checks it).
    const req: PurgeRequest = raw.key !== undefined ? { key: raw.key } : raw.prefix !== undefined ? { prefix: raw.prefix } : { tag: raw.tag! };
    const t0 = performance.now();
    const removed = this.purge(req);
    const ms = Math.round((performance.now() - t0) * 10) / 10;
    out.purged.push({ rule, purge: req, removed });
    decision(this.log).info({ event: 'cache-purged', ...req, purged: removed, by: `event:${rule}`, fingerprint: ev.fingerprint, ms }, `cache purge by event rule ${rule} removed ${removed} entries`);
  }

  status(): { rules: number; received: number; unmatched: number } {
    return { rules: this.config().events.length, received: this.received, unmatched: this.unmatched };
  }
}
