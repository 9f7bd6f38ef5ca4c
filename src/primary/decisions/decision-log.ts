// The one way a control-plane decision is written down: `decision(log).warn({ event,
// … }, message)` logs the structured event AND appends it to the decision feed, with
// the feed's id in the log line, so an operator can go from one to the other.
//
// The feed travels with the logger: the gateway makes a child logger that carries it
// (withDecisionFeed) and hands that child to every control-plane module. pino builds a
// child with Object.create(parent), so the feed is visible on every grandchild too.
// A logger without a feed (a module under test on its own) still logs.
import type { Logger } from '../logger.js';
import type { DecisionFeed, DecisionLevel, DecisionSubject } from './decision-feed.js';

const kFeed = Symbol('tidegate.decisionFeed');

type WithFeed = Logger & { [kFeed]?: DecisionFeed };

export function withDecisionFeed(log: Logger, feed: DecisionFeed): Logger {
  const child = log.child({}) as WithFeed;
  child[kFeed] = feed;
  return child;
}

export function decisionFeedOf(log: Logger): DecisionFeed | undefined {
  return (log as WithFeed)[kFeed];
}

export interface DecisionFields {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** Fields that name the subject rather than explain the decision. */
const SUBJECT_FIELDS = ['upstream', 'endpoint', 'route', 'slot'] as const;

function split(fields: DecisionFields): { subject: DecisionSubject; why: Record<string, unknown> } {
  const subject: { upstream?: string; endpoint?: string; route?: string; worker?: number } = {};
  const why: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'event') continue;
    if (k === 'upstream' && typeof v === 'string') subject.upstream = v;
    else if (k === 'endpoint' && typeof v === 'string') subject.endpoint = v;
    else if (k === 'route' && typeof v === 'string') subject.route = v;
    else if (k === 'slot' && typeof v === 'number') subject.worker = v;
    else if (!(SUBJECT_FIELDS as readonly string[]).includes(k)) why[k] = v;
  }
  return { subject, why };
}

export function recordDecision(log: Logger, level: DecisionLevel, fields: DecisionFields, message: string): void {
  const feed = decisionFeedOf(log);
  if (feed === undefined) {
    log[level](fields, message);
    return;
  }
  const { subject, why } = split(fields);
  const time = new Date();
  const d = feed.push({ time: time.toISOString(), kind: fields.event, level, subject, message, why });
  log[level]({ ...fields, decision: d.id }, message);
}

export interface DecisionLogger {
  info(fields: DecisionFields, message: string): void;
  warn(fields: DecisionFields, message: string): void;
  error(fields: DecisionFields, message: string): void;
}

/** Drop-in for `log.info(…)` at a decision site: `decision(log).info(…)`. */
export function decision(log: Logger): DecisionLogger {
  return {
    info: (f, m) => recordDecision(log, 'info', f, m),
    warn: (f, m) => recordDecision(log, 'warn', f, m),
    error: (f, m) => recordDecision(log, 'error', f, m),
  };
}
