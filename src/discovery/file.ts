// `discovery: { type: file, path: /etc/tidegate/users.yaml }` — an endpoints file that
// another tool (confd, consul-template, a deploy script) rewrites. YAML or JSON:
//   [ "10.0.0.1:8080", { host: 10.0.0.2, port: 8080, weight: 2 } ]   or   { endpoints: [...] }
// A file that is missing, unparsable or empty is a failure: the last good set stays.
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { parseHostPort } from '../units/units.js';
import { durationMs } from '../units/zod-units.js';
import type { DiscoveredEndpoint, DiscoveryProvider, ProviderContext } from './provider.js';

export const fileDiscoverySchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1),
  /** editors and `cp` write a file in several steps: wait this long after the last change */
  debounce: durationMs.default(200),
  /**
   * Re-read at least this often even without a change event: inotify misses changes
   * on some network and overlay filesystems, and a bind-mounted ConfigMap swaps a
   * symlink that a watch on the directory does not always see.
   */
  poll: durationMs.default(30_000),
});
export type FileDiscoveryConfig = z.output<typeof fileDiscoverySchema>;

const entryObjectSchema = z.strictObject({ host: z.string().min(1), port: z.number().int().min(1).max(65535), weight: z.number().int().min(1).max(1_000_000).optional() });

/** Parses an endpoints file's text; throws with every problem listed by position. */
export function parseEndpointsFile(text: string): DiscoveredEndpoint[] {
  const raw: unknown = parse(text);
  // Shapes are told apart by hand: a zod union reports only "Invalid input" at the
  // root, which tells an operator nothing about which entry is wrong.
  let list: unknown;
  let prefix: string;
  if (Array.isArray(raw)) {
    list = raw;
    prefix = '';
  } else if (raw !== null && typeof raw === 'object' && Object.keys(raw).length === 1 && 'endpoints' in raw) {
    list = (raw as { endpoints: unknown }).endpoints;
    prefix = 'endpoints';
  } else {
    throw new Error('(root): expected a list of endpoints or { endpoints: [...] }');
  }
  if (!Array.isArray(list)) throw new Error(`${prefix || '(root)'}: expected a list`);
  const out: DiscoveredEndpoint[] = [];
  const problems: string[] = [];
  list.forEach((entry: unknown, i) => {
    const at = prefix ? `${prefix}.${i}` : String(i);
    if (typeof entry === 'string') {
      const r = parseHostPort(entry);
      if (r.ok) out.push(r.value);
      else problems.push(`${at}: ${r.expected}, got ${JSON.stringify(entry)}`);
      return;
    }
    const r = entryObjectSchema.safeParse(entry);
    if (r.success) out.push(r.data);
    else problems.push(...r.error.issues.map((x) => `${[at, ...x.path].join('.')}: ${x.message}`));
  });
  if (problems.length) throw new Error(problems.join('; '));
  return out;
}

export class FileProvider implements DiscoveryProvider {
  readonly type = 'file';
  private watcher: FSWatcher | null = null;
  private debounceTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private reading: Promise<void> = Promise.resolve();
  private lastText: string | null = null;
  private readonly path: string;

  constructor(private readonly cfg: FileDiscoveryConfig) {
    this.path = resolve(cfg.path);
  }

  start(ctx: ProviderContext): void {
    // Watch the directory, not the file: tools replace a file by rename, which ends a
    // watch on the old inode.
    try {
      const name = basename(this.path);
      this.watcher = watch(dirname(this.path), { persistent: false }, (_ev, file) => {
        if (file === null || file === name || String(file) === name) this.schedule(ctx);
      });
      this.watcher.on('error', (err) => ctx.fail(`watch ${dirname(this.path)}: ${err.message}`));
    } catch (err) {
      ctx.fail(`cannot watch ${dirname(this.path)}: ${(err as Error).message}; polling every ${this.cfg.poll}ms`);
    }
    this.pollTimer = setInterval(() => this.read(ctx, true), this.cfg.poll);
    this.pollTimer.unref();
    this.read(ctx, false);
  }

  private schedule(ctx: ProviderContext): void {
    if (this.stopped) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => this.read(ctx, false), this.cfg.debounce);
    this.debounceTimer.unref();
  }

  /** Reads are chained so two never race and land out of order. */
  private read(ctx: ProviderContext, fromPoll: boolean): void {
    this.reading = this.reading.then(async () => {
      if (this.stopped) return;
      let text: string;
      try {
        text = await readFile(this.path, 'utf8');
      } catch (err) {
        if (!this.stopped) ctx.fail(`cannot read ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return;
      }
      // The poll re-reads an unchanged file every time; it is news only when it changed.
      if (fromPoll && text === this.lastText) return;
      this.lastText = text;
      let eps: DiscoveredEndpoint[];
      try {
        eps = parseEndpointsFile(text);
      } catch (err) {
        if (!this.stopped) ctx.fail(`bad endpoints file ${this.path}: ${(err as Error).message}`);
        return;
      }
      if (this.stopped) return;
      if (eps.length === 0) ctx.fail(`endpoints file ${this.path} lists no endpoints`);
      else ctx.update(eps, `file ${this.path}`);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.reading;
  }
}
