// TLS termination on the data-plane port, with real TLS clients (node:https, node:tls)
// against certificates made by openssl for each test: SNI picks the certificate, the
// upstream learns the scheme, old protocol versions and weak suites are refused, and
// a reload swaps certificates without dropping an open connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { connect, type SecureVersion, type TLSSocket } from 'node:tls';
import { request } from 'undici';
import { stringify } from 'yaml';
import { baseConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { certDir, makeCert, type TestCert } from '../helpers/certs.js';

interface TlsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  socket: TLSSocket;
  /** the certificate the server presented */
  peer: { cn: string; fingerprint256: string };
}

function get(port: number, path: string, opts: { servername?: string; agent?: Agent; headers?: Record<string, string> } = {}): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        // Node sends no SNI for an IP address unless told a name.
        ...(opts.servername !== undefined ? { servername: opts.servername, headers: { host: opts.servername, ...opts.headers } } : { headers: opts.headers }),
        agent: opts.agent ?? false,
        // Self-signed: the test checks the presented certificate itself.
        rejectUnauthorized: false,
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const pc = socket.getPeerCertificate();
        const peer = { cn: String(pc.subject?.CN), fingerprint256: pc.fingerprint256 };
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, socket, peer }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function fingerprint(c: TestCert): string {
  return new X509Certificate(readFileSync(c.cert)).fingerprint256;
}

/** Connects with only `version` offered; resolves with what was negotiated or the error code. */
function handshake(port: number, opts: { version?: SecureVersion; ciphers?: string }): Promise<{ ok: true; protocol: string | null; cipher: string } | { ok: false; code: string }> {
  return new Promise((resolve) => {
    const s = connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...(opts.version ? { minVersion: opts.version, maxVersion: opts.version } : {}),
      // Node's OpenSSL refuses TLS 1.0/1.1 on its own at the default security level;
      // level 0 lets the offer reach the server, so the refusal is the server's.
      ciphers: opts.ciphers ?? 'DEFAULT@SECLEVEL=0',
    });
    s.once('secureConnect', () => {
      resolve({ ok: true, protocol: s.getProtocol(), cipher: s.getCipher().name });
      s.destroy();
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, code: err.code ?? err.message }));
  });
}

async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function tlsConfig(upstream: string, tls: Record<string, unknown>): Record<string, unknown> {
  return baseConfig([upstream], { listen: { host: '127.0.0.1', port: 0, tls } });
}

