// Peers: tidegate with no policies, and tidegate with the rate-limit policy the
// nginx+Lua peer runs. The second is enabled by detection, never faked: a config using
// it must pass `tidegate --check`, or the peer is "pending" with the checker's words.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { PEER_FILES, TIDEGATE_CLI } from '../paths.js';
import { run, start, stop, type Child } from '../processes.js';
import { fillTemplate, type Availability, type PeerContext, type PeerDefinition, type RunningPeer } from './peer.js';
import { RATE_LIMIT } from './rate-limit.js';
import { benchCert } from './bench-cert.js';

export interface TidegateContext extends PeerContext {
  /** when set, tidegate runs with --cpu-prof into this folder (main and worker threads) */
  profileDir?: string | undefined;
  /** top-level config sections added to the generated config (e.g. observability) */
  extraConfig?: Record<string, unknown> | undefined;
}

function rateLimitPolicies(): unknown[] {
  return parse(fillTemplate('tidegate-rate-limit.yaml', { HEADER: RATE_LIMIT.header, RATE: RATE_LIMIT.ratePerSecond, BURST: RATE_LIMIT.burst })) as unknown[];
}

/** The nginx-lua peer's policy as a JS plugin (autoscale-plugin.mjs) and the shared dictionaries it keeps its state in. */
function pluginPolicies(): unknown[] {
  return [{ plugin: { name: 'autoscale', config: { header: RATE_LIMIT.header, rate: RATE_LIMIT.ratePerSecond, burst: RATE_LIMIT.burst } } }];
}
/**
 * The nginx-lua peer's policy in Lua (autoscale-access.lua, autoscale-log.lua): the
 * access script gets the bench's limit written in (it has no init phase to be
 * configured by), into `dir`.
 */
function luaPolicies(dir: string, empty = false): unknown[] {
  if (empty) return [{ lua: { access: join(PEER_FILES, 'empty.lua'), log: join(PEER_FILES, 'empty.lua') } }];
  mkdirSync(dir, { recursive: true });
  const access = join(dir, 'autoscale-access.lua');
  writeFileSync(access, fillTemplate('autoscale-access.lua', { RATE: RATE_LIMIT.ratePerSecond, BURST: RATE_LIMIT.burst }));
  return [{ lua: { access, log: join(PEER_FILES, 'autoscale-log.lua') } }];
}
const PLUGIN_CONFIG = {
  plugins: [join(PEER_FILES, 'autoscale-plugin.mjs')],
  // The sizes of the nginx-lua peer's lua_shared_dict zones.
  shared: { tg_limits: { size: '16mb' }, tg_counters: { size: '16mb' } },
};

/** the tidegate-pipelined peer's pool: what the tidegate peer has, with HTTP/1.1 pipelining to the upstream */
const PIPELINED_POOL = { pipelining: 8 };

function config(upstreamPort: number, workers: number, policies: unknown[], tls?: { cert: string; key: string }, pool: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0, ...(tls ? { tls } : {}) },
    workers,
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: {
      app: {
        discovery: { type: 'static', endpoints: [`127.0.0.1:${upstreamPort}`] },
        timeouts: { connect: '1s', response: '10s' },
        pool: { connections: 64, ...pool },
      },
    },
    routes: [{ name: 'bench', match: { path: '/' }, upstream: 'app', policies }],
  };
}

export async function version(): Promise<Availability> {
  if (!existsSync(cli)) return { ok: false, reason: `${cli} missing: build first (npx tsc -p tsconfig.json)` };
  const r = await run('tidegate --version', process.execPath, [cli, '--version'], { timeoutMs: 10_000, allowFail: true });
  if (r.code !== 0) return { ok: false, reason: `tidegate --version failed: ${r.stderr.trim().slice(0, 300)}` };
  return { ok: true, version: r.stdout.trim() };
}

let checkDir: string | undefined;
export function setCheckDir(dir: string): void {
  checkDir = dir;
}

// The build under test: the repo's dist/ by default, or another build (--tidegate PATH),
// e.g. a clean checkout of a commit while the working tree is mid-edit.
let cli = TIDEGATE_CLI;
export function setTidegateCli(path: string): void {
  cli = path;
}
export function tidegateCli(): string {
  return cli;
}

/** Does this build accept the rate-limit policy? Asks the real checker. */
async function rateLimitSupport(): Promise<Availability> {
  return policySupport('rl', 'rate-limit policy', config(1, 1, rateLimitPolicies()));
}

/** Does this build accept `cfg` (a peer's policy)? Asks the real checker. */
async function policySupport(tag: string, what: string, cfg: Record<string, unknown>): Promise<Availability> {
  const v = await version();
  if (!v.ok) return v;
  const dir = checkDir ?? '/tmp';
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `tidegate-${tag}-check.yaml`);
  writeFileSync(file, stringify(cfg));
  const r = await run('tidegate --check', process.execPath, [cli, '--check', file], { timeoutMs: 15_000, allowFail: true });
  if (r.code === 0) return { ok: true, version: `${v.version} + ${what}` };
  return { ok: false, pending: true, reason: `pending: this tidegate build rejects the ${what} (${(r.stderr || r.stdout).trim().replace(/\s+/g, ' ').slice(0, 300)})` };
}

