import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { ConfigError, StartupCodes, StartupError } from '../errors.js';
import { configSchema, crossSectionIssues, type Config } from './schema.js';
import { tlsIssues } from './tls-checks.js';
import { tokenFileIssues } from './token-file.js';

/** `routes[0].policies[0].rate-limit.rate` from zod's path array. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(root)';
}

const ENV_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `${VAR}` / `${VAR:-default}` in every string; an unset variable without default is an error at its path. */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, path: PropertyKey[], issues: string[]): unknown {
  if (typeof value === 'string') {
    // A value that is exactly one ${...} takes the variable's YAML type, so
    // `port: "${PORT:-8080}"` is a number and `token: "${TOKEN}"` stays a string.
    const whole = /^\$\{[^}]*\}$/.test(value);
    const out = value.replace(ENV_RE, (_m, name: string, def: string | undefined) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (def !== undefined) return def;
      issues.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return '';
    });
    if (whole && out !== '') {
      const scalar = parseDocument(out).toJS() as unknown;
      if (typeof scalar === 'number' || typeof scalar === 'boolean') return scalar;
    }
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, i], issues));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteEnv(v, env, [...path, k], issues);
    return out;
  }
  return value;
}

/** Validates an already-parsed config object; throws ConfigError listing every issue. */
export function validateConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  const issues: string[] = [];
  const substituted = substituteEnv(raw, env, [], issues);
  const result = configSchema.safeParse(substituted);
  const cross = [...crossSectionIssues(substituted), ...tlsIssues(substituted), ...tokenFileIssues(substituted)];
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) issues.push(`${formatPath([...issue.path, key])}: unknown key`);
      } else {
        issues.push(`${formatPath(issue.path)}: ${issue.message}`);
      }
    }
  }
  for (const c of cross) issues.push(`${formatPath(c.path)}: ${c.message}`);
  if (issues.length > 0) throw new ConfigError(issues);
  return result.data!;
}

/** Parses YAML text; syntax errors are reported with line and column. */
export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // YAML errors cascade; the first few say what is wrong.
    const first = doc.errors.slice(0, 3).map((e) => `(yaml) ${e.message.split('\n')[0]}`);
    if (doc.errors.length > 3) first.push(`(yaml) … and ${doc.errors.length - 3} more syntax errors`);
    throw new ConfigError(first);
  }
  return validateConfig(doc.toJS() ?? {}, env);
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new StartupError(StartupCodes.CONFIG_READ, `cannot read config file ${file}: ${(err as Error).message}`);
  }
  return parseConfigText(text, env);
}
