// For the measurement scripts: the nginx `return 200` upstream (1 KiB body unless told, 1 worker;
// `cacheControl`, when given, is the Cache-Control value of its every response)
// and the nginx proxy_pass yardstick in front of it (2 workers, upstream keepalive 64,
// HTTP/1.1, Connection ""), written into `dir`; returns the two spawned processes.
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function startNginxPair(dir, upstreamPort, proxyPort, bodyBytes = 1024, cacheControl = '') {
  // nginx refuses a `return` text over 4 KiB: a larger body is a file.
  writeFileSync(join(dir, 'body.bin'), 'x'.repeat(bodyBytes), { mode: 0o644 });
  chmodSync(dir, 0o755); // nginx's workers run as another user
  const header = cacheControl ? `add_header Cache-Control "${cacheControl}"; ` : '';
  const answer = header + (bodyBytes <= 4000 ? `return 200 "${'x'.repeat(bodyBytes)}";` : `root ${dir}; try_files /body.bin =404;`);
  writeFileSync(join(dir, 'up.conf'), `worker_processes 1; daemon off; pid ${dir}/up.pid; error_log ${dir}/up.err;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:${upstreamPort} reuseport; keepalive_requests 1000000; location / { ${answer} } } }\n`);
  writeFileSync(join(dir, 'proxy.conf'), `worker_processes 2; daemon off; pid ${dir}/px.pid; error_log ${dir}/px.err;
events { worker_connections 4096; }
http { access_log off; upstream up { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${proxyPort} reuseport; keepalive_requests 1000000;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }\n`);
  return [
    spawn('nginx', ['-p', dir, '-c', join(dir, 'up.conf')], { stdio: 'ignore' }),
    spawn('nginx', ['-p', dir, '-c', join(dir, 'proxy.conf')], { stdio: 'ignore' }),
  ];
}
