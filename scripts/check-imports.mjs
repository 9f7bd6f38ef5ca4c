#!/usr/bin/env node
// Enforces the one-way flow of docs/architecture.md §6: the hot path (src/worker) never imports
// the control plane (src/primary), the control plane never imports worker code, and
// the shared-memory layout imports neither. Exit 1 with every violation listed.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src');
const rules = [
  { from: 'worker', forbid: ['primary', 'discovery', 'demo', 'controllers', 'fleet'] },
  // Redis leases and the etcd source: control plane, beside src/primary.
  { from: 'fleet', forbid: ['worker'] },
  { from: 'controllers', forbid: ['worker'] },
  { from: 'primary', forbid: ['worker'] },
  { from: 'discovery', forbid: ['worker', 'primary', 'config'] },
  // The config layer assembles every schema; nothing it imports may import it back.
  { from: 'config', forbid: ['primary', 'worker', 'fleet', 'console', 'demo'] },
  { from: 'metrics', forbid: ['primary', 'worker', 'config'] },
  // Unit parsers: the bottom layer every other one reads.
  { from: 'units', forbid: ['primary', 'worker', 'config', 'policies', 'metrics', 'discovery', 'controllers', 'shm', 'fleet', 'plugins', 'balancers'] },
  { from: 'shm', forbid: ['primary', 'worker', 'policies', 'balancers', 'discovery', 'fleet'] },
  { from: 'balancers', forbid: ['primary', 'worker'] },
  { from: 'policies', forbid: ['primary', 'worker', 'config'] },
  // Messages between the threads: types both sides share, importing neither side.
  { from: 'messages.ts', forbid: ['primary', 'worker', 'controllers', 'fleet', 'discovery'] },
  // Plugin host and API: loaded by workers (and checked on the primary through src/config).
  { from: 'plugins', forbid: ['primary', 'worker', 'controllers', 'discovery'] },
  // The Lua host and its ngx API: loaded by workers (and its compiler by the config check).
  { from: 'lua', forbid: ['primary', 'worker', 'controllers', 'discovery', 'fleet'] },
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
// Threads load nothing they do not run: follow every value import (not `import type`,
// which compiles away) from a thread's entry and refuse control-plane packages and the
// modules only the primary runs (its own code, the config schemas).
// undici: the primary's HTTP client (probes, discovery, webhooks); workers have their own (src/worker/upstream).
const threadForbidden = ['zod', 'yaml', 'pino', 'prom-client', 'piscina', 'ioredis', 'etcd3', 'jose', 'undici'];
const dynamicOnly = { wasmoon: 'src/lua/lua-vm.ts', ws: 'src/worker/websocket-upgrade.ts' };
const primaryOnly = (rel) => rel.startsWith('src/primary/') || /^src\/config\/schema[^/]*\.ts$/.test(rel);
function checkThreadGraph(entry, thread) {
  const reached = new Map(); // file -> the file that imported it
  const reported = new Set(); // each forbidden package once, by the first chain found
  const queue = [join(src, entry)];
  reached.set(queue[0], null);
  const chainTo = (file) => {
    const chain = [];
    for (let f = file; f; f = reached.get(f)) chain.unshift(relative(root, f));
    return chain.join(' → ');
  };
  while (queue.length > 0) {
    const file = queue.shift();
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)(?!\s+type\b)[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
        if (existsSync(target) && !reached.has(target)) {
          reached.set(target, file);
          queue.push(target);
          if (primaryOnly(relative(root, target))) problems.push(`${thread} load ${relative(root, target)}: ${chainTo(target)} (a module only the primary runs)`);
        }
      } else if (spec in dynamicOnly && m[3] === undefined) {
        // Only a dynamic import, run when a generation needs it: a worker without Lua
        // scripts (WebSocket routes) never loads wasmoon (ws).
        problems.push(`${relative(root, file)} imports ${spec} statically (use the dynamic import in ${dynamicOnly[spec]})`);
      } else if (threadForbidden.includes(spec.split('/')[0]) && !reported.has(spec)) {
        reported.add(spec);
        problems.push(`${thread} load ${spec}: ${chainTo(file)} (keep schemas and control-plane packages out of the thread's import graph)`);
      }
    }
  }
  return reached.size;
}
checkThreadGraph('worker/main.ts', 'worker threads');
// The histogram aggregation thread (piscina): merges and fits, nothing else.
checkThreadGraph('metrics/aggregator-task.ts', 'the aggregation thread');

if (problems.length) {
  console.error('import direction violations:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log('import directions ok');