async function startTidegate(name: string, ctx: TidegateContext, policies: unknown[], tls = false, pool: Record<string, unknown> = {}): Promise<RunningPeer> {
  mkdirSync(ctx.workDir, { recursive: true });
  const file = join(ctx.workDir, 'tidegate.yaml');
  writeFileSync(file, stringify({ ...config(ctx.upstreamPort, ctx.workers, policies, tls ? await benchCert(ctx.workDir) : undefined, pool), ...ctx.extraConfig }));
  const env: NodeJS.ProcessEnv = { ...process.env, TIDEGATE_LOG_LEVEL: 'info' };
  const nodeArgs: string[] = [];
  if (ctx.profileDir) {
    mkdirSync(ctx.profileDir, { recursive: true });
    // Node 20 refuses --cpu-prof in NODE_OPTIONS; as a command-line flag it is in
    // process.execArgv, which worker threads inherit: one .cpuprofile per thread.
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${ctx.profileDir}`);
  }
  const child = start(name, process.execPath, [...nodeArgs, cli, '--config', file], { cpus: ctx.cpus, env, logFile: join(ctx.workDir, 'tidegate.log') });
  const { port, adminPort, workers } = await waitForStarted(child);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  return {
    port,
    scheme: tls ? 'https' : 'http',
    pid: child.pid,
    workers,
    async workerRequests() {
      const res = await fetch(`${adminUrl}/status`);
      const s = (await res.json()) as { workers: { requests?: number }[] };
      return s.workers.map((w) => w.requests ?? 0);
    },
    // SIGTERM drains; the profile is written when the threads exit, so give it time.
    stop: () => stop(child, 'SIGTERM', ctx.profileDir ? 30_000 : 10_000),
  };
}

export async function waitForStarted(child: Child): Promise<{ port: number; adminPort: number; workers: number }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    for (const line of child.stdout.split('\n')) {
      if (!line.includes('"started"')) continue;
      try {
        const rec = JSON.parse(line) as { event?: string; port?: number; adminPort?: number; workers?: number };
        if (rec.event === 'started' && rec.port && rec.adminPort) return { port: rec.port, adminPort: rec.adminPort, workers: rec.workers ?? 0 };
      } catch {
        /* partial line */
      }
    }
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) throw new Error(`tidegate exited before starting: ${child.stderr.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`tidegate did not log "started" in 20 s: ${child.stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const tidegatePeer: PeerDefinition = {
  name: 'tidegate',
  description: 'tidegate, one route, no policies, workers = N',
  scalable: true,
  available: version,
  start: (ctx) => startTidegate('tidegate', ctx, []),
};

export const tidegatePipelinedPeer: PeerDefinition = {
  name: 'tidegate-pipelined',
  description: 'tidegate as the tidegate peer, with pool.pipelining: 8 to the upstream (nginx pipelines), workers = N',
  scalable: true,
  optIn: true,
  available: () => policySupport('pipelined', 'pool.pipelining', config(1, 1, [], undefined, PIPELINED_POOL)),
  start: (ctx) => startTidegate('tidegate-pipelined', ctx, [], false, PIPELINED_POOL),
};

export const tidegateTlsPeer: PeerDefinition = {
  name: 'tidegate-tls',
  description: 'tidegate with listen.tls (same certificate as nginx-tls), one route, no policies, workers = N',
  scalable: true,
  optIn: true,
  available: version,
  start: (ctx) => startTidegate('tidegate-tls', ctx, [], true),
};

export const tidegatePluginPeer: PeerDefinition = {
  name: 'tidegate-plugin',
  description: "tidegate with the nginx-lua peer's policy as a JS plugin: GCRA in a shared dict (get + set) and per-route counters in the log phase",
  scalable: true,
  available: () => policySupport('plugin', 'autoscale plugin', { ...config(1, 1, pluginPolicies()), ...PLUGIN_CONFIG }),
  start: (ctx) => startTidegate('tidegate-plugin', { ...ctx, extraConfig: { ...PLUGIN_CONFIG, ...(ctx as TidegateContext).extraConfig } }, pluginPolicies()),
};

export const tidegateLuaPeer: PeerDefinition = {
  name: 'tidegate-lua',
  description: "tidegate with the nginx-lua peer's policy in Lua (wasmoon): GCRA in ngx.shared.tg_limits (get + set) in access, two incr in log",
  scalable: true,
  available: () => policySupport('lua', 'autoscale Lua scripts', { ...config(1, 1, luaPolicies(checkDir ?? '/tmp/tidegate-lua-check')), shared: PLUGIN_CONFIG.shared }),
  start: (ctx) => startTidegate('tidegate-lua', { ...ctx, extraConfig: { shared: PLUGIN_CONFIG.shared, ...(ctx as TidegateContext).extraConfig } }, luaPolicies(ctx.workDir)),
};

export const tidegateLuaEmptyPeer: PeerDefinition = {
  name: 'tidegate-lua-empty',
  description: 'tidegate with an empty Lua script in access and in log: what running Lua at all costs',
  scalable: true,
  optIn: true,
  available: () => policySupport('lua-empty', 'empty Lua scripts', config(1, 1, luaPolicies('', true))),
  start: (ctx) => startTidegate('tidegate-lua-empty', ctx, luaPolicies('', true)),
};

export const tidegateRateLimitPeer: PeerDefinition = {
  name: 'tidegate-rl',
  description: 'tidegate with the rate-limit policy of the nginx-lua peer (metrics always on)',
  scalable: true,
  available: rateLimitSupport,
  start: (ctx) => startTidegate('tidegate-rl', ctx, rateLimitPolicies()),
};
