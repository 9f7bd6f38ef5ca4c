// Config check of the files access policies name (api-key key files): a file that
// cannot be read or parsed rejects the config with its path, at start, on reload and
// under `tidegate --check`, like the admin token file.
import type { Config } from './schema.js';
import type { ApiKeyConfig } from '../policies/api-key.js';
import { readApiKeyFile } from './api-key-file.js';

export function accessFileIssues(cfg: Config): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const seen = new Map<string, string[]>();
  cfg.routes.forEach((r, i) =>
    r.policies.forEach((p, j) => {
      if (p.name !== 'api-key') return;
      const file = (p.config as ApiKeyConfig).file;
      let issues = seen.get(file);
      if (issues === undefined) {
        const parsed = readApiKeyFile(file);
        issues = 'issues' in parsed ? parsed.issues : [];
        seen.set(file, issues);
      }
      for (const message of issues) out.push({ path: ['routes', i, 'policies', j, 'api-key', 'file'], message: `${file}: ${message}` });
    }),
  );
  return out;
}
