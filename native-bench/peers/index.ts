// All peers in report order. nginx first: every ratio in the report is to nginx.
import { directPeer } from './direct.js';
import { haproxyPeer } from './haproxy.js';
import { fastifyPeer, nodeUndiciPeer, uwsMinimalPeer } from './node-peers.js';
import { nginxLuaPeer } from './nginx-lua.js';
import { nginxPeer } from './nginx.js';
import type { PeerDefinition } from './peer.js';
import { nginxTlsPeer } from './nginx-tls.js';
import { tidegateLuaEmptyPeer, tidegateLuaPeer, tidegatePeer, tidegatePipelinedPeer, tidegatePluginPeer, tidegateRateLimitPeer, tidegateTlsPeer } from './tidegate.js';

export const PEERS: readonly PeerDefinition[] = [nginxPeer, directPeer, nginxLuaPeer, haproxyPeer, fastifyPeer, nodeUndiciPeer, uwsMinimalPeer, tidegatePeer, tidegatePipelinedPeer, tidegateRateLimitPeer, tidegatePluginPeer, tidegateLuaPeer, tidegateLuaEmptyPeer, nginxTlsPeer, tidegateTlsPeer];

export function peerByName(name: string): PeerDefinition | undefined {
  return PEERS.find((p) => p.name === name);
}
