// Rollout progress in the state file (`state.file`, section `rollouts`): each rollout's
// phase, step, weight, failures and kept checks, rewritten after every change. The
// state file owns the atomic write (temporary file + fsync + rename); this module owns
// the section's shape and reads back only what it can trust.
import type { StateFile } from '../state-file.js';
import { PHASES, type RolloutState } from './rollout-controller.js';

export const ROLLOUTS_SECTION = 'rollouts';
const FORMAT = 1;

export class RolloutStore {
  constructor(readonly file: StateFile | null) {}

  /** Saved states by rollout name; a missing section is an empty one, a malformed one is reported and ignored. */
  load(onError: (message: string) => void): Map<string, RolloutState> {
    const out = new Map<string, RolloutState>();
    if (this.file === null) return out;
    const read = this.file.read();
    // An unreadable file is reported once, by the override store; here it is just empty.
    if (read.problem !== null) return out;
    const doc = read.sections[ROLLOUTS_SECTION] as { format?: unknown; rollouts?: Record<string, RolloutState> } | undefined;
    if (doc === undefined) return out;
    if (typeof doc !== 'object' || doc === null || doc.format !== FORMAT || typeof doc.rollouts !== 'object' || doc.rollouts === null) {
      onError(`${this.file.path}: section "${ROLLOUTS_SECTION}" is not format ${FORMAT}`);
      return out;
    }
    for (const [name, s] of Object.entries(doc.rollouts)) {
      if (typeof s !== 'object' || s === null || !PHASES.includes(s.phase) || typeof s.weight !== 'number' || typeof s.step !== 'number') {
        onError(`${this.file.path}: rollout "${name}" is not a rollout state; it starts pending`);
        continue;
      }
      out.set(name, { phase: s.phase, step: s.step, weight: s.weight, failures: s.failures ?? 0, checks: Array.isArray(s.checks) ? s.checks : [], reason: s.reason ?? null, updatedAt: s.updatedAt ?? new Date().toISOString() });
    }
    return out;
  }

  /** Throws when the file cannot be written. */
  save(states: ReadonlyMap<string, RolloutState>): void {
    if (this.file === null) return;
    this.file.write(ROLLOUTS_SECTION, { format: FORMAT, savedAt: new Date().toISOString(), rollouts: Object.fromEntries(states) });
  }
}
