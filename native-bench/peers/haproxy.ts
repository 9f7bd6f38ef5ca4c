// Peer: HAProxy (Debian package), nbthread = tidegate's worker count, foreground (-db).
import { join } from 'node:path';
import { freePort } from '../ports.js';
import { run, start, stop, waitForPort } from '../processes.js';
import { fillTemplate, makePrefix, writeReadable, type PeerContext, type PeerDefinition, type RunningPeer } from './peer.js';

export const haproxyPeer: PeerDefinition = {
  name: 'haproxy',
  description: 'HAProxy, mode http, server keep-alive with http-reuse always, nbthread = workers',
  scalable: true,
  async available() {
    try {
      const r = await run('haproxy -v', 'haproxy', ['-v'], { timeoutMs: 5_000 });
      return { ok: true, version: (/HAProxy version (\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0]!).trim() };
    } catch (e) {
      return { ok: false, reason: `haproxy not found (${(e as Error).message.split('\n')[0]}); run scripts/install-bench-deps.sh` };
    }
  },
  async start(ctx: PeerContext): Promise<RunningPeer> {
    const port = await freePort();
    const prefix = makePrefix(ctx.workDir, []);
    const cfg = join(prefix, 'haproxy.cfg');
    writeReadable(cfg, fillTemplate('haproxy.cfg', { THREADS: ctx.workers, PREFIX: prefix, PORT: port, UPSTREAM_PORT: ctx.upstreamPort }));
    await run('haproxy -c', 'haproxy', ['-c', '-q', '-f', cfg], { timeoutMs: 10_000 });
    const child = start('haproxy', 'haproxy', ['-db', '-f', cfg], { cpus: ctx.cpus });
    await waitForPort(port, child);
    return { port, pid: child.pid, workers: ctx.workers, stop: () => stop(child, 'SIGTERM', 3_000) };
  },
};
