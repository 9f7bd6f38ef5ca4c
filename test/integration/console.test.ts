// The operator's view end to end: a gateway with active health checks, traffic, then
// one upstream SIGKILLed. The ejection must show up in the decision feed (JSON and
// SSE, matching the log line), the history must hold the traffic, /ui in headless
// Chromium must mark the endpoint "ejected" and list the decision, and `tidegate top`
// must show both, once as plain text and live under a pty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { dumpDom, findChromium, screenshot } from '../helpers/chromium.js';
import { CLI, startGateway } from '../helpers/gateway.js';
import { startChildUpstream } from '../helpers/child-upstream.js';
import { waitFor } from '../helpers/log-capture.js';

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url)); // dist/test-artifacts

interface Decision {
  id: number;
  kind: string;
  level: string;
  subject: { upstream?: string; endpoint?: string };
  why: { cause?: string; reason?: string };
}

function sse(url: string, headers: Record<string, string> = {}): { events: { id: string; data: string }[]; comments: string[]; close(): void; ready: Promise<IncomingMessage> } {
  const events: { id: string; data: string }[] = [];
  const comments: string[] = [];
  let buf = '';
  const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } });
  const ready = new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = '';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (id !== '') events.push({ id, data });
        }
      });
      res.on('error', () => {});
      resolve(res);
    });
    req.on('error', reject);
  });
  req.end();
  return { events, comments, close: () => req.destroy(), ready };
}

/** Polls an async probe until it returns a value or `ms` passes. */
async function poll<T>(fn: () => Promise<T | null>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function runCli(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, COLUMNS: '80' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function runUnderPty(command: string, timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    // script(1) gives the command a real pty; stty sets an 80 × 30 screen in it.
    execFile('script', ['-qec', `stty cols 80 rows 30; exec ${command}`, '/dev/null'], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout });
    });
  });
}

