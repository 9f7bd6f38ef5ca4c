// `tidegate fault-upstream`: the fault-injecting upstream as a process of its own, for
// a person trying the gateway by hand and for the overload benchmark.
import { parseDuration } from '../units/units.js';
import { DEFAULT_FAULT_SETTINGS, startFaultUpstream, type FaultSettings, type HealthMode } from './fault-upstream.js';

export const FAULT_UPSTREAM_USAGE = `tidegate fault-upstream [flags]   an HTTP/1.1 upstream that fails on purpose

  --host H           listen address (default 127.0.0.1)
  --port N           listen port (default 9001; 0 picks one)
  --name NAME        x-upstream header and body field (default fault)
  --capacity N       requests in service at once (default ${DEFAULT_FAULT_SETTINGS.capacity})
  --service D        service time per request, e.g. 20ms (default ${DEFAULT_FAULT_SETTINGS.serviceMs}ms)
  --jitter D         uniform ± jitter on the service time (default 0ms)
  --queue N          FIFO queue bound; beyond it 503 at once (default ${DEFAULT_FAULT_SETTINGS.queueLimit})
  --error-rate X     share answered --error-status at once (0..1)
  --error-status N   status of injected errors (default 500)
  --reset-rate X     share of connections reset (0..1)
  --stall-rate X     share never answered (0..1)
  --health MODE      auto (reflects the faults) | up | down

Control at run time: GET/PUT http://HOST:PORT/_fault (JSON), POST /_fault/reset.
Prints one JSON line {"event":"fault-upstream-started",...} on stdout when listening.`;

function fail(message: string): never {
  console.error(`tidegate fault-upstream: ${message}\n\n${FAULT_UPSTREAM_USAGE}`);
  process.exit(2);
}

function ms(flag: string, v: string): number {
  const d = parseDuration(v);
  if (!d.ok) fail(`${flag}: ${d.expected}`);
  return d.value;
}

function num(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) fail(`${flag}: expected a number, got "${v}"`);
  return n;
}

export async function runFaultUpstreamCli(argv: string[]): Promise<void> {
  const settings: Partial<FaultSettings> = {};
  let host = '127.0.0.1';
  let port = 9001;
  let name = 'fault';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const value = (): string => {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) fail(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--host': host = value(); break;
      case '--port': port = num(flag, value()); break;
      case '--name': name = value(); break;
      case '--capacity': settings.capacity = num(flag, value()); break;
      case '--service': settings.serviceMs = ms(flag, value()); break;
      case '--jitter': settings.jitterMs = ms(flag, value()); break;
      case '--queue': settings.queueLimit = num(flag, value()); break;
      case '--error-rate': settings.errorRate = num(flag, value()); break;
      case '--error-status': settings.errorStatus = num(flag, value()); break;
      case '--reset-rate': settings.resetRate = num(flag, value()); break;
      case '--stall-rate': settings.stallRate = num(flag, value()); break;
      case '--health': settings.health = value() as HealthMode; break;
      case '--help':
      case '-h':
        console.log(FAULT_UPSTREAM_USAGE);
        process.exit(0);
        break;
      default:
        fail(`unknown argument "${a}"`);
    }
  }
  let up;
  try {
    up = await startFaultUpstream({ name, host, port, settings });
  } catch (e) {
    fail((e as Error).message);
  }
  process.stdout.write(`${JSON.stringify({ event: 'fault-upstream-started', name, host, port: up.port, settings: up.settings() })}\n`);
  const stop = (): void => {
    void up.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
