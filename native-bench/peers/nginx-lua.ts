// Peer: nginx + ngx_lua (Debian libnginx-mod-http-lua) with the autoscale Lua policy:
// access_by_lua GCRA limit on a lua_shared_dict, per-endpoint counters, Lua /metrics.
import { existsSync } from 'node:fs';
import { freePort } from '../ports.js';
import { PEER_FILES } from '../paths.js';
import { nginxVersion, startNginx } from './nginx-common.js';
import { fillTemplate, makePrefix, type PeerContext, type PeerDefinition, type RunningPeer } from './peer.js';
import { RATE_LIMIT } from './rate-limit.js';

export const LUA_MODULE = '/usr/lib/nginx/modules/ngx_http_lua_module.so';

export const nginxLuaPeer: PeerDefinition = {
  name: 'nginx-lua',
  description: 'nginx + ngx_lua: access_by_lua GCRA rate limit (lua_shared_dict) + per-endpoint counters in log_by_lua + Lua /metrics',
  scalable: true,
  async available() {
    const v = await nginxVersion();
    if (!v.ok) return v;
    if (!existsSync(LUA_MODULE)) return { ok: false, reason: `${LUA_MODULE} missing; run scripts/install-bench-deps.sh (Debian libnginx-mod-http-lua)` };
    return { ok: true, version: `${v.version} + ngx_lua (libnginx-mod-http-lua)` };
  },
  async start(ctx: PeerContext): Promise<RunningPeer> {
    const port = await freePort();
    const prefix = makePrefix(ctx.workDir);
    const conf = fillTemplate('nginx-lua.conf', {
      WORKERS: ctx.workers,
      PREFIX: prefix,
      PORT: port,
      UPSTREAM_PORT: ctx.upstreamPort,
      PEER_FILES,
      RATE: RATE_LIMIT.ratePerSecond,
      BURST: RATE_LIMIT.burst,
    });
    const n = await startNginx('nginx-lua', prefix, conf, port, ctx.cpus, ctx.workers);
    return { port, pid: n.pid, workers: ctx.workers, stop: n.stop };
  },
};
