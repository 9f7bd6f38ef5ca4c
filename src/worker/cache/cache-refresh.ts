// The background refresh of stale-while-revalidate (RFC 5861 §3): one conditional GET
// per stale entry, taken by whichever request (on any worker) first won the entry's
// refresh permit, detached from that request, which was already answered from the
// cache. It goes through the same balancer, in-flight accounting and guard (breaker,
// concurrency limit) as client requests, and its response fills the cache like a miss.
import type { UpstreamHandler } from '../upstream/upstream-handler.js';
import type { Exchange } from '../exchange.js';
import type { UpstreamSet, Endpoint } from '../upstream-set.js';
import { Admission, type UpstreamGuard } from '../upstream-guard.js';
import { CacheFill, type StaleEntry } from './cache-fill.js';
import { readResponseFields, type ResponseFields } from '../response-fields.js';
import type { RequestFacts, RouteCache } from './route-cache.js';

export function startRefresh(rc: RouteCache, ex: Exchange, key: string, hA: number, hB: number, entry: StaleEntry, facts: RequestFacts, varyNames: string | null, markerId: string): void {
  const headers = ex.headers.slice();
  const fill = new CacheFill(rc, null, key, hA, hB, -1, 0, entry, facts, 'stale', varyNames, markerId, true, ex.head.headers.slice());
  fill.prepareRequest(headers);
  const q = ex.head.query;
  new Refresh(rc, ex.upstream!, fill, entry.record, q.length > 0 ? `${ex.head.path}?${q}` : ex.head.path, ex.route!.route.rewriteHost, ex.route!.route.priority).start(headers);
}

class Refresh implements UpstreamHandler, ResponseFields {
  respHeaders: Buffer[] | null = null;
  respVia: string | null = null;
  total = -1;
  respDate: Buffer | null = null;
  private idx = -1;
  private ep: Endpoint | null = null;
  private startedAt = 0;
  private headed = false;
  private counted: UpstreamGuard | null = null;
  private probe: UpstreamGuard | null = null;

  constructor(
    private readonly rc: RouteCache,
    private readonly up: UpstreamSet,
    private readonly fill: CacheFill,
    private readonly record: number,
    private readonly path: string,
    private readonly rewriteHost: boolean,
    private readonly priority: number,
  ) {}

  start(headers: string[]): void {
    const up = this.up;
    const idx = up.pick(-1, headers);
    const g = up.guard;
    if (idx < 0 || up.full(up.endpoints[idx]!)) return this.giveUp();
    if (g !== null) {
      const a = g.admit(this.priority);
      if (a === Admission.Counted) this.counted = g;
      else if (a === Admission.Probe) this.probe = g;
      else if (a !== Admission.Pass) return this.giveUp();
    }
    const ep = up.endpoints[idx]!;
    this.idx = idx;
    this.ep = ep;
    up.onPicked(idx);
    up.acquire(ep);
    this.startedAt = performance.now();
    if (this.rewriteHost) headers[1] = ep.authority;
    ep.pool.dispatch(this, 'GET', this.path, headers, null);
  }

  private giveUp(): void {
    this.rc.store.endRefresh(this.record);
    this.fill.onFinish();
  }

  onConnect(): void {}

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true;
    this.headed = true;
    this.up.onDone(this.idx, statusCode, performance.now() - this.startedAt);
    if (this.probe !== null) {
      this.probe.words.recordProbe(statusCode >= 500);
      this.probe = null;
    }
    readResponseFields(rawHeaders, this);
    this.fill.onHead(statusCode, rawHeaders, this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.fill.onBody(chunk);
    return true;
  }

  onComplete(): void {
    this.up.release(this.ep!);
    this.fill.onComplete();
    this.done();
  }

  onError(): void {
    this.up.release(this.ep!);
    if (!this.headed) this.up.onDone(this.idx, 0, performance.now() - this.startedAt);
    if (this.probe !== null) {
      this.probe.words.recordProbe(true);
      this.probe = null;
    }
    this.rc.store.endRefresh(this.record);
    this.done();
  }

  private done(): void {
    if (this.counted !== null) {
      this.counted.words.leave();
      this.counted = null;
    }
    this.fill.onFinish();
  }
}
