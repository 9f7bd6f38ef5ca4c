// The primary's writer of the access policies' run-time tables: ip-access lists
// changed at run time, api-key tables (files watched and re-read), and JWT key sets
// (src/primary/access/jwks-source.ts). Each table goes to every worker as one `policy-data`
// message (src/policies/policy-data.ts); nothing here is on the request path.
import { unwatchFile, watchFile } from 'node:fs';
import type { Config } from '../../config/schema.js';
import { readApiKeyFile } from '../../config/api-key-file.js';
import { apiKeyDataKey, type ApiKeyConfig } from '../../policies/api-key.js';
import { ipAccessKey, type IpAccessConfig, type IpAccessLists } from '../../policies/ip-access.js';
import { jwksDataKey, type JwtConfig } from '../../policies/jwt.js';
import { JwksSource } from './jwks-source.js';
import type { Logger } from '../logger.js';
import { decision } from '../decisions/decision-log.js';

/** How often a key file is checked for changes (fs.watchFile: polling survives editors that rename). */
const KEY_FILE_POLL_MS = 500;

export interface IpPolicyInfo {
  readonly name: string;
  readonly routes: readonly string[];
  readonly configured: IpAccessLists;
}

interface KeyFile {
  readonly file: string;
  loadedAt: number;
  keys: number;
  consumers: number;
  lastError: string | null;
  readonly listener: () => void;
}

export interface AccessControlOptions {
  /** sends a table to every worker (Supervisor.setPolicyData) */
  readonly send: (key: string, value: unknown) => void;
  readonly log: Logger;
}

/** Every ip-access policy of a config by name (policies sharing a name share one run-time list). */
export function ipPolicies(cfg: Config): Map<string, IpPolicyInfo> {
  const out = new Map<string, { routes: string[]; configured: IpAccessLists }>();
  cfg.routes.forEach((r, i) => {
    const route = r.name ?? `route-${i}`;
    for (const p of r.policies) {
      if (p.name !== 'ip-access') continue;
      const c = p.config as IpAccessConfig;
      const name = c.name ?? route;
      const cur = out.get(name);
      if (cur) cur.routes.push(route);
      else out.set(name, { routes: [route], configured: { allow: c.allow, deny: c.deny } });
    }
  });
  return new Map([...out].map(([name, v]) => [name, { name, ...v }]));
}

export class AccessControl {
  private ip = new Map<string, IpPolicyInfo>();
  /** run-time lists in force, by ip-access policy name */
  private readonly ipOverrides = new Map<string, IpAccessLists & { since: number }>();
  private readonly keyFiles = new Map<string, KeyFile>();
  /** JWT key sets by worker data key (one per file or URL) */
  private readonly jwks = new Map<string, JwksSource>();
  /** first loads of the key sets started by the last applyConfig */
  private firstLoads: Promise<void>[] = [];

  constructor(private readonly opts: AccessControlOptions) {}

  /** Start and reload: tables for the policies of `cfg`. Run-time ip lists of names still configured stay. */
  applyConfig(cfg: Config): void {
    this.ip = ipPolicies(cfg);
    for (const name of [...this.ipOverrides.keys()]) {
      if (this.ip.has(name)) continue;
      this.ipOverrides.delete(name);
      this.opts.send(ipAccessKey(name), undefined);
    }
    const files = new Set<string>();
    for (const r of cfg.routes) for (const p of r.policies) if (p.name === 'api-key') files.add((p.config as ApiKeyConfig).file);
    for (const [file, kf] of this.keyFiles) {
      if (files.has(file)) continue;
      unwatchFile(file, kf.listener);
      this.keyFiles.delete(file);
      this.opts.send(apiKeyDataKey(file), undefined);
    }
    for (const file of files) {
      const known = this.keyFiles.get(file);
      if (known) {
        this.loadKeys(known); // a reload re-reads the file too
        continue;
      }
      const kf: KeyFile = { file, loadedAt: 0, keys: 0, consumers: 0, lastError: null, listener: () => this.loadKeys(kf) };
      this.keyFiles.set(file, kf);
      this.loadKeys(kf);
      watchFile(file, { interval: KEY_FILE_POLL_MS, persistent: false }, kf.listener);
    }
    this.applyJwks(cfg);
  }

