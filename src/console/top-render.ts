// What `tidegate top` shows, as plain lines of at most `width` columns: a pure
// function of what the admin API answered, so --once and the live screen are the
// same text and tests can check it without a terminal.
//
// This module is a client of the admin API: the shapes below are the parts of its
// JSON that top reads, not imports of the gateway's internals.

export interface TopStatus {
  readonly version: string;
  readonly generation: number;
  readonly uptimeSeconds: number;
  readonly workers: readonly { slot: number; phase: string; requests?: number; inFlight?: number }[];
  readonly routes: readonly { name: string; upstream: string }[];
  readonly upstreams: readonly { name: string; endpointHealth?: readonly { endpoint: string; reason: string; since: number }[] }[];
  readonly balancing?: readonly {
    name: string;
    slowStartMs: number;
    endpoints: readonly { address: string; stateName: string; weight: number; weightPercent: number; inFlight: number; ewmaUs: number }[];
  }[];
  readonly protection?: { readonly upstreams: readonly TopGuard[] };
  /** run-time overrides: a drained endpoint is explained by its override */
  readonly overrides?: { readonly active: readonly { kind: string; key: string; value: unknown; createdBy: string; reason: string | null }[] };
}

/** An upstream with a breaker and/or a concurrency limit, as /status `protection.upstreams[]` gives it. */
export interface TopGuard {
  readonly upstream: string;
  readonly breaker: { state: string; forced: string | null; sinceMs: number; trips: number; window: { requests: number; failureRate: number } } | null;
  readonly concurrency: { mode: string; limit: number; inFlight: number } | null;
}

export interface TopSeries {
  readonly name: string;
  readonly rps: readonly (number | null)[];
  readonly errorsPerSecond: readonly (number | null)[];
  readonly p99Ms: readonly (number | null)[];
}

export interface TopHistory {
  readonly routes?: { readonly times: readonly number[]; readonly series: readonly TopSeries[] };
}

export interface TopDecision {
  readonly id: number;
  readonly time: string;
  readonly kind: string;
  readonly level: string;
  readonly subject: { upstream?: string; endpoint?: string; route?: string; worker?: number };
  readonly why: Readonly<Record<string, unknown>>;
}

export interface TopSnapshot {
  readonly admin: string;
  readonly at: Date;
  readonly status: TopStatus;
  readonly history: TopHistory;
  readonly decisions: readonly TopDecision[];
}

export interface RenderOptions {
  readonly width: number;
  /** rows available; sections are cut to fit, decisions first */
  readonly height?: number;
}

