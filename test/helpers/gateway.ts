// Starts the real gateway (dist/src/cli.js) as a child process with a config object,
// on random loopback ports, and waits for its "started" log line.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface RunningGateway {
  readonly proc: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  readonly url: string;
  readonly adminUrl: string;
  readonly configPath: string;
  /** every stdout line so far, parsed when JSON */
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  /** SIGTERM and wait for exit; resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
  /** What the process left behind (exit status, stderr tail, its last warnings and errors): the message for an exit-code assertion. */
  exitReport(): string;
}

export function writeConfig(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-test-'));
  const file = join(dir, 'tidegate.yaml');
  writeFileSync(file, typeof config === 'string' ? config : stringify(config));
  return file;
}

/** A minimal valid config: one route to the given endpoints. Override any part. */
export function baseConfig(endpoints: string[], overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { app: { discovery: { type: 'static', endpoints }, timeouts: { connect: '1s', response: '5s' } } },
    routes: [{ match: { path: '/' }, upstream: 'app' }],
    ...overrides,
  };
}

/** `args`: the command line instead of `--config <file written from config>` (an etcd URL, say). */
export async function startGateway(config: unknown, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; args?: readonly string[] } = {}): Promise<RunningGateway> {
  const configPath = opts.args ? '' : writeConfig(config);
  const proc = spawn(process.execPath, [CLI, ...(opts.args ?? ['--config', configPath])], {
    env: { ...process.env, TIDEGATE_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let buf = '';
  const started = new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    // A gateway that never says "started" is killed, or its test file would hang on it.
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`gateway did not start in time; stderr: ${stderr.join('')}`));
    }, opts.timeoutMs ?? 30_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          logs.push(rec);
          if (rec.event === 'started') {
            clearTimeout(t);
            resolve({ port: rec.port as number, adminPort: rec.adminPort as number });
          }
        } catch {
          logs.push({ raw: line });
        }
      }
    });
    proc.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`gateway exited with ${code} before starting; stderr: ${stderr.join('')}`));
    });
  });
  const { port, adminPort } = await started;
  return {
    proc,
    port,
    adminPort,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    configPath,
    logs,
    stderr,
    exited,
    exitReport() {
      const loud = logs.filter((r) => r.level === 'warn' || r.level === 'error' || r.level === 'fatal').slice(-10);
      return (
        `gateway exit code ${proc.exitCode}, signal ${proc.signalCode}; ` +
        `stderr: ${stderr.join('').slice(-2000) || '(empty)'}; ` +
        `last warnings/errors: ${loud.length ? loud.map((r) => JSON.stringify(r)).join('\n') : '(none)'}; ` +
        `last records: ${logs.slice(-5).map((r) => JSON.stringify(r)).join('\n')}`
      );
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}
