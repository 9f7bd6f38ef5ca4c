// The command line behind src/cli.ts (which see for the commands and exit codes).
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isEtcdUrl } from './fleet/etcd-url.js';
import { ConfigError, StartupError } from './errors.js';
import { loadConfigFile } from './config/load.js';
import { checkPlugins } from './config/plugin-check.js';
import { Gateway, VERSION } from './primary/gateway.js';
import { createLogger } from './primary/logger.js';
import { loadUws } from './worker/uws.js';
// The demo's upstreams and `tidegate fault-upstream` are loaded only when asked for.
import type { FaultUpstream } from './demo/fault-upstream.js';
import { humanDestination, wantHumanLogs } from './demo/human-log.js';
import { endStartupHeap } from './startup-heap.js';

const USAGE = `tidegate ${VERSION} — adaptive edge gateway

usage:
  tidegate --config FILE   run with FILE (YAML)
  tidegate --config etcd://HOST:PORT[,HOST:PORT]/PREFIX [--last-good FILE]
                           run with the config at key PREFIX/config in etcd v3, watched;
                           FILE keeps the last config applied, run when etcd is unreachable
  tidegate config push FILE --to etcd://HOST:PORT/PREFIX
                           validate FILE and write it to etcd (every watching gateway applies it)
  tidegate --check FILE    validate FILE and exit (0 valid, 2 invalid)
  tidegate [--demo]        run the demo: bundled config, echo and fault upstreams on loopback
  tidegate fault-upstream  run a fault-injecting upstream (--help for its flags)
  tidegate top [--admin URL] [--token T] [--once]
                           watch a running gateway: routes, endpoints, decisions
  tidegate --version | --help

logs: JSON lines, human-readable when stdout is a terminal (TIDEGATE_LOG_FORMAT=json|human).

signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the config file.`;

interface Args {
  config?: string;
  lastGood?: string;
  check?: string;
  demo: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { demo: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (!v) fail(`${a} needs a file path`, 2);
      return v!;
    };
    if (a === '--config' || a === '-c') args.config = value();
    else if (a.startsWith('--config=')) args.config = a.slice(9);
    else if (a === '--last-good') args.lastGood = value();
    else if (a.startsWith('--last-good=')) args.lastGood = a.slice(12);
    else if (a === '--check') args.check = value();
    else if (a.startsWith('--check=')) args.check = a.slice(8);
    else if (a === '--demo') args.demo = true;
    else if (a === '--version' || a === '-v') {
      console.log(VERSION);
      process.exit(0);
    } else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else fail(`unknown argument "${a}"\n\n${USAGE}`, 2);
  }
  return args;
}

/** The curl lines that make a demo fault upstream fail, slow down, and recover, and trip the orders breaker. */
function demoFaultHelp(urls: string[], base: string): string {
  const [a, b] = urls;
  if (!a || !b) return '';
  return (
    `Make an upstream fail or slow down (watch the log: its health checks fail, it is ejected):\n` +
    `  curl -s -X PUT -d '{"errorRate":1}' ${a}/_fault                 # orders-a answers 500 to everything\n` +
    `  curl -s -X PUT -d '{"serviceMs":400,"capacity":2}' ${b}/_fault  # orders-b slows down\n` +
    `  curl -s -X PUT -d '{"stallRate":0.2,"resetRate":0.1}' ${b}/_fault # stalls and resets\n` +
    `  curl -s ${a}/_fault                                             # its settings and counters\n` +
    `  curl -s -X PUT -d '{"errorRate":0,"resetRate":0,"stallRate":0,"serviceMs":20,"capacity":8}' ${a}/_fault   # heal\n` +
    `Open the circuit breaker of orders (both endpoints fail; watch the log for breaker-opened):\n` +
    `  curl -s -X PUT -d '{"errorRate":1}' ${a}/_fault; curl -s -X PUT -d '{"errorRate":1}' ${b}/_fault\n` +
    `  for i in 1 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null -w '%{http_code} ' ${base}/orders/$i; sleep 0.1; done; echo   # 500s, then 503 TG_ERR_CIRCUIT_OPEN at once\n` +
    `  curl -s -X PUT -d '{"errorRate":0}' ${a}/_fault; curl -s -X PUT -d '{"errorRate":0}' ${b}/_fault   # heal: after 5 s its probes close it\n`
  );
}

/** `tidegate config push FILE --to etcd://…` */
async function configCommand(argv: string[]): Promise<void> {
  const [sub, file, flag, url] = argv;
  if (sub !== 'push' || !file || flag !== '--to' || !url || !isEtcdUrl(url)) fail(`usage: tidegate config push FILE --to etcd://HOST:PORT/PREFIX`, 2);
  const { pushConfig } = await import('./fleet/etcd-source.js');
  const { key, revision } = await pushConfig(file!, url!);
  console.log(`tidegate: ${file} is valid; written to ${key} (revision ${revision})`);
}

