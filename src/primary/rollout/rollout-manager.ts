// Runs the configured rollouts: one timer per rollout that, while it progresses, takes
// both sides' windows every interval, checks them (canary-analysis.ts), steps the state
// machine (rollout-controller.ts), writes the canary weight through the SplitWriter,
// logs each decision, posts the optional webhook, and saves its section of the state
// file (`state.file`, beside the overrides). State saved by an earlier run is taken up
// again at start: a progressing rollout goes on from its step with a fresh interval.
//
// A split override on the route wins over the rollout (see split-target.ts): it pauses
// a progressing rollout, and start, resume and promote are refused while it holds.
import type { Config } from '../../config/schema.js';
import type { RolloutConfig } from '../../config/schema-rollout.js';
import type { DecisionEvent } from '../../controllers/decision.js';
import { WebhookNotifier } from '../../metrics/webhook.js';
import { CODE_CLASSES } from '../../metrics/snapshot.js';
import { escapeLabel } from '../../metrics/prometheus.js';
import type { Logger } from '../logger.js';
import { decision } from '../decisions/decision-log.js';
import { analyse } from './canary-analysis.js';
import { act, initialState, MOVING_ACTIONS, onCheck, onOverride, PHASES, type Action, type Outcome, type RolloutState } from './rollout-controller.js';
import { RolloutStore } from './rollout-store.js';
import type { SideStats } from './side-stats.js';
import type { SplitWriter } from './split-writer.js';
import type { StateFile } from '../state-file.js';

export interface RolloutEvent {
  readonly type: 'rollout';
  readonly event: string;
  readonly rollout: string;
  readonly route: string;
  readonly phase: string;
  readonly step: number;
  readonly weight: number;
  readonly reason: string | null;
  readonly at: string;
}

export interface RolloutView extends RolloutState {
  readonly name: string;
  readonly route: string;
  readonly stable: string;
  readonly canary: string;
  readonly steps: readonly number[];
  readonly intervalMs: number;
}

interface Running {
  cfg: RolloutConfig;
  state: RolloutState;
  timer: NodeJS.Timeout | null;
  webhook: WebhookNotifier<RolloutEvent> | null;
}

export class RolloutManager {
  private readonly rollouts = new Map<string, Running>();
  private readonly store: RolloutStore;
  /** states read from the state file at start, taken up as each rollout is configured */
  private readonly saved: Map<string, RolloutState>;
  private readonly verdicts = new Map<string, { pass: number; fail: number; inconclusive: number }>();
  private readonly webhookOutcomes = { ok: 0, failed: 0 };
  private stopped = false;

  constructor(
    private readonly splits: SplitWriter,
    private readonly stats: SideStats,
    private readonly log: Logger,
    file: StateFile | null,
  ) {
    this.store = new RolloutStore(file);
    const path = file?.path ?? null;
    this.saved = this.store.load((message) => this.log.error({ event: 'rollout-state-unreadable', file: path, error: message }, 'rollout state ignored'));
    if (this.saved.size > 0) this.log.info({ event: 'rollout-state-loaded', file: path, rollouts: [...this.saved.keys()] }, `rollout state loaded for ${this.saved.size} rollouts`);
    splits.onOverride = (route) => this.overridden(route);
  }

  /** Start and every reload, after the SplitWriter took the config. */
  applyConfig(cfg: Config): void {
    for (const [name, r] of this.rollouts) {
      const now = cfg.rollouts[name];
      if (now !== undefined && now.route === r.cfg.route) continue;
      // The weights it set go with it (the route's configured ones, or another rollout's, stand).
      if (r.state.phase !== 'pending') this.splits.clearRollout(r.cfg.route);
      if (now !== undefined) continue;
      this.disarm(r);
      r.webhook?.close();
      this.rollouts.delete(name);
    }
    for (const [name, rc] of Object.entries(cfg.rollouts)) {
      let r = this.rollouts.get(name);
      if (r === undefined) {
        const state = this.saved.get(name) ?? initialState(new Date());
        r = { cfg: rc, state, timer: null, webhook: null };
        this.rollouts.set(name, r);
      } else {
        r.cfg = rc;
      }
      this.configureWebhook(r);
      // A rollout that moved the weights keeps them over a reload or restart; a pending one leaves the configured split alone.
      if (r.state.phase !== 'pending') this.writeWeight(name, r);
      if (r.state.phase === 'progressing') this.arm(name, r);
      else this.disarm(r);
    }
    this.save();
    for (const r of this.rollouts.values()) if (this.splits.overridden(r.cfg.route)) this.overridden(r.cfg.route);
  }

