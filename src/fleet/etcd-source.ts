// Configuration from etcd: `tidegate --config etcd://host:2379/prefix` reads the YAML
// document at key `<prefix>/config`, then watches that key from the revision it read.
// Each change is applied like a file reload (Gateway.reload: validated whole; an invalid
// one is rejected with every error, and the running config stays). The watch survives
// a member restart and compaction the same way: whenever the stream ends, the key is
// read again (whatever changed meanwhile is applied) and watched from that read's
// revision. Every config that was applied is written to a file (the last good config),
// and a start with etcd unreachable runs that file.
//
// Admin API overrides are not written back: they stay on the instance that took them.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseConfigText } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { StartupCodes, StartupError } from '../errors.js';
import { decision } from '../primary/decisions/decision-log.js';
import type { Logger } from '../primary/logger.js';
import { EtcdClient, parseEtcdUrl, type EtcdTarget } from './etcd-client.js';

export function configKey(t: EtcdTarget): string {
  return `${t.prefix}/config`;
}

export interface EtcdSourceStatus {
  readonly url: string;
  readonly key: string;
  readonly connected: boolean;
  /** mod revision of the config in force (0: the last good file, read at start) */
  readonly appliedRevision: number;
  readonly rejectedRevision: number | null;
  readonly watchRestarts: number;
  readonly compactions: number;
  readonly lastGoodPath: string;
}

export class EtcdConfigSource {
  private readonly client: EtcdClient;
  readonly key: string;
  /** the text the running config came from (reload parses it again) */
  private text: string;
  private appliedRevision: number;
  private rejectedRevision: number | null = null;
  private fromRevision: number;
  private connected: boolean;
  private watchRestarts = 0;
  private compactions = 0;
  private readonly abort = new AbortController();
  private stopped = false;
  private queue: Promise<void> = Promise.resolve();

  private constructor(
    readonly url: string,
    target: EtcdTarget,
    private readonly lastGoodPath: string,
    private readonly log: Logger,
    first: { text: string; modRevision: number; revision: number; connected: boolean },
  ) {
    this.client = new EtcdClient(target);
    this.key = configKey(target);
    this.text = first.text;
    this.appliedRevision = first.modRevision;
    this.fromRevision = first.revision + 1;
    this.connected = first.connected;
  }

  /**
   * Reads the config from etcd, or (etcd unreachable, or the key missing or invalid)
   * the last good file. Throws a StartupError when neither gives a valid config.
   */
  static async open(url: string, lastGoodPath: string, log: Logger): Promise<{ source: EtcdConfigSource; config: Config }> {
    const target = parseEtcdUrl(url);
    if (target === null) throw new StartupError(StartupCodes.CONFIG_READ, `--config ${url}: expected etcd://host:port[,host:port…]/prefix`);
    const client = new EtcdClient(target);
    const key = configKey(target);
    let why: string;
    try {
      const v = await client.get(key);
      if (v.value === null) why = `key ${key} does not exist`;
      else {
        try {
          const config = parseConfigText(v.value);
          const source = new EtcdConfigSource(url, target, lastGoodPath, log, { text: v.value, modRevision: v.modRevision, revision: v.revision, connected: true });
          source.saveLastGood();
          log.info({ event: 'etcd-config-read', key, revision: v.modRevision }, `config read from etcd ${key} (revision ${v.modRevision})`);
          return { source, config };
        } catch (err) {
          const e = err as Error & { issues?: readonly string[] };
          decision(log).error({ event: 'config-rejected', source: 'etcd', key, revision: v.modRevision, reason: e.message, issues: e.issues }, 'config in etcd rejected');
          why = `the config at revision ${v.modRevision} is invalid`;
          // The watch starts after it: the next put is applied.
          return EtcdConfigSource.fallback(url, target, lastGoodPath, log, why, { revision: v.revision, connected: true });
        }
      }
      return EtcdConfigSource.fallback(url, target, lastGoodPath, log, why, { revision: v.revision, connected: true });
    } catch (err) {
      if (err instanceof StartupError) throw err;
      why = `etcd unreachable: ${(err as Error).message}`;
      return EtcdConfigSource.fallback(url, target, lastGoodPath, log, why, { revision: 0, connected: false });
    } finally {
      await client.close();
    }
  }

  private static fallback(url: string, target: EtcdTarget, lastGoodPath: string, log: Logger, why: string, at: { revision: number; connected: boolean }): { source: EtcdConfigSource; config: Config } {
    let text: string;
    try {
      text = readFileSync(lastGoodPath, 'utf8');
    } catch {
      throw new StartupError(StartupCodes.CONFIG_READ, `cannot start from ${url}: ${why}, and there is no last good config at ${lastGoodPath}`);
    }
    const config = parseConfigText(text);
    decision(log).warn({ event: 'etcd-fallback', reason: why, lastGood: lastGoodPath }, `config from etcd unavailable (${why}); running the last good config`);
    // Revision 0 stands for "the file": any config in etcd that validates replaces it.
    return { source: new EtcdConfigSource(url, target, lastGoodPath, log, { text, modRevision: 0, revision: at.revision, connected: at.connected }), config };
  }

