// What a peer is to the runner: something that can say whether it can run here, start
// a proxy to the upstream on a loopback port, and stop it again.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PEER_FILES } from '../paths.js';

export interface PeerContext {
  upstreamPort: number;
  /** worker processes/threads; single-process peers ignore it */
  workers: number;
  /** taskset CPU list for the proxy, or undefined */
  cpus: string | undefined;
  /** a fresh folder this peer instance may use */
  workDir: string;
}

export interface RunningPeer {
  readonly port: number;
  /** root of the proxy's process tree for CPU/RSS, undefined for "direct" */
  readonly pid: number | undefined;
  /** workers actually running (1 for single-process peers) */
  readonly workers: number;
  /** how the load generator must speak to it (default http; the -tls peers use https) */
  readonly scheme?: 'http' | 'https';
  /** per-worker request counters, where the peer exposes them (tidegate) */
  workerRequests?(): Promise<number[]>;
  stop(): Promise<void>;
}

export type Availability = { ok: true; version: string } | { ok: false; reason: string; pending?: boolean };

export interface PeerDefinition {
  readonly name: string;
  readonly description: string;
  /** takes a worker count (nginx, HAProxy, tidegate) */
  readonly scalable: boolean;
  /** left out of the default peer list: run it by naming it in --peers */
  readonly optIn?: boolean;
  available(): Promise<Availability>;
  start(ctx: PeerContext): Promise<RunningPeer>;
}

/** Fill {{NAME}} placeholders; an unfilled one is a bug in the bench, not a config to run. */
export function fillTemplate(file: string, vars: Record<string, string | number>): string {
  const text = readFileSync(join(PEER_FILES, file), 'utf8').replace(/\{\{([A-Z0-9_]+)\}\}/g, (m, k: string) => {
    if (!Object.hasOwn(vars, k)) throw new Error(`native-bench/peers/${file}: no value for ${m}`);
    return String(vars[k]);
  });
  return text;
}

/** A prefix folder readable by nginx workers that drop to "nobody" when started as root. */
export function makePrefix(dir: string, subdirs: string[] = ['tmp', 'html']): string {
  mkdirSync(dir, { recursive: true });
  for (const s of subdirs) mkdirSync(join(dir, s), { recursive: true });
  for (const d of [dir, ...subdirs.map((s) => join(dir, s))]) chmodSync(d, 0o755);
  return dir;
}

export function writeReadable(file: string, content: string | Buffer): void {
  writeFileSync(file, content);
  chmodSync(file, 0o644);
}
