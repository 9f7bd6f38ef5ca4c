// Starting an nginx instance from its own prefix: never /etc/nginx, never the system
// service. `-e` sends even start-up errors to the prefix (nginx ≥ 1.19.5).
import { join } from 'node:path';
import { run, start, stop, waitForPort } from '../processes.js';
import { processTree } from '../proc-stats.js';
import type { Availability } from './peer.js';
import { writeReadable } from './peer.js';

export async function nginxVersion(): Promise<Availability> {
  try {
    const r = await run('nginx -v', 'nginx', ['-v'], { timeoutMs: 5_000 });
    return { ok: true, version: (r.stderr + r.stdout).trim().replace(/^nginx version: /, '') };
  } catch (e) {
    return { ok: false, reason: `nginx not found (${(e as Error).message.split('\n')[0]}); run scripts/install-bench-deps.sh` };
  }
}

/**
 * The start of a bench nginx's conf, up to inside `http {`: foreground, its files under
 * `dir` (pid, error log, temp paths), no access log, keep-alive without a request limit.
 */
export function nginxHttpPrelude(dir: string, workers: number): string {
  return `worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;`;
}

export interface RunningNginx {
  pid: number;
  stop(): Promise<void>;
}

export async function startNginx(name: string, prefix: string, conf: string, port: number, cpus: string | undefined, workers: number): Promise<RunningNginx> {
  const confFile = join(prefix, 'nginx.conf');
  writeReadable(confFile, conf);
  await run(`${name} -t`, 'nginx', ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', confFile, '-t', '-q'], { timeoutMs: 10_000 });
  const child = start(name, 'nginx', ['-p', prefix, '-e', join(prefix, 'error.log'), '-c', confFile], { cpus });
  await waitForPort(port, child);
  // Wait until every worker process exists, so the first measured second is not start-up.
  const deadline = Date.now() + 5_000;
  while (processTree(child.pid).length < workers + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return {
    pid: child.pid,
    // SIGQUIT is nginx's graceful stop; stop() escalates to SIGKILL of the group.
    stop: () => stop(child, 'SIGQUIT', 3_000),
  };
}