  private applyJwks(cfg: Config): void {
    const wanted = new Map<string, JwtConfig['jwks']>();
    for (const r of cfg.routes) for (const p of r.policies) if (p.name === 'jwt') wanted.set(jwksDataKey(p.config as JwtConfig), (p.config as JwtConfig).jwks);
    for (const [key, src] of this.jwks) {
      if (wanted.has(key) && JSON.stringify(wanted.get(key)) === JSON.stringify(src.cfg)) continue;
      src.stop();
      this.jwks.delete(key);
      if (!wanted.has(key)) this.opts.send(key, undefined);
    }
    this.firstLoads = [];
    for (const [key, jwks] of wanted) {
      if (this.jwks.has(key)) continue;
      const src = new JwksSource(jwks, {
        loaded: (source, keys, skipped) => {
          this.opts.send(key, keys);
          decision(this.opts.log).info({ event: 'jwks-loaded', source, keys: keys.length, kids: keys.map((k) => k.kid ?? null), skipped }, `JWT key set loaded: ${keys.length} keys from ${source}`);
        },
        failed: (source, error) => decision(this.opts.log).error({ event: 'jwks-failed', source, error }, `JWT key set not loaded from ${source}; the set in force stays`),
      });
      this.jwks.set(key, src);
      this.firstLoads.push(src.start());
    }
  }

  /** Resolves when the key sets of the last applyConfig have each been loaded or failed once. */
  async loaded(): Promise<void> {
    await Promise.all(this.firstLoads);
  }

  private loadKeys(kf: KeyFile): void {
    const parsed = readApiKeyFile(kf.file);
    if ('issues' in parsed) {
      kf.lastError = parsed.issues.join('; ');
      decision(this.opts.log).error({ event: 'api-keys-rejected', file: kf.file, issues: parsed.issues, keptKeys: kf.keys }, 'api-key file rejected; the keys loaded before stay');
      return;
    }
    kf.lastError = null;
    kf.loadedAt = Date.now();
    kf.keys = parsed.table.size;
    kf.consumers = parsed.consumers;
    this.opts.send(apiKeyDataKey(kf.file), parsed.table);
    decision(this.opts.log).info({ event: 'api-keys-loaded', file: kf.file, keys: kf.keys, consumers: kf.consumers }, `api-key file loaded: ${kf.keys} keys`);
  }

  ipPolicy(name: string): IpPolicyInfo | undefined {
    return this.ip.get(name);
  }

  /** Replaces an ip-access policy's lists on every worker until cleared. */
  setIpLists(name: string, lists: IpAccessLists): void {
    if (!this.ip.has(name)) throw new RangeError(`no ip-access policy "${name}"`);
    const value: IpAccessLists = { allow: [...lists.allow], deny: [...lists.deny] };
    this.ipOverrides.set(name, { ...value, since: Date.now() });
    this.opts.send(ipAccessKey(name), value);
    decision(this.opts.log).info({ event: 'ip-access-changed', policy: name, allow: value.allow.length, deny: value.deny.length }, `ip-access ${name}: run-time lists in force`);
  }

  /** Puts the configured lists back; false when none were set. */
  clearIpLists(name: string): boolean {
    if (!this.ipOverrides.delete(name)) return false;
    this.opts.send(ipAccessKey(name), undefined);
    decision(this.opts.log).info({ event: 'ip-access-restored', policy: name }, `ip-access ${name}: configured lists restored`);
    return true;
  }

  /** The lists in force for a policy: run-time ones, or the configured ones. */
  effective(name: string): (IpAccessLists & { source: 'run-time' | 'config' }) | undefined {
    const p = this.ip.get(name);
    if (!p) return undefined;
    const o = this.ipOverrides.get(name);
    return o ? { allow: o.allow, deny: o.deny, source: 'run-time' } : { ...p.configured, source: 'config' };
  }

  status(): unknown {
    return {
      ipAccess: [...this.ip.values()].map((p) => {
        const o = this.ipOverrides.get(p.name);
        const e = this.effective(p.name)!;
        return { name: p.name, routes: p.routes, source: e.source, allow: e.allow, deny: e.deny, ...(o ? { since: new Date(o.since).toISOString(), configured: p.configured } : {}) };
      }),
      apiKeyFiles: [...this.keyFiles.values()].map((k) => ({ file: k.file, keys: k.keys, consumers: k.consumers, loadedAt: k.loadedAt > 0 ? new Date(k.loadedAt).toISOString() : null, lastError: k.lastError })),
      jwks: [...this.jwks.values()].map((j) => j.status()),
    };
  }

  stop(): void {
    for (const kf of this.keyFiles.values()) unwatchFile(kf.file, kf.listener);
    this.keyFiles.clear();
    for (const j of this.jwks.values()) j.stop();
    this.jwks.clear();
  }
}
