// The few etcd v3 calls the config source needs (range, put, watch), over etcd's own
// JSON gateway (`/v3/kv/range`, `/v3/kv/put`, `/v3/watch`: the gRPC API as JSON, keys
// and values base64) with undici, which the gateway already ships.
//
// Chosen over the `etcd3` npm client: that one pulls in @grpc/grpc-js and protobufjs for
// three calls, and hides what we most need to see: a watch cancelled because its
// revision was compacted, and a stream that ended because the member went away. Here
// both are plain events the source handles (re-read, re-watch).
import { Agent, request } from 'undici';

export interface EtcdTarget {
  /** http(s)://host:port, tried in order */
  readonly endpoints: readonly string[];
  /** the key prefix, with a leading "/" and no trailing one ("" for the root) */
  readonly prefix: string;
}

/** `etcd://host:2379[,host2:2379]/prefix` (or `etcds://` for TLS) → endpoints and prefix. */
export function parseEtcdUrl(url: string): EtcdTarget | null {
  const m = /^(etcds?):\/\/([^/]+)(\/.*)?$/.exec(url);
  if (m === null) return null;
  const scheme = m[1] === 'etcds' ? 'https' : 'http';
  const hosts = m[2]!.split(',').filter((h) => h.length > 0);
  if (hosts.length === 0 || hosts.some((h) => !/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$/.test(h))) return null;
  const prefix = (m[3] ?? '').replace(/\/+$/, '');
  return { endpoints: hosts.map((h) => `${scheme}://${h}`), prefix };
}

export interface EtcdValue {
  /** the value, or null when the key does not exist */
  readonly value: string | null;
  readonly modRevision: number;
  /** the store's revision when it answered: watch from revision + 1 */
  readonly revision: number;
}

export type WatchEvent =
  | { readonly type: 'put'; readonly value: string; readonly modRevision: number }
  | { readonly type: 'delete'; readonly modRevision: number }
  /** the revision we asked for is gone: re-read, then watch from the new revision */
  | { readonly type: 'compacted'; readonly compactRevision: number };

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');

export class EtcdClient {
  private readonly agent = new Agent({ connect: { timeout: 2000 }, keepAliveTimeout: 10_000 });
  private next = 0;

  constructor(readonly target: EtcdTarget) {}

  private async call(path: string, body: unknown): Promise<Record<string, unknown>> {
    let last: Error | null = null;
    const n = this.target.endpoints.length;
    for (let i = 0; i < n; i++) {
      const endpoint = this.target.endpoints[(this.next + i) % n]!;
      try {
        const r = await request(endpoint + path, { method: 'POST', body: JSON.stringify(body), dispatcher: this.agent, headersTimeout: 3000, bodyTimeout: 3000 });
        const json = (await r.body.json()) as Record<string, unknown>;
        if (r.statusCode !== 200) throw new Error(`etcd ${endpoint}${path}: HTTP ${r.statusCode}: ${String(json.message ?? json.error ?? '')}`);
        this.next = (this.next + i) % n;
        return json;
      } catch (err) {
        last = err as Error;
      }
    }
    throw last ?? new Error('no etcd endpoint');
  }

  async get(key: string): Promise<EtcdValue> {
    const r = await this.call('/v3/kv/range', { key: b64(key) });
    const kv = (r.kvs as { value?: string; mod_revision?: string }[] | undefined)?.[0];
    const revision = Number((r.header as { revision?: string } | undefined)?.revision ?? 0);
    return { value: kv ? unb64(kv.value) : null, modRevision: kv ? Number(kv.mod_revision ?? 0) : 0, revision };
  }

  /** Writes `value`; the revision of the write. */
  async put(key: string, value: string): Promise<number> {
    const r = await this.call('/v3/kv/put', { key: b64(key), value: b64(value) });
    return Number((r.header as { revision?: string } | undefined)?.revision ?? 0);
  }

  /**
   * Watches one key from `startRevision`. Resolves when the stream ends (the member
   * went away, or `signal` aborted it); rejects on a connection error. Events arrive
   * in revision order.
   */
  async watch(key: string, startRevision: number, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const endpoint = this.target.endpoints[this.next % this.target.endpoints.length]!;
    const r = await request(endpoint + '/v3/watch', {
      method: 'POST',
      body: JSON.stringify({ create_request: { key: b64(key), start_revision: String(startRevision) } }),
      dispatcher: this.agent,
      headersTimeout: 3000,
      // A watch is quiet for as long as nobody writes.
      bodyTimeout: 0,
      signal,
    });
    if (r.statusCode !== 200) {
      await r.body.dump();
      throw new Error(`etcd watch: HTTP ${r.statusCode}`);
    }
    let buf = '';
    for await (const chunk of r.body) {
      buf += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.length === 0) continue;
        const msg = JSON.parse(line) as { result?: { compact_revision?: string; canceled?: boolean; events?: { type?: string; kv?: { value?: string; mod_revision?: string } }[] }; error?: { message?: string } };
        if (msg.error) throw new Error(`etcd watch: ${msg.error.message ?? 'error'}`);
        const res = msg.result;
        if (res === undefined) continue;
        if (res.compact_revision !== undefined && Number(res.compact_revision) > 0) {
          onEvent({ type: 'compacted', compactRevision: Number(res.compact_revision) });
          return;
        }
        if (res.canceled) return;
        for (const e of res.events ?? []) {
          const modRevision = Number(e.kv?.mod_revision ?? 0);
          // The gateway leaves out the default enum value: no type is a PUT.
          if (e.type === 'DELETE') onEvent({ type: 'delete', modRevision });
          else onEvent({ type: 'put', value: unb64(e.kv?.value), modRevision });
        }
      }
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
