// The gateway's own load as a shed level, as a pure step function. Level n sheds the n
// lowest priorities on every route (1: low; 2: low and normal; 3: low, normal and high);
// critical is never shed for load. Each tick: the workers' mean event-loop utilisation
// at or above `target` raises the level one step, at or below `release` lowers it one
// step, and between the two it holds. A step needs `holdFor` since the previous
// change: the gap between target and release and the hold are the hysteresis that
// keeps a steady load from moving the level at all.
import { z } from 'zod';
import { durationMs, percent } from '../units/zod-units.js';
import { round, type DecisionEvent } from './decision.js';

export const kMaxShedLevel = 3;

export const sheddingSchema = z
  .strictObject({
    /** worker event-loop utilisation at which one more priority is shed */
    target: percent.default(90),
    /** utilisation at or below which one priority is let back in */
    release: percent.default(70),
    /** least time between two level changes */
    holdFor: durationMs.default(2_000),
    /** the highest level (1–3): how many priorities load may shed */
    maxLevel: z.number().int().min(1).max(kMaxShedLevel).default(kMaxShedLevel),
  })
  .refine((c) => c.release < c.target, { message: 'release must be below target', path: ['release'] });

export type SheddingConfig = z.output<typeof sheddingSchema>;

export interface ShedLevelState {
  readonly level: number;
  /** Date.now() ms of the last change (or the start) */
  readonly since: number;
  readonly changes: number;
}

export function initialShedLevel(now: number): ShedLevelState {
  return { level: 0, since: now, changes: 0 };
}

const shedNames = ['nothing', 'low', 'low and normal', 'low, normal and high'];

/** One tick: `elu` is the workers' mean utilisation (0–1) since the previous tick. */
export function shedLevelStep(cfg: SheddingConfig, s: ShedLevelState, now: number, elu: number): { state: ShedLevelState; event: DecisionEvent | null } {
  if (now - s.since < cfg.holdFor) return { state: s, event: null };
  const pct = elu * 100;
  let level = s.level;
  if (pct >= cfg.target && level < cfg.maxLevel) level++;
  else if (pct <= cfg.release && level > 0) level--;
  if (level === s.level) return { state: s, event: null };
  const up = level > s.level;
  return {
    state: { level, since: now, changes: s.changes + 1 },
    event: {
      event: 'shed-level',
      level: up ? 'warn' : 'info',
      msg: `gateway event-loop utilisation ${round(pct, 1)} % ${up ? '≥' : '≤'} ${up ? cfg.target : cfg.release} %: shed level ${s.level} → ${level} (shedding ${shedNames[level]})`,
      fields: { from: s.level, to: level, eventLoopUtilization: round(elu, 3), target: cfg.target / 100, release: cfg.release / 100, heldMs: now - s.since },
    },
  };
}
