// Peers of the overload scenario: each proxies /critical/… and /bulk/… to the fault
// upstream. A tidegate peer is one line: a name, a description and the protection it
// adds to the plain config (upstream settings, and settings of the critical and bulk
// routes). A peer whose config this build's `tidegate --check` rejects is "pending"
// with the checker's words, never faked.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../ports.js';
import { nginxVersion, startNginx } from '../peers/nginx-common.js';
import { LUA_MODULE } from '../peers/nginx-lua.js';
import { PEER_FILES } from '../paths.js';
import { fillTemplate, makePrefix, type Availability, type PeerContext, type PeerDefinition, type RunningPeer } from '../peers/peer.js';
import { tidegateCli, version, waitForStarted } from '../peers/tidegate.js';
import { run, start, stop } from '../processes.js';

/** What the upstream can do; the nginx peer's limits are derived from it. */
export interface UpstreamModel {
  capacity: number;
  serviceMs: number;
  /** share of requests that are critical, 0..1 */
  criticalShare: number;
}

export interface OverloadContext extends PeerContext {
  model: UpstreamModel;
}

export interface OverloadPeer extends Omit<PeerDefinition, 'start' | 'available'> {
  available(workDir: string): Promise<Availability>;
  start(ctx: OverloadContext): Promise<RunningPeer>;
}

export interface Protection {
  /** merged into upstreams.app */
  upstream?: Record<string, unknown>;
  /** merged into the /critical route and the /bulk route */
  critical?: Record<string, unknown>;
  bulk?: Record<string, unknown>;
}

function tidegateConfig(upstreamPort: number, workers: number, p: Protection): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    workers,
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: {
      app: {
        discovery: { type: 'static', endpoints: [`127.0.0.1:${upstreamPort}`] },
        timeouts: { connect: '1s', response: '10s' },
        pool: { connections: 64 },
        // the scenario is about overload, not ejection: a queue-full 503 must not eject the only endpoint
        health: { passive: { consecutive5xx: 0, consecutiveConnectFailures: 0 } },
        ...p.upstream,
      },
    },
    routes: [
      { name: 'critical', match: { path: '/critical' }, upstream: 'app', ...p.critical },
      { name: 'bulk', match: { path: '/' }, upstream: 'app', ...p.bulk },
    ],
  };
}

function tidegateOverload(name: string, description: string, protection: Protection): OverloadPeer {
  const plain = !protection.upstream && !protection.critical && !protection.bulk;
  return {
    name,
    description,
    scalable: true,
    async available(workDir) {
      const v = await version();
      if (!v.ok || plain) return v;
      mkdirSync(workDir, { recursive: true });
      const file = join(workDir, `${name}-check.yaml`);
      writeFileSync(file, stringify(tidegateConfig(1, 1, protection)));
      const r = await run(`${name} --check`, process.execPath, [tidegateCli(), '--check', file], { timeoutMs: 15_000, allowFail: true });
      if (r.code === 0) return v;
      return { ok: false, pending: true, reason: `this build rejects its config (${(r.stderr || r.stdout).trim().replace(/\s+/g, ' ').slice(0, 300)})` };
    },
    async start(ctx) {
      mkdirSync(ctx.workDir, { recursive: true });
      const file = join(ctx.workDir, 'tidegate.yaml');
      writeFileSync(file, stringify(tidegateConfig(ctx.upstreamPort, ctx.workers, protection)));
      const child = start(name, process.execPath, [tidegateCli(), '--config', file], { cpus: ctx.cpus, env: { ...process.env, TIDEGATE_LOG_LEVEL: 'info', TIDEGATE_LOG_FORMAT: 'json' }, logFile: join(ctx.workDir, 'tidegate.log') });
      const s = await waitForStarted(child);
      return { port: s.port, pid: child.pid, workers: s.workers, stop: () => stop(child, 'SIGTERM', 10_000) };
    },
  };
}

/** nginx limits from the upstream model, as in the comments of peers/nginx-limited.conf. */
export function nginxLimits(m: UpstreamModel): Record<string, number> {
  const capacityRps = (m.capacity * 1000) / m.serviceMs;
  return {
    CAPACITY: m.capacity,
    SERVICE_MS: m.serviceMs,
    CAPACITY_RPS: Math.round(capacityRps),
    BULK_CONN: Math.max(1, m.capacity - 1),
    BULK_RPS: Math.max(1, Math.round(capacityRps * (1 - m.criticalShare))),
    BULK_BURST: m.capacity * 2,
    CRITICAL_CONN: Math.max(2, Math.ceil(m.capacity / 2)),
  };
}

const nginxLimited: OverloadPeer = {
  name: 'nginx-limited',
  description: 'nginx proxy_pass with static limit_conn/limit_req tuned by hand to the upstream (peers/nginx-limited.conf)',
  scalable: true,
  available: () => nginxVersion(),
  async start(ctx) {
    const port = await freePort();
    const prefix = makePrefix(ctx.workDir);
    const conf = fillTemplate('nginx-limited.conf', { WORKERS: ctx.workers, PREFIX: prefix, PORT: port, UPSTREAM_PORT: ctx.upstreamPort, ...nginxLimits(ctx.model) });
    const n = await startNginx('nginx-limited', prefix, conf, port, ctx.cpus, ctx.workers);
    return { port, pid: n.pid, workers: ctx.workers, stop: n.stop };
  },
};

const nginxLuaAdaptive: OverloadPeer = {
  name: 'nginx-lua-adaptive',
  description: 'nginx + ngx_lua: adaptive concurrency written in Lua (Envoy-style gradient on a shared dict, /critical/ all of the limit, bulk half; peers/overload.lua)',
  scalable: true,
  async available() {
    const v = await nginxVersion();
    if (!v.ok) return v;
    if (!existsSync(LUA_MODULE)) return { ok: false, reason: `${LUA_MODULE} missing; run scripts/install-bench-deps.sh (Debian libnginx-mod-http-lua)` };
    return { ok: true, version: `${v.version} + ngx_lua (libnginx-mod-http-lua)` };
  },
  async start(ctx) {
    const port = await freePort();
    const prefix = makePrefix(ctx.workDir);
    const conf = fillTemplate('nginx-lua-overload.conf', { WORKERS: ctx.workers, PREFIX: prefix, PORT: port, UPSTREAM_PORT: ctx.upstreamPort, PEER_FILES });
    const n = await startNginx('nginx-lua-adaptive', prefix, conf, port, ctx.cpus, ctx.workers);
    return { port, pid: n.pid, workers: ctx.workers, stop: n.stop };
  },
};

// One line per peer. tidegate-adaptive turns on adaptive concurrency on the upstream and
// marks the /critical route critical and the bulk route low, so at the limit bulk is
// shed first and critical keeps the reserve (concurrency.shares, defaults).
export const OVERLOAD_PEERS: readonly OverloadPeer[] = [
  tidegateOverload('tidegate-off', 'tidegate as it is today: no breaker, no adaptive concurrency, no priorities', {}),
  tidegateOverload('tidegate-adaptive', 'tidegate with adaptive concurrency on the upstream, /critical marked critical and bulk low', {
    upstream: { concurrency: { limit: 'adaptive', min: 2, max: 64 } },
    critical: { priority: 'critical' },
    bulk: { priority: 'low' },
  }),
  nginxLimited,
  nginxLuaAdaptive,
];
