#!/usr/bin/env node
// Enforces the one-way flow of DESIGN.md §7: the hot path (src/worker) never imports
// the control plane (src/primary), the control plane never imports worker code, and
// the shared-memory layout imports neither. Exit 1 with every violation listed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src');
const rules = [
  { from: 'worker', forbid: ['primary', 'discovery', 'demo'] },
  { from: 'primary', forbid: ['worker'] },
  { from: 'discovery', forbid: ['worker'] },
  { from: 'shm', forbid: ['primary', 'worker', 'policies', 'balancers', 'discovery'] },
  { from: 'balancers', forbid: ['primary', 'worker'] },
  { from: 'policies', forbid: ['primary', 'worker'] },
  // `tidegate top` is a client of the admin HTTP API, never of the gateway's internals.
  { from: 'console', forbid: ['primary', 'worker', 'shm', 'metrics', 'discovery', 'policies', 'balancers'] },
];

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const problems = [];
for (const file of walk(src)) {
  const area = relative(src, file).split('/')[0];
  const rule = rules.find((r) => r.from === area);
  if (!rule) continue;
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) continue;
    const target = relative(src, resolve(dirname(file), spec)).split('/')[0];
    if (rule.forbid.includes(target)) problems.push(`${relative(root, file)} imports ${spec} (src/${area} must not import src/${target})`);
  }
}
if (problems.length) {
  console.error('import direction violations:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log('import directions ok');
