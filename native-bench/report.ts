// results.json → report.md (ratios to nginx of the same run first) + SVG charts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResults, ClosedPoint, OpenPoint } from './results.js';
import type { Spread } from './stats.js';
import { groupedBarChart, lineChart } from './svg.js';

const n0 = (v: number): string => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–');
const ms = (us: number): string => (Number.isFinite(us) ? (us / 1000).toFixed(us < 10_000 ? 2 : 1) : '–');
const pct = (s: Spread): string => (Number.isFinite(s.spread) ? `±${((s.spread * 100) / 2).toFixed(0)} %` : '–');
const ratio = (a: number, b: number | undefined): string => (b && Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : '–');

function pendingRows(r: BenchResults, cols: number): string[] {
  return r.peers
    .filter((p) => p.state !== 'ok')
    .map((p) => `| ${p.state} | ${p.name} | ${p.reason?.replace(/\|/g, '\\|').slice(0, 200) ?? ''} ${'| '.repeat(Math.max(0, cols - 3))}|`);
}

function throughputTable(r: BenchResults, points: ClosedPoint[], title: string): string[] {
  if (!points.length) return [];
  const nginx = points.find((p) => p.peer === 'nginx')?.rps.median;
  // TLS peers are compared with each other: nginx-tls is their baseline.
  const nginxTls = points.find((p) => p.peer === 'nginx-tls')?.rps.median;
  const lua = points.find((p) => p.peer === 'nginx-lua')?.rps.median;
  const out = [
    `### ${title}`,
    '',
    '| vs nginx (-tls peers: vs nginx-tls) | peer | req/s (median) | spread | vs nginx-lua | p99 ms (closed loop) | CPU ms / 1k req | RSS MiB | non-2xx | socket errors | per-worker requests (last run) |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const p of points) {
    const last = p.runs[p.runs.length - 1]?.workerRequests;
    out.push(
      `| ${ratio(p.rps.median, p.peer.endsWith('-tls') ? nginxTls : nginx)} | ${p.peer} | ${n0(p.rps.median)} | ${pct(p.rps)} | ${ratio(p.rps.median, lua)} | ${ms(p.p99Us.median)} | ${Number.isFinite(p.cpuMsPer1k.median) ? p.cpuMsPer1k.median.toFixed(1) : '–'} | ${p.rssMiB !== null ? p.rssMiB.toFixed(0) : '–'} | ${p.non2xx} | ${p.errors} | ${last ? last.join(' / ') : ''} |`,
    );
  }
  out.push(...pendingRows(r, 11), '');
  return out;
}

function sizeMatrix(r: BenchResults): string[] {
  const ka = r.throughput.filter((t) => t.mode === 'keepalive');
  const sizes = [...new Set(ka.map((t) => t.size))];
  if (sizes.length < 2) return [];
  const peers = [...new Set(ka.map((t) => t.peer))];
  const out = ['### Keep-alive throughput by body size (req/s median, ratio to nginx)', '', `| peer | ${sizes.join(' | ')} |`, `|---|${sizes.map(() => '---:').join('|')}|`];
  for (const peer of peers) {
    const cells = sizes.map((s) => {
      const p = ka.find((t) => t.peer === peer && t.size === s);
      const ng = ka.find((t) => t.peer === 'nginx' && t.size === s)?.rps.median;
      return p ? `${n0(p.rps.median)} (${ratio(p.rps.median, ng)})` : '–';
    });
    out.push(`| ${peer} | ${cells.join(' | ')} |`);
  }
  out.push('');
  return out;
}

