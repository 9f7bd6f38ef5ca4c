// `api-key`: the caller presents a key in a header; the key file maps it to a
// consumer and that consumer's tenant.
//
//   policies:
//     - api-key: { file: keys.yaml, header: x-api-key, consumers: [alice, bob] }
//
// keys.yaml (re-read by the primary when it changes; a bad file is logged and the keys
// loaded before stay):
//   keys:
//     - { consumer: alice, tenant: acme, sha256: "<64 hex digits of SHA-256(key)>" }
//     - { consumer: bob, key: "plain-text key, hashed when loaded" }
//
// No key, or one the file does not hold: 401 TG_ERR_AUTH_REQUIRED. A known key whose
// consumer (or tenant) is not in this route's `consumers` (`tenants`): 403
// TG_ERR_FORBIDDEN. The consumer and tenant go to the access log and later policies
// (rate-limit `key: consumer` / `key: tenant`, tenant tiers).
//
// Workers hold only SHA-256 digests (hex) of the keys, sent by the primary
// (src/policies/policy-data.ts): the presented key is hashed (crypto.hash, one call,
// a quarter of createHash's cost) and looked up, so no plain key is kept in memory
// beyond the request and the lookup compares digests. Keys are printable ASCII, so
// the header's characters and the file's UTF-8 hash alike.
import { hash } from 'node:crypto';
import { resolve } from 'node:path';
import type { z as ZodNamespace } from 'zod';
import { Errors, type ErrorSpec } from '../errors.js';
import { dataSlot, type DataSlot } from './policy-data.js';
import { policyNameOf } from './policy-units.js';
import type { AccessContext, PolicyDefinition, PolicyInstance, Zod } from './policy.js';

export function apiKeySchema(z: Zod) {
  return z.strictObject({
    /** the key file (YAML or JSON); a relative path is taken from the working directory */
    file: z
      .string()
      .min(1)
      .transform((p) => resolve(p)),
    /** the request header carrying the key */
    header: z
      .string()
      .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected a header name')
      .transform((h) => h.toLowerCase())
      .default('x-api-key'),
    /** only these consumers may use the route (default: any consumer in the file) */
    consumers: z.array(policyNameOf(z)).min(1).optional(),
    /** only consumers of these tenants may use the route */
    tenants: z.array(policyNameOf(z)).min(1).optional(),
  });
}

export type ApiKeyConfig = ZodNamespace.output<ReturnType<typeof apiKeySchema>>;

/** SHA-256 (hex) of a key → [consumer, tenant | null] */
export type ApiKeyTable = ReadonlyMap<string, readonly [string, string | null]>;

export function apiKeyDataKey(file: string): string {
  return `api-key:${file}`;
}

class ApiKey implements PolicyInstance {
  readonly name = 'api-key';
  private readonly consumers: ReadonlySet<string> | null;
  private readonly tenants: ReadonlySet<string> | null;
  private readonly challenge: string[];

  constructor(
    private readonly cfg: ApiKeyConfig,
    private readonly slot: DataSlot<ApiKeyTable>,
  ) {
    this.consumers = cfg.consumers ? new Set(cfg.consumers) : null;
    this.tenants = cfg.tenants ? new Set(cfg.tenants) : null;
    // RFC 9110 §11.6.1 wants a challenge with every 401; there is no registered scheme for API keys.
    this.challenge = ['www-authenticate', `ApiKey header="${cfg.header}"`];
  }

  access(ctx: AccessContext): ErrorSpec | null {
    const name = this.cfg.header;
    const h = ctx.headers;
    let key: string | null = null;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i] === name) {
        key = h[i + 1]!;
        break;
      }
    }
    const table = this.slot.value;
    const hit = key === null || key.length === 0 || table === undefined ? undefined : table.get(hash('sha256', key, 'hex'));
    if (hit === undefined) {
      ctx.responseHeaders.push(this.challenge[0]!, this.challenge[1]!);
      return Errors.AUTH_REQUIRED;
    }
    ctx.consumer = hit[0];
    ctx.tenant = hit[1];
    if (this.consumers !== null && !this.consumers.has(hit[0])) return Errors.FORBIDDEN;
    if (this.tenants !== null && (hit[1] === null || !this.tenants.has(hit[1]))) return Errors.FORBIDDEN;
    return null;
  }
}

export const apiKeyPolicy: PolicyDefinition = {
  name: 'api-key',
  schema: apiKeySchema,
  create(config: unknown): PolicyInstance {
    const cfg = config as ApiKeyConfig;
    return new ApiKey(cfg, dataSlot<ApiKeyTable>(apiKeyDataKey(cfg.file)));
  },
};
