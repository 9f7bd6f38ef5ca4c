// Upstreams in their own processes, so a test can SIGKILL or SIGSTOP them the way an
// endpoint really dies or hangs (an in-process server cannot be stopped mid-accept).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

// A small http server: /health answers 200 (or the status in HEALTH_STATUS), anything
// else echoes the pid so a test can tell which endpoint served it.
const SERVER = `
const http = require('node:http');
const s = http.createServer((req, res) => {
  if (req.url === '/health') { res.statusCode = Number(process.env.HEALTH_STATUS || 200); return res.end('ok'); }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ pid: process.pid, port: s.address().port, url: req.url }));
});
s.keepAliveTimeout = 30000;
s.listen(Number(process.env.PORT || 0), '127.0.0.1', () => console.log('LISTENING ' + s.address().port));
`;

export interface ChildUpstream {
  readonly port: number;
  readonly address: string;
  readonly proc: ChildProcess;
  /** SIGKILL and wait for the exit */
  kill(): Promise<void>;
  stop(): void; // SIGSTOP: the kernel still completes handshakes, nothing answers
  cont(): void; // SIGCONT
}

export async function startChildUpstream(port = 0, env: NodeJS.ProcessEnv = {}): Promise<ChildUpstream> {
  // The port of a process just SIGKILLed may be in TIME_WAIT only on the client side;
  // a listener can rebind at once, but retry a few times to be safe on slow machines.
  for (let attempt = 0; ; attempt++) {
    try {
      return await spawnOnce(port, env);
    } catch (err) {
      if (attempt >= 10 || port === 0) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function spawnOnce(port: number, env: NodeJS.ProcessEnv): Promise<ChildUpstream> {
  const proc = spawn(process.execPath, ['-e', SERVER], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const got = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`child upstream did not start: ${err}`)), 10_000);
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /LISTENING (\d+)/.exec(buf);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`child upstream exited with ${code}: ${err}`));
    });
  });
  return {
    port: got,
    address: `127.0.0.1:${got}`,
    proc,
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGKILL');
      await exited;
    },
    stop: () => void proc.kill('SIGSTOP'),
    cont: () => void proc.kill('SIGCONT'),
  };
}