  /** A split override holds `route`: its progressing rollout pauses. */
  private overridden(route: string): void {
    for (const [name, r] of this.rollouts) {
      if (r.cfg.route !== route) continue;
      const out = onOverride(name, r.cfg, r.state, new Date());
      if (out !== null) this.transition(name, r, out.state, out.events);
    }
  }

  private configureWebhook(r: Running): void {
    const w = r.cfg.webhook;
    if (w === undefined) {
      r.webhook?.close();
      r.webhook = null;
      return;
    }
    if (r.webhook !== null) return r.webhook.setConfig(w);
    r.webhook = new WebhookNotifier<RolloutEvent>(w, (ev, outcome) => {
      if (outcome.ok) this.webhookOutcomes.ok++;
      else {
        this.webhookOutcomes.failed++;
        this.log.warn({ event: 'rollout-webhook-failed', rollout: ev.rollout, attempts: outcome.attempts, error: outcome.error }, 'rollout webhook failed');
      }
    });
  }

  private writeWeight(name: string, r: Running): void {
    const sides = this.splits.sides(r.cfg.route);
    if (sides === null) return;
    this.splits.setRollout(
      r.cfg.route,
      sides.map((s) => (s === r.cfg.canary ? r.state.weight : s === r.cfg.stable ? 100 - r.state.weight : 0)),
      name,
    );
    // The next check judges only requests sent under the new weight.
    this.stats.reset(r.cfg.route, sides);
  }

  private arm(name: string, r: Running): void {
    this.disarm(r);
    if (this.stopped) return;
    r.timer = setTimeout(() => this.check(name), r.cfg.interval);
    r.timer.unref();
  }

  private disarm(r: Running): void {
    if (r.timer !== null) clearTimeout(r.timer);
    r.timer = null;
  }

  private check(name: string): void {
    const r = this.rollouts.get(name);
    if (r === undefined) return;
    r.timer = null;
    if (r.state.phase !== 'progressing') return;
    if (this.splits.overridden(r.cfg.route)) return this.overridden(r.cfg.route);
    const stable = this.stats.take(r.cfg.route, r.cfg.stable);
    const canary = this.stats.take(r.cfg.route, r.cfg.canary);
    const numbers = analyse(stable, canary, r.cfg.analysis, this.stats.valueUs);
    const v = this.verdicts.get(name) ?? { pass: 0, fail: 0, inconclusive: 0 };
    v[numbers.verdict]++;
    this.verdicts.set(name, v);
    const out = onCheck(name, r.cfg, r.state, numbers, new Date());
    this.transition(name, r, out.state, out.events);
  }

  private transition(name: string, r: Running, next: RolloutState, events: readonly DecisionEvent[]): void {
    const weightMoved = next.weight !== r.state.weight || next.phase !== r.state.phase;
    r.state = next;
    if (weightMoved) this.writeWeight(name, r);
    for (const e of events) {
      decision(this.log)[e.level]({ event: e.event, ...e.fields }, e.msg);
      r.webhook?.notify({ type: 'rollout', event: e.event, rollout: name, route: r.cfg.route, phase: next.phase, step: next.step, weight: next.weight, reason: next.reason, at: next.updatedAt });
    }
    if (next.phase === 'progressing') this.arm(name, r);
    else this.disarm(r);
    this.save();
  }

  private save(): void {
    const states = new Map([...this.rollouts].map(([n, r]) => [n, r.state]));
    try {
      this.store.save(states);
    } catch (err) {
      this.log.error({ event: 'rollout-state-unwritable', file: this.store.file, error: (err as Error).message }, 'rollout state not saved');
    }
  }

