// What a controller's step returns besides its new state: the decisions it took, each
// logged once by the scheduler as a structured event with the numbers that led to it.
export interface DecisionEvent {
  /** the log `event` field, e.g. "breaker-opened" */
  readonly event: string;
  readonly level: 'info' | 'warn';
  /** one line for a person reading the log */
  readonly msg: string;
  /** the inputs and outputs of the decision (upstream, rates, thresholds, times) */
  readonly fields: Readonly<Record<string, string | number | boolean | null>>;
}

/** Rounds for logs and /status: decisions quote their inputs, not float noise. */
export function round(v: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
