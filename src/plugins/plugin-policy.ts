// The `plugin` policy: a route runs a loaded plugin among its policies.
//
//   plugins: [./plugins/tenant-header.mjs]
//   routes:
//     - upstream: app
//       policies:
//         - plugin: { name: tenant-header, config: { header: x-tenant } }
//
// The entry's own schema only checks its shape; the plugin's schema validates `config`
// on the primary (src/config/plugin-check.ts), which hands workers the parsed result.
// Here, on the worker, each phase call gets a small view of the request; whatever the
// plugin throws becomes 500 TG_ERR_PLUGIN for that request and nothing more.
import { Errors, type ErrorSpec } from '../errors.js';
import type { SharedDicts } from '../shm/shared-dicts.js';
import {
  LocalResponse,
  type AccessContext,
  type LogPhaseContext,
  type PolicyDefinition,
  type PolicyEnv,
  type PolicyInstance,
  type ResponsePhaseContext,
  type Zod,
} from '../policies/policy.js';
import type { HeaderEditor, PluginAccessContext, PluginEnv, PluginLogContext, PluginPhases, PluginRequest, PluginResponseContext, SharedDictionary } from './plugin-api.js';
import { pluginFailed, pluginLog } from './plugin-errors.js';
import { PLUGIN_NAME_RE } from './plugin-module.js';

export interface PluginEntryConfig {
  readonly name: string;
  /** the plugin's config as its schema parsed it */
  readonly config?: unknown;
}