test('TLS: requests reach the upstream with x-forwarded-proto https, and SNI picks the certificate', async () => {
  const dir = certDir();
  const def = makeCert(dir, 'default', 'default.test', { passphrase: 'open sesame' });
  const api = makeCert(dir, 'api', 'api.test');
  const up = await startUpstream();
  const gw = await startGateway(tlsConfig(up.address, { ...def, passphrase: 'open sesame', sni: [{ serverName: 'api.test', ...api }] }));
  try {
    // The client's own X-Forwarded-Proto is not believed from an untrusted peer.
    const r = await get(gw.port, '/hello', { headers: { 'x-forwarded-proto': 'http' } });
    assert.equal(r.status, 200);
    assert.equal(r.peer.cn, 'default.test');
    assert.equal(r.peer.fingerprint256, fingerprint(def));
    const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/hello');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');

    const sni = await get(gw.port, '/by-name', { servername: 'api.test' });
    assert.equal(sni.peer.cn, 'api.test', 'the SNI name picks its certificate');
    assert.equal(sni.status, 200, 'requests under an SNI name are routed too');
    assert.equal((JSON.parse(sni.body) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'https');

    const other = await get(gw.port, '/other', { servername: 'unlisted.test' });
    assert.equal(other.peer.cn, 'default.test', 'an unlisted name gets the default certificate');
    assert.equal(other.status, 200);

    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { listen: { tls: { enabled: boolean; certificates: { serverName: string | null; fingerprint256: string }[] } } };
    assert.equal(s.listen.tls.enabled, true);
    assert.deepEqual(
      s.listen.tls.certificates.map((c) => [c.serverName, c.fingerprint256]),
      [
        [null, fingerprint(def)],
        ['api.test', fingerprint(api)],
      ],
    );
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('TLS: only 1.2 and 1.3 are negotiated; 1.2 offers ECDHE with AEAD suites only', async () => {
  const dir = certDir();
  const rsa = makeCert(dir, 'rsa', 'rsa.test', { rsa: true });
  const up = await startUpstream();
  const gw = await startGateway(tlsConfig(up.address, { ...rsa }));
  try {
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const r = await handshake(gw.port, { version });
      assert.deepEqual(r, { ok: false, code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, `${version} must be refused by the server`);
    }
    assert.deepEqual(await handshake(gw.port, { version: 'TLSv1.3' }), { ok: true, protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' });
    const v12 = await handshake(gw.port, { version: 'TLSv1.2' });
    assert.ok(v12.ok && v12.protocol === 'TLSv1.2' && v12.cipher.startsWith('ECDHE-RSA-'), JSON.stringify(v12));
    // BoringSSL would accept these by default: static RSA key exchange, CBC with SHA-1.
    for (const ciphers of ['AES128-GCM-SHA256', 'AES256-SHA', 'ECDHE-RSA-AES128-SHA']) {
      const r = await handshake(gw.port, { version: 'TLSv1.2', ciphers });
      assert.equal(r.ok, false, `${ciphers} must be refused, got ${JSON.stringify(r)}`);
    }
    assert.equal((await handshake(gw.port, { version: 'TLSv1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' })).ok, true);
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('TLS reload: new certificates for new connections; an open connection finishes its request on the old one', async () => {
  const dir = certDir();
  const first = makeCert(dir, 'site', 'site.test');
  const firstPrint = fingerprint(first);
  let releaseSlow: (() => void) | null = null;
  const up = await startUpstream((req, res) => {
    if (req.url === '/slow') {
      releaseSlow = () => res.end('slow done');
      return;
    }
    res.end('ok');
  });
  const gw: RunningGateway = await startGateway(tlsConfig(up.address, { ...first }));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const before = await get(gw.port, '/fast', { agent });
    assert.equal(before.peer.fingerprint256, firstPrint);

    // A request in flight on the kept-alive connection while the certificate changes.
    const slow = get(gw.port, '/slow', { agent });
    await waitFor('the slow request at the upstream', () => releaseSlow !== null);

    // A renewal rewrites the same paths.
    const second = makeCert(dir, 'site', 'site.test');
    const secondPrint = fingerprint(second);
    assert.notEqual(secondPrint, firstPrint);
    const reload = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(reload.statusCode, 200, await reload.body.text());
    const applied = await waitFor('tls-reloaded', () => gw.logs.find((l) => l.event === 'tls-reloaded'));
    assert.equal(applied.workers, 2);

    // Every new connection gets the new certificate (the kernel spreads them over both workers' new listeners).
    for (let i = 0; i < 8; i++) assert.equal((await get(gw.port, '/new')).peer.fingerprint256, secondPrint, `new connection ${i}`);

    releaseSlow!();
    const done = await slow;
    assert.equal(done.status, 200);
    assert.equal(done.body, 'slow done');
    assert.equal(done.socket, before.socket, 'the same connection carried the request across the reload');
    assert.equal(done.peer.fingerprint256, firstPrint);
    // The retired listener closes each of its connections after its next response.
    assert.equal(done.headers.connection, 'close');

    const s = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { listen: { tls: { reloads: { applied: number; failed: number }; certificates: { fingerprint256: string }[] } } };
    assert.deepEqual(s.listen.tls.reloads, { applied: 1, failed: 0 });
    assert.equal(s.listen.tls.certificates[0]!.fingerprint256, secondPrint);
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    assert.match(metrics, /^tidegate_tls_reloads_total\{outcome="applied"\} 1$/m);

    // SIGHUP does the same; files unchanged since the last reload change nothing.
    const third = makeCert(dir, 'site', 'site.test');
    gw.proc.kill('SIGHUP');
    await waitFor('the SIGHUP certificate', async () => (await get(gw.port, '/hup')).peer.fingerprint256 === fingerprint(third));
    const reloads = () => gw.logs.filter((l) => l.event === 'tls-reloaded').length;
    await waitFor('two reloads logged', () => reloads() === 2);
    const again = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(again.statusCode, 200);
    await again.body.dump();
    assert.equal(reloads(), 2, 'same files: no listener swap');

    // Old listeners close by themselves once idle (uWS idle timeout 10 s + margin).
    await waitFor('both workers retire their first listener', () => gw.logs.filter((l) => l.event === 'tls-listener-retired').length >= 2, 30_000);
  } finally {
    agent.destroy();
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});

test('TLS: a bad certificate is refused at start and at reload, with its path; the running certificate stays', async () => {
  const dir = certDir();
  const good = makeCert(dir, 'good', 'good.test');
  const other = makeCert(dir, 'other', 'other.test');
  const up = await startUpstream();
  await assert.rejects(startGateway(tlsConfig(up.address, { cert: good.cert, key: other.key })), /listen\.tls\.key: .*other\.key does not match the certificate in .*good\.crt/);

  const cfg = tlsConfig(up.address, { ...good });
  const gw = await startGateway(cfg);
  try {
    writeFileSync(gw.configPath, stringify({ ...cfg, listen: { host: '127.0.0.1', port: 0, tls: { cert: `${dir}/missing.crt`, key: good.key } } }));
    const refused = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
    assert.equal(refused.statusCode, 400);
    const body = (await refused.body.json()) as { error: { code: string; issues: string[] } };
    assert.equal(body.error.code, 'TG_ERR_CONFIG_INVALID');
    assert.deepEqual(body.error.issues.length, 1, body.error.issues.join('\n'));
    assert.match(body.error.issues[0]!, /^listen\.tls\.cert: cannot read .*missing\.crt: ENOENT$/);
    const r = await get(gw.port, '/still');
    assert.equal(r.status, 200);
    assert.equal(r.peer.fingerprint256, fingerprint(good));
  } finally {
    assert.equal(await gw.stop(), 0, gw.exitReport());
    await up.close();
  }
});
