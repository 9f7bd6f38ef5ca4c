// Worker thread entry: one uWS App per thread on the shared port (SO_REUSEPORT
// spreads connections, like nginx worker processes). Never blocks, never waits on
// the primary: config generations arrive as messages and are swapped in whole.
import { parentPort, workerData } from 'node:worker_threads';
import type { PrimaryToWorker, TlsStep, WorkerConfig, WorkerData, WorkerToPrimary } from '../messages.js';
import { SharedState } from '../shm/shared-state.js';
import { createHandler, type RuntimeRef } from './request-path.js';
import { Runtime, workerConfigHasLua } from './runtime.js';
import { loadUws, type TemplatedApp } from './uws.js';
import { Listener, tlsFilesProblem, type ListenerScope } from './listener.js';
import type { TlsConfig } from '../config/schema.js';
import { attachCounters, inFlightCount, isDraining, startDrain } from './worker-state.js';
import { startWorkerTelemetry } from './telemetry.js';
import { loadWebSocketClientFor, websocketBehavior } from './websocket-upgrade.js';
import { setPolicyData } from '../policies/policy-data.js';
import { attachCache } from './cache/worker-cache.js';
import { importPlugins } from '../plugins/plugin-module.js';
import { attachPluginReporting } from '../plugins/plugin-errors.js';
import { attachLuaReporting } from '../lua/lua-report.js';
import { loadLuaVm, type LuaVm } from '../lua/lua-vm.js';

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
attachCounters(shm.workerCounters(data.slot), data.slot, shm.f64);
attachCache(data.cache ?? null, data.slot);

for (const [key, value] of data.policyData) setPolicyData(key, value);
attachPluginReporting(log, shm.workerCounters(data.slot));
attachLuaReporting(log, shm.workerCounters(data.slot));

let luaLoaded = false;

/** The Lua module, loaded (once per thread) only for a generation with Lua. */
async function luaFor(config: WorkerConfig): Promise<LuaVm | null> {
  if (!workerConfigHasLua(config)) return null;
  const t0 = performance.now();
  const vm = await loadLuaVm();
  if (!luaLoaded) {
    luaLoaded = true;
    log('info', 'lua-loaded', { ms: Math.round(performance.now() - t0) });
  }
  return vm;
}

// Plugins are modules: imported before the first runtime is built (and per generation
// below), never on the request path. The primary imported and checked them already.
// Likewise the Lua module, when the config has scripts.
await loadWebSocketClientFor(data.config);
const ref: RuntimeRef = { current: new Runtime(data.config, shm, await importPlugins(data.config.plugins), await luaFor(data.config)) };
const telemetry = startWorkerTelemetry(data, send);
/**
 * Every route is attached here: it runs once per certificate (uWS keeps one route
 * table per SNI name) and again for each listener a certificate reload starts.
 */
function register(app: TemplatedApp, scope: ListenerScope): void {
  app.any('/*', createHandler(ref, scope));
  app.ws('/*', websocketBehavior(ref));
}

const host = data.config.listen.host;
/** the listener accepting connections; null before listening and while draining */
let listener: Listener | null = null;
/** every listener with open uWS sockets: the accepting one and any retiring after a reload */
const listeners = new Set<Listener>();

function closeListeners(): void {
  for (const l of listeners) l.close();
  listeners.clear();
  listener = null;
}

/**
 * Ends this thread cleanly. A worker thread must never end with uWS sockets open:
 * libuv then aborts the whole process ("uv_loop_close() while having open handles"),
 * so every exit path, crashes included, closes the app first.
 */
