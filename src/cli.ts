#!/usr/bin/env node
// tidegate [--config FILE] [--check FILE] [--demo]
// tidegate top [--admin URL] [--token T] [--once] (src/console/top.ts)
//   exit 0: ran and stopped cleanly (or the config checked out)
//   exit 2: the config is invalid (every error listed, with its path); nothing started
//   exit 1: anything else that stopped it from running
import { fileURLToPath } from 'node:url';
import { ConfigError, StartupError } from './errors.js';
import { loadConfigFile } from './config/load.js';
import { Gateway, VERSION } from './primary/gateway.js';
import { createLogger } from './primary/logger.js';
import { loadUws } from './worker/uws.js';
import { startEchoUpstream } from './demo/echo-upstream.js';

const USAGE = `tidegate ${VERSION} — adaptive edge gateway

usage:
  tidegate --config FILE   run with FILE (YAML)
  tidegate --check FILE    validate FILE and exit (0 valid, 2 invalid)
  tidegate [--demo]        run the demo: bundled config + two echo upstreams on loopback
  tidegate top [--admin URL] [--token T] [--once]
                           watch a running gateway: routes, endpoints, decisions
  tidegate --version | --help

signals: SIGTERM/SIGINT drain and stop; SIGHUP reloads the config file.`;

interface Args {
  config?: string;
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

function fail(message: string, code: number): never {
  console.error(`tidegate: ${message}`);
  process.exit(code);
}

async function main(): Promise<void> {
  if (process.argv[2] === 'top') {
    // A client of the admin API only: it loads nothing of the gateway.
    const { runTop } = await import('./console/top.js');
    process.exitCode = await runTop(process.argv.slice(3));
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  if (args.check) {
    loadConfigFile(args.check);
    console.log(`tidegate: ${args.check}: configuration is valid`);
    return;
  }
  // Refuse to start on the slow JS fallback before anything else happens.
  loadUws();
  const log = createLogger();
  let configPath = args.config;
  if (!configPath) {
    configPath = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url));
    const a = await startEchoUpstream('echo-a');
    const b = await startEchoUpstream('echo-b');
    process.env.TIDEGATE_DEMO_UPSTREAM_A = `127.0.0.1:${a.port}`;
    process.env.TIDEGATE_DEMO_UPSTREAM_B = `127.0.0.1:${b.port}`;
    log.info({ event: 'demo-upstreams', upstreams: [process.env.TIDEGATE_DEMO_UPSTREAM_A, process.env.TIDEGATE_DEMO_UPSTREAM_B] }, 'demo echo upstreams started');
    process.once('exit', () => {
      a.server.close();
      b.server.close();
    });
  }
  const config = loadConfigFile(configPath);
  const gw = new Gateway({ config, configPath, log });
  await gw.start();
  if (!args.config) {
    const base = `http://127.0.0.1:${gw.port}`;
    console.error(
      `\ntidegate demo is running. Try:\n` +
        `  curl -s ${base}/api/hello            # proxied to one of two echo upstreams (round robin)\n` +
        `  curl -s -X POST --data 'hi' ${base}/api/echo\n` +
        `  curl -s http://127.0.0.1:${gw.adminPort}/status   # workers, routes, upstreams, counters\n` +
        `Stop with Ctrl-C (drains in-flight requests first).\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'signal', signal }, `received ${signal}`);
    gw.stop().then(
      () => process.exit(0),
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
