// The primary's state file (`state.file`): what must survive a restart but is not
// config (overrides). One JSON document of named sections; each owner writes only
// its own section and the others are kept as read. Written to a temporary file in the
// same directory, fsynced, then renamed over the old one, so a crash mid-write leaves
// the previous document whole, never a torn one.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StateFileRead {
  readonly sections: Record<string, unknown>;
  /** why the file could not be used (it is then treated as empty); null when read or absent */
  readonly problem: string | null;
}

export class StateFile {
  private sections: Record<string, unknown> = {};
  /** writes so far, for /status */
  writes = 0;
  lastError: string | null = null;

  constructor(readonly path: string) {}

  read(): StateFileRead {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { sections: {}, problem: null };
      return { sections: {}, problem: (e as Error).message };
    }
    try {
      const doc = JSON.parse(text) as unknown;
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { sections: {}, problem: 'not a JSON object' };
      this.sections = doc as Record<string, unknown>;
      return { sections: this.sections, problem: null };
    } catch (e) {
      return { sections: {}, problem: `not valid JSON: ${(e as Error).message}` };
    }
  }

  /** Replaces one section and writes the whole document; throws when the file cannot be written. */
  write(section: string, value: unknown): void {
    this.sections = { ...this.sections, [section]: value };
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, `${JSON.stringify(this.sections, null, 2)}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
      this.writes++;
      this.lastError = null;
    } catch (e) {
      this.lastError = (e as Error).message;
      throw e;
    }
  }
}
