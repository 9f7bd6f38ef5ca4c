// Worker supervision: spawns the data-plane threads, restarts one that dies (with
// backoff), adds and retires threads when the worker scaler asks, forwards config
// generations, and runs the drain at shutdown.
import { Worker } from 'node:worker_threads';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { createServer, type AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import type { PrimaryToWorker, WorkerConfig, WorkerData, WorkerToPrimary } from '../messages.js';
import type { SharedState } from '../shm/shared-state.js';
import { decision } from './decisions/decision-log.js';

export type WorkerPhase = 'starting' | 'listening' | 'retiring' | 'draining' | 'exited' | 'restarting';

export interface WorkerInfo {
  readonly slot: number;
  workerId: number;
  threadId: number;
  phase: WorkerPhase;
  restarts: number;
  startedAt: number;
  generation: number;
  /** added by the worker scaler and not yet listening: readiness does not wait for it */
  added?: boolean;
}

/** What the worker scaler reads of the threads. */
export interface WorkerCounts {
  /** listening and not retiring */
  readonly serving: number;
  /** added or restarting, not yet listening */
  readonly starting: number;
  /** draining before they end */
  readonly retiring: number;
}

const WORKER_URL = new URL('../worker/main.js', import.meta.url);
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 30_000;
/** A worker that ran this long without dying resets its backoff. */
const STABLE_MS = 60_000;

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export class Supervisor {
  private readonly workers: (Worker | null)[];
  readonly info: WorkerInfo[];
  private nextWorkerId = 0;
  private config: WorkerConfig;
  /** every thread's V8 young generation ceiling, from the start config (limits.maxWorkerYoungGeneration) */
  private readonly resourceLimits: { maxYoungGenerationSizeMb: number } | undefined;
  private port = 0;
  private stopping = false;
  private readonly drainedWaiters = new Map<number, () => void>();
  /** slots whose thread is retiring: its exit is the end of the slot, not a crash */
  private readonly retiringSlots = new Map<number, number>();
  /** per slot, the answer awaited to a certificate reload */
  private readonly tlsWaiters = new Map<number, (r: { ok: boolean; message?: string }) => void>();
  /** receives workers' telemetry messages (histogram snapshots etc.) */
  onTelemetry: ((slot: number, payload: unknown) => void) | null = null;
  /**
   * A worker thread ended (crash, drain, failed start): it can no longer write shared
   * memory, so what it still counted can be reconciled. Runs before any restart of
   * the slot is scheduled.
   */
  onWorkerExit: ((slot: number) => void) | null = null;
  /** a thread the scaler added is listening (`startMs` after the request) or failed to start */
  onAdded: ((slot: number, ok: boolean, startMs: number, error?: string) => void) | null = null;
  /** a retiring thread has ended: `forced` requests were still in flight at its drain timeout */
  onRetired: ((slot: number, forced: number, drainMs: number) => void) | null = null;
  /** the shared response cache, handed to every worker (null: no route caches) */
  cacheBuffer: SharedArrayBuffer | null = null;

  /**
   * `count` threads start; the shared memory has slots for every thread that may run at
   * once (workers.max), and `info` lists the slots in use, in slot order.
   */
  constructor(
    private readonly shm: SharedState,
    private readonly count: number,
    config: WorkerConfig,
    private readonly log: Logger,
  ) {
    this.config = config;
    const young = config.limits.maxWorkerYoungGeneration;
    this.resourceLimits = young > 0 ? { maxYoungGenerationSizeMb: young / (1024 * 1024) } : undefined;
    const capacity = shm.layout.limits.maxWorkers;
    if (count > capacity) throw new RangeError(`${count} workers do not fit ${capacity} shared-memory slots`);
    this.workers = new Array<Worker | null>(capacity).fill(null);
    this.info = Array.from({ length: count }, (_, slot) => newInfo(slot, config.generation));
  }

  /** Threads by state, for the worker scaler. */
  counts(): WorkerCounts {
    let serving = 0;
    let starting = 0;
    let retiring = 0;
    for (const w of this.info) {
      if (w.phase === 'retiring') retiring++;
      else if (w.phase === 'listening') serving++;
      // Added, or restarting after a crash: either way a thread is on its way, and
      // utilisation measured now says nothing about the count it will serve with.
      else starting++;
    }
    return { serving, starting, retiring };
  }

  /** Every thread that should serve does (one the scaler is still adding, or retiring, aside). */
  ready(): boolean {
    return this.info.every((w) => w.phase === 'listening' || w.phase === 'retiring' || (w.added === true && w.phase === 'starting'));
  }

  /**
   * Starts one more thread in the lowest free slot; it joins the listen port (SO_REUSEPORT)
   * and takes its share of new connections. False when every slot is taken.
   */
  addWorker(): boolean {
    if (this.stopping) return false;
    const used = new Set(this.info.map((w) => w.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    if (slot >= this.workers.length) return false;
    const info = newInfo(slot, this.config.generation);
    info.added = true;
    this.info.push(info);
    this.info.sort((a, b) => a.slot - b.slot);
    const asked = Date.now();
    this.spawn(slot, this.port).then(
      () => {
        info.added = false;
        this.onAdded?.(slot, true, Date.now() - asked);
      },
      (err: Error) => {
        this.removeInfo(slot);
        this.onAdded?.(slot, false, Date.now() - asked, err.message);
      },
    );
    return true;
  }

  /**
   * Retires the serving thread in the highest slot: it closes its listen socket (the
   * kernel sends new connections to the others), answers each open connection's next
   * request with Connection: close, and ends once no connection is left, or at
   * `timeoutMs`. Returns the slot, or null when fewer than two threads serve.
   */
  retireWorker(timeoutMs: number): number | null {
    if (this.stopping) return null;
    const serving = this.info.filter((w) => w.phase === 'listening');
    const info = serving[serving.length - 1];
    const w = info === undefined ? null : this.workers[info.slot];
    if (serving.length < 2 || info === undefined || !w) return null;
    info.phase = 'retiring';
    this.retiringSlots.set(info.slot, Date.now());
    w.postMessage({ type: 'retire', timeoutMs } satisfies PrimaryToWorker);
    return info.slot;
  }

  private removeInfo(slot: number): void {
    const i = this.info.findIndex((w) => w.slot === slot);
    if (i !== -1) this.info.splice(i, 1);
  }

  private readonly lastElu = new Map<Worker, EventLoopUtilization>();

  /**
   * Mean event-loop utilisation (0–1) of the live workers since the previous call,
   * read from the thread handles (no message, no wait on the worker).
   */
  eventLoopUtilization(): number {
    let sum = 0;
    let n = 0;
    for (const info of this.info) {
      const w = this.workers[info.slot];
      // A thread starting or draining says nothing about the load the others carry.
      if (!w || info.phase !== 'listening') continue;
      const now = w.performance.eventLoopUtilization();
      const prev = this.lastElu.get(w);
      this.lastElu.set(w, now);
      if (prev === undefined) continue;
      sum += w.performance.eventLoopUtilization(now, prev).utilization;
      n++;
    }
    for (const w of this.lastElu.keys()) if (!this.workers.includes(w)) this.lastElu.delete(w);
    return n === 0 ? 0 : sum / n;
  }

  get listenPort(): number {
    return this.port;
  }

  /**
   * Starts every worker. The first listens on the configured port (which may be 0);
   * the rest join the port it got, so the kernel spreads connections over all of them.
   */
  async start(): Promise<number> {
    // uSockets sets SO_REUSEPORT only for a non-zero port, so "port 0" is resolved
    // here to a free port that every worker then shares.
    this.port = this.config.listen.port === 0 ? await freePort(this.config.listen.host) : this.config.listen.port;
    try {
      await Promise.all(Array.from({ length: this.count }, (_, slot) => this.spawn(slot, this.port)));
    } catch (err) {
      // Workers that did start hold uWS sockets; they must close them before the
      // process exits (a thread exiting with live uWS handles aborts the process).
      await this.drain(0);
      throw err;
    }
    return this.port;
  }

  private spawn(slot: number, port: number): Promise<number> {
    const workerId = this.nextWorkerId++;
    const data: WorkerData = { workerId, slot, shm: this.shm.buffer, maxWorkers: this.shm.layout.limits.maxWorkers, port, config: this.config, policyData: [...this.policyData], cache: this.cacheBuffer };
    const w = new Worker(WORKER_URL, { workerData: data, name: `tidegate-worker-${slot}`, resourceLimits: this.resourceLimits });
    this.workers[slot] = w;
    const info = this.info.find((x) => x.slot === slot)!;
    info.workerId = workerId;
    info.threadId = w.threadId;
    info.phase = 'starting';
    info.startedAt = Date.now();
    info.generation = this.config.generation;
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      /** requests a retiring thread still had at its drain timeout, from its last message */
      let retired = 0;
      w.on('message', (msg: WorkerToPrimary) => {
        switch (msg.type) {
          case 'listening':
            info.phase = 'listening';
            this.log.info({ event: 'worker-listening', workerId, slot, port: msg.port }, 'worker listening');
            if (!settled) {
              settled = true;
              resolve(msg.port);
            }
            return;
          case 'listen-failed':
            decision(this.log).error({ event: 'worker-listen-failed', workerId, slot, error: msg.message }, 'worker could not listen');
            if (!settled) {
              settled = true;
              reject(new Error(msg.message));
            }
            return;
          case 'config-applied':
            info.generation = msg.generation;
            return;
          case 'drained':
            this.log.info({ event: 'worker-drained', workerId, slot, forcedRequests: msg.forced }, 'worker drained');
            if (this.retiringSlots.has(slot)) retired = msg.forced;
            this.drainedWaiters.get(slot)?.();
            return;
          case 'tls-step':
            this.tlsWaiters.get(slot)?.(msg.ok ? { ok: true } : { ok: false, message: msg.message ?? 'failed' });
            return;
          case 'telemetry':
            this.onTelemetry?.(slot, msg.payload);
            return;
          case 'log':
            this.log[msg.level]({ event: msg.event, ...msg.fields }, msg.event);
            return;
        }
      });
      w.on('error', (err) => {
        decision(this.log).error({ event: 'worker-error', workerId, slot, error: err.message, stack: err.stack }, 'worker thread error');
      });
      w.on('exit', (code) => {
        info.phase = 'exited';
        this.workers[slot] = null;
        this.onWorkerExit?.(slot);
        this.drainedWaiters.get(slot)?.();
        if (!settled) {
          settled = true;
          reject(new Error(`worker ${workerId} exited with code ${code} before listening`));
          return;
        }
        const retiringSince = this.retiringSlots.get(slot);
        if (retiringSince !== undefined) {
          this.retiringSlots.delete(slot);
          this.removeInfo(slot);
          if (!this.stopping) this.onRetired?.(slot, retired, Date.now() - retiringSince);
          return;
        }
        if (this.stopping) return;
        const ranFor = Date.now() - info.startedAt;
        if (ranFor > STABLE_MS) info.restarts = 0;
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** info.restarts);
        info.restarts++;
        info.phase = 'restarting';
        decision(this.log).warn({ event: 'worker-restart', workerId, slot, exitCode: code, ranForMs: ranFor, restartInMs: delay, reason: 'worker thread exited unexpectedly' }, 'restarting worker');
        setTimeout(() => {
          if (this.stopping) return;
          this.spawn(slot, this.port).catch((err: Error) => decision(this.log).error({ event: 'worker-restart-failed', slot, error: err.message }, 'worker restart failed'));
        }, delay).unref();
      });
    });
  }

  /** the access policies' run-time tables, by key: sent to every worker now and to each one started later */
  private readonly policyData = new Map<string, unknown>();

  /** Sends an access policy's run-time table to every worker (messages keep their order, so it lands before a config sent after it). */
  setPolicyData(key: string, value: unknown): void {
    if (value === undefined) this.policyData.delete(key);
    else this.policyData.set(key, value);
    this.post({ type: 'policy-data', key, value });
  }

  broadcast(config: WorkerConfig): void {
    this.config = config;
    this.post({ type: 'config', config });
  }

  /**
   * Sends one step of a certificate reload to the workers in `slots` and waits for each
   * answer. A worker that does not answer in time counts as failed; one restarted later
   * reads the files of the config it starts with.
   */
  async tlsStep(msg: Extract<PrimaryToWorker, { type: 'tls' }>, slots: readonly number[], timeoutMs = 5_000): Promise<{ slot: number; ok: boolean; message?: string }[]> {
    const answers = slots.map((slot) => {
      const w = this.workers[slot];
      if (!w) return Promise.resolve({ slot, ok: false, message: 'no worker running in this slot' });
      return new Promise<{ slot: number; ok: boolean; message?: string }>((resolve) => {
        const t = setTimeout(() => done({ ok: false, message: `no answer within ${timeoutMs} ms` }), timeoutMs);
        const done = (r: { ok: boolean; message?: string }): void => {
          clearTimeout(t);
          this.tlsWaiters.delete(slot);
          resolve({ slot, ...r });
        };
        this.tlsWaiters.set(slot, done);
        w.postMessage(msg);
      });
    });
    return Promise.all(answers);
  }

  private post(msg: PrimaryToWorker): void {
    for (const w of this.workers) w?.postMessage(msg);
  }

  /** Stops accepting, lets in-flight requests finish (up to timeoutMs), and waits for every thread to exit. */
  async drain(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const exits = this.workers.map((w, slot) => {
      if (!w) return Promise.resolve();
      const info = this.info.find((x) => x.slot === slot);
      if (info !== undefined) info.phase = 'draining';
      return new Promise<void>((resolve) => {
        this.drainedWaiters.set(slot, resolve);
        w.once('exit', () => resolve());
      });
    });
    this.post({ type: 'drain', timeoutMs });
    // A thread that has not exited 5 s after the drain window is stuck; Worker.terminate()
    // would abort the process from inside libuv (uWS handles still open), so give up
    // on the threads and end the process from here instead.
    const hard = setTimeout(() => {
      this.log.error({ event: 'drain-stuck', reason: 'worker threads did not exit after the drain timeout' }, 'forcing exit');
      process.exit(1);
    }, timeoutMs + 5_000);
    hard.unref();
    await Promise.all(exits);
    await Promise.all(this.workers.map((w) => (w ? new Promise<void>((r) => w.once('exit', () => r())) : undefined)));
    clearTimeout(hard);
  }

  /**
   * Makes one worker fail as if it had hit a bug (test hook: exercises crash → restart).
   * `abrupt`: the thread ends without running its own cleanup.
   */
  crash(slot: number, abrupt = false): boolean {
    const w = this.workers[slot];
    if (!w) return false;
    w.postMessage({ type: 'crash', abrupt } satisfies PrimaryToWorker);
    return true;
  }
}

function newInfo(slot: number, generation: number): WorkerInfo {
  return { slot, workerId: -1, threadId: -1, phase: 'starting', restarts: 0, startedAt: 0, generation, added: false };
}
