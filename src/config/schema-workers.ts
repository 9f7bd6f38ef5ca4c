// The `workers` setting: a fixed thread count ("auto" = available cores), or bounds
// within which the primary adds and retires worker threads by their event-loop
// utilisation (src/controllers/worker-scale.ts). Its own file so schema.ts stays a
// list of sections.
import { z } from 'zod';
import { durationMs, percent } from '../units/zod-units.js';

/** The most worker threads one process may run (shared memory is sized per thread). */
export const kMaxWorkerThreads = 256;

const threads = z.number().int().min(1).max(kMaxWorkerThreads);

export const workerScalingSchema = z
  .strictObject({
    /** threads kept at all times; the gateway starts with this many */
    min: threads,
    /** threads at most; shared memory is sized for this many */
    max: threads,
    /** workers' mean event-loop utilisation at or above which a thread is added */
    target: percent.default(75),
    /** utilisation at or below which a thread is retired (when the rest stay below target) */
    release: percent.default(30),
    /** how long utilisation must stay at or above target before a thread is added */
    addAfter: durationMs.default(3_000),
    /** how long utilisation must stay at or below release before a thread is retired */
    retireAfter: durationMs.default(60_000),
    /** least time after a change (counted from the new thread serving or the old one gone) before the next */
    cooldown: durationMs.default(10_000),
  })
  .refine((c) => c.min <= c.max, { message: 'min must not exceed max', path: ['min'] })
  .refine((c) => c.release < c.target, { message: 'release must be below target', path: ['release'] });

export type WorkerScalingConfig = z.output<typeof workerScalingSchema>;

// zod's union tries the block only for an object, so a typo inside it is reported with
// its key and path (workers.targt: unknown key), not as "invalid input".
export const workersSchema = z.union([z.literal('auto'), threads, workerScalingSchema]);

export type WorkersSetting = z.output<typeof workersSchema>;
