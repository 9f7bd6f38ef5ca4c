// Structured JSON logs for control-plane events (pino). Every decision that changes
// traffic is logged with an `event` name and a reason, so "why did it do that?" has
// an answer in the log stream.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** `destination`: where the JSON lines go (default stdout), e.g. a re-renderer for a terminal. */
export function createLogger(level: string = process.env.TIDEGATE_LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { svc: 'tidegate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