  has(name: string): boolean {
    return this.rollouts.has(name);
  }

  action(name: string, action: Action): Outcome {
    const r = this.rollouts.get(name);
    if (r === undefined) return { ok: false, message: `no rollout ${name}` };
    if (MOVING_ACTIONS.includes(action) && this.splits.overridden(r.cfg.route)) {
      return { ok: false, message: `a split override holds the weights of route "${r.cfg.route}": delete it (GET /v1/overrides, or DELETE /v1/routes/${r.cfg.route}/split) before ${action}` };
    }
    const out = act(name, r.cfg, r.state, action, new Date());
    if (out.ok) this.transition(name, r, out.state, out.events);
    return out;
  }

  view(name: string): RolloutView | null {
    const r = this.rollouts.get(name);
    if (r === undefined) return null;
    return { name, route: r.cfg.route, stable: r.cfg.stable, canary: r.cfg.canary, steps: r.cfg.steps, intervalMs: r.cfg.interval, ...r.state };
  }

  /** /status: each rollout without its check history (GET /v1/rollouts/<name> has it), plus the last check. */
  status(): { persisted: string | null; rollouts: unknown[] } {
    return {
      persisted: this.store.file?.path ?? null,
      rollouts: [...this.rollouts.keys()].map((n) => {
        const { checks, ...v } = this.view(n)!;
        return { ...v, checks: checks.length, lastCheck: checks[checks.length - 1] ?? null };
      }),
    };
  }

  metricsText(): string {
    const lines: string[] = [];
    const family = (name: string, type: 'gauge' | 'counter', help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const l = (labels: Record<string, string>): string => `{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
    const splits = this.splits.status();
    if (splits.length > 0) {
      family('tidegate_split_weight_percent', 'gauge', 'Percent of a split route\'s requests each side gets by weight now (header rules aside), by route and side upstream.');
      for (const s of splits) for (const [up, w] of Object.entries(s.weights)) lines.push(`tidegate_split_weight_percent${l({ route: s.route, upstream: up })} ${w}`);
      family('tidegate_split_requests_total', 'counter', 'Requests finished on a split route, by route, side upstream and status class ("aborted": the client left first).');
      for (const [route, up, counts] of this.stats.entries()) counts.forEach((n, i) => lines.push(`tidegate_split_requests_total${l({ route, upstream: up, code_class: CODE_CLASSES[i]! })} ${n}`));
    }
    if (this.rollouts.size > 0) {
      family('tidegate_rollout_weight', 'gauge', 'The canary\'s percent of its route under each rollout.');
      for (const [name, r] of this.rollouts) lines.push(`tidegate_rollout_weight${l({ rollout: name, route: r.cfg.route, canary: r.cfg.canary })} ${r.state.weight}`);
      family('tidegate_rollout_phase', 'gauge', '1 for the phase each rollout is in, 0 for the others.');
      for (const [name, r] of this.rollouts) for (const p of PHASES) lines.push(`tidegate_rollout_phase${l({ rollout: name, phase: p })} ${r.state.phase === p ? 1 : 0}`);
      family('tidegate_rollout_checks_total', 'counter', 'Canary checks since start, by rollout and verdict.');
      for (const name of this.rollouts.keys()) {
        const v = this.verdicts.get(name) ?? { pass: 0, fail: 0, inconclusive: 0 };
        for (const [verdict, n] of Object.entries(v)) lines.push(`tidegate_rollout_checks_total${l({ rollout: name, verdict })} ${n}`);
      }
      family('tidegate_rollout_webhook_deliveries_total', 'counter', 'Rollout webhook deliveries by outcome (after retries).');
      lines.push(`tidegate_rollout_webhook_deliveries_total${l({ outcome: 'ok' })} ${this.webhookOutcomes.ok}`, `tidegate_rollout_webhook_deliveries_total${l({ outcome: 'failed' })} ${this.webhookOutcomes.failed}`);
    }
    return lines.length > 0 ? `${lines.join('\n')}\n` : '';
  }

  stop(): void {
    this.stopped = true;
    for (const r of this.rollouts.values()) {
      this.disarm(r);
      r.webhook?.close();
    }
  }
}
