// The access policies on their own: ip-access lists (IPv4 and IPv6, deny over allow,
// run-time lists through the data slot) and the api-key file parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ipAccessKey, ipAccessPolicy } from '../../src/policies/ip-access.js';
import { setPolicyData } from '../../src/policies/policy-data.js';
import { parseApiKeyFile } from '../../src/config/api-key-file.js';
import { LocalResponse, type AccessContext, type PolicyEnv } from '../../src/policies/policy.js';
import type { ErrorSpec } from '../../src/errors.js';
import { SharedDicts } from '../../src/shm/shared-dicts.js';

const env = (routeName: string): PolicyEnv => ({ shm: new SharedArrayBuffer(8), maxWorkers: 1, routeIndex: 0, routeName, policyIndex: 0, kindIndex: 0, tenants: null, plugins: new Map(), dicts: SharedDicts.empty() });

/** the refusal's code, 'pass' when admitted (these policies never answer a local response) */
function codeOf(r: ErrorSpec | LocalResponse | null): string {
  return r === null ? 'pass' : r instanceof LocalResponse ? `local ${r.status}` : r.code;
}

function ctx(clientIp: string): AccessContext {
  return { method: 'GET', path: '/', query: '', host: 'h', headers: [], peer: clientIp, clientIp, routeIndex: 0, routeName: 'r', responseHeaders: [], consumer: null, tenant: null, watched: null };
}

