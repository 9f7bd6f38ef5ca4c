// The primary's state file (`state.file`): what must survive a restart but is not
// config (overrides, rollout progress). One JSON document of named sections; each
// owner writes only its own section and the others are kept as read. Written to a
// temporary file in the same directory, fsynced, then renamed over the old one, so a
// crash mid-write leaves the previous document whole, never a torn one.
//
// The document is read once, on the first read() or write(): an owner that writes
// before another has read must not drop the sections it has not seen.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StateFileRead {
  readonly sections: Record<string, unknown>;
  /** why the file could not be used (it is then treated as empty); null when read or absent */
  readonly problem: string | null;
}

export class StateFile {
  private loaded: StateFileRead | null = null;
  private sections: Record<string, unknown> = {};
  /** writes so far, for /status */
  writes = 0;
  lastError: string | null = null;

  constructor(readonly path: string) {}

  /** The document as it was at start (read once; later calls answer the same). */
  read(): StateFileRead {
    if (this.loaded === null) {
      this.loaded = this.load();
      this.sections = { ...this.loaded.sections };
    }
    return this.loaded;
  }

  private load(): StateFileRead {
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
      return { sections: doc as Record<string, unknown>, problem: null };
    } catch (e) {
      return { sections: {}, problem: `not valid JSON: ${(e as Error).message}` };
    }
  }

  /** Replaces one section and writes the whole document; throws when the file cannot be written. */
  write(section: string, value: unknown): void {
    this.read();
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
