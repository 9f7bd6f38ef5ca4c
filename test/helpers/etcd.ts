// A real etcd v3 for the config-source tests and the fleet bench: Debian's etcd-server
// (3.4) as a one-member cluster on random loopback ports with its own data directory.
// `restart()` keeps the directory (keys and revisions survive, as a restarted member's
// do). Installed by scripts/install-test-deps.sh.
import { spawnSync } from 'node:child_process';
import { dataDir, freeTcpPort, removeDir, ServerProcess } from './local-server.js';

export interface EtcdServer {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly endpoint: string;
  put(key: string, value: string): Promise<number>;
  /** compacts history up to `revision` (the current one when omitted) */
  compact(revision?: number): Promise<number>;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function findEtcd(): string {
  for (const p of ['/usr/bin/etcd', '/usr/local/bin/etcd']) {
    if (spawnSync(p, ['--version']).status === 0) return p;
  }
  throw new Error('etcd is not installed; the etcd config tests need it. Run scripts/install-test-deps.sh (as root) first.');
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function call(endpoint: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(endpoint + path, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(3000) });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`etcd ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

export async function startEtcd(): Promise<EtcdServer> {
  const bin = findEtcd();
  const dir = dataDir('tidegate-etcd-');
  const port = await freeTcpPort();
  const peer = await freeTcpPort();
  const endpoint = `http://127.0.0.1:${port}`;
  let proc: ServerProcess;
  const launch = async (): Promise<void> => {
    const peerUrl = `http://127.0.0.1:${peer}`;
    proc = new ServerProcess(bin, [
      '--name', 'test',
      '--data-dir', dir,
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `test=${peerUrl}`,
      '--log-level', 'error',
    ]);
    await proc.waitReady(`etcd on ${endpoint}`, async () => {
      const r = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok && ((await r.json()) as { health?: string }).health === 'true';
    });
  };
  await launch();
  return {
    port,
    endpoint,
    async put(key, value) {
      const r = await call(endpoint, '/v3/kv/put', { key: b64(key), value: b64(value) });
      return Number((r.header as { revision: string }).revision);
    },
    async compact(revision) {
      let rev = revision;
      if (rev === undefined) {
        const r = await call(endpoint, '/v3/kv/range', { key: b64('\0'), limit: 1 });
        rev = Number((r.header as { revision: string }).revision);
      }
      await call(endpoint, '/v3/kv/compaction', { revision: String(rev), physical: true });
      return rev;
    },
    kill: () => proc.kill('SIGKILL'),
    async restart() {
      await proc.kill('SIGKILL');
      await launch();
    },
    async stop() {
      await proc.kill('SIGKILL');
      removeDir(dir);
    },
  };
}
