// `ban`: automatic abuse blocking. A client that collects `count` refusals with the
// listed statuses within `window` is banned for `for`: every worker refuses it at once
// with 403 TG_ERR_BANNED and Retry-After, before any later policy runs.
//
//   policies:
//     - ban: { when: { statuses: [401, 403, 429], count: 20, window: 1m }, for: 10m, key: client-ip }
//     - api-key: { file: keys.yaml }
//     - rate-limit: { key: consumer, rate: 50/s }
//
// List it first: it counts the final status of every request it let through, whatever
// answered it (a later policy's 401 or 429, or the upstream's 403), and a refusal by a
// policy before it never reaches it. Counts and bans live in the shared ban table
// (src/shm/ban-table.ts), so refusals on every worker add up and a ban holds on all of
// them. The table is keyed by (policy name, key): policies sharing a name share bans.
// Bans are listed and lifted through GET/DELETE /v1/bans and can be set by an operator
// or an event action (the `ban` override target).
//
// key: `client-ip` (after proxy.trustedProxies) or `header:<name>` (a request without
// the header is keyed by its client address).
import type { z as ZodNamespace } from 'zod';
import { Errors, type ErrorSpec } from '../errors.js';
import { hash32, SEED_A, SEED_B } from '../balancers/hash.js';
import { kBanTickMs } from '../shm/layout.js';
import { BanTable } from '../shm/ban-table.js';
import { SharedState } from '../shm/shared-state.js';
import { durationOf, policyNameOf } from './policy-units.js';
import { watchStatus, type AccessContext, type PolicyDefinition, type PolicyEnv, type PolicyInstance, type StatusWatcher, type Zod } from './policy.js';

export function banSchema(z: Zod) {
  const ms = durationOf(z);
  return z
    .strictObject({
      /** what GET /v1/bans calls this policy; default: the route's name */
      name: policyNameOf(z).optional(),
      when: z
        .strictObject({
          /** final statuses that count as a refusal */
          statuses: z.array(z.number().int().min(100).max(599)).min(1).default([401, 403, 429]),
          count: z.number().int().min(1).max(1_000_000).default(20),
          window: ms.pipe(z.number().min(kBanTickMs).max(86_400_000)).default(60_000),
        })
        .prefault({}),
      for: ms.pipe(z.number().min(kBanTickMs).max(30 * 86_400_000)).default(600_000),
      key: z
        .union([z.literal('client-ip'), z.string().regex(/^header:[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'expected "client-ip" or "header:<name>"').transform((v) => v.toLowerCase())])
        .default('client-ip'),
    });
}

export type BanConfig = ZodNamespace.output<ReturnType<typeof banSchema>>;

/** The hashes a (policy, key) pair is filed under; the primary files manual bans with the same ones. */
export function banHashes(policyName: string, key: string): { policy: number; a: number; b: number } {
  return { policy: hash32(policyName) | 0, a: (hash32(key, SEED_A) | 1) | 0, b: hash32(key, SEED_B) | 0 };
}

let tableFor: { buffer: SharedArrayBuffer; table: BanTable } | null = null;

function banTable(env: PolicyEnv): BanTable {
  if (tableFor === null || tableFor.buffer !== env.shm) tableFor = { buffer: env.shm, table: new BanTable(SharedState.attach(env.shm, { maxWorkers: env.maxWorkers })) };
  return tableFor.table;
}

class Ban implements PolicyInstance, StatusWatcher {
  readonly name = 'ban';
  private readonly policy: number;
  private readonly header: string | null;
  /** statuses that count, by status code */
  private readonly counts = new Uint8Array(600);
  private readonly windowTicks: number;
  private readonly forTicks: number;

  constructor(
    private readonly cfg: BanConfig,
    private readonly table: BanTable,
    name: string,
  ) {
    this.policy = hash32(name) | 0;
    this.header = cfg.key === 'client-ip' ? null : cfg.key.slice(7);
    for (const s of cfg.when.statuses) this.counts[s] = 1;
    this.windowTicks = Math.max(1, Math.round(cfg.when.window / kBanTickMs));
    this.forTicks = Math.max(1, Math.round(cfg.for / kBanTickMs));
  }

  private key(ctx: AccessContext): string {
    const name = this.header;
    if (name === null) return ctx.clientIp;
    const h = ctx.headers;
    for (let j = 0; j < h.length; j += 2) if (h[j] === name) return h[j + 1]!;
    return ctx.clientIp;
  }

  access(ctx: AccessContext): ErrorSpec | null {
    const key = this.key(ctx);
    const t = this.table;
    const left = t.bannedFor(this.policy, (hash32(key, SEED_A) | 1) | 0, hash32(key, SEED_B) | 0, t.tick());
    if (left > 0) {
      ctx.responseHeaders.push('retry-after', String(Math.max(1, Math.ceil((left * kBanTickMs) / 1000))));
      return Errors.BANNED;
    }
    watchStatus(ctx, this, key);
    return null;
  }

  onStatus(key: string, status: number): void {
    if (status >= 600 || this.counts[status] !== 1) return;
    const t = this.table;
    t.count(this.policy, (hash32(key, SEED_A) | 1) | 0, hash32(key, SEED_B) | 0, key, this.cfg.when.count, this.windowTicks, this.forTicks, t.tick());
  }
}

export const banPolicy: PolicyDefinition = {
  name: 'ban',
  schema: banSchema,
  create(config: unknown, env: PolicyEnv): PolicyInstance {
    const cfg = config as BanConfig;
    return new Ban(cfg, banTable(env), cfg.name ?? env.routeName);
  },
};
