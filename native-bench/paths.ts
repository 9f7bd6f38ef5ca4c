// Where things are, whether the bench runs from dist/native-bench or .tmp/bench-dist/native-bench:
// walk up from this compiled file to the repo root (the package.json named "tidegate").
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tidegate') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('native-bench: cannot find the tidegate repo root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export const REPO_ROOT = findRepoRoot();
/** the source folder: peer config templates and Lua files live here, not in the build output */
export const BENCH_SRC = join(REPO_ROOT, 'native-bench');
export const PEER_FILES = join(BENCH_SRC, 'peers');
/** wrk's status counting and JSON report, loaded by the other wrk scripts too (cache/requests.lua, as WRK_REPORT) */
export const WRK_REPORT_LUA = join(BENCH_SRC, 'load', 'wrk-report.lua');
/** compiled bench code (this file's folder), for the Node peer scripts */
export const BENCH_DIST = dirname(fileURLToPath(import.meta.url));
export const TIDEGATE_CLI = join(REPO_ROOT, 'dist', 'src', 'cli.js');

/**
 * `git describe --always --dirty` of the checkout holding `path` (a build's cli.js, or
 * a folder), 'unknown' outside one: a report names the commit of the build it ran, which
 * `--tidegate` can point at another checkout's.
 */
export function commitOf(path: string): string {
  const dir = existsSync(path) && statSync(path).isDirectory() ? path : dirname(path);
  const r = spawnSync('git', ['-C', dir, 'describe', '--always', '--dirty'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}
