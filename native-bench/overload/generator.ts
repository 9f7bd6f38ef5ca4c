#!/usr/bin/env node
// Open-loop load of our own for the overload scenario, run as a child process so its
// event loop is not the runner's. h2load --rps is open-loop too, but its per-request
// log has no path, so it cannot tell the critical requests' latency from the bulk
// ones'. Here every tenth request (by default) goes to /critical/…, the rest to /bulk/….
//
// Requests are due on a fixed schedule (evenly spaced within each phase) and timed from
// when they were due, not from when they were written: a generator that falls behind
// charges the wait to the answer, so queueing cannot hide (no coordinated omission).
// Each request has its own deadline (--timeout-ms) from when it was due; one past it is
// aborted (its connection closed) and recorded as a timeout (status 0). Connections are
// opened on demand, up to --connections; beyond that, requests wait in the generator —
// still timed from due.
//
// argv: one JSON object (GeneratorPlan). Writes GeneratorOutput as JSON to plan.out.
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

export interface GeneratorPhase {
  name: string;
  rate: number;
  durationS: number;
}

export interface GeneratorPlan {
  url: string;
  phases: GeneratorPhase[];
  /** one request in `criticalEvery` is critical */
  criticalEvery: number;
  timeoutMs: number;
  connections: number;
  out: string;
}

export interface GeneratorOutput {
  /** epoch ms of the schedule's zero */
  startEpochMs: number;
  /** per request, in schedule order: due time ms since start, phase index, critical 0/1, status (0 = timeout or socket error), latency ms from due */
  dueMs: number[];
  phase: number[];
  critical: number[];
  status: number[];
  latencyMs: number[];
  /** error codes of status-0 requests, counted */
  errors: Record<string, number>;
  /** largest lag of the sender behind the schedule, ms */
  maxSendLagMs: number;
}

/**
 * A minimal keep-alive HTTP/1.1 client on net.Socket: one request in flight per
 * connection, idle connections reused LIFO, a new one opened when none is idle (up to
 * the cap). undici costs several times more CPU per request, and on a 2-core machine
 * shared with the proxy under test that cost showed up as the sender falling hundreds of
 * ms behind its schedule. Responses are read for their status and framing only.
 */
class Conn {
  private readonly sock: Socket;
  private buf = '';
  private want = -1; // body bytes still expected after the head; -2 = chunked
  private cb: ((status: number, err?: string) => void) | undefined;
  private status = 0;
  dead = false;
  private readonly onDead: (c: Conn) => void;
  constructor(port: number, onFree: (c: Conn) => void, onDead: (c: Conn) => void) {
    this.onDead = onDead;
    this.sock = connect({ port, host: '127.0.0.1', noDelay: true });
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => this.data(d, onFree));
    const die = (why: string): void => {
      if (this.dead) return;
      this.dead = true;
      onDead(this);
      const cb = this.cb;
      this.cb = undefined;
      cb?.(0, why);
    };
    this.sock.on('error', (e: Error & { code?: string }) => die(e.code ?? 'socket'));
    this.sock.on('close', () => die('closed'));
  }
  send(head: string, cb: (status: number, err?: string) => void): void {
    this.cb = cb;
    this.buf = '';
    this.want = -1;
    this.sock.write(head);
  }
  /** close without answering the pending callback; the slot is given back */
  abort(): void {
    this.cb = undefined;
    this.sock.destroy();
    if (this.dead) return;
    this.dead = true;
    this.onDead(this);
  }
  private data(d: string, onFree: (c: Conn) => void): void {
    this.buf += d;
    if (this.want === -1) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.slice(0, end).toLowerCase();
      this.status = Number(head.slice(9, 12));
      const cl = /\r\ncontent-length:\s*(\d+)/.exec(head);
      this.want = cl ? Number(cl[1]) : /\r\ntransfer-encoding:\s*chunked/.test(head) ? -2 : 0;
      this.buf = this.buf.slice(end + 4);
      if (/\r\nconnection:\s*close/.test(head)) this.closeAfter = true;
    }
    if (this.want === -2 ? !this.buf.endsWith('0\r\n\r\n') : this.buf.length < this.want) return;
    const cb = this.cb;
    this.cb = undefined;
    this.want = -1;
    this.buf = '';
    if (this.closeAfter) {
      this.abort();
    }
    cb?.(this.status);
    if (!this.dead) onFree(this);
  }
  private closeAfter = false;
}

