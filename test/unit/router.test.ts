import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, normaliseHost } from '../../src/worker/router.js';
import type { WorkerRoute } from '../../src/messages.js';

const route = (name: string, over: Partial<WorkerRoute>): WorkerRoute => ({ name, hosts: null, path: '/', pathType: 'prefix', methods: null, upstream: 0, policies: [], rewriteHost: false, priority: 2, websocket: null, split: null, flag: null, maintenance: null, ...over });

test('first match in config order wins; host, path and method must all match', () => {
  const r = new Router([
    route('exact-get', { path: '/v1/users', pathType: 'exact', methods: ['GET'] }),
    route('api-host', { hosts: ['api.example.com'], path: '/v1' }),
    route('wild', { hosts: ['*.example.com'], path: '/' }),
    route('users-prefix', { path: '/v1/users/' }),
    route('root', { path: '/' }),
  ]);
  const m = (host: string, method: string, path: string): string | undefined => r.match(host, method, path)?.route.name;
  assert.equal(m('x', 'GET', '/v1/users'), 'exact-get');
  assert.equal(m('API.example.com:8080', 'POST', '/v1/users'), 'api-host');
  assert.equal(m('a.b.example.com', 'GET', '/other'), 'wild');
  assert.equal(m('example.com', 'GET', '/v1/users/7'), 'users-prefix', 'the apex is not a wildcard match');
  assert.equal(m('x', 'POST', '/v1/users'), 'users-prefix', 'a trailing slash on a prefix still matches the bare path');
  assert.equal(m('x', 'GET', '/v1/usersx'), 'root', 'prefixes match on segment boundaries');
});

test('no match returns null', () => {
  const r = new Router([route('only', { path: '/a', methods: ['GET'] })]);
  assert.equal(r.match('h', 'GET', '/b'), null);
  assert.equal(r.match('h', 'DELETE', '/a'), null);
});

test('host normalisation strips the port and lower-cases, IPv6 literals included', () => {
  assert.equal(normaliseHost('API.Example.com:8080'), 'api.example.com');
  assert.equal(normaliseHost('[::1]:80'), '[::1]');
  assert.equal(normaliseHost('example.com'), 'example.com');
});