function shutdownThread(): void {
  closeListeners();
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

/** A listener for `tls` (or plain), listening on the worker's port; resolves with an error message instead when it cannot. */
function openListener(tls: TlsConfig | undefined): Promise<Listener | string> {
  const problem = tls === undefined ? null : tlsFilesProblem(tls);
  if (problem !== null) return Promise.resolve(problem);
  let next: Listener;
  try {
    next = new Listener(uws, tls, register);
  } catch (err) {
    return Promise.resolve(`TLS setup failed: ${(err as Error).message}`);
  }
  listeners.add(next);
  return next.listen(host, data.port).then((got) => {
    if (got !== null) return next;
    listeners.delete(next);
    next.close();
    return `cannot listen on ${host}:${data.port} (address in use or not available)`;
  });
}

void openListener(data.config.listen.tls).then((l) => {
  if (typeof l === 'string') {
    send({ type: 'listen-failed', workerId: data.workerId, message: l });
    shutdownThread();
    return;
  }
  listener = l;
  send({ type: 'listening', workerId: data.workerId, port: l.port });
});

/** a listener with new certificates, started beside the accepting one (step "start") */
let incoming: { listener: Listener; revision: number } | null = null;
/** the listener it replaced, no longer accepting, until step "retire" */
let outgoing: { listener: Listener; revision: number } | null = null;

function tlsAnswer(revision: number, step: TlsStep, problem: string | null): void {
  send({ type: 'tls-step', workerId: data.workerId, revision, step, ok: problem === null, ...(problem !== null ? { message: problem } : {}) });
}

/**
 * New certificates, in the primary's three steps: a new listener on the same port
 * starts beside the old one; then the old one stops accepting; then it is retired and
 * serves its open connections until they are done (src/worker/listener.ts). On any
 * failure the old listener stays as it was.
 */
function tlsStep(msg: Extract<PrimaryToWorker, { type: 'tls' }>): void {
  const { revision } = msg;
  if (listener === null) return tlsAnswer(revision, msg.step, 'not listening (starting or draining)');
  switch (msg.step) {
    case 'start':
      if (incoming !== null) {
        listeners.delete(incoming.listener);
        incoming.listener.close(); // an unfinished earlier reload: nothing was sent to it
        incoming = null;
      }
      void openListener(msg.tls).then((next) => {
        if (typeof next === 'string') return tlsAnswer(revision, 'start', next);
        if (listener === null) {
          listeners.delete(next); // drain began while it was starting
          next.close();
          return;
        }
        incoming = { listener: next, revision };
        tlsAnswer(revision, 'start', null);
      });
      return;
    case 'switch': {
      if (incoming?.revision !== revision) return tlsAnswer(revision, 'switch', 'no listener started for this revision');
      const old = listener;
      listener = incoming.listener;
      incoming = null;
      old.stopAccepting();
      outgoing = { listener: old, revision };
      return tlsAnswer(revision, 'switch', null);
    }
    case 'retire': {
      if (outgoing?.revision !== revision) return tlsAnswer(revision, 'retire', 'no listener switched for this revision');
      const old = outgoing.listener;
      outgoing = null;
      old.retire(() => {
        listeners.delete(old);
        log('info', 'tls-listener-retired', { revision, requestsServed: old.started });
      });
      return tlsAnswer(revision, 'retire', null);
    }
  }
}

port.on('message', (msg: PrimaryToWorker) => {
  switch (msg.type) {
    case 'config':
      // In arrival order, each after its plugin modules are imported.
      configChain = configChain.then(() => applyConfig(msg.config));
      return;
    case 'policy-data':
      setPolicyData(msg.key, msg.value);
      return;
    case 'drain':
      drain(msg.timeoutMs);
      return;
    case 'retire':
      retire(msg.timeoutMs);
      return;
    case 'tls':
      tlsStep(msg);
      return;
    case 'crash':
      if (msg.abrupt === true) {
        // A thread that ends before its own cleanup has run: sockets closed (or the
        // process aborts), then gone, with no upstream request released — the pools
        // drop theirs first, or closing the sockets would abort and release each one.
        ref.current.abandon();
        for (const r of retiring) r.abandon();
        closeListeners();
        process.exit(1);
      }
      setImmediate(() => {
        throw new Error('crash requested by the primary (test hook)');
      });
      return;
  }
});

/**
 * Leaves the worker pool while the others go on serving: the listen socket closes (the
 * kernel hands new connections to the other threads on the port), each open connection
 * is closed after its next response, and the apps close once nothing has arrived for
 * longer than uWS keeps an idle connection (src/worker/listener.ts retire): closing
 * earlier could cut a request a client is sending on an idle keep-alive connection.
 */
/** set by the first of retire and drain to finish: the thread ends once */
let ended = false;

/**
 * The end of a retire or a drain, whichever path gets here first, once: close every
 * remaining (idle keep-alive or late) connection before the thread ends — a worker that
 * exits with live uWS sockets can trip libuv assertions — then the generation's pools,
 * then say how many requests were cut.
 */
function endThread(forced: number): void {
  if (ended) return;
  ended = true;
  closeListeners();
  telemetry.stop();
  void ref.current.close().finally(() => {
    send({ type: 'drained', workerId: data.workerId, forced });
    port.close();
  });
}

function retire(timeoutMs: number): void {
  if (isDraining()) return;
  const retiring = [...listeners];
  listener = null;
  incoming = null;
  outgoing = null;
  let open = retiring.length;
  const finish = (forced: number): void => {
    if (ended) return;
    clearTimeout(timer);
    log('info', 'worker-retire-drained', { forcedRequests: forced });
    endThread(forced);
  };
  // Its own deadline: a connection that keeps one request open (a long download) must not keep the thread.
  const timer = setTimeout(() => finish(inFlightCount()), timeoutMs);
  // A shutdown drain may end the thread first; this timer must not keep it alive.
  timer.unref();
  // Draining: WebSocket relays are told to go away, and every response says Connection: close.
  startDrain(() => undefined);
  for (const l of retiring) {
    l.retire(() => {
      listeners.delete(l);
      if (--open === 0) finish(0);
    });
  }
  if (open === 0) finish(0);
}

let configChain: Promise<void> = Promise.resolve();
/** earlier generations still finishing their requests (the crash hook abandons them too) */
const retiring = new Set<Runtime>();

async function applyConfig(config: WorkerConfig): Promise<void> {
  const old = ref.current;
  try {
    await loadWebSocketClientFor(config);
    ref.current = new Runtime(config, shm, await importPlugins(config.plugins), await luaFor(config));
    telemetry.onConfig(config.generation, config);
  } catch (err) {
    log('error', 'config-rejected', { generation: config.generation, error: (err as Error).message });
    return;
  }
  // Requests in flight keep the old generation's pools; close them once idle.
  retiring.add(old);
  void old.close().finally(() => retiring.delete(old));
  send({ type: 'config-applied', workerId: data.workerId, generation: config.generation });
}

function drain(timeoutMs: number): void {
  for (const l of listeners) l.stopAccepting();
  listener = null;
  const finish = (forced: number): void => {
    if (ended) return;
    clearTimeout(timer);
    endThread(forced);
  };
  const timer = setTimeout(() => finish(inFlightCount()), timeoutMs);
  startDrain(() => finish(0));
}
