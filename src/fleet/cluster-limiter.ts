// Cluster-wide rate limits: the primary's side of `scope: cluster` (src/policies/rate-limit.ts).
//
// Each key's GCRA bucket lives in Redis (src/fleet/redis-gcra.ts); this instance holds
// a lease of tokens per hot key in shared memory (src/shm/lease-table.ts) that workers
// spend without waiting. Every `redis.syncInterval` the primary looks at each key's
// use since the last look and, for a key whose lease is low, asks Redis for a batch
// sized from the key's observed rate on this instance (`lease.ahead` of it), in the
// same call charging what workers admitted on credit and returning what an idle key
// no longer needs. Batches are sized from the key's demand here (admitted + refused for
// want of a lease). When Redis has fewer than half a batch it grants nothing and answers
// how long until it will have them: workers refuse the key until the next answer (a 429
// without a round trip) and the next request for tokens waits as long, so instances at the limit
// take turns in batches instead of a token per command. A lease that runs dry with no
// such answer (the refill was late) admits on credit at this instance's share of the
// rate, `bridgeBurst` at once; the credit is charged at the next exchange.
//
// Accuracy, per key over any interval t, with N instances sharing it (redis.instances = N):
//   admitted ≤ rate × t + burst + N × bridgeBurst + rate × L
// with L how late exchanges run (syncInterval + Redis RTT + event-loop delay): credit, at
// rate / N per instance, is taken only while an answer is late and is the only thing
// Redis has not counted yet;
// and, while every instance's demand is above its share, admitted ≥ rate × t + burst
// − the tokens leased and not yet spent (at most rate × lease.ahead + N: leases are
// sized from each instance's share of the admitted rate).
//
// While Redis is unreachable (connection closed, a command unanswered after
// `commandTimeout`) every cluster policy row switches to `redis.onFailure`: `allow`
// admits, `deny` refuses with 503, `local` enforces rate / instances per instance.
// Leases are dropped (they cannot be returned, and spending them later would exceed
// the limit), uncharged credit is forgotten. Each transition is a decision event, a
// metric and part of GET /status; a probe every syncInterval brings leases back.
import { Redis, type RedisOptions } from 'ioredis';
import { readFileSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { decision } from '../primary/decisions/decision-log.js';
import type { Logger } from '../primary/logger.js';
import type { PolicyMeta } from '../primary/limiter-writer.js';
import { ClusterMode, clusterModeNames } from '../shm/layout.js';
import { LeaseTable } from '../shm/lease-table.js';
import type { SharedState } from '../shm/shared-state.js';
import { GCRA_SCRIPT, GCRA_SHA1 } from './redis-gcra.js';
import type { RedisConfig } from '../config/schema-redis.js';

interface ClusterRow {
  readonly row: number;
  readonly route: string;
  readonly name: string;
  /** tokens per second, for the whole fleet */
  readonly rate: number;
  readonly burst: number;
  /** key prefix of this policy's buckets */
  readonly prefix: string;
  /** GCRA emission interval and tolerance in µs, as the script takes them */
  readonly tUs: number;
  readonly tauUs: number;
}

interface KeyState {
  readonly slot: number;
  readonly hi: number;
  readonly lo: number;
  readonly row: ClusterRow;
  readonly redisKey: string;
  /** requests per second for this key on this instance, admitted or refused for want of a lease (EWMA over sync ticks) */
  rate: number;
  lastLookMs: number;
  lastUsedMs: number;
  /** requests admitted on credit, not yet charged */
  debt: number;
  /** no new lease before (Date.now ms): Redis said when it will have tokens */
  nextAskMs: number;
  inFlight: boolean;
  /** Redis' last answer granted less than asked: the key is at the fleet's limit */
  limited: boolean;
}

export interface ClusterLimiterStatus {
  readonly configured: boolean;
  readonly url: string | null;
  readonly reachable: boolean;
  /** how cluster policies admit now: lease (Redis reachable) or the onFailure mode */
  readonly mode: string;
  readonly onFailure: string | null;
  readonly instances: number;
  readonly since: string;
  readonly transitions: number;
  readonly lastError: string | null;
  readonly hotKeys: number;
  readonly leasedTokens: number;
  readonly commands: Readonly<Record<string, number>>;
  readonly errors: number;
  readonly scriptReloads: number;
  readonly tokens: { readonly granted: number; readonly returned: number; readonly expired: number; readonly charged: number };
  readonly policies: readonly {
    readonly route: string;
    readonly name: string;
    readonly row: number;
    readonly rate: number;
    readonly burst: number;
    readonly mode: string;
    readonly leased: number;
    readonly bridged: number;
    readonly local: number;
    readonly failOpen: number;
    readonly failClosed: number;
  }[];
}

/** Why an EVALSHA failed: NOSCRIPT means Redis lost the script (restart, SCRIPT FLUSH). */
function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** A Redis key part from a policy's route and name that no route name can break out of. */
function keyPart(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function redisOptions(c: RedisConfig): RedisOptions {
  const tls = c.url.startsWith('rediss://') || c.tls !== undefined;
  return {
    ...(c.username !== undefined ? { username: c.username } : {}),
    ...(c.password !== undefined ? { password: c.password } : {}),
    ...(tls
      ? {
          tls: {
            ...(c.tls?.ca !== undefined ? { ca: readFileSync(c.tls.ca) } : {}),
            ...(c.tls?.cert !== undefined ? { cert: readFileSync(c.tls.cert) } : {}),
            ...(c.tls?.key !== undefined ? { key: readFileSync(c.tls.key) } : {}),
            ...(c.tls?.serverName !== undefined ? { servername: c.tls.serverName } : {}),
            rejectUnauthorized: c.tls?.rejectUnauthorized ?? true,
          },
        }
      : {}),
    connectTimeout: c.connectTimeout,
    commandTimeout: c.commandTimeout,
    // Fail fast: a command while disconnected is an error at once (we fall back), never queued.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Reconnect soon after a restart; the probe then brings leases back.
    retryStrategy: (times: number) => Math.min(50 * times, 500),
    enableAutoPipelining: true,
    lazyConnect: true,
  };
}

export class ClusterLimiter {
  private readonly leases: LeaseTable;
  private cfg: RedisConfig | null = null;
  private client: Redis | null = null;
  private clientKey = '';
  private rows = new Map<number, ClusterRow>();
  private rowSet = new Set<number>();
  private readonly keys = new Map<number, KeyState>();
  private timer: NodeJS.Timeout | null = null;
  private reachable = false;
  private probing = false;
  private since = new Date();
  private transitions = 0;
  private lastError: string | null = null;
  /** the first "unreachable" is logged once the connection had its chance (connectTimeout) */
  private announcedDown = false;
  private startedAt = Date.now();
  private readonly commands: Record<string, number> = { evalsha: 0, 'script-load': 0 };
  private errors = 0;
  private scriptReloads = 0;
  private granted = 0;
  private returned = 0;
  private expired = 0;
  private charged = 0;

  constructor(
    shm: SharedState,
    private readonly log: Logger,
  ) {
    this.leases = new LeaseTable(shm);
  }

  /** Start and every reload: which rows are cluster policies, and the Redis to use. */
  apply(config: Config, policies: readonly PolicyMeta[]): void {
    const cfg = config.redis ?? null;
    const prefix = cfg?.keyPrefix ?? '';
    const next = new Map<number, ClusterRow>();
    for (const p of policies) {
      if (p.config.scope !== 'cluster') continue;
      const rate = p.config.rate.perSecond;
      const tUs = 1e6 / rate;
      next.set(p.row, { row: p.row, route: p.route, name: p.name, rate, burst: p.config.burst, prefix: `${prefix}${keyPart(p.route)}/${keyPart(p.name)}:`, tUs, tauUs: tUs * p.config.burst });
    }
    // Rows no longer cluster policies go back to the plain table; their leases lapse.
    for (const row of this.rowSet) if (!next.has(row)) this.leases.setMode(row, ClusterMode.Off);
    for (const [slot, k] of this.keys) {
      const r = next.get(k.row.row);
      if (r === undefined || r.rate !== k.row.rate || r.burst !== k.row.burst || r.prefix !== k.row.prefix) {
        this.expired += this.leases.drainTokens(slot);
        this.leases.takeUsage(slot);
        this.leases.setDenyUntil(slot, 0);
        this.keys.delete(slot);
      }
    }
    this.cfg = next.size > 0 ? cfg : null;
    this.rows = next;
    this.rowSet = new Set(next.keys());
    const key = this.cfg === null ? '' : JSON.stringify({ url: this.cfg.url, u: this.cfg.username, p: this.cfg.password, tls: this.cfg.tls, ct: this.cfg.connectTimeout, cmd: this.cfg.commandTimeout });
    if (key !== this.clientKey) {
      this.closeClient();
      this.clientKey = key;
      if (this.cfg !== null) this.openClient(this.cfg);
    }
    this.writeModes();
    if (this.timer !== null) this.schedule();
  }

  start(): void {
    this.startedAt = Date.now();
    this.schedule();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.closeClient();
  }

  private schedule(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), this.cfg?.syncInterval ?? 250);
    this.timer.unref();
  }

  private openClient(cfg: RedisConfig): void {
    const client = new Redis(cfg.url, redisOptions(cfg));
    this.client = client;
    client.on('ready', () => {
      if (this.client === client) void this.probe();
    });
    client.on('close', () => {
      if (this.client === client) this.setReachable(false, 'connection closed');
    });
    // ioredis reports every failed reconnect here; the transition is logged once, the message kept.
    client.on('error', (err: Error) => {
      if (this.client === client) this.lastError = err.message;
    });
    client.connect().catch((err: Error) => {
      if (this.client === client) this.lastError = err.message;
    });
  }

  private closeClient(): void {
    const c = this.client;
    this.client = null;
    if (c !== null) c.disconnect(false);
    if (this.reachable) this.setReachable(false, 'redis section changed or removed');
  }

  /** Loads the script (it also proves Redis answers); success makes Redis reachable. */
  private async probe(): Promise<void> {
    const c = this.client;
    if (c === null || this.probing) return;
    this.probing = true;
    try {
      this.commands['script-load']!++;
      const sha = (await c.script('LOAD', GCRA_SCRIPT)) as string;
      if (sha !== GCRA_SHA1) throw new Error(`SCRIPT LOAD answered ${sha}, expected ${GCRA_SHA1}`);
      if (this.client === c) this.setReachable(true, 'script loaded');
    } catch (err) {
      this.errors++;
      this.lastError = (err as Error).message;
    } finally {
      this.probing = false;
    }
  }

  private failureMode(): ClusterMode {
    const f = this.cfg?.onFailure ?? 'local';
    return f === 'allow' ? ClusterMode.Allow : f === 'deny' ? ClusterMode.Deny : ClusterMode.Local;
  }

  private writeModes(): void {
    const cfg = this.cfg;
    const n = cfg?.instances ?? 1;
    const mode = this.reachable ? ClusterMode.Lease : this.failureMode();
    for (const r of this.rows.values()) {
      // Grace: two sync intervals past a refusal's end without a new answer.
      this.leases.setPolicy(r.row, mode, r.rate / n, Math.max(1, Math.ceil(r.burst / n)), cfg?.bridgeBurst ?? 1, 2 * (cfg?.syncInterval ?? 50) * 1e6);
    }
  }

  private setReachable(up: boolean, reason: string): void {
    if (up === this.reachable) return;
    this.reachable = up;
    this.since = new Date();
    this.transitions++;
    if (!up) {
      // Leases cannot be returned, and spent later they would exceed the limit: expire them.
      for (const [slot] of this.keys) {
        this.expired += this.leases.drainTokens(slot);
        this.leases.takeUsage(slot);
        this.leases.setDenyUntil(slot, 0);
      }
      this.keys.clear();
    }
    this.writeModes();
    const fields = { event: up ? 'redis-reachable' : 'redis-unreachable', mode: up ? 'lease' : clusterModeNames[this.failureMode()]!, onFailure: this.cfg?.onFailure ?? null, reason, error: up ? null : this.lastError, policies: this.rows.size };
    if (up) decision(this.log).info(fields, 'cluster rate limits: Redis reachable, leasing tokens');
    else decision(this.log).warn(fields, `cluster rate limits: Redis unreachable, onFailure ${fields.mode}`);
    this.announcedDown = true;
  }

  private tick(): void {
    const cfg = this.cfg;
    if (cfg === null) return;
    if (!this.reachable) {
      if (!this.announcedDown && Date.now() - this.startedAt > cfg.connectTimeout) {
        // Never reached since start: say so once, with the mode in force.
        this.announcedDown = true;
        this.transitions++;
        decision(this.log).warn({ event: 'redis-unreachable', mode: clusterModeNames[this.failureMode()]!, onFailure: cfg.onFailure, reason: 'not reachable since start', error: this.lastError, policies: this.rows.size }, `cluster rate limits: Redis unreachable, onFailure ${clusterModeNames[this.failureMode()]}`);
      }
      if (this.client?.status === 'ready') void this.probe();
      return;
    }
    const now = Date.now();
    this.leases.scan(this.rowSet, (slot, hi, lo, row) => {
      const k = this.keys.get(slot);
      if (k !== undefined && k.hi === hi && k.lo === lo) return;
      const r = this.rows.get(row)!;
      this.keys.set(slot, { slot, hi, lo, row: r, redisKey: r.prefix + (hi & 0xffff).toString(16).padStart(4, '0') + (lo >>> 0).toString(16).padStart(8, '0'), rate: 0, lastLookMs: now, lastUsedMs: now, debt: 0, nextAskMs: 0, inFlight: false, limited: false });
    });
    const alpha = 0.25;
    for (const k of this.keys.values()) {
      if (!this.leases.tagIs(k.slot, k.hi, k.lo)) {
        // Taken over by another key, which only happens to a slot with no lease, use or
        // credit; the new key must not inherit the old one's refusal.
        this.keys.delete(k.slot);
        this.leases.setDenyUntil(k.slot, 0);
        continue;
      }
      const { used, debt, refused } = this.leases.takeUsage(k.slot);
      const dt = Math.max(1, now - k.lastLookMs);
      // A busy primary ticks late: size leases for the interval it really achieves.
      const interval = Math.max(cfg.syncInterval, dt);
      k.lastLookMs = now;
      const seen = ((used + refused) * 1000) / dt;
      k.rate = k.rate === 0 ? seen : k.rate * (1 - alpha) + alpha * seen;
      // Idle means no requests at all: a key refused while it waits for tokens is busy, and
      // returning the tokens that then arrive would strand them in Redis.
      if (used + refused > 0) k.lastUsedMs = now;
      k.debt += debt;
      if (k.inFlight) continue;
      const tokens = this.leases.tokens(k.slot);
      if (now - k.lastUsedMs >= cfg.lease.idle) {
        const back = this.leases.drainTokens(k.slot);
        if (back > 0 || k.debt > 0) this.exchange(k, 0, 0, back);
        else this.forget(k);
        continue;
      }
      // Never more than the burst (Redis could not grant it) nor, as the least it waits
      // for, more than this instance's share of the burst.
      const r = k.row;
      // Demand above this instance's share of the rate cannot be served from Redis for
      // long: sizing for it would only leave more tokens stranded here.
      const demand = k.limited ? Math.min(k.rate, r.rate / cfg.instances) : k.rate;
      const batch = Math.min(cfg.lease.maxTokens, r.burst, Math.max(1, Math.ceil((demand * Math.max(cfg.lease.ahead, 2 * interval)) / 1000)));
      const min = Math.min(Math.max(1, Math.ceil(batch / 2)), Math.max(1, Math.floor(r.burst / cfg.instances)));
      // Refill while two syncs' worth is still left: the lease must not run dry before the answer.
      const low = Math.ceil((demand * 2 * interval) / 1000);
      const wantNow = tokens <= low && now >= k.nextAskMs;
      if (wantNow) this.exchange(k, Math.max(1, batch - Math.max(0, tokens)), Math.min(min, Math.max(1, batch - Math.max(0, tokens))), 0);
      else if (k.debt > 0) this.exchange(k, 0, 0, 0);
    }
  }

  /** An idle key: its state goes, and so does any refusal Redis asked for (it would outlive every answer). */
  private forget(k: KeyState): void {
    this.keys.delete(k.slot);
    if (this.leases.tagIs(k.slot, k.hi, k.lo)) this.leases.setDenyUntil(k.slot, 0);
  }

  /** One EVALSHA for one key: return `back`, charge its credit, ask for `want` (granted only if ≥ `min`). */
  private exchange(k: KeyState, want: number, min: number, back: number): void {
    const c = this.client;
    if (c === null) return;
    k.inFlight = true;
    const debt = k.debt;
    k.debt = 0;
    const args = [k.redisKey, String(k.row.tUs), String(k.row.tauUs), String(want), String(min), String(debt), String(back)];
    this.evalsha(c, args).then(
      (reply) => {
        k.inFlight = false;
        this.charged += debt;
        this.returned += back;
        const [grant, waitUs] = reply;
        const live = this.keys.get(k.slot) === k && this.leases.tagIs(k.slot, k.hi, k.lo);
        if (want > 0) k.limited = grant < want;
        if (grant > 0) {
          this.granted += grant;
          if (live) {
            this.leases.setDenyUntil(k.slot, 0);
            // XXX: the slot could change hands between the check above and this add (a
            // takeover needs an empty lease, so only a key that just went idle); the new
            // key would get a few tokens once. Not worth a lock on every request.
            this.leases.addTokens(k.slot, grant);
          }
          k.nextAskMs = 0;
        } else if (want > 0) {
          // Too few tokens: workers refuse the key until our next answer, which we ask for
          // when Redis will have `min` (the time is also their Retry-After).
          if (live) this.leases.setDenyUntil(k.slot, Number(process.hrtime.bigint()) + waitUs * 1000);
          k.nextAskMs = Date.now() + Math.ceil(waitUs / 1000);
        }
        if (want === 0 && back > 0 && this.keys.get(k.slot) === k && k.debt === 0 && this.leases.tokens(k.slot) === 0) this.forget(k);
      },
      (err: Error) => {
        k.inFlight = false;
        k.debt += debt;
        this.errors++;
        this.lastError = err.message;
        this.expired += back;
        this.setReachable(false, `command failed: ${err.message}`);
      },
    );
  }

  private async evalsha(c: Redis, args: string[]): Promise<[number, number, number]> {
    try {
      this.commands.evalsha!++;
      return (await c.evalsha(GCRA_SHA1, 1, ...args)) as [number, number, number];
    } catch (err) {
      if (!isNoScript(err)) throw err;
      // Redis restarted (or flushed scripts) under a connection that reconnected: load it again.
      this.scriptReloads++;
      this.commands['script-load']!++;
      await c.script('LOAD', GCRA_SCRIPT);
      this.commands.evalsha!++;
      return (await c.evalsha(GCRA_SHA1, 1, ...args)) as [number, number, number];
    }
  }

  status(): ClusterLimiterStatus {
    let leased = 0;
    for (const k of this.keys.values()) leased += Math.max(0, this.leases.tokens(k.slot));
    const cfg = this.cfg;
    return {
      configured: cfg !== null,
      url: cfg === null ? null : cfg.url.replace(/\/\/[^@/]*@/, '//***@'),
      reachable: this.reachable,
      mode: cfg === null ? 'off' : this.reachable ? 'lease' : clusterModeNames[this.failureMode()]!,
      onFailure: cfg?.onFailure ?? null,
      instances: cfg?.instances ?? 1,
      since: this.since.toISOString(),
      transitions: this.transitions,
      lastError: this.lastError,
      hotKeys: this.keys.size,
      leasedTokens: leased,
      commands: { ...this.commands },
      errors: this.errors,
      scriptReloads: this.scriptReloads,
      tokens: { granted: this.granted, returned: this.returned, expired: this.expired, charged: this.charged },
      policies: [...this.rows.values()].map((r) => ({ route: r.route, name: r.name, row: r.row, rate: r.rate, burst: r.burst, mode: clusterModeNames[this.leases.mode(r.row)] ?? 'off', ...this.leases.counters(r.row) })),
    };
  }

  /** The cluster-limit metric families, on the gateway's registry. */
  register(registry: Registry): void {
    const reg = [registry];
    const self = this;
    new Gauge({
      name: 'tidegate_redis_up',
      help: 'Whether the Redis of cluster rate limits answers (1) or cluster policies run on redis.onFailure (0); absent without cluster policies.',
      registers: reg,
      collect() {
        this.reset();
        if (self.cfg !== null) this.set(self.reachable ? 1 : 0);
      },
    });
    new Counter({
      name: 'tidegate_redis_commands_total',
      help: 'Commands sent to the Redis of cluster rate limits, by command (evalsha: one lease exchange for one key).',
      labelNames: ['command'],
      registers: reg,
      collect() {
        this.reset();
        for (const [command, n] of Object.entries(self.commands)) this.inc({ command }, n);
      },
    });
    new Counter({
      name: 'tidegate_redis_errors_total',
      help: 'Failed Redis commands of cluster rate limits (each one switches to redis.onFailure until a probe succeeds).',
      registers: reg,
      collect() {
        this.reset();
        this.inc(self.errors);
      },
    });
    new Counter({
      name: 'tidegate_redis_transitions_total',
      help: 'Changes between Redis reachable and unreachable (each is a redis-reachable / redis-unreachable decision).',
      registers: reg,
      collect() {
        this.reset();
        this.inc(self.transitions);
      },
    });
    new Counter({
      name: 'tidegate_cluster_lease_tokens_total',
      help: 'Cluster rate-limit tokens: granted by Redis, returned to it (idle keys), expired (dropped when Redis became unreachable or the policy changed), charged (admitted on credit).',
      labelNames: ['outcome'],
      registers: reg,
      collect() {
        this.reset();
        this.inc({ outcome: 'granted' }, self.granted);
        this.inc({ outcome: 'returned' }, self.returned);
        this.inc({ outcome: 'expired' }, self.expired);
        this.inc({ outcome: 'charged' }, self.charged);
      },
    });
    new Counter({
      name: 'tidegate_cluster_ratelimit_admissions_total',
      help: 'How cluster rate-limit requests were decided: lease, credit (lease empty), local (onFailure local), fail_open (onFailure allow), fail_closed (onFailure deny, refused).',
      labelNames: ['route', 'policy', 'path'],
      registers: reg,
      collect() {
        this.reset();
        for (const r of self.rows.values()) {
          const c = self.leases.counters(r.row);
          const l = { route: r.route, policy: r.name };
          this.inc({ ...l, path: 'lease' }, c.leased);
          this.inc({ ...l, path: 'credit' }, c.bridged);
          this.inc({ ...l, path: 'local' }, c.local);
          this.inc({ ...l, path: 'fail_open' }, c.failOpen);
          this.inc({ ...l, path: 'fail_closed' }, c.failClosed);
        }
      },
    });
    new Gauge({
      name: 'tidegate_cluster_lease_keys',
      help: 'Keys of cluster rate limits this instance holds a lease or usage for.',
      registers: reg,
      collect() {
        this.reset();
        this.set(self.keys.size);
      },
    });
  }
}
