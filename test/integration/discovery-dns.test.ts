// DNS discovery against a real DNS server (dnsmasq on a loopback port, started here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsProvider, dnsDiscoverySchema } from '../../src/discovery/dns.js';
import { DiscoveryManager } from '../../src/primary/discovery-manager.js';
import { endpointKey, type DiscoveredEndpoint } from '../../src/discovery/provider.js';
import { startDnsmasq } from '../helpers/dnsmasq.js';
import { captureLog, waitFor } from '../helpers/log-capture.js';

const keys = (eps: readonly DiscoveredEndpoint[] | null) => (eps ?? []).map(endpointKey).sort();

test('dns A: resolves through dnsmasq with the record TTL, follows a change at TTL expiry, keeps the last set when the server dies', async (t) => {
  const dns = await startDnsmasq({ hosts: ['127.0.0.2 api.test', '127.0.0.3 api.test'], probeName: 'api.test' });
  const cap = captureLog();
  const sets: { upstream: string; endpoints: string[]; reason: string }[] = [];
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints: (upstream, eps, reason) => sets.push({ upstream, endpoints: keys(eps), reason }) } });
  t.after(async () => {
    await mgr.stop();
    await dns.kill();
  });

  const cfg = dnsDiscoverySchema.parse({ type: 'dns', name: 'api.test', port: 8080, servers: [dns.server], minTtl: '100ms', maxTtl: '10s', retry: '200ms', timeout: '300ms' });
  const direct = await new DnsProvider(cfg).resolve();
  assert.deepEqual(keys(direct.endpoints), ['127.0.0.2:8080', '127.0.0.3:8080']);
  assert.equal(direct.ttl, 1, 'the TTL dnsmasq gave (--local-ttl=1)');

  await mgr.apply({ api: { discovery: cfg } });
  await waitFor(() => sets.length >= 1, 3_000, 'first set');
  assert.deepEqual(sets[0]!.endpoints, ['127.0.0.2:8080', '127.0.0.3:8080']);
  assert.match(sets[0]!.reason, /ttl=1s next=1000ms/);

  // The record changes; with TTL 1 s the provider must see it within a couple of seconds.
  const changedAt = Date.now();
  await dns.setHosts(['127.0.0.3 api.test', '127.0.0.4 api.test']);
  await waitFor(() => sets.find((s) => s.endpoints.includes('127.0.0.4:8080')), 5_000, 'the changed set');
  t.diagnostic(`record change seen after ${Date.now() - changedAt}ms (TTL 1 s)`);
  assert.deepEqual(sets.at(-1)!.endpoints, ['127.0.0.3:8080', '127.0.0.4:8080']);
  const statsBefore = mgr.stats().api!;
  assert.equal(statsBefore.endpoints, 2);
  assert.equal(statsBefore.failures, 0);

  // The DNS server goes away: failures are logged and counted, the set stays.
  await dns.kill();
  const n = sets.length;
  await waitFor(() => cap.events('discovery-failed').length >= 2, 5_000, 'discovery-failed events');
  const ev = cap.events('discovery-failed')[0]!;
  assert.equal(ev.upstream, 'api');
  assert.equal(ev.provider, 'dns');
  assert.match(String(ev.reason), /ECONNREFUSED|ETIMEOUT|timeout/i);
  assert.equal(ev.keeping, 2);
  assert.equal(sets.length, n, 'no empty or partial set was pushed');
  assert.deepEqual(keys(mgr.endpoints('api')), ['127.0.0.3:8080', '127.0.0.4:8080']);
  const s = mgr.stats().api!;
  assert.ok(s.failures >= 2);
  assert.equal(s.endpoints, 2);
  assert.ok(s.lastSuccess !== null && s.lastFailure !== null && s.lastFailure >= s.lastSuccess);
});

test('dns A: a name that disappears (NXDOMAIN) keeps the last set', async (t) => {
  const dns = await startDnsmasq({ hosts: ['127.0.0.5 gone.test', '127.0.0.1 probe.test'], probeName: 'probe.test' });
  const cap = captureLog();
  const mgr = new DiscoveryManager({ log: cap.log, sink: { setEndpoints() {} } });
  t.after(async () => {
    await mgr.stop();
    await dns.kill();
  });
  await mgr.apply({ g: { discovery: dnsDiscoverySchema.parse({ type: 'dns', name: 'gone.test', port: 80, servers: [dns.server], minTtl: '100ms', retry: '200ms', timeout: '300ms' }) } });
  await waitFor(() => mgr.endpoints('g'), 3_000, 'first set');
  await dns.setHosts(['127.0.0.1 probe.test']);
  await waitFor(() => cap.events('discovery-failed').length >= 1, 5_000, 'discovery-failed');
  assert.match(String(cap.events('discovery-failed')[0]!.reason), /ENOTFOUND|ENODATA/);
  assert.deepEqual(keys(mgr.endpoints('g')), ['127.0.0.5:80']);
});

test('dns AAAA: resolves IPv6 records', async (t) => {
  const dns = await startDnsmasq({ extra: ['--host-record=v6.test,::1', '--host-record=probe.test,127.0.0.1'], probeName: 'probe.test' });
  t.after(() => dns.kill());
  const r = await new DnsProvider(dnsDiscoverySchema.parse({ type: 'dns', name: 'v6.test', recordType: 'AAAA', port: 9000, servers: [dns.server] })).resolve();
  assert.deepEqual(keys(r.endpoints), ['[::1]:9000']);
});

test('dns SRV: uses the lowest priority group, its ports and weights, and the targets\' address TTL', async (t) => {
  const dns = await startDnsmasq({
    extra: [
      '--host-record=t1.test,127.0.0.11',
      '--host-record=t2.test,127.0.0.12',
      '--host-record=backup.test,127.0.0.13',
      '--srv-host=_http._tcp.api.test,t1.test,8081,0,10',
      '--srv-host=_http._tcp.api.test,t2.test,8082,0,30',
      '--srv-host=_http._tcp.api.test,backup.test,8083,1,10',
    ],
    probeName: 't1.test',
  });
  t.after(() => dns.kill());
  const r = await new DnsProvider(dnsDiscoverySchema.parse({ type: 'dns', name: '_http._tcp.api.test', recordType: 'SRV', servers: [dns.server] })).resolve();
  const sorted = [...r.endpoints].sort((a, b) => a.port - b.port);
  assert.deepEqual(sorted, [
    { host: '127.0.0.11', port: 8081, weight: 10 },
    { host: '127.0.0.12', port: 8082, weight: 30 },
  ]);
  assert.equal(r.ttl, 1);
});

test('dns config: port required for A, refused for SRV, minTtl ≤ maxTtl', () => {
  assert.equal(dnsDiscoverySchema.safeParse({ type: 'dns', name: 'a.test' }).success, false);
  assert.equal(dnsDiscoverySchema.safeParse({ type: 'dns', name: '_x._tcp.a.test', recordType: 'SRV', port: 1 }).success, false);
  assert.equal(dnsDiscoverySchema.safeParse({ type: 'dns', name: 'a.test', port: 1, minTtl: '10s', maxTtl: '1s' }).success, false);
  assert.equal(dnsDiscoverySchema.safeParse({ type: 'dns', name: 'a.test', port: 1, servers: ['127.0.0.1:5353'] }).success, true);
});
