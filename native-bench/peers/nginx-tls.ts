// Peer: nginx terminating TLS (listen ssl), proxying to the plain upstream like the
// nginx peer. Opt-in: run it with --peers nginx-tls,tidegate-tls.
import { freePort } from '../ports.js';
import { benchCert, BENCH_TLS12_CIPHERS } from './bench-cert.js';
import { nginxVersion, startNginx } from './nginx-common.js';
import { fillTemplate, makePrefix, type PeerContext, type PeerDefinition, type RunningPeer } from './peer.js';

export const nginxTlsPeer: PeerDefinition = {
  name: 'nginx-tls',
  description: 'nginx with listen ssl (TLS 1.2/1.3, EC P-256 certificate), proxy_pass as the nginx peer',
  scalable: true,
  optIn: true,
  available: nginxVersion,
  async start(ctx: PeerContext): Promise<RunningPeer> {
    const port = await freePort();
    const prefix = makePrefix(ctx.workDir);
    const { cert, key } = await benchCert(prefix);
    const conf = fillTemplate('nginx-tls.conf', { WORKERS: ctx.workers, PREFIX: prefix, PORT: port, UPSTREAM_PORT: ctx.upstreamPort, CERT: cert, KEY: key, CIPHERS: BENCH_TLS12_CIPHERS });
    const n = await startNginx('nginx-tls', prefix, conf, port, ctx.cpus, ctx.workers);
    return { port, scheme: 'https', pid: n.pid, workers: ctx.workers, stop: n.stop };
  },
};
