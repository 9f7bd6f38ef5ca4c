// Peer "direct": the load generator hits the upstream itself — the ceiling.
import type { PeerDefinition } from './peer.js';

export const directPeer: PeerDefinition = {
  name: 'direct',
  description: 'no proxy: the client hits the upstream nginx (the ceiling)',
  scalable: false,
  async available() {
    return { ok: true, version: 'upstream nginx' };
  },
  async start(ctx) {
    return { port: ctx.upstreamPort, pid: undefined, workers: 0, stop: async () => {} };
  },
};
