// Validation of a route's policy entries: `{ <name>: <that policy's config> }`, each by
// the named policy's own schema, which the definition builds from the zod passed here
// (policy files never load zod: workers import them).
import { z } from 'zod';
import { knownPolicyNames, policyDefinition, type PolicyEntry } from '../policies/registry.js';
import type { PolicyDefinition } from '../policies/policy.js';

const built = new Map<PolicyDefinition, z.ZodType>();

function schemaOf(def: PolicyDefinition): z.ZodType {
  let s = built.get(def);
  if (s === undefined) {
    s = def.schema(z);
    built.set(def, s);
  }
  return s;
}

/** Parses one policy entry with the named policy's schema; every issue keeps its path. */
export function policyEntrySchema() {
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
    const r = schemaOf(def).safeParse(raw ?? {});
    if (!r.success) {
      for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: [name, ...issue.path], message: issue.message });
      return z.NEVER;
    }
    return { name, config: r.data };
  });
}
