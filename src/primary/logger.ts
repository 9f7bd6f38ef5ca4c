// Structured JSON logs for control-plane events (pino). Every decision that changes
// traffic is logged with an `event` name and a reason, so "why did it do that?" has
// an answer in the log stream.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = process.env.TIDEGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { svc: 'tidegate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
