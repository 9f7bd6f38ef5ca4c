// A small SVG chart writer (no dependencies): line charts and grouped bar charts,
// enough for "throughput vs workers" and "latency percentiles at a fixed rate".
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf', '#bcbd22'];
const W = 760;
const H = 420;
const M = { top: 40, right: 170, bottom: 60, left: 80 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  if (v >= 10) return String(Math.round(v));
  return String(+v.toFixed(2));
}

/** "nice" linear ticks from 0 to at least max */
function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let t = 0; t <= max + step * 0.999; t += step) ticks.push(+t.toPrecision(12));
  return ticks;
}

function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-9)));
  const hi = Math.ceil(Math.log10(Math.max(max, min * 10)));
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) out.push(10 ** e);
  return out;
}

function frame(title: string, xLabel: string, yLabel: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="${M.left + (W - M.left - M.right) / 2}" y="${H - 14}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(18 ${M.top + (H - M.top - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}

function legend(names: string[]): string[] {
  return names.map((n, i) => {
    const y = M.top + 10 + i * 20;
    const x = W - M.right + 15;
    return `<rect x="${x}" y="${y - 9}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 18}" y="${y + 2}">${esc(n)}</text>`;
  });
}

export interface LineSeries {
  name: string;
  points: { x: number; y: number }[];
}

/** x values are treated as categories in ascending order (worker counts 1, 2, 4, …). */
export function lineChart(o: { title: string; xLabel: string; yLabel: string; series: LineSeries[] }): string {
  const xs = [...new Set(o.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const maxY = Math.max(0, ...o.series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite));
  const ticks = linearTicks(maxY);
  const top = ticks[ticks.length - 1]!;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (x: number): number => M.left + (xs.length === 1 ? pw / 2 : (xs.indexOf(x) / (xs.length - 1)) * pw);
  const Y = (y: number): number => M.top + ph - (y / top) * ph;
  const body: string[] = [];
  for (const t of ticks) body.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${Y(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  for (const x of xs) body.push(`<text x="${X(x)}" y="${M.top + ph + 18}" text-anchor="middle">${x}</text>`);
  body.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#333"/><line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#333"/>`);
  o.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    body.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) body.push(`<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3.5" fill="${c}"><title>${esc(`${s.name}: ${fmt(p.y)} at ${p.x}`)}</title></circle>`);
  });
  body.push(...legend(o.series.map((s) => s.name)));
  return frame(o.title, o.xLabel, o.yLabel, body);
}

/** groups along x (peers), one bar per series in each group (percentiles). */
export function groupedBarChart(o: { title: string; xLabel: string; yLabel: string; groups: string[]; series: string[]; values: number[][]; log?: boolean }): string {
  const all = o.values.flat().filter((v) => Number.isFinite(v) && v > 0);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  let Y: (v: number) => number;
  let ticks: number[];
  if (o.log) {
    ticks = logTicks(Math.min(...all, 1), Math.max(...all, 1));
    const lo = Math.log10(ticks[0]!);
    const hi = Math.log10(ticks[ticks.length - 1]!);
    Y = (v) => M.top + ph - ((Math.log10(Math.max(v, ticks[0]!)) - lo) / (hi - lo)) * ph;
  } else {
    ticks = linearTicks(Math.max(0, ...all));
    const top = ticks[ticks.length - 1]!;
    Y = (v) => M.top + ph - (v / top) * ph;
  }
  const body: string[] = [];
  for (const t of ticks) body.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${Y(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  const gw = pw / Math.max(1, o.groups.length);
  const bw = (gw * 0.8) / Math.max(1, o.series.length);
  o.groups.forEach((g, gi) => {
    const gx = M.left + gi * gw + gw * 0.1;
    o.series.forEach((s, si) => {
      const v = o.values[gi]?.[si];
      if (v === undefined || !Number.isFinite(v) || v <= 0) return;
      const y = Y(v);
      body.push(`<rect x="${(gx + si * bw).toFixed(1)}" y="${y.toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(M.top + ph - y).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${esc(`${g} ${s}: ${fmt(v)}`)}</title></rect>`);
    });
    body.push(`<text x="${(gx + gw * 0.4).toFixed(1)}" y="${M.top + ph + 18}" text-anchor="middle">${esc(g)}</text>`);
  });
  body.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#333"/><line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#333"/>`);
  body.push(...legend(o.series));
  return frame(o.title, o.xLabel, o.yLabel, body);
}

/** Numeric x axis (seconds), one polyline per series; optional shaded x ranges (a phase). */
export function timeSeriesChart(o: { title: string; xLabel: string; yLabel: string; series: LineSeries[]; bands?: { from: number; to: number; label: string }[] }): string {
  const all = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const maxX = Math.max(1, ...all.map((p) => p.x), ...(o.bands ?? []).map((b) => b.to));
  const xt = linearTicks(maxX);
  const yt = linearTicks(Math.max(0, ...all.map((p) => p.y)));
  const right = xt[xt.length - 1]!;
  const top = yt[yt.length - 1]!;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const X = (x: number): number => M.left + (x / right) * pw;
  const Y = (y: number): number => M.top + ph - (y / top) * ph;
  const body: string[] = [];
  for (const b of o.bands ?? []) {
    body.push(`<rect x="${X(b.from).toFixed(1)}" y="${M.top}" width="${(X(b.to) - X(b.from)).toFixed(1)}" height="${ph}" fill="#f3e6e6"/><text x="${((X(b.from) + X(b.to)) / 2).toFixed(1)}" y="${M.top + 14}" text-anchor="middle" fill="#955">${esc(b.label)}</text>`);
  }
  for (const t of yt) body.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${Y(t)}" y2="${Y(t)}" stroke="#ddd"/><text x="${M.left - 6}" y="${Y(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  for (const t of xt) body.push(`<text x="${X(t).toFixed(1)}" y="${M.top + ph + 18}" text-anchor="middle">${fmt(t)}</text>`);
  body.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + ph}" stroke="#333"/><line x1="${M.left}" x2="${M.left + pw}" y1="${M.top + ph}" y2="${M.top + ph}" stroke="#333"/>`);
  o.series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    body.push(`<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${pts.map((p) => `${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ')}"/>`);
  });
  body.push(...legend(o.series.map((s) => s.name)));
  return frame(o.title, o.xLabel, o.yLabel, body);
}
