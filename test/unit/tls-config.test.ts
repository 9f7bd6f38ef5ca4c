// listen.tls at config check: files are read, parsed and matched, and every problem is
// reported with its path, together with the schema's own errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { validateConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { certDir, makeCert } from '../helpers/certs.js';

const dir = certDir();
const a = makeCert(dir, 'a', 'a.test');
const b = makeCert(dir, 'b', 'b.test');
const locked = makeCert(dir, 'locked', 'locked.test', { passphrase: 'open sesame' });

function config(tls: unknown): Record<string, unknown> {
  return { listen: { port: 8443, tls }, upstreams: { app: { discovery: { type: 'static', endpoints: ['127.0.0.1:9001'] } } }, routes: [{ upstream: 'app' }] };
}

function issues(raw: unknown): string[] {
  try {
    validateConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return [...err.issues];
  }
  assert.fail('the config was accepted');
}

test('a TLS config with SNI entries and an encrypted key is accepted', () => {
  const cfg = validateConfig(
    config({ cert: a.cert, key: a.key, sni: [{ serverName: 'B.test', ...b }, { serverName: 'locked.test', ...locked, passphrase: 'open sesame' }] }),
  );
  assert.equal(cfg.listen.tls?.cert, a.cert);
  assert.deepEqual(
    cfg.listen.tls?.sni.map((s) => s.serverName),
    ['b.test', 'locked.test'],
  );
  assert.equal(validateConfig(config(undefined)).listen.tls, undefined);
});

test('bad TLS files are refused with every error and its path', () => {
  const found = issues(
    config({
      cert: join(dir, 'missing.crt'),
      key: b.key,
      ciphers: 'HIGH',
      sni: [
        { serverName: 'b.test', cert: b.cert, key: a.key },
        { serverName: 'c.test', cert: a.cert, key: a.key },
        { serverName: 'b.test', cert: a.key, key: b.key },
        { serverName: 'locked.test', ...locked },
        { serverName: 'bad name!', cert: a.cert, key: a.key },
      ],
    }),
  );
  const expect = [
    /^listen\.tls: unknown key$|^listen\.tls\.ciphers: unknown key$/,
    /^listen\.tls\.cert: cannot read .*missing\.crt: ENOENT$/,
    /^listen\.tls\.sni\[0\]\.key: .*a\.key does not match the certificate in .*b\.crt$/,
    /^listen\.tls\.sni\[1\]\.cert: the certificate in .*a\.crt does not cover "c\.test" \(it names DNS:a\.test\)$/,
    /^listen\.tls\.sni\[2\]\.serverName: "b\.test" is already listed at listen\.tls\.sni\[0\]$/,
    /^listen\.tls\.sni\[2\]\.cert: .*a\.key holds no PEM certificate/,
    /^listen\.tls\.sni\[3\]\.key: .*locked\.key is encrypted: set passphrase$/,
    /^listen\.tls\.sni\[4\]\.serverName: expected a DNS name/,
  ];
  for (const re of expect) assert.ok(found.some((i) => re.test(i)), `no issue matches ${re}; got:\n${found.join('\n')}`);
  assert.equal(found.length, expect.length, found.join('\n'));
});

test('a wrong passphrase is refused at the key', () => {
  const found = issues(config({ cert: locked.cert, key: locked.key, passphrase: 'guess' }));
  assert.equal(found.length, 1, found.join('\n'));
  assert.match(found[0]!, /^listen\.tls\.key: .*locked\.key is not a usable PEM private key: .*\(wrong passphrase\?\)$/);
});
