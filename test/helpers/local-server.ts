// What the Redis and etcd helpers share: a free loopback port, a private data directory,
// and waiting for a child to answer (with its stderr in the error when it never does).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function dataDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A child process with its output kept (the last 8 KiB) for error messages. */
export class ServerProcess {
  readonly proc: ChildProcess;
  private out = '';
  private readonly exited: Promise<unknown>;

  constructor(bin: string, args: string[]) {
    this.proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer): void => {
      this.out = (this.out + d.toString()).slice(-8192);
    };
    this.proc.stdout!.on('data', keep);
    this.proc.stderr!.on('data', keep);
    this.exited = once(this.proc, 'exit');
  }

  get output(): string {
    return this.out;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Polls `ready` until it answers true, the child exits, or `ms` pass. */
  async waitReady(what: string, ready: () => Promise<boolean>, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (!this.running) throw new Error(`${what} exited before it answered:\n${this.out}`);
      if (await ready().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${what} did not answer in ${ms} ms:\n${this.out}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    await this.exited;
  }
}
