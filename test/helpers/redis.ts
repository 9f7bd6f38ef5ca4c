// A real Redis for the cluster rate-limit tests and the fleet bench: Debian's
// redis-server on a random loopback port with its own data directory, no persistence
// (a restart starts empty, like a replaced cache node), optionally a password.
// Installed by scripts/install-test-deps.sh.
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { dataDir, freeTcpPort, removeDir, ServerProcess } from './local-server.js';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly password: string | undefined;
  /** SIGKILL, as a crashed node */
  kill(): Promise<void>;
  /** a new redis-server on the same port and directory, empty */
  restart(): Promise<void>;
  /** INFO commandstats calls of one command ("evalsha"), or all commands when omitted */
  commands(name?: string): Promise<number>;
  /** one command, inline protocol, answer as text */
  command(...args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function findRedis(): string {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    if (spawnSync(p, ['--version']).status === 0) return p;
  }
  // Not a skip: cluster rate limits would go untested without anyone noticing.
  throw new Error('redis-server is not installed; the cluster rate-limit tests need it. Run scripts/install-test-deps.sh (as root) first.');
}

/** Sends one RESP command and collects the reply until it is complete enough to read. */
function send(port: number, password: string | undefined, args: string[]): Promise<string> {
  const enc = (a: string[]): string => `*${a.length}\r\n` + a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join('');
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    const want = password === undefined ? 1 : 2;
    s.setTimeout(2000, () => s.destroy(new Error('redis command timed out')));
    s.on('error', reject);
    s.on('data', (d) => {
      buf += d.toString();
      if (complete(buf, want)) {
        s.end();
        resolve(password === undefined ? buf : buf.slice(buf.indexOf('\r\n') + 2));
      }
    });
    s.write((password === undefined ? '' : enc(['AUTH', password])) + enc(args));
  });
}

/** True once `n` top-level replies (simple, error, integer, bulk) are in `b`. */
function complete(b: string, n: number): boolean {
  let i = 0;
  for (let k = 0; k < n; k++) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) return false;
    if (b[i] === '$') {
      const len = Number(b.slice(i + 1, eol));
      if (len < 0) i = eol + 2;
      else if (Buffer.byteLength(b.slice(eol + 2)) < len + 2) return false;
      else i = eol + 2 + len + 2;
    } else i = eol + 2;
  }
  return true;
}

export async function startRedis(opts: { password?: string } = {}): Promise<RedisServer> {
  const bin = findRedis();
  const dir = dataDir('tidegate-redis-');
  const port = await freeTcpPort();
  const password = opts.password;
  let proc: ServerProcess;
  const launch = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no', ...(password ? ['--requirepass', password] : [])];
    proc = new ServerProcess(bin, args);
    await proc.waitReady(`redis-server on 127.0.0.1:${port}`, async () => (await send(port, password, ['PING'])).startsWith('+PONG'));
  };
  await launch();
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    password,
    kill: () => proc.kill('SIGKILL'),
    async restart() {
      await proc.kill('SIGKILL');
      await launch();
    },
    async commands(name) {
      const info = await send(port, password, ['INFO', 'commandstats']);
      let total = 0;
      for (const m of info.matchAll(/cmdstat_([a-z|_-]+):calls=(\d+)/g)) if (name === undefined || m[1] === name) total += Number(m[2]);
      return total;
    },
    command: (...args) => send(port, password, args),
    async stop() {
      await proc.kill('SIGKILL');
      removeDir(dir);
    },
  };
  return server;
}
