// One upstream as a worker sees it: the shared endpoint table (through a snapshot that
// costs one atomic load per request to keep current), one connection pool per endpoint
// (workers mirror nginx worker processes, each with its own upstream
// connections), and the picker the config names.
//
// Endpoints come from shared memory, not from the config message: the primary's
// EndpointWriter can add or remove endpoints (discovery, health) at any time and a
// worker creates a pool the first time it sees a new address id.
import { H1Pool, PIPELINE_FALLBACK_MS, type PipelineCounters } from './upstream/h1-pool.js';
import type { WorkerUpstream } from '../messages.js';
import type { Balancer } from '../balancers/balancer.js';
import { RoundRobinBalancer } from '../balancers/round-robin.js';
import { WeightedRoundRobinBalancer } from '../balancers/weighted-round-robin.js';
import { LeastRequestBalancer } from '../balancers/least-request.js';
import { PeakEwmaBalancer } from '../balancers/peak-ewma.js';
import { ConsistentHashBalancer } from '../balancers/consistent-hash.js';
import { hash32 } from '../balancers/hash.js';
import { EndpointSnapshot, type EndpointTable } from '../shm/endpoint-table.js';
import { kEndpointAddressField, kUpstreamSeqField } from '../shm/layout.js';
import type { IpAllowList } from '../policies/ip-allow-list.js';
import { UpstreamGuard } from './upstream-guard.js';

export interface Endpoint {
  /** row in the shared table */
  readonly index: number;
  /** the primary's id for this address (unique per upstream, never reused) */
  readonly addressId: number;
  readonly authority: string; // "127.0.0.1:9001", used as Host when a route rewrites it
  readonly pool: H1Pool;
  /** requests dispatched to `pool` and not yet finished (complete or failed): what holds or waits for its connections */
  active: number;
}

export class UpstreamSet {
  readonly name: string;
  /** indexed by table row; a row with no endpoint yet is undefined */
  readonly endpoints: (Endpoint | undefined)[] = [];
  readonly balancer: Balancer;
  readonly retries: number;
  readonly slot: number;
  /**
   * Requests of this set waiting for a connection: Σ over endpoints of
   * max(0, active − pool.connections). With pipelining 1 a request holds its
   * connection from dispatch to the end of the response body, so this is exactly
   * the pools' queues, counted here so the check costs no call into a pool. With
   * pool.pipelining > 1 it also counts requests written behind another response on a
   * connection: they wait too, and maxPending bounds them the same way.
   */
  pending = 0;
  private readonly connections: number;
  private readonly maxPending: number;
  readonly snapshot: EndpointSnapshot;
  /** breaker and concurrency limit; null when neither is configured (nothing is read per request) */
  readonly guard: UpstreamGuard | null;
  private readonly byId = new Map<number, Endpoint>();
  private poolsVersion = -1;
  private readonly hashOn: 'header' | 'cookie' | 'client-ip' | null;
  private readonly hashName: string;
  /** where this set's pools count their pipelining (null with pipelining 1) */
  private readonly pipelineCounters: PipelineCounters | null;

  constructor(
    private readonly cfg: WorkerUpstream,
    private readonly table: EndpointTable,
    private readonly trusted: IpAllowList,
  ) {
    this.name = cfg.name;
    this.retries = cfg.retries;
    this.connections = cfg.pool.connections;
    this.maxPending = cfg.pool.maxPending;
    this.slot = table.findUpstream(cfg.name);
    // The primary writes the tables before it sends a generation, so this is a bug.
    if (this.slot < 0) throw new Error(`upstream "${cfg.name}" is not in the shared endpoint table`);
    this.snapshot = new EndpointSnapshot(table, this.slot);
    this.guard = cfg.guard === null ? null : new UpstreamGuard(cfg.guard, table.shm, this.slot, table.workerSlot);
    this.pipelineCounters = cfg.pool.pipelining > 1 ? new LedgerPipelineCounters(table, this.slot) : null;
    this.syncPools();
    const ctx = { snapshot: this.snapshot, addressOf: (row: number) => this.endpoints[row]?.authority ?? `#${row}` };
    switch (cfg.balancer) {
      case 'weighted-round-robin':
        this.balancer = new WeightedRoundRobinBalancer(this.snapshot);
        break;
      case 'least-request':
        this.balancer = new LeastRequestBalancer(this.snapshot);
        break;
      case 'peak-ewma':
        this.balancer = new PeakEwmaBalancer(this.snapshot);
        break;
      case 'consistent-hash':
        this.balancer = new ConsistentHashBalancer(ctx);
        break;
      default:
        this.balancer = new RoundRobinBalancer(this.snapshot);
    }
    // Only the hashing picker needs a key; without `hash` it hashes the client address
    // (nginx `hash $remote_addr`).
    this.hashOn = cfg.balancer === 'consistent-hash' ? (cfg.hash?.on ?? 'client-ip') : null;
    this.hashName = (cfg.hash?.name ?? '').toLowerCase();
  }

