// `discovery: { type: kubernetes, namespace: prod, service: api, port: http }` — the ready
// endpoints of a Service, from its EndpointSlices (discovery.k8s.io/v1): one list, then a
// watch from the list's resourceVersion; a 410 Gone (history compacted) re-lists.
// Credentials are the pod's service account: the token is re-read on every (re)connect
// because kubelet rotates projected tokens.
import { readFile } from 'node:fs/promises';
// undici is loaded with the first list: only a gateway with Kubernetes discovery loads it.
import type { Agent, Dispatcher } from 'undici';
import { z } from 'zod';
import { durationMs } from '../units/zod-units.js';
import { sleep, type DiscoveredEndpoint, type DiscoveryProvider, type ProviderContext } from './provider.js';

export const kubernetesDiscoverySchema = z.strictObject({
  type: z.literal('kubernetes'),
  apiServer: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL like "https://kubernetes.default.svc"' }).default('https://kubernetes.default.svc'),
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'expected a namespace name'),
  service: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'expected a service name'),
  /** which EndpointSlice port: its name, or its number; absent means each slice's first */
  port: z.union([z.string().min(1), z.number().int().min(1).max(65535)]).optional(),
  tokenFile: z.string().min(1).default('/var/run/secrets/kubernetes.io/serviceaccount/token'),
  caFile: z.string().min(1).default('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt'),
  /** wait before re-listing after a failure (the last good set stays in use meanwhile) */
  retry: durationMs.default(5_000),
});
export type KubernetesDiscoveryConfig = z.output<typeof kubernetesDiscoverySchema>;

/** The fields of an EndpointSlice that are used here. */
export interface EndpointSlice {
  metadata?: { name?: string; resourceVersion?: string };
  addressType?: string;
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean | null } }[] | null;
  ports?: { name?: string | null; port?: number | null }[] | null;
}

/** Endpoints of a set of slices: ready (or unknown-readiness) addresses on the chosen port. */
export function endpointsOfSlices(slices: Iterable<EndpointSlice>, port: string | number | undefined): DiscoveredEndpoint[] {
  const out: DiscoveredEndpoint[] = [];
  for (const s of slices) {
    // FQDN slices name hosts, not addresses; the tables hold addresses.
    if (s.addressType !== undefined && s.addressType !== 'IPv4' && s.addressType !== 'IPv6') continue;
    const ports = s.ports ?? [];
    const p = port === undefined ? ports[0] : ports.find((x) => (typeof port === 'number' ? x.port === port : (x.name ?? '') === port));
    const num = p?.port;
    if (typeof num !== 'number') continue;
    for (const e of s.endpoints ?? []) {
      // The API says a nil `ready` is to be read as ready.
      if (e.conditions?.ready === false) continue;
      for (const host of e.addresses ?? []) out.push({ host, port: num });
    }
  }
  return out;
}

class GoneError extends Error {}

/** Events on a watch stream, one JSON object per line. */
interface WatchEvent {
  type?: string;
  object?: EndpointSlice & { code?: number; message?: string };
}

export class KubernetesProvider implements DiscoveryProvider {
  readonly type = 'kubernetes';
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly slices = new Map<string, EndpointSlice>();
  private resourceVersion = '';
  private agent: Agent | null = null;
  private agentCa: string | null = null;
  private readonly base: string;
  private readonly what: string;

  constructor(private readonly cfg: KubernetesDiscoveryConfig) {
    this.base = cfg.apiServer.replace(/\/$/, '');
    this.what = `kubernetes ${cfg.namespace}/${cfg.service}`;
  }

  start(ctx: ProviderContext): void {
    this.loop = this.run(ctx);
  }