function latencyTables(r: BenchResults): string[] {
  if (!r.latency.length) return [];
  const out = [
    `### Open-loop latency at fixed rates (h2load --h1 --rps), ${r.latency[0]!.size} body`,
    '',
    `Rates are shares of the lowest peer's keep-alive max (${r.latencyBase ? `${r.latencyBase.peer}, ${n0(r.latencyBase.rps)} req/s` : '–'}). Milliseconds, median of ${r.options.repeats} runs. "fell behind": the generator achieved < 97 % of the target rate, so the latency of the requests it could not send is missing from the numbers.`,
    '',
  ];
  for (const rate of [...new Set(r.latency.map((l) => l.ratePct))]) {
    const rows = r.latency.filter((l) => l.ratePct === rate);
    const nginx = rows.find((l) => l.peer === 'nginx');
    out.push(`#### ${rate} % — ${n0(rows[0]!.targetRps)} req/s`, '', '| p99 vs nginx | peer | achieved req/s | p50 | p90 | p99 | p99.9 | max | errors | note |', '|---:|---|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const l of rows) {
      out.push(
        `| ${ratio(l.p99Us.median, nginx?.p99Us.median)} | ${l.peer} | ${n0(l.achievedRps.median)} | ${ms(l.p50Us.median)} | ${ms(l.p90Us.median)} | ${ms(l.p99Us.median)} | ${ms(l.p999Us.median)} | ${ms(l.maxUs.median)} | ${l.errors} | ${l.fellBehind ? 'fell behind' : ''} |`,
      );
    }
    out.push('');
  }
  return out;
}

function sweepTable(r: BenchResults): string[] {
  if (!r.sweep.length) return [];
  const ws = [...new Set(r.sweep.map((s) => s.workers))].sort((a, b) => a - b);
  const peers = [...new Set(r.sweep.map((s) => s.peer))];
  const out = [`### Worker sweep (keep-alive, ${r.sweep[0]!.size}, req/s median; CPU ms / 1k req)`, '', `| peer | ${ws.map((w) => `${w} worker${w > 1 ? 's' : ''}`).join(' | ')} |`, `|---|${ws.map(() => '---:').join('|')}|`];
  for (const peer of peers) {
    out.push(
      `| ${peer} | ${ws
        .map((w) => {
          const p = r.sweep.find((s) => s.peer === peer && s.workers === w);
          return p ? `${n0(p.rps.median)} (${Number.isFinite(p.cpuMsPer1k.median) ? p.cpuMsPer1k.median.toFixed(1) : '–'} ms)` : '–';
        })
        .join(' | ')} |`,
    );
  }
  out.push('');
  if (ws.some((w) => w > r.cpuPlan.proxyCores)) out.push(`Worker counts above ${r.cpuPlan.proxyCores} exceed the CPUs the proxy may use: they measure oversubscription.`, '');
  return out;
}

