// The top-level `redis` section: where `scope: cluster` rate limits keep their buckets,
// and what the fleet does while it cannot reach them (src/fleet/cluster-limiter.ts).
import { resolve } from 'node:path';
import { z } from 'zod';
import { durationMs } from '../units/zod-units.js';

const pemPath = z.string().min(1).transform((p) => resolve(p));

const redisTlsSchema = z.strictObject({
  /** CA bundle that signs the server's certificate (default: Node's trusted roots) */
  ca: pemPath.optional(),
  /** client certificate and key, for servers that ask for one (tls-auth-clients) */
  cert: pemPath.optional(),
  key: pemPath.optional(),
  /** name the server's certificate must carry (default: the URL's host) */
  serverName: z.string().min(1).optional(),
  /** false only for a lab with self-signed certificates */
  rejectUnauthorized: z.boolean().default(true),
});

export const redisSchema = z
  .strictObject({
    /** redis://host:port[/db] or rediss://… (TLS with Node's defaults) */
    url: z.string().regex(/^rediss?:\/\/[^\s]+$/, 'expected a URL like "redis://127.0.0.1:6379" or "rediss://…"'),
    /** ACL user (Redis 6+); with only `password`, AUTH uses the default user */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** TLS settings; `rediss://` alone turns TLS on with the defaults */
    tls: redisTlsSchema.optional(),
    /** prefix of every bucket key, so several fleets can share one Redis */
    keyPrefix: z.string().regex(/^[A-Za-z0-9:._-]{0,64}$/, 'expected letters, digits and ":._-"').default('tidegate:rl:'),
    /** while Redis is unreachable: admit everything, refuse everything (503), or each instance enforces rate / instances */
    onFailure: z.enum(['allow', 'deny', 'local']).default('local'),
    /** how many instances share each cluster limit: sizes the local share (onFailure local) and the credit a key gets while its lease refills */
    instances: z.number().int().min(1).max(10_000).default(1),
    /** how often the primary settles leases with Redis */
    syncInterval: durationMs.pipe(z.number().min(5).max(1000)).default(50),
    lease: z
      .strictObject({
        /** a batch covers this much of the rate a key's lease is planned for: its demand here, at the fleet's limit its share (rate / instances) */
        ahead: durationMs.pipe(z.number().min(10).max(10_000)).default(250),
        /** smallest batch: one Redis command is worth at least this many requests; each instance may hold this many (+ the low-water mark) per key the fleet cannot spend */
        min: z.number().int().min(1).max(100_000).default(8),
        /** a key unused this long returns its tokens to Redis */
        idle: durationMs.pipe(z.number().min(50).max(600_000)).default(1000),
        /** most tokens one instance holds per key */
        maxTokens: z.number().int().min(1).max(1_000_000).default(10_000),
      })
      .prefault({}),
    /** requests one key may take on credit while its lease is empty, per instance (charged to Redis at the next exchange) */
    bridgeBurst: z.number().int().min(0).max(1000).default(1),
    /** a command unanswered this long counts as Redis unreachable */
    commandTimeout: durationMs.pipe(z.number().min(10).max(60_000)).default(500),
    connectTimeout: durationMs.pipe(z.number().min(10).max(60_000)).default(1000),
  });

export type RedisConfig = z.output<typeof redisSchema>;

/** A `scope: cluster` rate limit needs a `redis` section (checked on the raw input, like the other cross-section checks). */
export function redisIssues(raw: unknown): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const cfg = raw as { redis?: unknown; routes?: unknown } | null;
  if (cfg === null || typeof cfg !== 'object' || cfg.redis !== undefined || !Array.isArray(cfg.routes)) return out;
  cfg.routes.forEach((r: unknown, i) => {
    const policies = (r as { policies?: unknown } | null)?.policies;
    if (!Array.isArray(policies)) return;
    policies.forEach((p: unknown, j) => {
      const rl = (p as Record<string, unknown> | null)?.['rate-limit'] as { scope?: unknown } | undefined;
      if (rl?.scope === 'cluster') out.push({ path: ['routes', i, 'policies', j, 'rate-limit', 'scope'], message: 'scope: cluster needs a top-level redis section' });
    });
  });
  return out;
}
