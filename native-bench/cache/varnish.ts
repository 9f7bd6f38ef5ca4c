// The cache scenario's Varnish peer (Debian `varnish`, 7.1): varnishd in the
// foreground on a loopback port, with its own -n working directory (never the system
// instance or its service), `malloc` storage of the same bytes as the other peers'
// caches, and a VCL that only names the origin: the built-in VCL does the rest (store
// what Cache-Control allows, coalesce concurrent misses on its waiting list), as a
// stock install would. The miss phase's paths (cache/miss.ts) go to a second origin,
// those under /direct/ with `return (pass)`, Varnish's way past its cache.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, start, stop, waitForPort } from '../processes.js';
import { DIRECT_PREFIX, MISS_PREFIX } from './miss.js';

export async function varnishVersion(): Promise<{ ok: true; version: string } | { ok: false; reason: string }> {
  try {
    const r = await run('varnishd -V', 'varnishd', ['-V'], { timeoutMs: 5_000 });
    return { ok: true, version: (r.stderr + r.stdout).split('\n')[0]!.trim() };
  } catch (e) {
    return { ok: false, reason: `varnishd not found (${(e as Error).message.split('\n')[0]}); run scripts/install-bench-deps.sh` };
  }
}

export function varnishVcl(originPort: number, missPort: number): string {
  return `vcl 4.1;
backend origin {
  .host = "127.0.0.1";
  .port = "${originPort}";
}
backend fast {
  .host = "127.0.0.1";
  .port = "${missPort}";
}
sub vcl_recv {
  if (req.url ~ "^${DIRECT_PREFIX}/") {
    set req.backend_hint = fast;
    return (pass);
  }
  if (req.url ~ "^${MISS_PREFIX}/") {
    set req.backend_hint = fast;
  }
}
`;
}

export interface RunningVarnish {
  pid: number;
  stop(): Promise<void>;
}

/** `dir` must exist; varnishd's working directory is made inside it. */
export async function startVarnish(port: number, originPort: number, missPort: number, dir: string, sizeBytes: number): Promise<RunningVarnish> {
  const vcl = join(dir, 'bench.vcl');
  writeFileSync(vcl, varnishVcl(originPort, missPort), { mode: 0o644 });
  const args = [
    '-F',
    '-n', join(dir, 'varnish'),
    '-a', `127.0.0.1:${port}`,
    // No management port: nothing talks to this instance but the bench.
    '-T', 'none',
    '-f', vcl,
    // The same bytes as the other peers' caches; objects past them are evicted LRU.
    '-s', `malloc,${sizeBytes}`,
    // XXX: no privilege separation, so a root run needs no varnish/vcache users with access to the temp dir; the bench only listens on loopback.
    '-j', 'none',
  ];
  const child = start('varnish', 'varnishd', args);
  await waitForPort(port, child);
  return { pid: child.pid, stop: () => stop(child, 'SIGTERM', 5_000) };
}
