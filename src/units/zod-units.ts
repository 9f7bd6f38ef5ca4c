// zod types for unit-bearing config values, shared by every schema file (the main
// schema, discovery providers, health checks, observability). A module of its own so
// section schemas need not import schema.ts, which imports them (an ESM cycle).
// All parse with the one strict parser set in units.ts.
import { z } from 'zod';
import { parseDuration, parseHostPort, parseSize, type Parsed } from './units.js';

function unit<T>(parse: (v: unknown) => Parsed<T>) {
  return z.union([z.string(), z.number()]).transform((v, ctx): T => {
    const r = parse(v);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: `${r.expected}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return r.value;
  });
}

/** "250ms", "2s" → milliseconds */
export const durationMs = unit(parseDuration);

/** "16kb", "1mb", or a whole number → bytes */
export const sizeBytes = unit(parseSize);

/** "127.0.0.1:9001" → { host, port } */
export const hostPortValue = z.string().transform((v, ctx) => {
  const r = parseHostPort(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: `${r.expected}, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return r.value;
});

/** "50%" or a number, 0–100 → the number (percent) */
export const percent = z
  .union([z.number(), z.string().regex(/^\d+(\.\d+)?%$/, 'expected a percentage like "50%"')])
  .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1))))
  .pipe(z.number().min(0).max(100));
