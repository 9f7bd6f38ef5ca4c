// Peer: nginx proxy_pass (upstream keepalive, HTTP/1.1, Connection "").
import { freePort } from '../ports.js';
import { nginxVersion, startNginx } from './nginx-common.js';
import { fillTemplate, makePrefix, type PeerContext, type PeerDefinition, type RunningPeer } from './peer.js';

export const nginxPeer: PeerDefinition = {
  name: 'nginx',
  description: 'nginx proxy_pass, upstream keepalive 64, HTTP/1.1, reuseport, same worker count as tidegate',
  scalable: true,
  available: nginxVersion,
  async start(ctx: PeerContext): Promise<RunningPeer> {
    const port = await freePort();
    const prefix = makePrefix(ctx.workDir);
    const conf = fillTemplate('nginx-proxy.conf', { WORKERS: ctx.workers, PREFIX: prefix, PORT: port, UPSTREAM_PORT: ctx.upstreamPort });
    const n = await startNginx('nginx', prefix, conf, port, ctx.cpus, ctx.workers);
    return { port, pid: n.pid, workers: ctx.workers, stop: n.stop };
  },
};
