// Access policies by name. A route lists policies as one-key objects
// (`- rate-limit: { ... }`); each policy file exports a definition with its config
// schema and is registered here, so adding a policy touches one file and one line.
import { z } from 'zod';
import type { PolicyDefinition } from './policy.js';
import { rateLimitPolicy } from './rate-limit.js';

const definitions: readonly PolicyDefinition[] = [rateLimitPolicy];

export function policyDefinition(name: string): PolicyDefinition | undefined {
  return definitions.find((d) => d.name === name);
}

export function knownPolicyNames(): string[] {
  return definitions.map((d) => d.name);
}

/** A route's policy entry: `{ <name>: <that policy's config> }`, validated by the named policy's schema. */
export function policySchemas() {
  return z.unknown().transform((entry, ctx): PolicyEntry => {
    const known = knownPolicyNames();
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry) || Object.keys(entry).length !== 1) {
      ctx.addIssue({ code: 'custom', message: `expected an object with exactly one policy name as key (known: ${known.join(', ') || 'none'})` });
      return z.NEVER;
    }
    const [name, raw] = Object.entries(entry)[0]!;
    const def = policyDefinition(name);
    if (!def) {
      ctx.addIssue({ code: 'custom', path: [name], message: `unknown policy "${name}" (known: ${known.join(', ') || 'none'})` });
      return z.NEVER;
    }
    const r = def.schema.safeParse(raw ?? {});
    if (!r.success) {
      for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: [name, ...issue.path], message: issue.message });
      return z.NEVER;
    }
    return { name, config: r.data };
  });
}

export interface PolicyEntry {
  readonly name: string;
  /** the policy's validated config, structured-clone safe so it can travel to workers */
  readonly config: unknown;
}
