// Cluster-wide rate limits: the primary's side of `scope: cluster` (src/policies/rate-limit.ts).
//
// Each key's GCRA bucket lives in Redis (src/fleet/redis-gcra.ts); this instance holds
// a lease of tokens per hot key in shared memory (src/shm/lease-table.ts) that workers
// spend without waiting. Every `redis.syncInterval` the primary looks at each key's
// use since the last look (admitted + refused for want of a lease: its demand here),
// and once a key's lease is down to its low-water mark (what is spent while a refill
// is on its way) asks Redis for a batch: `lease.ahead` of the rate it plans for (its
// demand, or at the fleet's limit its share of the limit), never fewer than
// `lease.min` tokens (src/fleet/lease-sizing.ts). In the same call it charges what
// workers admitted on credit and returns what an idle key no longer needs (or the
// surplus of one whose demand fell). When Redis has fewer than half a batch it
// reserves the whole batch for when it conforms: workers refuse the key until then
// (a 429 without a round trip) and the batch arrives without another command, so
// instances at the limit take turns one batch per command. A lease that runs dry with
// no such answer (the refill was late) admits on credit at this instance's share of
// the rate, `bridgeBurst` at once; the credit is charged at the next exchange.
//
// Accuracy, per key over any interval t, with N instances sharing it (redis.instances = N):
//   admitted ≤ rate × t + burst + N × bridgeBurst + rate × L
// with L how late exchanges run (syncInterval + Redis RTT + event-loop delay): credit, at
// rate / N per instance, is taken only while an answer is late and is the only thing
// Redis has not counted yet (a reserved batch is spent only once it conforms);
// and, while every instance's demand is above its share,
//   admitted ≥ rate × t + burst − N × (batch + low)
// the tokens held outside Redis (accuracyBound in lease-sizing.ts; GET /status shows it
// per policy).
//
// While Redis is unreachable (connection closed, a command unanswered after
// `commandTimeout`) every cluster policy row switches to `redis.onFailure`: `allow`
// admits, `deny` refuses with 503, `local` enforces rate / instances per instance.
// Leases and reservations are dropped (they cannot be returned, and spending them later
// would exceed the limit), uncharged credit is forgotten. Each transition is a decision
// event, a metric and part of GET /status; a probe every syncInterval brings leases back.
// ioredis is loaded when a config first has cluster-scoped policies: a gateway without them never loads it.
import type { Redis, RedisOptions } from 'ioredis';
import { readFileSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { decision } from '../primary/decisions/decision-log.js';
import type { Logger } from '../primary/logger.js';
import type { PolicyMeta } from '../primary/limiter-writer.js';
import { ClusterMode, clusterModeNames } from '../shm/layout.js';
import { LeaseTable } from '../shm/lease-table.js';
import type { SharedState } from '../shm/shared-state.js';
import { accuracyBound, planLease, surplusTokens, type LeaseParams } from './lease-sizing.js';
import { GCRA_SCRIPT, GCRA_SHA1, gcraReply, type GcraReply } from './redis-gcra.js';
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
  /** Redis' last answer could not grant the batch at once: the key is at the fleet's limit */
  limited: boolean;
  /** tokens Redis reserved for this instance, added to the lease when they conform */
  reserved: number;
  reservation: NodeJS.Timeout | null;
  /** requests (admitted or refused) taken from the lease words when the key was first seen, for its first look */
  carried: number;
}