  private async run(ctx: ProviderContext): Promise<void> {
    const { signal } = this.abort;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.list(ctx);
          needList = false;
        }
        // A watch ends normally when the server's timeout runs out; resume from the
        // last resourceVersion seen, without re-listing.
        await this.watch(ctx);
        continue;
      } catch (err) {
        if (signal.aborted) return;
        needList = true;
        if (err instanceof GoneError) {
          ctx.log.info({ event: 'discovery-relist', provider: 'kubernetes', upstream: ctx.upstream, reason: err.message }, `${this.what}: re-listing`);
          continue;
        }
        const e = err as Error & { code?: string };
        ctx.fail(`${this.what}: ${e.code ?? 'error'} ${e.message}`);
      }
      await sleep(this.cfg.retry, signal);
    }
  }

  private selector(): string {
    return `labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${this.cfg.service}`)}`;
  }

  private url(): string {
    return `${this.base}/apis/discovery.k8s.io/v1/namespaces/${this.cfg.namespace}/endpointslices?${this.selector()}`;
  }

  /** Token and dispatcher for one (re)connect: the token file is re-read every time. */
  private async connection(): Promise<{ headers: Record<string, string>; dispatcher: Dispatcher | undefined }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = await readFile(this.cfg.tokenFile, 'utf8').then(
      (t) => t.trim(),
      () => '',
    );
    if (token) headers.authorization = `Bearer ${token}`;
    if (!this.base.startsWith('https:')) return { headers, dispatcher: undefined };
    const ca = await readFile(this.cfg.caFile, 'utf8');
    if (!this.agent || ca !== this.agentCa) {
      const old = this.agent;
      const { Agent } = await import('undici');
      this.agent = new Agent({ connect: { ca } });
      this.agentCa = ca;
      old?.close().catch(() => {});
    }
    return { headers, dispatcher: this.agent };
  }

  private publish(ctx: ProviderContext, why: string): void {
    const eps = endpointsOfSlices(this.slices.values(), this.cfg.port);
    if (eps.length === 0) ctx.fail(`${this.what}: no ready endpoints (${why})`);
    else ctx.update(eps, `${this.what} ${why} rv=${this.resourceVersion}`);
  }

  private async list(ctx: ProviderContext): Promise<void> {
    const { headers, dispatcher } = await this.connection();
    const { request } = await import('undici');
    const res = await request(this.url(), { headers, dispatcher, signal: this.abort.signal, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`list: HTTP ${res.statusCode}: ${text.slice(0, 200).trim()}`);
    let body: { metadata?: { resourceVersion?: string }; items?: EndpointSlice[] };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error('list: bad JSON');
    }
    if (!Array.isArray(body.items)) throw new Error('list: no items');
    this.slices.clear();
    for (const s of body.items) if (s.metadata?.name) this.slices.set(s.metadata.name, s);
    this.resourceVersion = body.metadata?.resourceVersion ?? '';
    this.publish(ctx, 'list');
  }

  private async watch(ctx: ProviderContext): Promise<void> {
    const { headers, dispatcher } = await this.connection();
    // The server ends the watch after timeoutSeconds; bodyTimeout catches a dead
    // connection (bookmarks arrive about once a minute).
    const url = `${this.url()}&watch=1&resourceVersion=${encodeURIComponent(this.resourceVersion)}&allowWatchBookmarks=true&timeoutSeconds=300`;
    const { request } = await import('undici');
    const res = await request(url, { headers, dispatcher, signal: this.abort.signal, headersTimeout: 30_000, bodyTimeout: 330_000 });
    if (res.statusCode === 410) {
      await res.body.dump();
      throw new GoneError('watch: HTTP 410 Gone');
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      throw new Error(`watch: HTTP ${res.statusCode}: ${text.slice(0, 200).trim()}`);
    }
    let buf = '';
    res.body.setEncoding('utf8');
    for await (const chunk of res.body as AsyncIterable<string>) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) this.onEvent(ctx, line);
      }
    }
    if (buf.trim()) this.onEvent(ctx, buf.trim());
  }

  private onEvent(ctx: ProviderContext, line: string): void {
    let ev: WatchEvent;
    try {
      ev = JSON.parse(line) as WatchEvent;
    } catch {
      throw new Error('watch: bad JSON event');
    }
    const obj = ev.object;
    if (ev.type === 'ERROR') {
      // A Status object; 410 means our resourceVersion is too old to watch from.
      if (obj?.code === 410) throw new GoneError(`watch: ERROR 410 ${obj.message ?? 'Gone'}`);
      throw new Error(`watch: ERROR ${obj?.code ?? '?'} ${obj?.message ?? ''}`.trim());
    }
    const rv = obj?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (ev.type === 'BOOKMARK') return;
    const name = obj?.metadata?.name;
    if (!obj || !name) return;
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.slices.set(name, obj);
    else if (ev.type === 'DELETED') this.slices.delete(name);
    else return;
    this.publish(ctx, ev.type);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop?.catch(() => {});
    await this.agent?.close().catch(() => {});
  }
}