export function machineSection(r: BenchResults): string[] {
  const m = r.machine;
  return [
    '### Machine',
    '',
    `- CPU: ${m.cpuModel}, ${m.cores} cores usable; memory ${m.memoryGiB} GiB; load average at start ${m.loadAverageAtStart.join(' ')}, at end ${r.loadAverageAtEnd.join(' ')}`,
    `- ${m.os}, kernel ${m.kernel}, Node ${m.node}`,
    `- tools: ${Object.entries(m.tools).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `- peers: ${r.peers.map((p) => `${p.name} (${p.state === 'ok' ? p.version : p.state})`).join('; ')}`,
    `- tidegate build: ${r.tidegate.cli} (its checkout at ${r.tidegate.commit})`,
    `- CPU plan: ${r.cpuPlan.note}`,
    `- upstream nginx: ${r.upstream.workers} workers; proxies: ${r.options.workers} workers/threads (Node peers: 1 process); wrk: ${r.cpuPlan.loadCores} threads, ${r.options.connections} connections`,
    `- each point: ${r.options.warmupS} s warm-up, then ${r.options.repeats} × ${r.options.durationS} s measured (open loop: ${r.options.latencyDurationS ?? r.options.durationS} s after ${Math.max(1, r.options.warmupS)} s warm-up at the target rate); medians reported, spread = ±half the min–max range`,
    '',
  ];
}

function profileSection(r: BenchResults): string[] {
  const p = r.profile;
  if (!p) return [];
  const out = [`### tidegate worker profile (${p.workerThreads} worker threads, --cpu-prof, ${p.durationS.toFixed(0)} s incl. start-up and drain)`, '', '| area | self ms | share |', '|---|---:|---:|'];
  for (const a of p.byArea) out.push(`| ${a.area} | ${a.selfMs} | ${a.pct.toFixed(1)} % |`);
  out.push('', '| function | where | self ms | share |', '|---|---|---:|---:|');
  for (const t of p.top) out.push(`| ${t.fn} | ${t.where} | ${t.selfMs} | ${t.pct.toFixed(1)} % |`);
  out.push('', '| native function ← nearest JS caller | self ms | share |', '|---|---:|---:|');
  for (const c of p.nativeCallers) out.push(`| ${c.what} | ${c.selfMs} | ${c.pct.toFixed(1)} % |`);
  out.push('');
  return out;
}

export function renderMarkdown(r: BenchResults): string {
  const main = r.throughput.filter((t) => t.mode === 'keepalive' && t.size === r.options.mainSize);
  const close = r.throughput.filter((t) => t.mode === 'close');
  return [
    `## tidegate native-bench — ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Command: \`${r.command}\``,
    '',
    ...machineSection(r),
    ...throughputTable(r, main, `Closed-loop throughput, keep-alive, ${r.options.mainSize} body (wrk)`),
    ...sizeMatrix(r),
    ...throughputTable(r, close, `Connection: close, ${r.options.mainSize} body (connection setup per request)`),
    ...latencyTables(r),
    ...sweepTable(r),
    ...profileSection(r),
    '### Peer answers verified',
    '',
    ...r.peers.map((p) => `- ${p.name}: ${p.state}${p.reason ? ` — ${p.reason}` : ''}; ${Object.entries(p.verification).map(([s, v]) => `${s} ${v!.ok}/${v!.samples} bodies match`).join(', ') || 'not checked'}`),
    '',
  ].join('\n');
}

export function writeReport(r: BenchResults, outDir: string): string[] {
  const files: string[] = [];
  writeFileSync(join(outDir, 'report.md'), renderMarkdown(r));
  files.push('report.md');
  const main = r.throughput.filter((t) => t.mode === 'keepalive' && t.size === r.options.mainSize);
  if (main.length) {
    writeFileSync(
      join(outDir, 'throughput.svg'),
      groupedBarChart({ title: `Keep-alive throughput, ${r.options.mainSize} body, ${r.options.workers} workers`, xLabel: 'peer', yLabel: 'requests/s (median)', groups: main.map((m) => m.peer), series: ['req/s'], values: main.map((m) => [m.rps.median]) }),
    );
    files.push('throughput.svg');
  }
  if (r.sweep.length) {
    const peers = [...new Set(r.sweep.map((s) => s.peer))];
    writeFileSync(
      join(outDir, 'workers.svg'),
      lineChart({ title: `Throughput vs workers (keep-alive, ${r.sweep[0]!.size})`, xLabel: 'workers / threads', yLabel: 'requests/s (median)', series: peers.map((p) => ({ name: p, points: r.sweep.filter((s) => s.peer === p).map((s) => ({ x: s.workers, y: s.rps.median })) })) }),
    );
    files.push('workers.svg');
  }
  for (const rate of [...new Set(r.latency.map((l) => l.ratePct))]) {
    const rows: OpenPoint[] = r.latency.filter((l) => l.ratePct === rate);
    const name = `latency-${rate}pct.svg`;
    writeFileSync(
      join(outDir, name),
      groupedBarChart({
        title: `Latency at ${rate} % load (${n0(rows[0]!.targetRps)} req/s, open loop)`,
        xLabel: 'peer',
        yLabel: 'ms (log scale)',
        groups: rows.map((l) => l.peer),
        series: ['p50', 'p90', 'p99', 'p99.9', 'max'],
        values: rows.map((l) => [l.p50Us.median, l.p90Us.median, l.p99Us.median, l.p999Us.median, l.maxUs.median].map((v) => v / 1000)),
        log: true,
      }),
    );
    files.push(name);
  }
  return files;
}
