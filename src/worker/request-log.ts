// The log phase (the last step of the hot path): called once per request when it finishes,
// whatever the outcome. Latency recording and the sampled access log hang off this
// one function, so the exchange knows nothing about metrics, and the metrics know of
// the request only what this interface says.
import type { RequestHead } from './request-head.js';
import type { CompiledRoute } from './router.js';
import type { Runtime } from './runtime.js';
import type { UpstreamSet } from './upstream-set.js';

/** What the log phase reads of a finished request. */
export interface FinishedRequest {
  readonly rt: Runtime;
  readonly head: RequestHead;
  readonly route: CompiledRoute | null;
  readonly upstream: UpstreamSet | null;
  /** the split side it went to, -1 when not split */
  readonly side: number;
  /** the last attempt's endpoint, -1 when none was picked */
  readonly endpointIndex: number;
  readonly requestId: string;
  /** the fields forwarded (the trace id is read from them) */
  readonly headers: readonly string[];
  /** the forwarding fields were built (false: `headers` is empty, the request never went upstream) */
  readonly forwarded: boolean;
  readonly consumer: string | null;
  readonly tenant: string | null;
  readonly tier: string | null;
  /** performance.now(): head read, last upstream dispatch, its response head (0: none) */
  readonly startedAt: number;
  readonly upstreamStartedAt: number;
  readonly upstreamHeadersAt: number;
  readonly requestBytes: number;
  readonly responseBytes: number;
  /** a SHED_REASONS index + 1 (0: not shed), and the priority it was shed at */
  readonly shedReason: number;
  readonly shedPriority: number;
}

export type RequestFinishedHook = (req: FinishedRequest, status: number, endedAt: number) => void;

let hook: RequestFinishedHook | null = null;

/** Installed by the worker's telemetry at start (see telemetry.ts). */
export function setRequestFinishedHook(h: RequestFinishedHook | null): void {
  hook = h;
}

export function requestLogged(req: FinishedRequest, status: number, endedAt: number): void {
  if (hook !== null) hook(req, status, endedAt);
}
