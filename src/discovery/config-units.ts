// zod types for unit-bearing values, for the discovery and health schemas.
// config/schema.ts has the same `duration`, but it imports these schemas, so
// importing it back would be an ESM cycle (a TDZ error at load). Both parse with the
// one strict parser in config/units.ts, so they cannot drift apart.
import { z } from 'zod';
import { parseDuration, parseHostPort, type Parsed } from '../config/units.js';

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

/** "127.0.0.1:9001" → { host, port } */
export const hostPortValue = z.string().transform((v, ctx) => {
  const r = parseHostPort(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: `${r.expected}, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return r.value;
});