  /**
   * Picks the endpoint row for a request (`headers`: the forwarded name/value list,
   * for hash keys). -1 when none is usable. APISIX calls its picker the same two ways:
   * in the access phase, and again for each retry with the failed endpoint to avoid.
   */
  pick(avoid: number, headers: readonly string[]): number {
    const s = this.snapshot;
    if (s.sync()) this.syncPools();
    const hash = this.hashOn === null ? -1 : this.requestHash(headers);
    let e = this.balancer.pick(avoid, hash);
    if (e >= 0 && this.endpoints[e] === undefined) {
      // A row whose address we could not read consistently yet: any other will do.
      e = -1;
      for (let i = 0; i < s.count; i++) if (this.endpoints[s.candidates[i]!] !== undefined && s.candidates[i] !== avoid) e = s.candidates[i]!;
    }
    if (e < 0) this.table.countNoEndpoint(this.slot);
    return e;
  }

  /** The exchange sends a request to row `idx`: count it in flight everywhere. */
  onPicked(idx: number): void {
    this.table.addInFlight(this.slot, idx, 1);
    this.table.countRequest(this.slot, idx);
    if (this.snapshot.panic) this.table.countPanicPick(this.slot);
  }

  /**
   * Whether a request for `ep` must be refused: all its connections are taken and
   * this set already holds maxPending waiting. One comparison on the common path.
   * XXX: the bound is per config generation (each has its own pools), so for the
   * moments a reload overlaps two, a worker may hold up to twice maxPending.
   */
  full(ep: Endpoint): boolean {
    return ep.active >= this.connections && this.pending >= this.maxPending;
  }

  countOverloaded(): void {
    this.table.countOverloaded(this.slot);
  }

  /** A request goes to `ep`'s pool (after `full` said no). */
  acquire(ep: Endpoint): void {
    if (ep.active >= this.connections) {
      this.pending++;
      this.table.addPending(this.slot, 1);
    }
    ep.active++;
  }

  /** A request `acquire`d for `ep` finished (its onComplete or onError): its connection, or its queue place, is free. */
  release(ep: Endpoint): void {
    ep.active--;
    // One that was waiting now has the connection.
    if (ep.active >= this.connections) {
      this.pending--;
      this.table.addPending(this.slot, -1);
    }
  }

  /**
   * The request to row `idx` ended: `status` 0 when it failed without a response,
   * -1 when we cancelled it (no health judgement); `latencyMs` to response head.
   */
  onDone(idx: number, status: number, latencyMs: number): void {
    this.table.addInFlight(this.slot, idx, -1);
    if (status >= 0) {
      this.table.recordResult(this.slot, idx, status, Math.round(latencyMs * 1000));
      if (this.guard !== null) this.guard.record(status, latencyMs);
    }
  }

  /**
   * A WebSocket handshake to row `idx` succeeded: judged like a response, but the
   * endpoint stays in flight until `release`, so least-request pickers count open
   * relays as HAProxy's leastconn counts connections.
   */
  onHandshake(idx: number, latencyMs: number): void {
    this.table.recordResult(this.slot, idx, 101, Math.round(latencyMs * 1000));
  }

  /** The relay that `onHandshake` kept in flight has closed. */
  releaseRelay(idx: number): void {
    this.table.addInFlight(this.slot, idx, -1);
  }

  get timeouts(): WorkerUpstream['timeouts'] {
    return this.cfg.timeouts;
  }

  /** Lets in-flight requests finish, then closes every connection. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.byId.values()].map((e) => e.pool.close()));
  }

  destroy(): void {
    for (const e of this.byId.values()) void e.pool.destroy().catch(() => {});
  }

  /** See H1Pool.abandon. */
  abandon(): void {
    for (const e of this.byId.values()) e.pool.abandon();
  }

  // ---- internals ----------------------------------------------------------------------

