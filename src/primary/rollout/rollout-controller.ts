// A rollout's state machine as pure step functions: (config, state, a check's numbers
// or an operator's action) → (new state, decisions). The manager (rollout-manager.ts)
// owns the timers, writes the weight, logs the decisions and persists the state.
//
//   pending ──start──▶ progressing ──check passes──▶ next step … last step → promoted
//                        │  ▲                     failedChecks in a row → rolled-back (0 %)
//                        │  └──resume── paused ◀──pause, too little traffic,
//                        │                         onFailure: pause, or a split override
//   any ──abort──▶ rolled-back (0 %)     any ──promote──▶ promoted (100 %)
//   promoted / rolled-back ──start──▶ progressing from the first step again
import type { DecisionEvent } from '../../controllers/decision.js';
import type { RolloutConfig } from '../../config/schema-rollout.js';
import type { CheckNumbers } from './canary-analysis.js';

export const PHASES = ['pending', 'progressing', 'paused', 'promoted', 'rolled-back'] as const;
export type Phase = (typeof PHASES)[number];
export const ACTIONS = ['start', 'pause', 'resume', 'abort', 'promote'] as const;
export type Action = (typeof ACTIONS)[number];

/** checks kept per rollout (GET /v1/rollouts/<name>, the state file) */
export const KEPT_CHECKS = 50;

export interface Check extends CheckNumbers {
  /** 1, 2, … since the rollout started */
  readonly n: number;
  readonly at: string;
  /** step index (0-based) and canary weight the check judged */
  readonly step: number;
  readonly weight: number;
}

export interface RolloutState {
  readonly phase: Phase;
  /** index into steps; -1 before the first start */
  readonly step: number;
  /** the canary's percent in force */
  readonly weight: number;
  /** failed checks in a row */
  readonly failures: number;
  readonly checks: readonly Check[];
  /** why the last phase change happened */
  readonly reason: string | null;
  readonly updatedAt: string;
}

export type Outcome = { ok: true; state: RolloutState; events: DecisionEvent[] } | { ok: false; message: string };

export function initialState(now: Date): RolloutState {
  return { phase: 'pending', step: -1, weight: 0, failures: 0, checks: [], reason: null, updatedAt: now.toISOString() };
}

function event(name: string, cfg: RolloutConfig, rollout: string, level: 'info' | 'warn', msg: string, s: RolloutState, extra: Record<string, string | number | boolean | null> = {}): DecisionEvent {
  return { event: name, level, msg, fields: { rollout, route: cfg.route, stable: cfg.stable, canary: cfg.canary, phase: s.phase, step: s.step, weight: s.weight, reason: s.reason, ...extra } };
}

/** An operator's action; refused (with why) where it makes no sense in the current phase. */
export function act(rollout: string, cfg: RolloutConfig, s: RolloutState, action: Action, now: Date): Outcome {
  const at = now.toISOString();
  switch (action) {
    case 'start': {
      if (s.phase === 'progressing' || s.phase === 'paused') return { ok: false, message: `rollout ${rollout} is ${s.phase}; abort it first to start again` };
      const next: RolloutState = { phase: 'progressing', step: 0, weight: cfg.steps[0]!, failures: 0, checks: [], reason: 'started by an operator', updatedAt: at };
      return { ok: true, state: next, events: [event('rollout-started', cfg, rollout, 'info', `rollout ${rollout} started: canary ${cfg.canary} at ${next.weight}%`, next)] };
    }
    case 'pause': {
      if (s.phase !== 'progressing') return { ok: false, message: `rollout ${rollout} is ${s.phase}; only a progressing rollout can be paused` };
      const next: RolloutState = { ...s, phase: 'paused', reason: 'paused by an operator', updatedAt: at };
      return { ok: true, state: next, events: [event('rollout-paused', cfg, rollout, 'info', `rollout ${rollout} paused at ${s.weight}%`, next)] };
    }
    case 'resume': {
      if (s.phase !== 'paused') return { ok: false, message: `rollout ${rollout} is ${s.phase}; only a paused rollout can be resumed` };
      const next: RolloutState = { ...s, phase: 'progressing', failures: 0, reason: 'resumed by an operator', updatedAt: at };
      return { ok: true, state: next, events: [event('rollout-resumed', cfg, rollout, 'info', `rollout ${rollout} resumed at ${s.weight}%`, next)] };
    }
    case 'abort': {
      if (s.phase === 'rolled-back') return { ok: false, message: `rollout ${rollout} is already rolled back` };
      const next: RolloutState = { ...s, phase: 'rolled-back', weight: 0, reason: 'aborted by an operator', updatedAt: at };
      return { ok: true, state: next, events: [event('rollout-rolled-back', cfg, rollout, 'warn', `rollout ${rollout} aborted: canary ${cfg.canary} back to 0%`, next)] };
    }
    case 'promote': {
      if (s.phase === 'promoted') return { ok: false, message: `rollout ${rollout} is already promoted` };
      const next: RolloutState = { ...s, phase: 'promoted', step: cfg.steps.length - 1, weight: 100, failures: 0, reason: 'promoted by an operator', updatedAt: at };
      return { ok: true, state: next, events: [event('rollout-promoted', cfg, rollout, 'info', `rollout ${rollout} promoted by an operator: canary ${cfg.canary} at 100%`, next)] };
    }
  }
}

