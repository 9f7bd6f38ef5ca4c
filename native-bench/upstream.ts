// The upstream: its own nginx instance (never the proxy nginx), fixed bodies of
// 0 B, 1 KiB, 16 KiB and 256 KiB. It must never be the bottleneck: the "direct" peer
// measures its ceiling in the same run.
import { join } from 'node:path';
import { body, SIZE_NAMES } from './bodies.js';
import { freePort } from './ports.js';
import { nginxVersion, startNginx, type RunningNginx } from './peers/nginx-common.js';
import { fillTemplate, makePrefix, writeReadable } from './peers/peer.js';

export interface Upstream extends RunningNginx {
  port: number;
  workers: number;
}

export async function startUpstream(workDir: string, workers: number, cpus: string | undefined): Promise<Upstream> {
  const v = await nginxVersion();
  if (!v.ok) throw new Error(`the upstream needs nginx: ${v.reason}`);
  const prefix = makePrefix(workDir);
  for (const s of SIZE_NAMES) writeReadable(join(prefix, 'html', s), body(s));
  const port = await freePort();
  const conf = fillTemplate('nginx-upstream.conf', { WORKERS: workers, PREFIX: prefix, PORT: port, BODY_1K: body('1k').toString('latin1') });
  const n = await startNginx('upstream-nginx', prefix, conf, port, cpus, workers);
  return { ...n, port, workers };
}
