// Access policies by name. A route lists policies as one-key objects
// (`- rate-limit: { ... }`); each policy file exports a definition with its config
// schema and is registered here, so adding a policy touches one file and one line.
// Workers import this file: it must not load zod (the config layer validates entries,
// src/config/policy-entries.ts).
import type { PolicyDefinition } from './policy.js';
import { rateLimitPolicy } from './rate-limit.js';
import { ipAccessPolicy } from './ip-access.js';
import { apiKeyPolicy } from './api-key.js';
import { banPolicy } from './ban.js';
import { jwtPolicy } from './jwt.js';
import { pluginPolicy } from '../plugins/plugin-policy.js';
import { luaPolicy } from '../lua/lua-policy.js';

const definitions: readonly PolicyDefinition[] = [rateLimitPolicy, ipAccessPolicy, apiKeyPolicy, banPolicy, jwtPolicy, pluginPolicy, luaPolicy];

export function policyDefinition(name: string): PolicyDefinition | undefined {
  return definitions.find((d) => d.name === name);
}

export function knownPolicyNames(): string[] {
  return definitions.map((d) => d.name);
}

export interface PolicyEntry {
  readonly name: string;
  /** the policy's validated config, structured-clone safe so it can travel to workers */
  readonly config: unknown;
}