  /** After the snapshot moved: a pool for every new address, close those that left. Rare (control-plane changes). */
  private syncPools(): void {
    const s = this.snapshot;
    if (s.version === this.poolsVersion) return;
    const seen = new Set<number>();
    let complete = true;
    for (let e = 0; e < s.rows; e++) {
      const id = s.addressIds[e]!;
      if (id === 0) {
        this.endpoints[e] = undefined;
        continue;
      }
      seen.add(id);
      let ep = this.byId.get(id);
      if (ep === undefined) {
        const authority = this.readAddress(e, id);
        if (authority === null) {
          complete = false;
          this.endpoints[e] = undefined;
          continue;
        }
        ep = { index: e, addressId: id, authority, pool: this.createPool(authority), active: 0 };
        this.byId.set(id, ep);
      }
      this.endpoints[e] = ep;
    }
    this.endpoints.length = s.rows;
    for (const [id, ep] of this.byId) {
      if (seen.has(id)) continue;
      this.byId.delete(id);
      void ep.pool.close().catch(() => {}); // requests in flight finish first
    }
    // Incomplete: try again at the next request (the primary was mid-write).
    this.poolsVersion = complete ? s.version : -1;
  }

  /** The row's address, if the row still holds `id` and the read was not torn (seqlock). */
  private readAddress(e: number, id: number): string | null {
    const t = this.table;
    const seq = t.upstreamBase(this.slot) + kUpstreamSeqField;
    for (let i = 0; i < 16; i++) {
      const v1 = Atomics.load(t.i32, seq);
      if ((v1 & 1) !== 0) continue;
      const cur = t.rowField(this.slot, e, kEndpointAddressField);
      const a = t.readAddress(this.slot, e);
      if (Atomics.load(t.i32, seq) !== v1) continue;
      return cur === id ? a : null;
    }
    return null;
  }

  private createPool(authority: string): H1Pool {
    const cfg = this.cfg;
    return new H1Pool(authority, {
      connections: cfg.pool.connections,
      keepAliveTimeout: cfg.pool.keepAliveTimeout,
      connectTimeout: cfg.timeouts.connect,
      headersTimeout: cfg.timeouts.response,
      bodyTimeout: cfg.timeouts.read,
      pipelining: cfg.pool.pipelining,
      ...(this.pipelineCounters === null ? {} : { counters: this.pipelineCounters }),
    });
  }

  /** The consistent-hash key's hash, or -1 when the request has none. */
  private requestHash(headers: readonly string[]): number {
    switch (this.hashOn) {
      case 'header': {
        const v = findHeader(headers, this.hashName);
        return v === null ? -1 : hash32(v);
      }
      case 'cookie': {
        const v = findHeader(headers, 'cookie');
        if (v === null) return -1;
        const c = cookieValue(v, this.hashName);
        return c === null ? -1 : hash32(c);
      }
      case 'client-ip': {
        const xff = findLastHeader(headers, 'x-forwarded-for');
        return xff === null ? -1 : hash32(this.clientFromXff(xff));
      }
      default:
        return -1;
    }
  }

  /**
   * The client address from the X-Forwarded-For this gateway appended to (its last hop
   * is the TCP peer): walk left while the hop we got it from is a trusted proxy, as
   * forwarding.ts's clientIp does for policies (nginx realip, recursive).
   */
  private clientFromXff(xff: string): string {
    let end = xff.length;
    let client = '';
    for (;;) {
      const comma = xff.lastIndexOf(',', end - 1);
      const hop = xff.slice(comma + 1, end).trim();
      if (hop.length === 0) return client;
      client = hop;
      if (comma < 0 || !this.trusted.has(hop)) return client;
      end = comma;
    }
  }
}

/** A pool's pipelining figures, into this worker's ledger for the upstream. */
class LedgerPipelineCounters implements PipelineCounters {
  constructor(
    private readonly table: EndpointTable,
    private readonly slot: number,
  ) {}
  pipelined(): void {
    this.table.countPipelined(this.slot);
  }
  batched(heads: number): void {
    this.table.countPipelineBatched(this.slot, heads);
  }
  fallback(anomaly: number): void {
    this.table.countPipelineFallback(this.slot, anomaly, Math.ceil((Date.now() + PIPELINE_FALLBACK_MS) / 1000));
  }
}

export function findHeader(h: readonly string[], name: string): string | null {
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1]!;
  return null;
}

function findLastHeader(h: readonly string[], name: string): string | null {
  for (let i = h.length - 2; i >= 0; i -= 2) if (h[i] === name) return h[i + 1]!;
  return null;
}

export function cookieValue(header: string, name: string): string | null {
  let i = 0;
  while (i < header.length) {
    while (header.charCodeAt(i) === 32) i++;
    const eq = header.indexOf('=', i);
    if (eq < 0) return null;
    let end = header.indexOf(';', eq);
    if (end < 0) end = header.length;
    if (header.slice(i, eq).trim().toLowerCase() === name) return header.slice(eq + 1, end).trim();
    i = end + 1;
  }
  return null;
}