/** The verdict of one interval's check, for a progressing rollout. */
export function onCheck(rollout: string, cfg: RolloutConfig, s: RolloutState, numbers: CheckNumbers, now: Date): { state: RolloutState; events: DecisionEvent[] } {
  const at = now.toISOString();
  const n = (s.checks[s.checks.length - 1]?.n ?? 0) + 1;
  const check: Check = { n, at, step: s.step, weight: s.weight, ...numbers };
  const checks = [...s.checks, check].slice(-KEPT_CHECKS);
  const nums = { check: n, stableRequests: numbers.stable.requests, canaryRequests: numbers.canary.requests, stableErrorRate: numbers.stable.errorRate, canaryErrorRate: numbers.canary.errorRate, latencyP: numbers.latency?.pValue ?? null, medianRatio: numbers.latency?.medianRatio ?? null };
  if (numbers.verdict === 'inconclusive') {
    const next: RolloutState = { ...s, phase: 'paused', checks, reason: numbers.reasons.join('; '), updatedAt: at };
    return { state: next, events: [event('rollout-paused', cfg, rollout, 'warn', `rollout ${rollout} paused at ${s.weight}%: ${next.reason}`, next, nums)] };
  }
  if (numbers.verdict === 'fail') {
    const failures = s.failures + 1;
    const why = numbers.reasons.join('; ');
    if (failures < cfg.analysis.failedChecks) {
      const next: RolloutState = { ...s, failures, checks, updatedAt: at };
      return { state: next, events: [event('rollout-check-failed', cfg, rollout, 'warn', `rollout ${rollout} check ${n} failed (${failures} of ${cfg.analysis.failedChecks}): ${why}`, next, { ...nums, failures })] };
    }
    if (cfg.onFailure === 'pause') {
      const next: RolloutState = { ...s, phase: 'paused', failures, checks, reason: `${failures} failed checks in a row: ${why}`, updatedAt: at };
      return { state: next, events: [event('rollout-paused', cfg, rollout, 'warn', `rollout ${rollout} paused at ${s.weight}% after ${failures} failed checks: ${why}`, next, { ...nums, failures })] };
    }
    const next: RolloutState = { ...s, phase: 'rolled-back', weight: 0, failures, checks, reason: `${failures} failed checks in a row: ${why}`, updatedAt: at };
    return { state: next, events: [event('rollout-rolled-back', cfg, rollout, 'warn', `rollout ${rollout} rolled back: canary ${cfg.canary} to 0% after ${failures} failed checks: ${why}`, next, { ...nums, failures })] };
  }
  const stepIndex = s.step + 1;
  const weight = cfg.steps[stepIndex] ?? 100;
  if (weight >= 100) {
    // At 100 % the stable side gets nothing to compare with: the last check is the one before it.
    const next: RolloutState = { ...s, phase: 'promoted', step: Math.min(stepIndex, cfg.steps.length - 1), weight: 100, failures: 0, checks, reason: `check ${n} passed at ${s.weight}%, the last step before 100%`, updatedAt: at };
    return { state: next, events: [event('rollout-promoted', cfg, rollout, 'info', `rollout ${rollout} promoted: canary ${cfg.canary} at 100%`, next, nums)] };
  }
  const next: RolloutState = { ...s, step: stepIndex, weight, failures: 0, checks, reason: `check ${n} passed at ${s.weight}%`, updatedAt: at };
  return { state: next, events: [event('rollout-step', cfg, rollout, 'info', `rollout ${rollout} step ${stepIndex + 1}/${cfg.steps.length}: canary ${cfg.canary} at ${weight}%`, next, nums)] };
}

/** Actions that would move the weights again; refused while a split override holds them. */
export const MOVING_ACTIONS: readonly Action[] = ['start', 'resume', 'promote'];

/**
 * A split override landed on a progressing rollout's route: the rollout pauses where
 * it is (its checks would judge weights it did not set). Other phases are left alone.
 */
export function onOverride(rollout: string, cfg: RolloutConfig, s: RolloutState, now: Date): { state: RolloutState; events: DecisionEvent[] } | null {
  if (s.phase !== 'progressing') return null;
  const next: RolloutState = { ...s, phase: 'paused', reason: `a split override holds the weights of route "${cfg.route}"`, updatedAt: now.toISOString() };
  return { state: next, events: [event('rollout-paused', cfg, rollout, 'warn', `rollout ${rollout} paused at ${s.weight}%: a split override holds the weights of ${cfg.route}`, next)] };
}
