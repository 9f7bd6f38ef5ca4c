// `npm start` with no config: the demo gateway, its two echo upstreams and its two
// fault-injecting upstreams, driven with the curl lines it prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'undici';
import { CLI } from '../helpers/gateway.js';
import { waitFor } from '../helpers/log-capture.js';

test('the demo starts with no config, round-robins over two echo upstreams, a fault upstream made to fail is ejected, and it stops cleanly', async () => {
  // stdout is a pipe here, so the log stays JSON (a terminal would get human lines)
  const proc = spawn(process.execPath, [CLI], { env: { ...process.env, TIDEGATE_PORT: '0', TIDEGATE_ADMIN_PORT: '0', TIDEGATE_LOG_FORMAT: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d));
  const started = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`demo did not start: ${err}`)), 15_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d;
      const m = /"event":"started","port":(\d+),"adminPort":(\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ port: Number(m[1]), adminPort: Number(m[2]) });
      }
    });
  });
  try {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await request(`http://127.0.0.1:${started.port}/api/hello`);
      assert.equal(r.statusCode, 200);
      seen.add(((await r.body.json()) as { upstream: string }).upstream);
    }
    assert.deepEqual([...seen].sort(), ['echo-a', 'echo-b']);
    await waitFor(() => /Stop with Ctrl-C/.test(err), 5_000, 'the demo help text');
    assert.match(err, /tidegate demo is running/);
    assert.match(err, /curl -s http:\/\/127\.0\.0\.1:\d+\/api\/hello/);
    for (const line of out.split('\n').filter(Boolean)) JSON.parse(line); // every log line is JSON

    // The printed curl line that breaks orders-a, run as printed (its URL, its body).
    const breakLine = /curl -s -X PUT -d '(\{"errorRate":1\})' (http:\/\/127\.0\.0\.1:\d+)\/_fault/.exec(err);
    assert.ok(breakLine, `no curl line to make an upstream fail in:\n${err}`);
    const faultA = breakLine[2]!;
    // Every health decision the log holds, for a failure message: on a loaded host the
    // other endpoint's checks can time out too, and then what the balancer did follows.
    const healthLines = (): string => out.split('\n').filter((l) => /"event":"(endpoint-|upstream-panic)/.test(l)).join('\n');
    const orders = async (): Promise<string[]> => {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await request(`http://127.0.0.1:${started.port}/orders/${i}`);
        const body = await r.body.text();
        assert.equal(r.statusCode, 200, `orders/${i} answered ${r.statusCode} ${body}\nhealth decisions so far:\n${healthLines()}`);
        names.push((JSON.parse(body) as { upstream: string }).upstream);
      }
      return names;
    };
    assert.deepEqual([...new Set(await orders())].sort(), ['orders-a', 'orders-b']);
    const put = await request(`${faultA}/_fault`, { method: 'PUT', body: breakLine[1] });
    assert.equal(put.statusCode, 200);
    await put.body.text();
    // One line must say both: orders-a itself was ejected (another endpoint's ejection
    // and an earlier line naming orders-a are not that).
    const ejectedA = (l: string): boolean => l.includes('"event":"endpoint-ejected"') && l.includes(`"endpoint":"${faultA.slice(7)}"`);
    await waitFor(() => out.split('\n').some(ejectedA), 10_000, 'orders-a ejected by its failing health checks');
    assert.deepEqual([...new Set(await orders())], ['orders-b']);
  } finally {
    proc.kill('SIGTERM');
    const code = await new Promise((r) => proc.once('exit', r));
    assert.equal(code, 0);
  }
});

test('the demo prints the curl lines that open the orders breaker; run as printed, it opens (a human log line says so), answers 503 TG_ERR_CIRCUIT_OPEN, and closes after the heal line', async () => {
  const proc = spawn(process.execPath, [CLI], { env: { ...process.env, TIDEGATE_PORT: '0', TIDEGATE_ADMIN_PORT: '0', TIDEGATE_LOG_FORMAT: 'human' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d));
  proc.stdout.on('data', (d: Buffer) => (out += d));
  try {
    await waitFor(() => /Stop with Ctrl-C/.test(err), 15_000, 'the demo help text');
    const fail = /curl -s -X PUT -d '(\{"errorRate":1\})' (http:\/\/127\.0\.0\.1:\d+)\/_fault; curl -s -X PUT -d '(\{"errorRate":1\})' (http:\/\/127\.0\.0\.1:\d+)\/_fault/.exec(err);
    assert.ok(fail, `no curl line that makes both orders endpoints fail in:\n${err}`);
    const loop = /curl -s -o \/dev\/null -w '%\{http_code\} ' (http:\/\/127\.0\.0\.1:\d+\/orders\/)\$i; sleep 0\.1/.exec(err);
    assert.ok(loop, `no request loop in:\n${err}`);
    const heal = /curl -s -X PUT -d '(\{"errorRate":0\})' (http:\/\/127\.0\.0\.1:\d+)\/_fault; curl -s -X PUT -d '(\{"errorRate":0\})' (http:\/\/127\.0\.0\.1:\d+)\/_fault/.exec(err);
    assert.ok(heal, `no heal line in:\n${err}`);
    const put = async (url: string, body: string): Promise<void> => {
      const r = await request(`${url}/_fault`, { method: 'PUT', body });
      assert.equal(r.statusCode, 200);
      await r.body.text();
    };
    await put(fail[2]!, fail[1]!);
    await put(fail[4]!, fail[3]!);
    // The printed loop: ten requests 100 ms apart (a loaded machine may need a second round).
    const statuses: string[] = [];
    for (let i = 1; i <= 20 && !statuses.includes('TG_ERR_CIRCUIT_OPEN'); i++) {
      const r = await request(`${loop[1]!}${i}`);
      const body = await r.body.text();
      statuses.push(r.statusCode === 503 ? (JSON.parse(body) as { error: { code: string } }).error.code : String(r.statusCode));
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(statuses.includes('500'), `the failures reached the client first: ${statuses.join(' ')}`);
    assert.equal(statuses.at(-1), 'TG_ERR_CIRCUIT_OPEN', `the breaker opened: ${statuses.join(' ')}`);
    await waitFor(() => /^\d\d:\d\d:\d\d\.\d{3} WARN  breaker-opened upstream=orders .*— upstream orders: breaker opened/m.test(out), 5_000, 'the human breaker-opened line');
    await put(heal[2]!, heal[1]!);
    await put(heal[4]!, heal[3]!);
    // After openFor (5 s) the probes go through and close it.
    const end = Date.now() + 20_000;
    let closed = false;
    while (!closed && Date.now() < end) {
      const r = await request(`${loop[1]!}0`);
      await r.body.text();
      closed = r.statusCode === 200 && /breaker-closed upstream=orders/.test(out);
      if (!closed) await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(closed, `the breaker closed after the heal:\n${out.split('\n').filter((l) => l.includes('breaker')).join('\n')}`);
    assert.ok(!out.split('\n').some((l) => l.startsWith('{')), 'every log line is human-readable');
  } finally {
    proc.kill('SIGTERM');
    const code = await new Promise((r) => proc.once('exit', r));
    assert.equal(code, 0);
  }
});