export function pluginEntrySchema(z: Zod) {
  return z.strictObject({
    name: z.string().regex(PLUGIN_NAME_RE, 'expected a plugin name from `plugins`'),
    config: z.unknown().optional(),
  });
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
/** fields a plugin may not set: framing and connection management are the gateway's */
const RESERVED = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', 'expect']);

function fieldName(name: string): string {
  const n = String(name).toLowerCase();
  if (!TOKEN.test(n)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
  if (RESERVED.has(n)) throw new TypeError(`header ${n} is managed by the gateway and cannot be changed by a plugin`);
  return n;
}

function fieldValue(value: string): string {
  const v = String(value);
  if (BAD_VALUE.test(v)) throw new TypeError('header values must not contain CR, LF or NUL');
  return v;
}

/** name, value string pairs from index `from` on (the forwarded request keeps its Host pair at 0). */
export class PairsEditor implements HeaderEditor {
  constructor(
    private readonly pairs: string[],
    private readonly from: number,
  ) {}

  get(name: string): string | undefined {
    const n = String(name).toLowerCase();
    let out: string | undefined;
    const p = this.pairs;
    for (let i = this.from; i < p.length; i += 2) if (p[i] === n) out = out === undefined ? p[i + 1] : `${out}, ${p[i + 1]}`;
    return out;
  }

  set(name: string, value: string): void {
    const n = fieldName(name);
    const v = fieldValue(value);
    this.drop(n);
    this.pairs.push(n, v);
  }

  add(name: string, value: string): void {
    this.pairs.push(fieldName(name), fieldValue(value));
  }

  remove(name: string): void {
    this.drop(fieldName(name));
  }

  private drop(n: string): void {
    const p = this.pairs;
    for (let i = p.length - 2; i >= this.from; i -= 2) if (p[i] === n) p.splice(i, 2);
  }
}

/** The upstream's response fields (Buffer pairs) plus the string pairs added to the response. */
export class ResponseEditor implements HeaderEditor {
  private readonly extra: PairsEditor;
  constructor(
    private readonly upstream: Buffer[],
    added: string[],
  ) {
    this.extra = new PairsEditor(added, 0);
  }

  get(name: string): string | undefined {
    const n = String(name).toLowerCase();
    let out: string | undefined;
    const u = this.upstream;
    for (let i = 0; i < u.length; i += 2) {
      if (u[i]!.length === n.length && u[i]!.toString('latin1').toLowerCase() === n) {
        const v = u[i + 1]!.toString('latin1');
        out = out === undefined ? v : `${out}, ${v}`;
      }
    }
    const e = this.extra.get(n);
    return e === undefined ? out : out === undefined ? e : `${out}, ${e}`;
  }

  set(name: string, value: string): void {
    this.remove(name);
    this.extra.add(name, value);
  }

  add(name: string, value: string): void {
    this.extra.add(name, value);
  }

  remove(name: string): void {
    const n = fieldName(name);
    const u = this.upstream;
    for (let i = u.length - 2; i >= 0; i -= 2) if (u[i]!.length === n.length && u[i]!.toString('latin1').toLowerCase() === n) u.splice(i, 2);
    this.extra.remove(n);
  }
}

class RequestView implements PluginRequest {
  constructor(protected readonly a: AccessContext) {}
  get method(): string {
    return this.a.method;
  }
  get path(): string {
    return this.a.path;
  }
  get query(): string {
    return this.a.query;
  }
  get host(): string {
    return this.a.host;
  }
  get clientIp(): string {
    return this.a.clientIp;
  }
  get peer(): string {
    return this.a.peer;
  }
  get route(): string {
    return this.a.routeName;
  }
  header(name: string): string | undefined {
    const n = String(name).toLowerCase();
    if (n === 'host') return this.a.host;
    let out: string | undefined;
    const h = this.a.headers;
    for (let i = 2; i < h.length; i += 2) if (h[i] === n) out = out === undefined ? h[i + 1] : `${out}, ${h[i + 1]}`;
    return out;
  }
}

class AccessView extends RequestView implements PluginAccessContext {
  local: LocalResponse | null = null;
  private up: PairsEditor | null = null;
  private down: PairsEditor | null = null;
  get upstreamHeaders(): HeaderEditor {
    return (this.up ??= new PairsEditor(this.a.headers, 2));
  }
  get responseHeaders(): HeaderEditor {
    return (this.down ??= new PairsEditor(this.a.responseHeaders, 0));
  }
  respond(status: number, body = '', headers?: Readonly<Record<string, string>>): void {
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`respond: status must be a whole number 200–599, got ${status}`);
    const pairs: string[] = [];
    let typed = false;
    if (headers !== undefined) {
      for (const [k, v] of Object.entries(headers)) {
        const n = fieldName(k);
        if (n === 'content-type') typed = true;
        pairs.push(n, fieldValue(v));
      }
    }
    const text = String(body);
    if (!typed && text.length > 0) pairs.push('content-type', 'text/plain; charset=utf-8');
    this.local = new LocalResponse(status, text, pairs);
  }
}

class ResponseView extends RequestView implements PluginResponseContext {
  private editor: ResponseEditor | null = null;
  constructor(private readonly r: ResponsePhaseContext) {
    super(r.access);
  }
  get status(): number {
    return this.r.status;
  }
  get responseHeaders(): HeaderEditor {
    return (this.editor ??= new ResponseEditor(this.r.upstreamHeaders, this.a.responseHeaders));
  }
}

class LogView extends RequestView implements PluginLogContext {
  constructor(private readonly l: LogPhaseContext) {
    super(l.access);
  }
  get status(): number {
    return this.l.status;
  }
  get durationMs(): number {
    return this.l.durationMs;
  }
}

/** The environment `create` gets; on the primary (config check) `dicts` is null and shared() hands back a check-only stand-in. */
export function pluginEnv(plugin: string, route: string, dicts: SharedDicts | null, dictNames: readonly string[]): PluginEnv {
  return {
    route,
    shared(name: string): SharedDictionary {
      if (!dictNames.includes(name)) throw new Error(`no shared dict "${name}" (config \`shared\` defines: ${dictNames.join(', ') || 'none'})`);
      const d = dicts?.get(name);
      if (d === undefined) return unavailableDict(name);
      return d;
    },
    log(level, message, fields) {
      pluginLog(plugin, level, message, fields);
    },
  };
}

function unavailableDict(name: string): SharedDictionary {
  const fail = (): never => {
    throw new Error(`shared dict ${name} is not available at config check (only in workers)`);
  };
  return { get: fail, getStale: fail, set: fail, safeSet: fail, add: fail, safeAdd: fail, replace: fail, delete: fail, incr: fail, ttl: fail, expire: fail, getKeys: fail, flushExpired: fail, flushAll: fail, capacity: fail, freeSpace: fail, err: null, forcible: false, flags: 0, stale: false };
}

class PluginPolicy implements PolicyInstance {
  readonly name: string;
  readonly response?: (ctx: ResponsePhaseContext) => ErrorSpec | null;
  readonly log?: (ctx: LogPhaseContext) => void;

  constructor(
    private readonly plugin: string,
    private readonly route: string,
    private readonly phases: PluginPhases,
  ) {
    this.name = `plugin:${plugin}`;
    // Only phases the plugin has: a route's response and log lists stay empty otherwise.
    if (typeof phases.response === 'function') this.response = (ctx) => this.onResponse(ctx);
    if (typeof phases.log === 'function') this.log = (ctx) => this.onLog(ctx);
  }

  access(ctx: AccessContext): ErrorSpec | LocalResponse | null {
    const fn = this.phases.access;
    if (fn === undefined) return null;
    const view = new AccessView(ctx);
    try {
      fn.call(this.phases, view);
    } catch (err) {
      pluginFailed(this.plugin, 'access', this.route, err);
      return Errors.PLUGIN;
    }
    return view.local;
  }

  private onResponse(ctx: ResponsePhaseContext): ErrorSpec | null {
    try {
      this.phases.response!.call(this.phases, new ResponseView(ctx));
    } catch (err) {
      pluginFailed(this.plugin, 'response', this.route, err);
      return Errors.PLUGIN;
    }
    return null;
  }

  private onLog(ctx: LogPhaseContext): void {
    try {
      this.phases.log!.call(this.phases, new LogView(ctx));
    } catch (err) {
      pluginFailed(this.plugin, 'log', this.route, err);
    }
  }
}

export const pluginPolicy: PolicyDefinition = {
  name: 'plugin',
  schema: pluginEntrySchema,
  create(config: unknown, env: PolicyEnv): PolicyInstance {
    const entry = config as PluginEntryConfig;
    const def = env.plugins.get(entry.name);
    if (def === undefined) throw new Error(`plugin ${entry.name} is not loaded`);
    const phases = def.create(entry.config, pluginEnv(entry.name, env.routeName, env.dicts, env.dicts.names()));
    if (typeof phases !== 'object' || phases === null) throw new Error(`plugin ${entry.name}: create returned no phases`);
    return new PluginPolicy(entry.name, env.routeName, phases);
  },
};
