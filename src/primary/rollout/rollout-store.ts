// Rollout progress on disk: one small JSON file (rolloutState.file) of each rollout's
// state, written whole to a temporary file and renamed over the old one after every
// change, so a crash leaves the previous or the next state, never half of one.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PHASES, type RolloutState } from './rollout-controller.js';

const FORMAT = 1;

export class RolloutStore {
  constructor(readonly file: string | null) {}

  /** Saved states by rollout name; a missing file is an empty one, an unreadable one is reported and ignored. */
  load(onError: (message: string) => void): Map<string, RolloutState> {
    const out = new Map<string, RolloutState>();
    if (this.file === null) return out;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') onError(`cannot read ${this.file}: ${(err as Error).message}`);
      return out;
    }
    try {
      const doc = JSON.parse(text) as { format?: unknown; rollouts?: Record<string, RolloutState> };
      if (doc.format !== FORMAT || typeof doc.rollouts !== 'object' || doc.rollouts === null) throw new Error(`not a format ${FORMAT} rollout state file`);
      for (const [name, s] of Object.entries(doc.rollouts)) {
        if (!PHASES.includes(s.phase) || typeof s.weight !== 'number' || typeof s.step !== 'number') continue;
        out.set(name, { phase: s.phase, step: s.step, weight: s.weight, failures: s.failures ?? 0, checks: Array.isArray(s.checks) ? s.checks : [], reason: s.reason ?? null, updatedAt: s.updatedAt ?? new Date().toISOString() });
      }
    } catch (err) {
      onError(`${this.file}: ${(err as Error).message}`);
    }
    return out;
  }

  save(states: ReadonlyMap<string, RolloutState>): void {
    if (this.file === null) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify({ format: FORMAT, savedAt: new Date().toISOString(), rollouts: Object.fromEntries(states) }, null, 1));
    renameSync(tmp, this.file);
  }
}
