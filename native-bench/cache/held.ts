// What each cache peer actually holds while the Zipf mix runs, sampled once a second:
// the peers are configured with the same bytes, but only a measurement says whether
// each keeps to them (nginx's cache manager trims to `max_size` after the fact, by
// deleting files on a schedule of its own). Bodies are counted the same way for every
// peer where the peer lets us: the objects' own sizes, not the store's overhead.
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request } from 'undici';
import { run } from '../processes.js';
import { objectSize } from './objects.js';

export interface Held {
  /** objects held */
  readonly objects: number;
  /** their body bytes (Varnish: its storage's bytes, which count object headers too) */
  readonly bytes: number;
}

export type HeldProbe = () => Promise<Held>;

export function tidegateHeld(adminPort: number): HeldProbe {
  return async () => {
    const r = await request(`http://127.0.0.1:${adminPort}/v1/cache`);
    const j = (await r.body.json()) as { entries: number; bodyBytes: number };
    return { objects: j.entries, bytes: j.bodyBytes };
  };
}

/**
 * nginx names a cache file by the MD5 of its key (`$scheme$proxy_host$request_uri` by
 * default, here `http://origin/obj/<i>`), so the files present say which objects it holds.
 */
export function nginxHeld(cacheDir: string, objects: number, upstreamName: string): HeldProbe {
  const sizeOf = new Map<string, number>();
  for (let i = 1; i <= objects; i++) sizeOf.set(createHash('md5').update(`http://${upstreamName}/obj/${i}`).digest('hex'), objectSize(i));
  return async () => {
    let n = 0;
    let bytes = 0;
    // Files deleted while the walk runs are the cache manager at work: skip them.
    const entries = await readdir(cacheDir, { recursive: true, withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isFile()) continue;
      const size = sizeOf.get(e.name);
      if (size === undefined) continue;
      n++;
      bytes += size;
    }
    return { objects: n, bytes };
  };
}

export function varnishHeld(workDir: string): HeldProbe {
  return async () => {
    const r = await run('varnishstat', 'varnishstat', ['-n', workDir, '-1', '-j', '-f', 'MAIN.n_object', '-f', 'SMA.s0.g_bytes'], { timeoutMs: 5_000 });
    const j = JSON.parse(r.stdout) as { counters?: Record<string, { value: number }> } & Record<string, { value: number }>;
    const c = j.counters ?? j;
    return { objects: c['MAIN.n_object']?.value ?? 0, bytes: c['SMA.s0.g_bytes']?.value ?? 0 };
  };
}

/** Samples `probe` every `everyMs` until `stop()`; returns the mean and the largest of each. */
export function sampleHeld(probe: HeldProbe, everyMs = 1_000): { stop(): Promise<{ meanBytes: number; maxBytes: number; meanObjects: number; samples: number }> } {
  const got: Held[] = [];
  let done = false;
  const loop = (async () => {
    while (!done) {
      try {
        got.push(await probe());
      } catch {
        // a sample that fails (peer busy) is just not counted
      }
      if (!done) await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      done = true;
      await loop;
      const n = got.length || 1;
      return {
        meanBytes: got.reduce((a, h) => a + h.bytes, 0) / n,
        maxBytes: got.reduce((a, h) => Math.max(a, h.bytes), 0),
        meanObjects: got.reduce((a, h) => a + h.objects, 0) / n,
        samples: got.length,
      };
    },
  };
}
