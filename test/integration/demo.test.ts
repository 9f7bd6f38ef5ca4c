// `npm start` with no config: the demo gateway and its two echo upstreams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'undici';
import { CLI } from '../helpers/gateway.js';

test('the demo starts with no config, round-robins over two echo upstreams and stops cleanly', async () => {
  const proc = spawn(process.execPath, [CLI], { env: { ...process.env, TIDEGATE_PORT: '0', TIDEGATE_ADMIN_PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
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
    await new Promise((r) => setTimeout(r, 100));
    assert.match(err, /tidegate demo is running/);
    assert.match(err, /curl -s http:\/\/127\.0\.0\.1:\d+\/api\/hello/);
  } finally {
    proc.kill('SIGTERM');
    const code = await new Promise((r) => proc.once('exit', r));
    assert.equal(code, 0);
  }
});