  /** The config in force, parsed again (Gateway.reload: SIGHUP, POST /reload, a change). */
  load(): Config {
    return parseConfigText(this.text);
  }

  /**
   * Watches until stop(). `apply` is Gateway.reload, called with the new text in
   * place; a rejection puts the previous text back (the running config stays).
   */
  watch(apply: () => Promise<unknown>): void {
    void this.loop(apply);
  }

  private async loop(apply: () => Promise<unknown>): Promise<void> {
    let backoff = 100;
    // Unreachable at start: read first, then watch.
    let needRead = !this.connected;
    while (!this.stopped) {
      if (needRead) {
        try {
          const v = await this.client.get(this.key);
          this.fromRevision = v.revision + 1;
          this.setConnected(true, null);
          backoff = 100;
          if (v.value !== null && v.modRevision > this.appliedRevision && v.modRevision !== this.rejectedRevision) this.change(v.value, v.modRevision, apply);
        } catch (err) {
          this.setConnected(false, (err as Error).message);
          await new Promise((r) => setTimeout(r, backoff).unref());
          backoff = Math.min(backoff * 2, 2000);
          continue;
        }
      }
      needRead = true;
      try {
        await this.client.watch(
          this.key,
          this.fromRevision,
          (e) => {
            if (e.type === 'compacted') {
              this.compactions++;
              this.log.info({ event: 'etcd-watch-compacted', key: this.key, fromRevision: this.fromRevision, compactRevision: e.compactRevision }, 'etcd compacted the watched revision; reading the key again');
              return;
            }
            this.fromRevision = e.modRevision + 1;
            if (e.type === 'delete') {
              decision(this.log).warn({ event: 'etcd-config-deleted', key: this.key, revision: e.modRevision }, `etcd key ${this.key} deleted; the running config stays`);
              return;
            }
            this.change(e.value, e.modRevision, apply);
          },
          this.abort.signal,
        );
      } catch (err) {
        if (this.stopped) break;
        this.setConnected(false, (err as Error).message);
      }
      if (!this.stopped) this.watchRestarts++;
    }
  }

  private setConnected(up: boolean, error: string | null): void {
    if (up === this.connected) return;
    this.connected = up;
    if (up) decision(this.log).info({ event: 'etcd-reachable', key: this.key }, 'etcd reachable again; watching the config');
    else decision(this.log).warn({ event: 'etcd-unreachable', key: this.key, error }, 'etcd unreachable; the running config stays, retrying');
  }

  /** Changes are applied one at a time, in revision order. */
  private change(text: string, revision: number, apply: () => Promise<unknown>): void {
    this.queue = this.queue.then(async () => {
      if (revision <= this.appliedRevision) return;
      const previous = this.text;
      this.text = text;
      this.log.info({ event: 'etcd-config-change', key: this.key, revision }, `config changed in etcd (revision ${revision})`);
      try {
        await apply();
        this.appliedRevision = revision;
        this.rejectedRevision = null;
        this.saveLastGood();
      } catch {
        // Gateway.reload logged every error (config-rejected); the running config stays.
        this.text = previous;
        this.rejectedRevision = revision;
      }
    });
  }

  /** Written whole or not at all (rename): a crash mid-write must not leave half a config. */
  private saveLastGood(): void {
    try {
      mkdirSync(dirname(this.lastGoodPath), { recursive: true });
      const tmp = `${this.lastGoodPath}.${process.pid}.tmp`;
      writeFileSync(tmp, this.text);
      renameSync(tmp, this.lastGoodPath);
    } catch (err) {
      this.log.warn({ event: 'etcd-last-good-write-failed', path: this.lastGoodPath, error: (err as Error).message }, 'could not write the last good config');
    }
  }

  status(): EtcdSourceStatus {
    return { url: this.url, key: this.key, connected: this.connected, appliedRevision: this.appliedRevision, rejectedRevision: this.rejectedRevision, watchRestarts: this.watchRestarts, compactions: this.compactions, lastGoodPath: this.lastGoodPath };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.queue;
    await this.client.close();
  }
}

/** `tidegate config push FILE --to etcd://…`: validates FILE like --check, then writes it. */
export async function pushConfig(file: string, url: string): Promise<{ key: string; revision: number }> {
  const target = parseEtcdUrl(url);
  if (target === null) throw new StartupError(StartupCodes.CONFIG_READ, `--to ${url}: expected etcd://host:port[,host:port…]/prefix`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new StartupError(StartupCodes.CONFIG_READ, `cannot read config file ${file}: ${(err as Error).message}`);
  }
  parseConfigText(text);
  const client = new EtcdClient(target);
  try {
    const key = configKey(target);
    return { key, revision: await client.put(key, text) };
  } finally {
    await client.close();
  }
}
