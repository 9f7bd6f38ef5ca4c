// The log phase (the last step of the hot path): called once per request when it finishes,
// whatever the outcome. Latency recording and the sampled access log hang off this
// one function, so the exchange knows nothing about metrics.
import type { Exchange } from './exchange.js';

export type RequestFinishedHook = (ex: Exchange, status: number, endedAt: number) => void;

let hook: RequestFinishedHook | null = null;

/** Installed by the worker's telemetry at start (see telemetry.ts). */
export function setRequestFinishedHook(h: RequestFinishedHook | null): void {
  hook = h;
}

export function requestLogged(ex: Exchange, status: number, endedAt: number): void {
  if (hook !== null) hook(ex, status, endedAt);
}
