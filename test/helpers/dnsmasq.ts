// A real DNS server for discovery tests: Debian's dnsmasq on a random loopback port,
// answering from a hosts file the test rewrites (SIGHUP re-reads it) and from
// --host-record / --srv-host lines. Installed by scripts/install-test-deps.sh.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { createSocket } from 'node:dgram';
import { createServer, type AddressInfo } from 'node:net';

export interface Dnsmasq {
  readonly port: number;
  readonly server: string; // "127.0.0.1:<port>"
  readonly hostsFile: string;
  /** rewrites the hosts file and makes dnsmasq re-read it */
  setHosts(lines: string[]): Promise<void>;
  kill(): Promise<void>;
}

function findDnsmasq(): string {
  for (const p of ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq', '/sbin/dnsmasq']) {
    if (spawnSync(p, ['--version']).status === 0) return p;
  }
  const r = spawnSync('dnsmasq', ['--version']);
  if (r.status === 0) return 'dnsmasq';
  // Not a skip: DNS discovery would go untested without anyone noticing.
  throw new Error('dnsmasq is not installed; the DNS discovery tests need it. Run scripts/install-test-deps.sh (as root) first.');
}

/** A port free for both UDP and TCP on 127.0.0.1: dnsmasq listens on both. */
async function freeUdpPort(): Promise<number> {
  for (;;) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const tcp = createServer();
    const free = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    if (free) await new Promise<void>((r) => tcp.close(() => r()));
    if (free) return port;
  }
}

export async function startDnsmasq(opts: { hosts?: string[]; extra?: string[]; probeName: string }): Promise<Dnsmasq> {
  const bin = findDnsmasq();
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-dns-'));
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, (opts.hosts ?? []).join('\n') + '\n');
  for (let attempt = 0; ; attempt++) {
    const port = await freeUdpPort();
    const args = [
      '--keep-in-foreground',
      '--log-facility=-',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      '--no-resolv',
      '--no-hosts',
      '--conf-file=/dev/null',
      `--addn-hosts=${hostsFile}`,
      // dnsmasq answers local data with TTL 0 by default; 1 s lets the test see a real TTL.
      '--local-ttl=1',
      // Authoritative for .test: unknown names get NXDOMAIN / NODATA, as from a real
      // zone, instead of REFUSED (there is no upstream to forward to).
      '--local=/test/',
      `--pid-file=${join(dir, 'pid')}`,
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      ...(opts.extra ?? []),
    ];
    const proc: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = once(proc, 'exit');
    const server = `127.0.0.1:${port}`;
    const ok = await waitReady(server, opts.probeName, proc);
    if (!ok) {
      proc.kill('SIGKILL');
      await exited;
      if (attempt < 3 && /address already in use/i.test(err)) continue;
      throw new Error(`dnsmasq did not start on ${server}: ${err}`);
    }
    return {
      port,
      server,
      hostsFile,
      async setHosts(lines) {
        writeFileSync(hostsFile, lines.join('\n') + '\n');
        proc.kill('SIGHUP');
        // SIGHUP is handled asynchronously; give it a moment (the test polls anyway).
        await new Promise((r) => setTimeout(r, 100));
      },
      async kill() {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill('SIGKILL');
        await exited;
      },
    };
  }
}

async function waitReady(server: string, name: string, proc: ChildProcess): Promise<boolean> {
  const r = new Resolver({ timeout: 200, tries: 1 });
  r.setServers([server]);
  const end = Date.now() + 5_000;
  while (Date.now() < end) {
    if (proc.exitCode !== null) return false;
    try {
      await r.resolve4(name);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // an answer of any kind means the server is up
      if (code === 'ENODATA' || code === 'ENOTFOUND') return true;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  return false;
}
