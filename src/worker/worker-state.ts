// Process-wide (thread-wide) state of one worker: its counter slice in shared memory
// and the drain flag. Module singletons on purpose: there is one worker per thread.
import {
  kWorkerBytesInField,
  kWorkerBytesOutField,
  kWorkerClientAbortsField,
  kWorkerConnectionsRefusedField,
  kHeaderShedLevelField,
  kWorkerShedLoadField,
  kWorkerInFlightField,
  kWorkerRequestsField,
  kWorkerRetriesField,
  kWorkerStatus1xxField,
  kWorkerUpstreamErrorsField,
  kWorkerWsBytesInField,
  kWorkerWsBytesOutField,
  kWorkerWsConnectionsField,
  kWorkerWsMessagesInField,
  kWorkerWsMessagesOutField,
  kWorkerWsOpenField,
  kWorkerSliceWords,
} from '../shm/layout.js';

let counters: Float64Array = new Float64Array(kWorkerSliceWords);
let slot = -1;
let inFlight = 0;
let draining = false;
let onIdle: (() => void) | null = null;
const drainListeners: (() => void)[] = [];
let wsOpen = 0;
/** the shared buffer's header, where the primary publishes the shed level */
let header: Float64Array = new Float64Array(kHeaderShedLevelField + 1);

/** `workerSlot`: this worker's slot, for its shared-memory ledger (-1: none, as in unit tests). */
export function attachCounters(slice: Float64Array, workerSlot = -1, sharedHeader?: Float64Array): void {
  counters = slice;
  if (sharedHeader !== undefined) header = sharedHeader;
  slot = workerSlot;
  // A restarted worker reuses its slot: a gauge left by the one before would stay wrong.
  counters[kWorkerWsOpenField] = 0;
}

export function workerSlot(): number {
  return slot;
}

export function isDraining(): boolean {
  return draining;
}

/** Enters drain mode; `idle` runs once no request is in flight (maybe at once). */
export function startDrain(idle: () => void): void {
  draining = true;
  onIdle = idle;
  // Long-lived connections (WebSocket relays) are not requests in flight: they are told
  // to go away now rather than holding the drain until its timeout.
  for (const l of drainListeners) l();
  if (inFlight === 0) fireIdle();
}

function fireIdle(): void {
  const cb = onIdle;
  onIdle = null;
  cb?.();
}

export function inFlightCount(): number {
  return inFlight;
}

export function requestStarted(): void {
  inFlight++;
  counters[kWorkerRequestsField]! += 1;
  counters[kWorkerInFlightField] = inFlight;
}

/** Exactly once per started request, with the status the client saw (0 if it aborted first). */
export function requestFinished(status: number, bytesIn: number, bytesOut: number): void {
  inFlight--;
  counters[kWorkerInFlightField] = inFlight;
  if (status >= 100 && status < 600) counters[kWorkerStatus1xxField + ((status / 100) | 0) - 1]! += 1;
  else counters[kWorkerClientAbortsField]! += 1;
  counters[kWorkerBytesInField]! += bytesIn;
  counters[kWorkerBytesOutField]! += bytesOut;
  if (draining && inFlight === 0) fireIdle();
}

export function countUpstreamError(): void {
  counters[kWorkerUpstreamErrorsField]! += 1;
}

export function countConnectionRefused(): void {
  counters[kWorkerConnectionsRefusedField]! += 1;
}

/**
 * True (and counted) when the gateway's shed level refuses a request of `priority`:
 * level n sheds the n lowest priorities, so critical (0) never (levels stop at 3).
 * One plain load of a word the primary changes a few times a minute at most.
 */
export function shedByLoad(priority: number): boolean {
  const level = header[kHeaderShedLevelField]!;
  if (level === 0 || priority + level < 4) return false;
  counters[kWorkerShedLoadField + priority]! += 1;
  return true;
}

export function countRetry(): void {
  counters[kWorkerRetriesField]! += 1;
}

/** `cb` runs once when the worker starts draining. */
export function onDrainStart(cb: () => void): void {
  drainListeners.push(cb);
}

export function wsOpened(): void {
  wsOpen++;
  counters[kWorkerWsOpenField] = wsOpen;
  counters[kWorkerWsConnectionsField]! += 1;
}

export function wsClosed(): void {
  wsOpen--;
  counters[kWorkerWsOpenField] = wsOpen;
}

/** A message relayed client → upstream. */
export function wsMessageIn(bytes: number): void {
  counters[kWorkerWsMessagesInField]! += 1;
  counters[kWorkerWsBytesInField]! += bytes;
}

/** A message relayed upstream → client. */
export function wsMessageOut(bytes: number): void {
  counters[kWorkerWsMessagesOutField]! += 1;
  counters[kWorkerWsBytesOutField]! += bytes;
}