test('ip-access: IPv4 and IPv6 CIDRs, deny wins over allow, IPv4-mapped IPv6 is the IPv4 address', () => {
  const cfg = ipAccessPolicy.schema(z).parse({ allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.6.6.0/24', '2001:db8:bad::/48'] });
  const p = ipAccessPolicy.create(cfg, env('r1'));
  const code = (ip: string) => codeOf(p.access(ctx(ip)));
  assert.equal(code('10.1.2.3'), 'pass');
  assert.equal(code('::ffff:10.1.2.3'), 'pass');
  assert.equal(code('10.6.6.7'), 'TG_ERR_FORBIDDEN');
  assert.equal(code('11.0.0.1'), 'TG_ERR_FORBIDDEN');
  assert.equal(code('2001:db8:1::5'), 'pass');
  assert.equal(code('2001:db8:bad:1::5'), 'TG_ERR_FORBIDDEN');
  assert.equal(code('2001:db9::1'), 'TG_ERR_FORBIDDEN');
  assert.equal(code('not-an-address'), 'TG_ERR_FORBIDDEN');
});

test('ip-access: a run-time list replaces the configured one until cleared; policies share it by name', () => {
  const cfg = ipAccessPolicy.schema(z).parse({ name: 'shared', deny: ['192.0.2.0/24'] });
  const a = ipAccessPolicy.create(cfg, env('a'));
  const b = ipAccessPolicy.create(cfg, env('b'));
  assert.equal(a.access(ctx('198.51.100.1')), null);
  setPolicyData(ipAccessKey('shared'), { allow: [], deny: ['198.51.100.0/24'] });
  assert.equal(codeOf(a.access(ctx('198.51.100.1'))), 'TG_ERR_FORBIDDEN');
  assert.equal(codeOf(b.access(ctx('198.51.100.1'))), 'TG_ERR_FORBIDDEN');
  assert.equal(a.access(ctx('192.0.2.1')), null, 'the run-time lists replace the configured ones');
  setPolicyData(ipAccessKey('shared'), undefined);
  assert.equal(a.access(ctx('198.51.100.1')), null);
  assert.equal(codeOf(a.access(ctx('192.0.2.1'))), 'TG_ERR_FORBIDDEN');
});

test('ip-access schema: bad addresses and an empty policy are rejected with their paths', () => {
  const r = ipAccessPolicy.schema(z).safeParse({ allow: ['10.0.0.0/33', '::1/129', 'x'] });
  assert.ok(!r.success);
  assert.deepEqual(r.error.issues.map((i) => i.path.join('.')), ['allow.0', 'allow.1', 'allow.2']);
  assert.ok(!ipAccessPolicy.schema(z).safeParse({}).success);
});

test('api-key file: plain keys are hashed, digests kept, every problem reported with its path', () => {
  const digest = createHash('sha256').update('bob-key-0123456789abcdef').digest('hex');
  const ok = parseApiKeyFile(`keys:\n  - { consumer: alice, tenant: acme, key: alice-key-0123456789abcdef }\n  - { consumer: bob, sha256: ${digest.toUpperCase()} }\n`);
  assert.ok('table' in ok);
  assert.deepEqual(ok.table.get(createHash('sha256').update('alice-key-0123456789abcdef').digest('hex')), ['alice', 'acme']);
  assert.deepEqual(ok.table.get(digest), ['bob', null]);
  const bad = parseApiKeyFile('keys:\n  - { consumer: "a b", key: short }\n  - { consumer: c, sha256: xyz, extra: 1 }\n  - { consumer: d }\n');
  assert.ok('issues' in bad);
  assert.deepEqual(bad.issues, [
    'keys[0].consumer: must be 1–64 characters of [A-Za-z0-9._-]',
    'keys[0].key: must be at least 16 characters',
    'keys[1].extra: unknown key',
    'keys[1].sha256: must be 64 hexadecimal digits',
    'keys[2]: key or sha256 is required',
  ]);
});

test('override targets ip-access and ban: parse against the config, key per thing overridden, conflicts after a reload', async () => {
  const { validateConfig } = await import('../../src/config/load.js');
  const { ipAccessTarget } = await import('../../src/primary/overrides/ip-access-target.js');
  const { banTarget } = await import('../../src/primary/overrides/ban-target.js');
  const base = (policies: unknown[]) => validateConfig({ upstreams: { app: { discovery: { type: 'static', endpoints: ['127.0.0.1:1'] } } }, routes: [{ name: 'api', upstream: 'app', policies }] });
  const cfg = base([{ ban: { name: 'abuse' } }, { 'ip-access': { name: 'edge', deny: ['192.0.2.0/24'] } }]);
  const applied: string[] = [];
  const ip = ipAccessTarget({ setIpLists: (n: string, l: { deny: readonly string[] }) => applied.push(`set ${n} ${l.deny.join(',')}`), clearIpLists: (n: string) => (applied.push(`clear ${n}`), true) } as never);
  const ok = ip.parse({ target: 'edge', value: { deny: ['198.51.100.0/24', '2001:db8::/32'] } }, cfg);
  assert.ok(ok.ok);
  assert.equal(ok.key, 'ip-access:edge');
  assert.deepEqual(ok.spec.lists, { allow: [], deny: ['198.51.100.0/24', '2001:db8::/32'] });
  ip.apply(ok.spec);
  ip.restore(ok.spec);
  assert.deepEqual(applied, ['set edge 198.51.100.0/24,2001:db8::/32', 'clear edge']);
  const bad = ip.parse({ target: 'nope', value: { deny: ['x'] } }, cfg);
  assert.ok(!bad.ok && /no ip-access policy "nope"/.test(bad.issues[0]!));
  const badList = ip.parse({ target: 'edge', value: { deny: ['10.0.0.0/99'], extra: 1 } }, cfg);
  assert.ok(!badList.ok);
  assert.deepEqual(badList.issues, ['value.extra: unknown key', 'value.deny[0]: expected an IP address or CIDR like "10.0.0.0/8", got "10.0.0.0/99"']);
  const changed = base([{ ban: { name: 'abuse' } }, { 'ip-access': { name: 'edge', deny: ['192.0.2.0/25'] } }]);
  assert.match(ip.conflict(ok.spec, cfg, changed)!, /changed the configured lists/);
  assert.equal(ip.conflict(ok.spec, cfg, cfg), null);
  assert.match(ip.conflict(ok.spec, cfg, base([{ ban: {} }]))!, /no longer in the config/);

  const bans: string[] = [];
  const ban = banTarget({ ban: (k: string, ms: number, p: readonly string[]) => (bans.push(`ban ${k} ${ms} ${p.join(',')}`), [...p]), lift: (k: string) => (bans.push(`lift ${k}`), []) } as never);
  const b = ban.parse({ target: '203.0.113.7', value: { for: '15m' } }, cfg);
  assert.ok(b.ok);
  assert.equal(b.key, 'ban:203.0.113.7');
  ban.apply(b.spec);
  ban.restore(b.spec);
  assert.deepEqual(bans, ['ban 203.0.113.7 900000 abuse', 'lift 203.0.113.7']);
  const nb = ban.parse({ target: '203.0.113.7', value: { policy: 'x', for: 'soon' } }, cfg);
  assert.ok(!nb.ok && nb.issues.length === 2);
  assert.match(ban.conflict(b.spec, cfg, base([{ 'ip-access': { name: 'edge', deny: ['192.0.2.0/24'] } }]))!, /abuse is no longer in the config/);
});
