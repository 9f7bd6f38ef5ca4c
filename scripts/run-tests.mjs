#!/usr/bin/env node
// Runs every compiled test file with node's built-in runner. Node 20's --test takes
// no globs, so the files are listed here. Pass paths or substrings to run a subset:
//   npm test -- framing proxy
import { readdirSync, statSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const dir = join(root, 'dist', 'test');
function walk(d) {
  return readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const filters = process.argv.slice(2);
// Filters match the path below dist/test, so a checkout whose own path holds the word matches nothing extra.
const files = walk(dir).filter((f) => filters.length === 0 || filters.some((x) => f.slice(dir.length).includes(x))).sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Integration tests start real gateways and servers; on a 2-core machine running
// them one file at a time keeps timing-sensitive assertions honest.
const concurrency = process.env.TIDEGATE_TEST_CONCURRENCY ?? '1';
const r = spawnSync(process.execPath, ['--test', '--test-force-exit', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