test('console: an active-health ejection in the feed (JSON, SSE, log), history after load, /ui and tidegate top show it', async (t) => {
  const chromium = findChromium();
  assert.ok(chromium !== null, 'chromium not found on PATH: run scripts/install-test-deps-ui.sh (apt-get install chromium) before this test');
  mkdirSync(ARTIFACTS, { recursive: true });
  const a = await startChildUpstream();
  const b = await startChildUpstream();
  const gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: {
      app: {
        discovery: { type: 'static', endpoints: [a.address, b.address] },
        // A generous timeout: a loaded 2-core box must not flap the survivor; the killed one is refused at once.
        health: { active: { path: '/health', interval: '500ms', timeout: '500ms', healthy: 2, unhealthy: 2 } },
        timeouts: { connect: '1s', response: '5s' },
      },
    },
    routes: [{ name: 'api', match: { path: '/' }, upstream: 'app' }],
    observability: { snapshotInterval: '200ms', decisions: { size: 100, stream: { heartbeat: '300ms' } } },
  }, { env: { TIDEGATE_ENABLE_TEST_HOOKS: '1' } });
  t.after(async () => {
    await gw.stop();
    await a.kill();
    await b.kill();
  });

  // A stream opened before anything happens must carry the ejection live.
  const live = sse(`${gw.adminUrl}/v1/decisions/stream?kind=endpoint-ejected`);
  t.after(() => live.close());
  assert.equal((await live.ready).statusCode, 200);

  // Bounded load: 300 requests, 6 at a time.
  let sent = 0;
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      while (sent < 300) {
        sent++;
        await (await request(`${gw.url}/load/${sent}`)).body.dump();
      }
    }),
  );
  const h = await poll(
    async () => {
      const h = (await (await request(`${gw.adminUrl}/v1/history`)).body.json()) as {
        routes: { times: number[]; series: { name: string; rps: (number | null)[]; p99Ms: (number | null)[] }[] };
        upstreams: { series: { name: string; rps: (number | null)[] }[] };
        workers: { series: { name: string; elu: (number | null)[] }[] };
      };
      const api = h.routes.series.find((s) => s.name === 'api');
      const total = (api?.rps ?? []).reduce<number>((s, v) => s + (v ?? 0), 0);
      return api && total > 0 && h.workers.series.length === 2 ? h : null;
    },
    10_000,
    'history points for the load',
  );
  const api = h.routes.series.find((s) => s.name === 'api')!;
  assert.ok(api.rps.some((v) => v !== null && v > 0), 'a non-zero request rate');
  assert.ok(api.p99Ms.some((v) => v !== null && v > 0), 'a p99 point');
  assert.ok(h.upstreams.series.find((s) => s.name === 'app')!.rps.some((v) => v !== null && v > 0), 'the upstream series too');
  assert.deepEqual(h.workers.series.map((s) => s.name), ['0', '1'], 'an ELU series for each worker');
  for (const w of h.workers.series) assert.ok(w.elu.some((v) => v !== null && v >= 0 && v <= 1), `worker ${w.name} ELU in [0, 1]`);

  // Kill one upstream; the active checks eject it.
  await b.kill();
  const d = await poll(
    async () => {
      const r = (await (await request(`${gw.adminUrl}/v1/decisions?kind=endpoint-ejected`)).body.json()) as { decisions: Decision[] };
      return r.decisions.find((d) => d.subject.endpoint === b.address) ?? null;
    },
    15_000,
    'the ejection decision',
  );
  assert.equal(d.kind, 'endpoint-ejected');
  assert.equal(d.level, 'warn');
  assert.equal(d.subject.upstream, 'app');
  assert.equal(d.why.cause, 'active');
  assert.match(d.why.reason ?? '', /2 consecutive http checks failed/);
  // The log line is the same decision, with its id.
  const line = await waitFor(() => gw.logs.find((l) => l.event === 'endpoint-ejected' && l.decision === d.id), 5_000, 'the log line');
  assert.equal(line.endpoint, b.address);
  assert.equal(line.reason, d.why.reason);
  // SSE: the live stream got it, with the same id, and heartbeats flow.
  const ev = await waitFor(() => live.events.find((e) => e.id === String(d.id)), 5_000, 'the SSE event');
  assert.deepEqual(JSON.parse(ev.data), JSON.parse(JSON.stringify(d)));
  await waitFor(() => live.comments.some((c) => c.startsWith('heartbeat')), 5_000, 'an SSE heartbeat');
  // ...and a reconnect from just before it replays it first.
  const resumed = sse(`${gw.adminUrl}/v1/decisions/stream`, { 'last-event-id': String(d.id - 1) });
  t.after(() => resumed.close());
  const first = await waitFor(() => resumed.events[0], 5_000, 'the replay');
  assert.equal(first.id, String(d.id));
  // /status and /metrics show the feed.
  const status = (await (await request(`${gw.adminUrl}/status`)).body.json()) as { decisions: { latestId: number; streamClients: number } };
  assert.ok(status.decisions.latestId >= d.id);
  assert.equal(status.decisions.streamClients, 2);
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
  assert.match(metrics, /tidegate_decisions_total\{kind="endpoint-ejected"\} 1/);
  assert.match(metrics, /tidegate_decision_stream_clients 2/);

  // Traffic after the kill (only the survivor serves), so the charts have a second phase.
  for (let i = 0; i < 40; i++) await (await request(`${gw.url}/after/${i}`)).body.dump();

  // /ui in headless Chromium.
  const dom = await dumpDom(chromium, `${gw.adminUrl}/ui`);
  assert.match(dom, /<body data-ready="1"/, 'the page script rendered');
  assert.match(dom, /<div id="error"><\/div>/, 'no poll error shown');
  const eps = /<table id="endpoints">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(dom)![1]!;
  const rowOf = (addr: string) => eps.split('</tr>').find((r) => r.includes(`<td>${addr}</td>`)) ?? '';
  assert.match(rowOf(b.address), /<td class="state bad">ejected<\/td>/, 'the killed endpoint is marked ejected, as a word');
  assert.match(rowOf(b.address), /2 consecutive http checks failed/, 'with the reason');
  assert.match(rowOf(b.address), /s ago|min ago/, 'and since when');
  assert.match(rowOf(a.address), /<td class="state ok">healthy<\/td>/);
  const feed = /<table id="decisions">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(dom)![1]!;
  const decRow = feed.split('</tr>').find((r) => r.includes(`<td class="n">${d.id}</td>`)) ?? '';
  assert.match(decRow, /endpoint-ejected/);
  assert.match(decRow, new RegExp(`app ${b.address.replace(/\./g, '\\.')}`));
  const charts = /<div id="charts"[^>]*>([\s\S]*?)<\/div>\s*<h2>/.exec(dom)![1]!;
  assert.match(charts, /api · requests/);
  assert.match(charts, /<polyline points="[^"]+"/, 'an SVG line was drawn');
  assert.doesNotMatch(dom, /<(script|link|img)[^>]+(src|href)="https?:/, 'no third-party requests');
  const desk = `${ARTIFACTS}console-1280.png`;
  const phone = `${ARTIFACTS}console-390.png`;
  await screenshot(chromium, `${gw.adminUrl}/ui`, desk, 1280, 1500);
  await screenshot(chromium, `${gw.adminUrl}/ui`, phone, 390, 2200);
  for (const f of [desk, phone]) {
    const png = readFileSync(f);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(statSync(f).size > 10_000, `${f} has content`);
  }
  t.diagnostic(`screenshots: ${desk}, ${phone}`);

  // tidegate top --once: plain text, 80 columns, both sections and the decision.
  const once = await runCli(['top', '--admin', gw.adminUrl, '--once']);
  assert.equal(once.code, 0, once.stderr);
  writeFileSync(`${ARTIFACTS}top-once.txt`, once.stdout);
  const lines = once.stdout.trimEnd().split('\n');
  for (const l of lines) assert.ok([...l].length <= 80, `line over 80 columns: ${JSON.stringify(l)}`);
  assert.doesNotMatch(once.stdout, /\u001b/, 'no escape codes in --once');
  assert.match(lines[0]!, /^tidegate top · 127\.0\.0\.1:\d+ · gen 1 · up \d+s · 2\/2 workers/);
  const routeLine = lines.find((l) => /^api\s+app\s/.test(l));
  assert.ok(routeLine, 'a row for the api route');
  assert.match(routeLine, /^api\s+app\s+\d+\.\d\s+\d+\.\d\s+\d+\.\d\s+(\d+\.\d|-)$/);
  assert.match(lines.find((l) => l.includes(b.address)) ?? '', new RegExp(`^app ${b.address.replace(/\./g, '\\.')}\\s+EJECTED\\s+\\d+\\s+\\d+\\.\\d\\d 2 consecutive`));
  assert.match(lines.find((l) => l.includes(a.address)) ?? '', /\shealthy\s/);
  assert.ok(lines.some((l) => l.startsWith(`#${d.id} `) && l.includes('endpoint-ejected') && l.includes(b.address)), 'the decision is listed');

  // Live mode under a pty: two frames, drawn in place on the alternate screen.
  const pty = await runUnderPty(`${process.execPath} ${CLI} top --admin ${gw.adminUrl} --frames 2 --interval 300ms`);
  writeFileSync(`${ARTIFACTS}top-live.txt`, pty.out);
  assert.equal(pty.code, 0, pty.out);
  assert.ok(pty.out.includes('\u001b[?1049h'), 'enters the alternate screen');
  assert.ok(pty.out.includes('\u001b[?1049l'), 'and leaves it');
  assert.equal(pty.out.split('\u001b[H').length - 1, 2, 'two frames, each drawn from the home position');
  assert.match(pty.out, /EJECTED/);
  assert.match(pty.out, /endpoint-ejected/);
  // What the screen held: the last frame, escape codes removed.
  const lastFrame = pty.out.slice(pty.out.lastIndexOf('\u001b[H')).replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
  writeFileSync(`${ARTIFACTS}top-live-screen.txt`, lastFrame);
  for (const l of lastFrame.replace(/\r/g, '').split('\n')) assert.ok([...l].length <= 80, `live line over 80 columns: ${JSON.stringify(l)}`);
  t.diagnostic(`top --once and the live screen: ${ARTIFACTS}top-once.txt, ${ARTIFACTS}top-live-screen.txt`);

  // A rejected reload is a decision too, with every issue as its why.
  const good = readFileSync(gw.configPath, 'utf8');
  writeFileSync(gw.configPath, good.replace('upstream: app', 'upstream: nowhere'));
  const reload = await request(`${gw.adminUrl}/reload`, { method: 'POST' });
  assert.equal(reload.statusCode, 400);
  await reload.body.dump();
  writeFileSync(gw.configPath, good);
  const rejected = (await (await request(`${gw.adminUrl}/v1/decisions?kind=config-rejected`)).body.json()) as { decisions: (Decision & { why: { issues?: string[] } })[] };
  assert.equal(rejected.decisions.length, 1);
  assert.equal(rejected.decisions[0]!.level, 'error');
  assert.ok(rejected.decisions[0]!.why.issues!.some((i) => i.includes('nowhere')), JSON.stringify(rejected.decisions[0]!.why));

  // A worker crash: the supervisor's restart is a decision about that worker.
  const crash = await request(`${gw.adminUrl}/debug/crash-worker?slot=1`, { method: 'POST' });
  assert.equal(crash.statusCode, 202);
  await crash.body.dump();
  const restart = await poll(
    async () => {
      const r = (await (await request(`${gw.adminUrl}/v1/decisions?kind=worker-restart`)).body.json()) as { decisions: (Decision & { subject: { worker?: number }; why: { exitCode?: number; restartInMs?: number } })[] };
      return r.decisions[0] ?? null;
    },
    10_000,
    'the worker-restart decision',
  );
  assert.equal(restart.subject.worker, 1);
  assert.equal(typeof restart.why.restartInMs, 'number');
});
