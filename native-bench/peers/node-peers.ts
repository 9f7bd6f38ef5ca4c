// Peers: fastify + @fastify/http-proxy, and node:http + undici — one process each,
// started from their compiled scripts beside this file.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BENCH_DIST } from '../paths.js';
import { freePort } from '../ports.js';
import { start, stop, waitForPort } from '../processes.js';
import type { PeerContext, PeerDefinition, RunningPeer } from './peer.js';

const require = createRequire(import.meta.url);

function packageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function nodePeer(name: string, script: string, description: string, version: () => string): PeerDefinition {
  return {
    name,
    description,
    scalable: false,
    async available() {
      return { ok: true, version: version() };
    },
    async start(ctx: PeerContext): Promise<RunningPeer> {
      const port = await freePort();
      const child = start(name, process.execPath, [join(BENCH_DIST, 'peers', script), String(port), `http://127.0.0.1:${ctx.upstreamPort}`], { cpus: ctx.cpus });
      await waitForPort(port, child);
      return { port, pid: child.pid, workers: 1, stop: () => stop(child, 'SIGTERM', 3_000) };
    },
  };
}

export const fastifyPeer = nodePeer(
  'fastify',
  'fastify-proxy.js',
  'fastify + @fastify/http-proxy (undici), one process',
  () => `node ${process.version}, fastify ${packageVersion('fastify')}, @fastify/http-proxy ${packageVersion('@fastify/http-proxy')}`,
);

export const nodeUndiciPeer = nodePeer(
  'node-undici',
  'node-undici-proxy.js',
  'node:http server + undici Pool.request, one process',
  () => `node ${process.version}, undici ${packageVersion('undici')}`,
);

/** uWS worker threads + a minimal keep-alive client: the ceiling of tidegate's design (uws-minimal-proxy.ts). */
export const uwsMinimalPeer: PeerDefinition = {
  name: 'uws-minimal',
  description: 'uWebSockets.js worker threads + a minimal keep-alive HTTP/1.1 client, no gateway work: the ceiling of tidegate\'s design',
  scalable: true,
  async available() {
    return { ok: true, version: `node ${process.version}, uWebSockets.js ${packageVersion('uWebSockets.js')}` };
  },
  async start(ctx: PeerContext): Promise<RunningPeer> {
    const port = await freePort();
    const child = start('uws-minimal', process.execPath, [join(BENCH_DIST, 'peers', 'uws-minimal-proxy.js'), String(port), String(ctx.upstreamPort), String(ctx.workers)], { cpus: ctx.cpus });
    await waitForPort(port, child);
    return { port, pid: child.pid, workers: ctx.workers, stop: () => stop(child, 'SIGTERM', 3_000) };
  },
};
