// Loading a plugin module by file path, on the primary (config check) and on each
// worker (once per config generation). No schema library here: workers import this.
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { PluginDefinition } from './plugin-api.js';

export const PLUGIN_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * The module URL carries the file's modification time and size, so a reload after an
 * edit imports the new code, and an unchanged file is the module already loaded.
 * XXX: ESM has no unloading: every edited version of a plugin stays in memory until
 * the worker restarts (one module per edit, small).
 */
export function pluginUrl(path: string): string {
  const st = statSync(path);
  return `${pathToFileURL(path).href}?v=${Math.trunc(st.mtimeMs)}-${st.size}`;
}

/** What is wrong with a module's export as a plugin definition, or null. */
export function definitionProblem(def: unknown): string | null {
  if (typeof def !== 'object' || def === null) return 'the module exports no plugin (expected `export default { name, create, … }` or `export const plugin`)';
  const d = def as Record<string, unknown>;
  if (typeof d.name !== 'string' || !PLUGIN_NAME_RE.test(d.name)) return `plugin name must be 1–64 letters, digits, ".", "_" or "-", got ${JSON.stringify(d.name)}`;
  if (typeof d.create !== 'function') return `plugin ${d.name}: create must be a function returning its phases`;
  if (d.schema !== undefined && typeof d.schema !== 'function') return `plugin ${d.name}: schema must be a function (z) => zod schema`;
  return null;
}

/** Imports the module at `path` and returns its definition; throws with the reason. */
export async function importPlugin(path: string): Promise<PluginDefinition> {
  const mod = (await import(pluginUrl(path))) as { default?: unknown; plugin?: unknown };
  const def = mod.default ?? mod.plugin;
  const problem = definitionProblem(def);
  if (problem !== null) throw new Error(problem);
  return def as PluginDefinition;
}

/** Every plugin of a config by name (a worker's view: the primary already checked them). */
export async function importPlugins(paths: readonly string[]): Promise<Map<string, PluginDefinition>> {
  const out = new Map<string, PluginDefinition>();
  for (const p of paths) {
    const def = await importPlugin(p);
    out.set(def.name, def);
  }
  return out;
}