async function main(plan: GeneratorPlan): Promise<void> {
  const schedule: { due: number; phase: number }[] = [];
  let t = 0;
  plan.phases.forEach((p, i) => {
    const n = Math.round(p.rate * p.durationS);
    for (let k = 0; k < n; k++) schedule.push({ due: t + (k * 1000) / p.rate, phase: i });
    t += p.durationS * 1000;
  });
  const total = schedule.length;
  const out: GeneratorOutput = {
    startEpochMs: 0,
    dueMs: schedule.map((s) => +s.due.toFixed(3)),
    phase: schedule.map((s) => s.phase),
    critical: schedule.map((_, i) => (i % plan.criticalEvery === 0 ? 1 : 0)),
    status: new Array<number>(total).fill(-1),
    latencyMs: new Array<number>(total).fill(NaN),
    errors: {},
    maxSendLagMs: 0,
  };
  const port = Number(new URL(plan.url).port);
  const idle: Conn[] = [];
  const all = new Set<Conn>();
  const waiting: number[] = []; // request indexes waiting for a connection, FIFO
  let waitHead = 0;
  let done = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((r) => (allDone = r));
  const t0 = performance.now();
  const count = (code: string): void => {
    out.errors[code] = (out.errors[code] ?? 0) + 1;
  };
  const finish = (i: number, status: number, err?: string): void => {
    if (out.status[i] !== -1) return;
    out.status[i] = status;
    out.latencyMs[i] = +(performance.now() - (t0 + out.dueMs[i]!)).toFixed(3);
    if (err) count(err);
    if (++done === total) allDone();
  };
  const onFree = (c: Conn): void => {
    while (waitHead < waiting.length) {
      const i = waiting[waitHead++]!;
      if (out.status[i] === -1) return dispatch(i, c);
    }
    idle.push(c);
  };
  const onDead = (c: Conn): void => {
    all.delete(c);
    const k = idle.indexOf(c);
    if (k >= 0) idle.splice(k, 1);
    // a slot opened: give it to the oldest waiting request
    while (waitHead < waiting.length) {
      const i = waiting[waitHead++]!;
      if (out.status[i] === -1) return fire(i);
    }
  };
  const dispatch = (i: number, c: Conn): void => {
    const path = out.critical[i] ? `/critical/${i}` : `/bulk/${i}`;
    const due = t0 + out.dueMs[i]!;
    const timer = setTimeout(() => {
      finish(i, 0, 'timeout');
      c.abort();
    }, Math.max(1, Math.round(plan.timeoutMs - (performance.now() - due))));
    c.send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, (status, err) => {
      clearTimeout(timer);
      finish(i, status, err);
    });
  };
  const fire = (i: number): void => {
    const c = idle.pop();
    if (c) return dispatch(i, c);
    if (all.size < plan.connections) {
      const n = new Conn(port, onFree, onDead);
      all.add(n);
      return dispatch(i, n);
    }
    waiting.push(i);
    // waiting requests keep their deadline from when they were due
    setTimeout(() => finish(i, 0, 'timeout'), Math.max(1, Math.round(plan.timeoutMs - (performance.now() - (t0 + out.dueMs[i]!)))));
  };

  out.startEpochMs = Date.now();
  process.stdout.write(`${JSON.stringify({ event: 'start', epochMs: out.startEpochMs, requests: total })}\n`);
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now() - t0;
      while (next < total && out.dueMs[next]! <= now) {
        const lag = now - out.dueMs[next]!;
        if (lag > out.maxSendLagMs) out.maxSendLagMs = lag;
        fire(next++);
      }
      if (next >= total) return resolve();
      // sleep until the next one is due; timers are ≥ 1 ms, so several may go per tick
      setTimeout(tick, Math.max(0, Math.min(5, out.dueMs[next]! - now - 0.5)));
    };
    tick();
  });
  if (done < total) await finished;
  for (const c of all) c.abort();
  out.maxSendLagMs = +out.maxSendLagMs.toFixed(2);
  writeFileSync(plan.out, JSON.stringify(out));
}

main(JSON.parse(process.argv[2] ?? '{}') as GeneratorPlan).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(`overload generator: ${(e as Error).stack ?? String(e)}`);
    process.exit(1);
  },
);