function fit(s: string, w: number): string {
  return s.length <= w ? s : w <= 1 ? s.slice(0, w) : s.slice(0, w - 1) + '…';
}
function padR(s: string, w: number): string {
  const f = fit(s, w);
  return f + ' '.repeat(w - f.length);
}
function padL(s: string, w: number): string {
  const f = fit(s, w);
  return ' '.repeat(w - f.length) + f;
}
function num(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

/** Points averaged for the rate columns: one snapshot interval alone is too jumpy to read. */
export const TOP_WINDOW_MS = 5000;

/** Mean (or max) of a column's values in the last TOP_WINDOW_MS of `times`; null when there are none. */
function recent(times: readonly number[], col: readonly (number | null)[], how: 'mean' | 'max'): number | null {
  const end = times.length > 0 ? times[times.length - 1]! : 0;
  let sum = 0;
  let n = 0;
  let max = -Infinity;
  for (let i = col.length - 1; i >= 0 && end - (times[i] ?? -Infinity) < TOP_WINDOW_MS; i--) {
    const v = col[i];
    if (v === null || v === undefined) continue;
    sum += v;
    n++;
    if (v > max) max = v;
  }
  return n === 0 ? null : how === 'mean' ? sum / n : max;
}

function whyOf(d: TopDecision): string {
  const w = d.why;
  if (typeof w.reason === 'string') return (typeof w.cause === 'string' ? `${w.cause}: ` : '') + w.reason;
  return Object.entries(w)
    .filter(([k]) => k !== 'stack')
    .slice(0, 5)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

function subjectOf(d: TopDecision): string {
  const s = d.subject;
  return [s.upstream, s.endpoint, s.route, s.worker === undefined ? undefined : `worker ${s.worker}`].filter((x) => x !== undefined).join(' ');
}

export function renderTop(snap: TopSnapshot, opts: RenderOptions): string[] {
  const W = Math.max(40, opts.width);
  const st = snap.status;
  const out: string[] = [];
  const listening = st.workers.filter((w) => w.phase === 'listening').length;
  const where = snap.admin.replace(/^https?:\/\//, '');
  out.push(`tidegate top · ${where} · gen ${st.generation} · up ${st.uptimeSeconds}s · ${listening}/${st.workers.length} workers · ${snap.at.toISOString().slice(11, 19)}Z`);
  out.push('');

  // Routes: name and upstream take what is left after the four numbers.
  const numW = 8;
  const nameW = Math.max(8, Math.floor((W - 4 * (numW + 1)) * 0.6));
  const upW = Math.max(6, W - 4 * (numW + 1) - nameW - 1);
  out.push(`ROUTES (last ${TOP_WINDOW_MS / 1000} s: mean rates, highest interval p99)`);
  out.push(padR('ROUTE', nameW) + ' ' + padR('UPSTREAM', upW) + ' ' + padL('REQ/S', numW) + ' ' + padL('ERR/S', numW) + ' ' + padL('ERR %', numW) + ' ' + padL('P99 ms', numW));
  const series = new Map((snap.history.routes?.series ?? []).map((s) => [s.name, s]));
  const times = snap.history.routes?.times ?? [];
  const routeNames = st.routes.map((r) => r.name);
  for (const n of series.keys()) if (!routeNames.includes(n)) routeNames.push(n);
  const upstreamOf = new Map(st.routes.map((r) => [r.name, r.upstream]));
  const routeRows: string[] = [];
  for (const name of routeNames) {
    const s = series.get(name);
    const rps = s ? recent(times, s.rps, 'mean') : null;
    const eps = s ? recent(times, s.errorsPerSecond, 'mean') : null;
    const pct = rps !== null && eps !== null ? (rps > 0 ? (100 * eps) / rps : 0) : null;
    routeRows.push(padR(name, nameW) + ' ' + padR(upstreamOf.get(name) ?? '-', upW) + ' ' + padL(num(rps, 1), numW) + ' ' + padL(num(eps, 1), numW) + ' ' + padL(num(pct, 1), numW) + ' ' + padL(num(s ? recent(times, s.p99Ms, 'max') : null, 1), numW));
  }

  // Endpoints.
  const health = new Map<string, { reason: string; since: number }>();
  for (const u of st.upstreams) for (const h of u.endpointHealth ?? []) health.set(`${u.name} ${h.endpoint}`, h);
  const pins = new Map((st.overrides?.active ?? []).filter((o) => o.kind === 'endpoint').map((o) => [o.key, o]));
  const epRows: string[] = [];
  const addrW = Math.min(34, Math.max(16, Math.floor(W * 0.36)));
  const stateW = 9;
  const fixed = addrW + 1 + stateW + 1 + 6 + 1 + 8 + 1;
  const whyW = Math.max(8, W - fixed);
  const epHeader = padR('UPSTREAM ENDPOINT', addrW) + ' ' + padR('STATE', stateW) + ' ' + padL('INFL', 6) + ' ' + padL('EWMA ms', 8) + ' ' + padR('WHY', whyW);
  for (const u of st.balancing ?? []) {
    for (const e of u.endpoints) {
      const h = health.get(`${u.name} ${e.address}`);
      const pin = pins.get(`${u.name}/${e.address}`);
      const why = pin && e.stateName === 'draining' ? `drained by ${pin.createdBy}${pin.reason ? `: ${pin.reason}` : ''}` : h && e.stateName !== 'healthy' ? h.reason : '';
      const ramp = u.slowStartMs > 0 && e.weightPercent < 100 ? ` slow start ${e.weightPercent}%` : '';
      const state = e.stateName === 'healthy' ? 'healthy' : e.stateName.toUpperCase();
      epRows.push(padR(`${u.name} ${e.address}`, addrW) + ' ' + padR(state, stateW) + ' ' + padL(String(e.inFlight), 6) + ' ' + padL(num(e.ewmaUs / 1000, 2), 8) + ' ' + fit(why + ramp, whyW));
    }
  }

  // Breakers and concurrency limits: the state as a word (not closed in capitals, like EJECTED).
  const guardW = Math.max(8, W - 57);
  const guardHeader = padR('UPSTREAM', guardW) + ' ' + padR('BREAKER', 15) + ' ' + padL('SINCE', 7) + ' ' + padL('TRIPS', 6) + ' ' + padL('FAILED', 8) + ' ' + padR('LIMIT', 9) + ' ' + padL('INFL', 6);
  const guardRows = (st.protection?.upstreams ?? []).map((g) => {
    const b = g.breaker;
    const c = g.concurrency;
    const state = b === null ? 'none' : (b.state === 'closed' ? 'closed' : b.state.toUpperCase()) + (b.forced ? ' (forced)' : '');
    const since = b === null ? '-' : b.sinceMs < 90_000 ? `${Math.round(b.sinceMs / 1000)}s` : `${Math.round(b.sinceMs / 60_000)}m`;
    const failed = b === null || b.window.requests === 0 ? '-' : `${num(b.window.failureRate, 1)}%`;
    const limit = c === null ? 'none' : `${c.limit}${c.mode === 'adaptive' ? ' adapt' : ''}`;
    return padR(g.upstream, guardW) + ' ' + padR(state, 15) + ' ' + padL(since, 7) + ' ' + padL(b === null ? '-' : String(b.trips), 6) + ' ' + padL(failed, 8) + ' ' + padR(limit, 9) + ' ' + padL(c === null ? '-' : String(c.inFlight), 6);
  });

  const decRows = snap.decisions
    .slice()
    .reverse()
    .map((d) => {
      const subject = subjectOf(d);
      return fit(`#${d.id} ${d.time.slice(11, 19)} ${d.kind}${subject === '' ? '' : ` ${subject}`}: ${whyOf(d)}`, W);
    });

  // Cut to the screen: every section keeps its header and at least a few rows.
  const budget = opts.height === undefined ? Infinity : Math.max(18, opts.height) - out.length - 10;
  const share = (rows: string[], min: number, cap: number): string[] => (rows.length <= cap ? rows : [...rows.slice(0, Math.max(min, cap - 1)), `… ${rows.length - Math.max(min, cap - 1)} more`]);
  const routeCap = Number.isFinite(budget) ? Math.max(3, Math.floor(budget * 0.35)) : Infinity;
  const epCap = Number.isFinite(budget) ? Math.max(3, Math.floor(budget * 0.4)) : Infinity;
  const shownRoutes = share(routeRows, 2, routeCap);
  const shownEps = share(epRows, 2, epCap);
  const guardCap = Number.isFinite(budget) ? Math.max(2, Math.floor(budget * 0.15)) : Infinity;
  const shownGuards = share(guardRows, 1, guardCap);
  const decCap = Number.isFinite(budget) ? Math.max(2, budget - shownRoutes.length - shownEps.length - Math.max(1, shownGuards.length)) : Infinity;

  out.push(...(shownRoutes.length > 0 ? shownRoutes : ['(no routes)']));
  out.push('');
  out.push('ENDPOINTS');
  out.push(epHeader);
  out.push(...(shownEps.length > 0 ? shownEps : ['(no endpoints in the shared tables)']));
  out.push('');
  out.push('BREAKERS AND CONCURRENCY LIMITS');
  if (shownGuards.length > 0) out.push(guardHeader, ...shownGuards);
  else out.push('(no upstream has a breaker or a concurrency limit)');
  out.push('');
  out.push('LAST DECISIONS');
  out.push(...(decRows.length > 0 ? decRows.slice(0, decCap) : ['(none yet)']));
  return out.map((l) => fit(l, W).trimEnd());
}