function fail(message: string, code: number): never {
  console.error(`tidegate: ${message}`);
  process.exit(code);
}

async function main(): Promise<void> {
  if (process.argv[2] !== undefined && !process.argv[2].startsWith('-')) endStartupHeap();
  if (process.argv[2] === 'top') {
    // A client of the admin API only: it loads nothing of the gateway.
    const { runTop } = await import('./console/top.js');
    process.exitCode = await runTop(process.argv.slice(3));
    return;
  }
  if (process.argv[2] === 'fault-upstream') {
    const { runFaultUpstreamCli } = await import('./demo/fault-upstream-cli.js');
    return runFaultUpstreamCli(process.argv.slice(3));
  }
  if (process.argv[2] === 'config') return configCommand(process.argv.slice(3));
  const args = parseArgs(process.argv.slice(2));
  if (args.check) {
    endStartupHeap();
    await checkPlugins(loadConfigFile(args.check));
    console.log(`tidegate: ${args.check}: configuration is valid`);
    return;
  }
  // Refuse to start on the slow JS fallback before anything else happens.
  loadUws();
  const log = createLogger(undefined, wantHumanLogs() ? humanDestination() : undefined);
  let configPath = args.config;
  let faults: FaultUpstream[] = [];
  if (!configPath) {
    configPath = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url));
    const { startEchoUpstream } = await import('./demo/echo-upstream.js');
    const { startFaultUpstream } = await import('./demo/fault-upstream.js');
    const a = await startEchoUpstream('echo-a');
    const b = await startEchoUpstream('echo-b');
    faults = [await startFaultUpstream({ name: 'orders-a' }), await startFaultUpstream({ name: 'orders-b' })];
    process.env.TIDEGATE_DEMO_UPSTREAM_A = `127.0.0.1:${a.port}`;
    process.env.TIDEGATE_DEMO_UPSTREAM_B = `127.0.0.1:${b.port}`;
    process.env.TIDEGATE_DEMO_FAULT_A = `127.0.0.1:${faults[0]!.port}`;
    process.env.TIDEGATE_DEMO_FAULT_B = `127.0.0.1:${faults[1]!.port}`;
    log.info(
      { event: 'demo-upstreams', echo: [process.env.TIDEGATE_DEMO_UPSTREAM_A, process.env.TIDEGATE_DEMO_UPSTREAM_B], fault: faults.map((f) => `127.0.0.1:${f.port}`) },
      'demo upstreams started',
    );
    const started = faults;
    process.once('exit', () => {
      a.server.close();
      b.server.close();
      for (const f of started) void f.close();
    });
  }
  let gw: Gateway;
  let stopSource: () => Promise<void> = async () => {};
  if (isEtcdUrl(configPath)) {
    const { EtcdConfigSource } = await import('./fleet/etcd-source.js');
    const lastGood = args.lastGood ?? join(tmpdir(), `tidegate-last-good-${createHash('sha1').update(configPath).digest('hex').slice(0, 12)}.yaml`);
    const { source, config } = await EtcdConfigSource.open(configPath, lastGood, log);
    gw = new Gateway({ config: await checkPlugins(config), configSource: source, log });
    await gw.start();
    endStartupHeap();
    const g = gw;
    source.watch(() => g.reload());
    stopSource = () => source.stop();
  } else {
    const config = await checkPlugins(loadConfigFile(configPath));
    gw = new Gateway({ config, configPath, log });
    await gw.start();
    endStartupHeap();
  }
  if (!args.config) {
    const base = `http://127.0.0.1:${gw.port}`;
    console.error(
      `\ntidegate demo is running. Try:\n` +
        `  curl -s ${base}/api/hello            # proxied to one of two echo upstreams (round robin)\n` +
        `  curl -s -X POST --data 'hi' ${base}/api/echo\n` +
        `  curl -s http://127.0.0.1:${gw.adminPort}/status   # workers, routes, upstreams, counters\n` +
        `  curl -s ${base}/orders/1             # one of two fault-injecting upstreams (8 at once, 20 ms each)\n` +
        demoFaultHelp(faults.map((f) => f.url), base) +
        `Stop with Ctrl-C (drains in-flight requests first).\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'signal', signal }, `received ${signal}`);
    gw.stop().then(
      () => stopSource().finally(() => process.exit(0)),
      (err: Error) => {
        log.error({ event: 'stop-failed', error: err.message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    gw.reload().catch(() => {
      /* logged by reload; the running config stays */
    });
  });
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`tidegate: ${err.message}`);
    process.exit(2);
  }
  if (err instanceof StartupError || (err as { code?: string }).code) {
    console.error(`tidegate: [${(err as { code?: string }).code}] ${(err as Error).message}`);
    process.exit(1);
  }
  console.error('tidegate: fatal:', err);
  process.exit(1);
});
