// Every process the bench starts goes through here, so one cleanup stops them all —
// at the end, on an error, and on Ctrl-C/SIGTERM. Each child gets its own process group
// (detached) so a peer's own children (nginx workers) die with it.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** resolves with the exit code (or signal name) */
  readonly exited: Promise<number | string | null>;
  stdout: string;
  stderr: string;
}

const live = new Set<Child>();

export interface StartOptions {
  /** CPU list for taskset (e.g. "0-1"); undefined = no pinning */
  cpus?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** also copy output to this file */
  logFile?: string;
  /** keep at most this many characters of stdout/stderr in memory */
  keep?: number;
}

export function start(name: string, cmd: string, args: string[], opts: StartOptions = {}): Child {
  const [file, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, cmd, ...args]] : [cmd, args];
  const spawnOpts: SpawnOptions = { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: opts.env ?? process.env };
  if (opts.cwd) spawnOpts.cwd = opts.cwd;
  const proc = spawn(file, argv as string[], spawnOpts);
  // Without a listener a failed spawn (ENOENT) would crash the runner instead of throwing here.
  proc.on('error', () => {});
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${cmd} (not installed?)`);
  const keep = opts.keep ?? 64 * 1024;
  const log = opts.logFile ? createWriteStream(opts.logFile) : undefined;
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    exited: new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal))),
    stdout: '',
    stderr: '',
  };
  proc.stdout!.on('data', (d: Buffer) => {
    child.stdout = (child.stdout + d.toString()).slice(-keep);
    log?.write(d);
  });
  proc.stderr!.on('data', (d: Buffer) => {
    child.stderr = (child.stderr + d.toString()).slice(-keep);
    log?.write(d);
  });
  live.add(child);
  void child.exited.then(() => {
    live.delete(child);
    log?.end();
  });
  return child;
}

/** Run to completion; rejects on a non-zero exit unless allowFail. */
export async function run(name: string, cmd: string, args: string[], opts: StartOptions & { timeoutMs?: number; allowFail?: boolean } = {}): Promise<{ code: number | string | null; stdout: string; stderr: string }> {
  const c = start(name, cmd, args, { keep: 8 * 1024 * 1024, ...opts });
  const t = setTimeout(() => stop(c, 'SIGKILL'), opts.timeoutMs ?? 120_000);
  const code = await c.exited;
  clearTimeout(t);
  // let the pipes drain
  await new Promise((r) => setImmediate(r));
  if (code !== 0 && !opts.allowFail) throw new Error(`${name} exited with ${code}: ${c.stderr.slice(-2000) || c.stdout.slice(-2000)}`);
  return { code, stdout: c.stdout, stderr: c.stderr };
}

/** Signal the child's whole process group, escalate to SIGKILL after graceMs. */
export async function stop(c: Child, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    /* already gone */
  }
  const t = setTimeout(() => {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await c.exited;
  clearTimeout(t);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => stop(c, 'SIGTERM', 3_000)));
}

/** Kill synchronously — for process 'exit', where nothing async runs. */
export function killAllNow(): void {
  for (const c of live) {
    try {
      process.kill(-c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export async function waitForPort(port: number, child: Child | undefined, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.proc.exitCode !== null || child.proc.signalCode !== null)) {
      throw new Error(`${child.name} exited before listening on ${port}: ${child.stderr.slice(-2000)}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms${child ? ` (${child.name}: ${child.stderr.slice(-2000)})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
