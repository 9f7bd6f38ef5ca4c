// zod types for policy schemas that take unit-bearing or address values. Policy files
// build their schemas from the zod the config layer hands them (workers load no zod),
// so these are factories of that zod, parsing with the one strict parser set in
// src/units/units.ts.
import { isIP } from 'node:net';
import { parseDuration } from '../units/units.js';
import type { Zod } from './policy.js';

/** "250ms", "2s" → milliseconds */
export function durationOf(z: Zod) {
  return z.union([z.string(), z.number()]).transform((v, ctx): number => {
    const r = parseDuration(v);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: `${r.expected}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return r.value;
  });
}

/** Whether `v` is an IPv4/IPv6 address or CIDR ("10.0.0.0/8", "2001:db8::/32"). */
export function isCidr(v: string): boolean {
  const [addr, bits, extra] = v.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n >= 0 && n <= (family === 4 ? 32 : 128);
}

export function cidrOf(z: Zod) {
  return z.string().refine(isCidr, 'expected an IP address or CIDR like "10.0.0.0/8" or "2001:db8::/32"');
}

/** A policy name as it appears in the admin API and the log: a token. */
export function policyNameOf(z: Zod) {
  return z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a name of 1–64 letters, digits, ".", "_" or "-"');
}
