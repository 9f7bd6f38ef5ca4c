// A pino logger whose records land in an array, for asserting on structured events.
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface CapturedLog {
  readonly log: Logger;
  readonly records: Record<string, unknown>[];
  events(name: string): Record<string, unknown>[];
}

export function captureLog(level = 'debug'): CapturedLog {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  // sync: records are visible as soon as the call that logs them returns
  const log = pino({ level }, stream);
  return { log, records, events: (name) => records.filter((r) => r.event === name) };
}

/** Polls `fn` until it returns a truthy value or `ms` passes. */
export async function waitFor<T>(fn: () => T | undefined | null | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
