// Closed-loop load with wrk: every connection sends its next request as soon as the
// previous answer arrives — the max-throughput measure. Keep-alive by default;
// `close` sends Connection: close so every request pays connection setup.
import { WRK_REPORT_LUA } from '../paths.js';
import { run } from '../processes.js';
import { RATE_LIMIT } from '../peers/rate-limit.js';

export interface WrkOptions {
  port: number;
  scheme?: 'http' | 'https' | undefined;
  path: string;
  threads: number;
  connections: number;
  durationS: number;
  close: boolean;
  cpus: string | undefined;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  /** 2xx responses per second: errors are not throughput */
  rps: number;
  bytes: number;
  ok2xx: number;
  non2xx: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
}

export async function wrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${o.threads}`,
    `-c${Math.max(o.connections, o.threads)}`,
    `-d${o.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    WRK_REPORT_LUA,
    '-H',
    `${RATE_LIMIT.header}: ${RATE_LIMIT.headerValue}`,
  ];
  if (o.close) args.push('-H', 'Connection: close');
  // wrk speaks TLS for https:// URLs and does not verify the certificate.
  args.push(`${o.scheme ?? 'http'}://127.0.0.1:${o.port}${o.path}`);
  const r = await run('wrk', 'wrk', args, { cpus: o.cpus, timeoutMs: (o.durationS + 30) * 1000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (!line) throw new Error(`wrk printed no result: ${r.stdout.slice(-1000)} ${r.stderr.slice(-1000)}`);
  const j = JSON.parse(line.slice(9)) as {
    requests: number;
    duration_us: number;
    bytes: number;
    ok2xx: number;
    non2xx: number;
    errors: WrkResult['errors'];
    latency_us: WrkResult['latencyUs'];
  };
  const durationS = j.duration_us / 1e6;
  return {
    requests: j.requests,
    durationS,
    rps: j.ok2xx / durationS,
    bytes: j.bytes,
    ok2xx: j.ok2xx,
    non2xx: j.non2xx,
    errors: j.errors,
    latencyUs: j.latency_us,
  };
}
