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
    const orders = async (): Promise<string[]> => {
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await request(`http://127.0.0.1:${started.port}/orders/${i}`);
        assert.equal(r.statusCode, 200);
        names.push(((await r.body.json()) as { upstream: string }).upstream);
      }
      return names;
    };
    assert.deepEqual([...new Set(await orders())].sort(), ['orders-a', 'orders-b']);
    const put = await request(`${faultA}/_fault`, { method: 'PUT', body: breakLine[1] });
    assert.equal(put.statusCode, 200);
    await put.body.text();
    await waitFor(() => out.includes('"event":"endpoint-ejected"') && out.includes(`"endpoint":"${faultA.slice(7)}"`), 10_000, 'orders-a ejected by its failing health checks');
    assert.deepEqual([...new Set(await orders())], ['orders-b']);
  } finally {
    proc.kill('SIGTERM');
    const code = await new Promise((r) => proc.once('exit', r));
    assert.equal(code, 0);
  }
});
