// Worker thread entry: one uWS App per thread on the shared port (SO_REUSEPORT
// spreads connections, like nginx worker processes). Never blocks, never waits on
// the primary: config generations arrive as messages and are swapped in whole.
import { parentPort, workerData } from 'node:worker_threads';
import type { PrimaryToWorker, WorkerData, WorkerToPrimary } from '../messages.js';
import { SharedState } from '../shm/shared-state.js';
import { createHandler, type RuntimeRef } from './http-server.js';
import { Runtime } from './runtime.js';
import { loadUws, type TemplatedApp, type us_listen_socket } from './uws.js';
import { attachCounters, inFlightCount, startDrain } from './worker-state.js';
import { startWorkerTelemetry } from './telemetry.js';
import { websocketBehavior } from './websocket-upgrade.js';

const data = workerData as WorkerData;
const port = parentPort!;

function send(msg: WorkerToPrimary): void {
  port.postMessage(msg);
}

function log(level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown> = {}): void {
  send({ type: 'log', level, event, fields: { workerId: data.workerId, ...fields } });
}

let uws: ReturnType<typeof loadUws>;
try {
  uws = loadUws();
} catch (err) {
  send({ type: 'listen-failed', workerId: data.workerId, message: (err as Error).message });
  port.close();
  throw err;
}

const shm = SharedState.attach(data.shm, { maxWorkers: data.maxWorkers });
attachCounters(shm.workerCounters(data.slot));

const ref: RuntimeRef = { current: new Runtime(data.config, shm) };
const telemetry = startWorkerTelemetry(data, send);
const app: TemplatedApp = uws.App();
app.any('/*', createHandler(ref));
app.ws('/*', websocketBehavior(ref));

let listenSocket: us_listen_socket | null = null;
/**
 * Ends this thread cleanly. A worker thread must never end with uWS sockets open:
 * libuv then aborts the whole process ("uv_loop_close() while having open handles"),
 * so every exit path, crashes included, closes the app first.
 */
function shutdownThread(): void {
  (app as TemplatedApp & { close?: () => void }).close?.();
  ref.current.destroy();
  telemetry.stop();
  port.close();
}

// A bug in request handling must cost one worker, not the process: log, close the
// sockets, and let the primary restart this slot.
process.on('uncaughtException', (err) => {
  log('error', 'worker-crashed', { error: err.message, stack: err.stack });
  shutdownThread();
});

app.listen(data.config.listen.host, data.port, (ls) => {
  if (!ls) {
    send({ type: 'listen-failed', workerId: data.workerId, message: `cannot listen on ${data.config.listen.host}:${data.port} (address in use or not available)` });
    shutdownThread();
    return;
  }
  listenSocket = ls;
  send({ type: 'listening', workerId: data.workerId, port: uws.us_socket_local_port(ls) });
});

port.on('message', (msg: PrimaryToWorker) => {
  switch (msg.type) {
    case 'config': {
      const old = ref.current;
      try {
        ref.current = new Runtime(msg.config, shm);
        telemetry.onConfig(msg.config.generation, msg.config);
      } catch (err) {
        log('error', 'config-rejected', { generation: msg.config.generation, error: (err as Error).message });
        return;
      }
      // Requests in flight keep the old generation's pools; close them once idle.
      void old.close();
      send({ type: 'config-applied', workerId: data.workerId, generation: msg.config.generation });
      return;
    }
    case 'drain':
      drain(msg.timeoutMs);
      return;
    case 'crash':
      setImmediate(() => {
        throw new Error('crash requested by the primary (test hook)');
      });
      return;
  }
});

function drain(timeoutMs: number): void {
  if (listenSocket) {
    uws.us_listen_socket_close(listenSocket);
    listenSocket = null;
  }
  let done = false;
  const finish = (forced: number): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    // Close every remaining (idle keep-alive or late) connection before the thread
    // ends: a worker that exits with live uWS sockets can trip libuv assertions.
    (app as TemplatedApp & { close?: () => void }).close?.();
    telemetry.stop();
    void ref.current.close().finally(() => {
      send({ type: 'drained', workerId: data.workerId, forced });
      port.close();
    });
  };
  const timer = setTimeout(() => finish(inFlightCount()), timeoutMs);
  startDrain(() => finish(0));
}