/** What each exchange came to: tokens at once, a reservation, nothing yet (wait), or only settling credit and returns. */
type ExchangeOutcome = 'grant' | 'reserve' | 'wait' | 'settle';

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
  /** tokens reserved by Redis for this instance, not yet valid */
  readonly reservedTokens: number;
  /** Redis round trip of an exchange, smoothed (ms) */
  readonly roundTripMs: number;
  readonly exchanges: Readonly<Record<ExchangeOutcome, number>>;
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
    /** at the limit: the batch each instance asks for, and the most tokens the fleet holds outside Redis (it admits at least rate × t + burst − that) */
    readonly lease: { readonly batch: number; readonly low: number; readonly fleetOutstanding: number };
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
  private stopped = false;
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
  private readonly exchanges: Record<ExchangeOutcome, number> = { grant: 0, reserve: 0, wait: 0, settle: 0 };
  /** Redis round trip of an exchange, smoothed: part of how long a refill takes */
  private rttMs = 1;

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
        this.expired += this.leases.drainTokens(slot) + this.dropReservation(k);
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
    this.stopped = true;
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
    const key = this.clientKey;
    import('ioredis').then(
      ({ Redis }) => {
        // a reload or stop while the module loaded: that config's client is not wanted any more
        if (this.clientKey !== key || this.stopped || this.client !== null) return;
        this.attachClient(new Redis(cfg.url, redisOptions(cfg)));
      },
      (err: Error) => {
        this.lastError = err.message;
      },
    );
  }

  private attachClient(client: Redis): void {
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
      for (const [slot, k] of this.keys) {
        this.expired += this.leases.drainTokens(slot) + this.dropReservation(k);
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
      // A key forgotten when it went idle keeps its tag until another key takes the slot:
      // it comes back only with new use, or it would be given a lease nobody asked for.
      const u = this.leases.takeUsage(slot);
      if (u.used + u.refused + u.debt === 0 && this.leases.tokens(slot) <= 0) return;
      // First look: the key's use so far happened within about one interval (not in the
      // 0 ms since this line), or its first demand would read a thousand times too high.
      this.keys.set(slot, { slot, hi, lo, row: r, redisKey: r.prefix + (hi & 0xffff).toString(16).padStart(4, '0') + (lo >>> 0).toString(16).padStart(8, '0'), rate: 0, lastLookMs: now - cfg.syncInterval, lastUsedMs: now, debt: u.debt, nextAskMs: 0, inFlight: false, limited: false, reserved: 0, reservation: null, carried: u.used + u.refused });
    });
    const alpha = 0.25;
    for (const k of this.keys.values()) {
      if (!this.leases.tagIs(k.slot, k.hi, k.lo)) {
        // Taken over by another key, which only happens to a slot with no lease, use or
        // credit; the new key must not inherit the old one's refusal.
        this.expired += this.dropReservation(k);
        this.keys.delete(k.slot);
        this.leases.setDenyUntil(k.slot, 0);
        continue;
      }
      const { used, debt, refused } = this.leases.takeUsage(k.slot);
      const requests = used + refused + k.carried;
      k.carried = 0;
      const dt = Math.max(1, now - k.lastLookMs);
      // A busy primary ticks late: size leases for the interval it really achieves.
      const interval = Math.max(cfg.syncInterval, dt);
      k.lastLookMs = now;
      const seen = (requests * 1000) / dt;
      k.rate = k.rate === 0 ? seen : k.rate * (1 - alpha) + alpha * seen;
      // Idle means no requests at all: a key refused while it waits for tokens is busy, and
      // returning the tokens that then arrive would strand them in Redis.
      if (requests > 0) k.lastUsedMs = now;
      k.debt += debt;
      if (k.inFlight) continue;
      if (now - k.lastUsedMs >= cfg.lease.idle) {
        // A reservation goes back with the lease: nobody here will spend it.
        const back = this.leases.drainTokens(k.slot) + this.dropReservation(k);
        if (back > 0 || k.debt > 0) this.exchange(k, 0, 0, back, 0);
        else this.forget(k);
        continue;
      }
      // One reservation at a time: the next is asked for once it is in the lease and spent down.
      if (k.reserved > 0) {
        if (k.debt > 0) this.exchange(k, 0, 0, 0, 0);
        continue;
      }
      const plan = planLease(this.params(k.row, cfg), { demand: k.rate, limited: k.limited, refillMs: interval + this.rttMs });
      const tokens = this.leases.tokens(k.slot);
      if (tokens <= plan.low && now >= k.nextAskMs) {
        this.exchange(k, plan.batch, plan.min, 0, plan.horizonMs * 1000);
        continue;
      }
      const surplus = surplusTokens(tokens, plan, cfg.lease.min);
      if (surplus > 0) {
        // Drained and topped up again rather than taken in part: a worker that finds the
        // lease empty in between is admitted on credit, which is charged, never lost.
        const all = this.leases.drainTokens(k.slot);
        const keep = Math.min(all, plan.batch + plan.low);
        if (keep > 0) this.leases.addTokens(k.slot, keep);
        this.exchange(k, 0, 0, all - keep, 0);
      } else if (k.debt > 0) this.exchange(k, 0, 0, 0, 0);
    }
  }

  private params(r: ClusterRow, cfg: RedisConfig): LeaseParams {
    return { rate: r.rate, burst: r.burst, instances: cfg.instances, aheadMs: cfg.lease.ahead, minTokens: cfg.lease.min, maxTokens: cfg.lease.maxTokens };
  }

  /** Cancels a key's reservation; the tokens it held (to return or expire). */
  private dropReservation(k: KeyState): number {
    if (k.reservation !== null) clearTimeout(k.reservation);
    k.reservation = null;
    const n = k.reserved;
    k.reserved = 0;
    return n;
  }

  /** An idle key: its state goes, and so does any refusal Redis asked for (it would outlive every answer). */
  private forget(k: KeyState): void {
    this.keys.delete(k.slot);
    if (this.leases.tagIs(k.slot, k.hi, k.lo)) this.leases.setDenyUntil(k.slot, 0);
  }

  private live(k: KeyState): boolean {
    return this.keys.get(k.slot) === k && this.leases.tagIs(k.slot, k.hi, k.lo);
  }

  /**
   * One EVALSHA for one key: return `back`, charge its credit, ask for `want` (granted at
   * once only if ≥ `min` are available, else reserved up to `horizonUs` ahead).
   */
  private exchange(k: KeyState, want: number, min: number, back: number, horizonUs: number): void {
    const c = this.client;
    if (c === null) return;
    k.inFlight = true;
    const debt = k.debt;
    k.debt = 0;
    const args = [k.redisKey, String(k.row.tUs), String(k.row.tauUs), String(want), String(min), String(debt), String(back), String(Math.ceil(horizonUs))];
    const sent = performance.now();
    this.evalsha(c, args).then(
      (reply) => {
        k.inFlight = false;
        this.rttMs = this.rttMs * 0.8 + 0.2 * (performance.now() - sent);
        this.charged += debt;
        this.returned += back;
        this.answered(k, want, reply);
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

  private answered(k: KeyState, want: number, reply: GcraReply): void {
    const { granted, waitUs, validUs } = reply;
    const live = this.live(k);
    if (want > 0) k.limited = granted < want || validUs > 0;
    if (granted > 0) {
      this.granted += granted;
      k.nextAskMs = 0;
      if (validUs > 0) {
        this.exchanges.reserve++;
        if (!live) {
          this.expired += granted;
          return;
        }
        // Reserved: refused here until the batch conforms (also the Retry-After), then
        // the whole batch at once. A late timer is covered by the workers' grace.
        k.reserved = granted;
        this.leases.setDenyUntil(k.slot, Number(process.hrtime.bigint()) + validUs * 1000);
        k.reservation = setTimeout(() => this.deliver(k), Math.ceil(validUs / 1000));
        k.reservation.unref();
        return;
      }
      this.exchanges.grant++;
      if (live) {
        this.leases.setDenyUntil(k.slot, 0);
        // XXX: the slot could change hands between the check above and this add (a
        // takeover needs an empty lease, so only a key that just went idle); the new
        // key would get a few tokens once. Not worth a lock on every request.
        this.leases.addTokens(k.slot, granted);
      } else this.expired += granted;
      return;
    }
    if (want > 0) {
      // Not even a reservation (the bucket is booked further ahead than the horizon):
      // workers refuse the key until our next answer, asked for when it would be within.
      this.exchanges.wait++;
      if (live) this.leases.setDenyUntil(k.slot, Number(process.hrtime.bigint()) + waitUs * 1000);
      k.nextAskMs = Date.now() + Math.ceil(waitUs / 1000);
      return;
    }
    this.exchanges.settle++;
    if (this.keys.get(k.slot) === k && k.debt === 0 && k.reserved === 0 && this.leases.tokens(k.slot) === 0 && Date.now() - k.lastUsedMs >= (this.cfg?.lease.idle ?? 0)) this.forget(k);
  }

  /** A reservation's time has come: its batch goes into the lease. */
  private deliver(k: KeyState): void {
    k.reservation = null;
    const n = k.reserved;
    k.reserved = 0;
    if (n === 0) return;
    if (!this.live(k)) {
      // XXX: workers only keep a slot with tokens, use or credit; one whose key waits on a
      // reservation and got no request for a whole sync interval can be taken over when
      // its probe run is full. The batch is then lost to the fleet (counted expired) rather
      // than a reservation flag on the hot path's takeover check.
      this.expired += n;
      return;
    }
    this.leases.addTokens(k.slot, n);
    this.leases.setDenyUntil(k.slot, 0);
  }

  private async evalsha(c: Redis, args: string[]): Promise<GcraReply> {
    try {
      this.commands.evalsha!++;
      return gcraReply(await c.evalsha(GCRA_SHA1, 1, ...args));
    } catch (err) {
      if (!isNoScript(err)) throw err;
      // Redis restarted (or flushed scripts) under a connection that reconnected: load it again.
      this.scriptReloads++;
      this.commands['script-load']!++;
      await c.script('LOAD', GCRA_SCRIPT);
      this.commands.evalsha!++;
      return gcraReply(await c.evalsha(GCRA_SHA1, 1, ...args));
    }
  }

  status(): ClusterLimiterStatus {
    let leased = 0;
    let reserved = 0;
    for (const k of this.keys.values()) {
      leased += Math.max(0, this.leases.tokens(k.slot));
      reserved += k.reserved;
    }
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
      reservedTokens: reserved,
      roundTripMs: Math.round(this.rttMs * 10) / 10,
      exchanges: { ...this.exchanges },
      commands: { ...this.commands },
      errors: this.errors,
      scriptReloads: this.scriptReloads,
      tokens: { granted: this.granted, returned: this.returned, expired: this.expired, charged: this.charged },
      policies: [...this.rows.values()].map((r) => {
        const b = cfg === null ? null : accuracyBound(this.params(r, cfg), cfg.syncInterval + this.rttMs);
        return { route: r.route, name: r.name, row: r.row, rate: r.rate, burst: r.burst, mode: clusterModeNames[this.leases.mode(r.row)] ?? 'off', lease: { batch: b?.batch ?? 0, low: b?.low ?? 0, fleetOutstanding: b?.fleet ?? 0 }, ...this.leases.counters(r.row) };
      }),
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
      name: 'tidegate_cluster_lease_exchanges_total',
      help: 'Lease exchanges with Redis by what they came to: grant (tokens at once), reserve (a batch valid once it conforms), wait (nothing: booked too far ahead), settle (only credit charged or tokens returned).',
      labelNames: ['outcome'],
      registers: reg,
      collect() {
        this.reset();
        for (const [outcome, n] of Object.entries(self.exchanges)) this.inc({ outcome }, n);
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
