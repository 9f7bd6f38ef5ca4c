// The read-only operator console served at GET /ui on the admin port: one static
// HTML document with inline JS (no build step, no dependencies, no third-party
// requests) that polls /status, /metrics, /v1/history and /v1/decisions. Charts are
// plain inline SVG drawn by the page. Kept as a string module so `tsc` ships it with
// the rest of dist/. (The page's own script avoids template literals and "${" so this
// file needs no escaping beyond doubled backslashes.)
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tidegate status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2733; background: #f7f9fb; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  .scroll { overflow-x: auto; max-width: 100%; }
  table { border-collapse: collapse; background: #fff; min-width: 40rem; }
  caption { text-align: left; font-weight: 600; padding: .3rem 0; }
  th, td { padding: .3rem .7rem; border-bottom: 1px solid #e3e8ee; text-align: left; white-space: nowrap; vertical-align: top; }
  th.n, td.n { text-align: right; font-variant-numeric: tabular-nums; }
  td.text { white-space: normal; max-width: 28rem; }
  th { background: #eef2f6; font-weight: 600; }
  .muted { color: #6a7785; } .bad { color: #b42318; font-weight: 600; } .ok { color: #067647; } .warn { color: #b54708; font-weight: 600; }
  .state::before { content: ""; display: inline-block; width: .6em; height: .6em; border-radius: 50%; margin-right: .35em; background: currentColor; }
  #error { color: #b42318; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: .6rem; }
  figure { margin: 0; background: #fff; border: 1px solid #e3e8ee; padding: .4rem .6rem; }
  figcaption { font-size: .85rem; display: flex; justify-content: space-between; gap: .5rem; }
  svg.chart { width: 100%; height: 64px; display: block; }
  svg.chart polyline { fill: none; stroke: #1f6feb; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
  svg.chart.err polyline { stroke: #b42318; } svg.chart.lat polyline { stroke: #7a4cc2; }
  svg.chart line { stroke: #e3e8ee; stroke-width: 1; vector-effect: non-scaling-stroke; }
  .note { background: #eef2f6; padding: .4rem .7rem; border-left: 3px solid #6a7785; margin: .8rem 0; }
  @media (max-width: 600px) { body { margin: .6rem; } table { min-width: 0; } th, td { padding: .25rem .4rem; } td.text { min-width: 15rem; } }
</style>
</head>
<body data-ready="0">
<h1>tidegate console</h1>
<div class="muted">version <span id="version">-</span> · generation <span id="generation">-</span> · uptime <span id="uptime">-</span> s · updated <span id="updated">never</span></div>
<div id="error"></div>
<form id="login" hidden>
  <p>The admin API needs a token. It is kept in this tab's session storage only and sent as an <code>Authorization</code> header, never in a URL.</p>
  <label for="token">admin token</label> <input id="token" type="password" autocomplete="off" size="32" required> <button type="submit">use token</button>
</form>
<div id="who" class="muted" hidden>token <span id="who-name"></span> (<span id="who-scopes"></span>) <button type="button" id="forget">forget token</button></div>
<p class="note">Read-only view. Actions (drain an endpoint, force a breaker, drive a rollout, delete an override) go through the admin API v1 (/v1/overrides, /v1/rollouts); this page shows their effect.</p>
<h2>Traffic by route</h2>
<div id="charts" class="charts" aria-live="off"></div>
<h2>Endpoints</h2>
<div class="scroll"><table id="endpoints"><thead><tr><th scope="col">upstream</th><th scope="col">endpoint</th><th scope="col">state</th><th scope="col">why</th><th scope="col" class="n">since</th><th scope="col" class="n">weight</th><th scope="col" class="n">slow start</th><th scope="col" class="n">in flight</th><th scope="col" class="n">EWMA (ms)</th><th scope="col" class="n">requests</th><th scope="col" class="n">failures</th></tr></thead><tbody></tbody></table></div>
<h2>Protection</h2>
<p id="shedding" class="muted">-</p>
<div class="scroll"><table id="protection"><thead><tr><th scope="col">upstream</th><th scope="col">breaker</th><th scope="col" class="n">since</th><th scope="col" class="n">trips</th><th scope="col" class="n">trip at (% failed)</th><th scope="col" class="n">window failed</th><th scope="col">concurrency</th><th scope="col" class="n">limit</th><th scope="col" class="n">in flight</th><th scope="col" class="n">minRTT (ms)</th><th scope="col" class="n">sample RTT (ms)</th><th scope="col" class="n">shed</th><th scope="col" class="n">refused open</th></tr></thead><tbody></tbody></table></div>
<div class="scroll"><table id="ratelimits"><thead><tr><th scope="col">route</th><th scope="col">policy</th><th scope="col">rate</th><th scope="col" class="n">admitting</th><th scope="col">verdict</th><th scope="col" class="n">upstream p99 / target (ms)</th><th scope="col" class="n">errors / target</th><th scope="col" class="n">allowed</th><th scope="col" class="n">limited</th></tr></thead><tbody></tbody></table></div>
<h2>Overrides and rollouts</h2>
<div class="scroll"><table id="overrides"><thead><tr><th scope="col">id</th><th scope="col">kind</th><th scope="col">overrides</th><th scope="col">value</th><th scope="col">by</th><th scope="col">reason</th><th scope="col" class="n">expires</th></tr></thead><tbody></tbody></table></div>
<div class="scroll"><table id="rollouts"><thead><tr><th scope="col">rollout</th><th scope="col">route</th><th scope="col">phase</th><th scope="col" class="n">step</th><th scope="col" class="n">canary weight</th><th scope="col" class="n">checks</th><th scope="col">last check</th><th scope="col">why</th></tr></thead><tbody></tbody></table></div>
<h2>Decisions</h2>
<div class="scroll"><table id="decisions"><thead><tr><th scope="col" class="n">#</th><th scope="col">time</th><th scope="col">kind</th><th scope="col">subject</th><th scope="col">why</th></tr></thead><tbody></tbody></table></div>
<h2>Workers</h2>
<div class="scroll"><table id="workers"><thead><tr><th scope="col" class="n">slot</th><th scope="col">phase</th><th scope="col" class="n">requests</th><th scope="col" class="n">in flight</th><th scope="col" class="n">5xx</th><th scope="col" class="n">loop util.</th><th scope="col" class="n">loop p99 (ms)</th><th scope="col" class="n">restarts</th></tr></thead><tbody></tbody></table></div>
<h2>Routes</h2>
<div class="scroll"><table id="routes"><thead><tr><th scope="col">route</th><th scope="col">upstream</th><th scope="col" class="n">requests</th><th scope="col" class="n">errors (5xx)</th><th scope="col" class="n">req/s</th></tr></thead><tbody></tbody></table></div>
<h2>Upstreams and scaling</h2>
<div class="scroll"><table id="scaling"><thead><tr><th scope="col">upstream</th><th scope="col" class="n">req/s</th><th scope="col">forecast</th><th scope="col" class="n">current</th><th scope="col" class="n">recommended</th><th scope="col">reason</th></tr></thead><tbody></tbody></table></div>
<script>
(function () {
  'use strict';
  var POLL_MS = 2000;
  var MAX_POINTS = 900;
  var MAX_DECISIONS = 50;
  var MAX_CHART_ROUTES = 12;
  var SVG = 'http://www.w3.org/2000/svg';
  var prevRoute = {};
  var prevAt = 0;
  var hist = { times: [], series: {} };
  var histSince = 0;
  var decisions = [];
  var lastDecision = -1;
  function el(tag, text, cls) { var e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls; return e; }
  // Numbers (and "-" for none) are right-aligned; words stay left.
  function row(cells) { var tr = document.createElement('tr'); cells.forEach(function (c) { tr.appendChild(typeof c === 'object' ? c : el('td', String(c), typeof c === 'number' || /^-?[0-9][0-9.]*( %| s ago| min ago)?$|^-$/.test(String(c)) ? 'n' : '')); }); return tr; }
  function fill(id, rows) { var tb = document.querySelector('#' + id + ' tbody'); tb.textContent = ''; rows.forEach(function (r) { tb.appendChild(r); }); }
  function num(v, d) { return v === null || v === undefined || isNaN(v) ? '-' : Number(v).toFixed(d === undefined ? 0 : d); }
  function ago(ms) { if (!ms) return '-'; var s = Math.max(0, Math.round((Date.now() - ms) / 1000)); return s < 90 ? s + ' s ago' : Math.round(s / 60) + ' min ago'; }
  var TOKEN_KEY = 'tidegate-admin-token';
  var token = sessionStorage.getItem(TOKEN_KEY) || '';
  var caller = null;
  function authHeaders() { return token ? { Authorization: 'Bearer ' + token } : {}; }
  function api(path, init) {
    init = init || {};
    init.cache = 'no-store';
    init.headers = Object.assign({}, init.headers || {}, authHeaders());
    return fetch(path, init).then(function (r) {
      if (r.status === 401) { askToken(token ? 'that token was refused' : ''); throw new Error(path + ': a token is required'); }
      return r;
    });
  }
  function getJson(path) { return api(path).then(function (r) { if (!r.ok) throw new Error(path + ': HTTP ' + r.status); return r.json(); }); }
  function askToken(why) {
    document.getElementById('login').hidden = false;
    document.getElementById('who').hidden = true;
    if (why) document.getElementById('error').textContent = why;
  }
  function whoAmI() {
    getJson('v1/tokens/self').then(function (me) {
      caller = me;
      document.getElementById('login').hidden = true;
      document.getElementById('who').hidden = !token;
      document.getElementById('who-name').textContent = me.name;
      document.getElementById('who-scopes').textContent = me.scopes.join(', ');
      document.body.setAttribute('data-scopes', me.scopes.join(' '));
    }, function () {});
  }
  document.getElementById('login').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = document.getElementById('token').value;
    sessionStorage.setItem(TOKEN_KEY, token);
    document.getElementById('token').value = '';
    whoAmI();
  });
  document.getElementById('forget').addEventListener('click', function () { token = ''; caller = null; sessionStorage.removeItem(TOKEN_KEY); askToken(''); });
  whoAmI();
  // Minimal Prometheus text parser: name{labels} value, enough for our own families.
  function parseMetrics(text) {
    var out = {};
    text.split('\\n').forEach(function (line) {
      if (!line || line.charAt(0) === '#') return;
      var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(.*)\\})? (\\S+)/.exec(line);
      if (!m) return;
      var labels = {};
      if (m[3]) m[3].replace(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\]|\\\\.)*)"/g, function (_, k, v) { labels[k] = v; return ''; });
      (out[m[1]] = out[m[1]] || []).push({ labels: labels, value: Number(m[4]) });
    });
    return out;
  }
  function byLabel(metrics, name, label, filter) {
    var r = {};
    (metrics[name] || []).forEach(function (s) { if (filter && !filter(s.labels)) return; var k = s.labels[label]; r[k] = (r[k] || 0) + s.value; });
    return r;
  }
  // ---- history: appended locally so each poll fetches only new points ----
  function mergeHistory(h) {
    var g = h.routes; if (!g || g.times.length === 0) return;
    var start = hist.times.length;
    g.times.forEach(function (t) { hist.times.push(t); });
    g.series.forEach(function (s) {
      var mine = hist.series[s.name];
      if (!mine) { mine = hist.series[s.name] = { rps: [], err: [], p99: [] }; for (var i = 0; i < start; i++) { mine.rps.push(null); mine.err.push(null); mine.p99.push(null); } }
      for (var j = 0; j < g.times.length; j++) {
        var rps = s.rps[j], eps = s.errorsPerSecond[j];
        mine.rps.push(rps); mine.p99.push(s.p99Ms[j]);
        mine.err.push(rps === null || eps === null ? null : rps > 0 ? 100 * eps / rps : 0);
      }
    });
    Object.keys(hist.series).forEach(function (n) { var m = hist.series[n]; while (m.rps.length < hist.times.length) { m.rps.push(null); m.err.push(null); m.p99.push(null); } });
    var drop = hist.times.length - MAX_POINTS;
    if (drop > 0) { hist.times.splice(0, drop); Object.keys(hist.series).forEach(function (n) { var m = hist.series[n]; m.rps.splice(0, drop); m.err.splice(0, drop); m.p99.splice(0, drop); }); }
    histSince = g.times[g.times.length - 1];
  }
  function svg(tag, attrs) { var e = document.createElementNS(SVG, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); return e; }
  function chart(title, unit, values, cls, digits) {
    var f = document.createElement('figure');
    var last = null, max = 0;
    values.forEach(function (v) { if (v !== null) { last = v; if (v > max) max = v; } });
    var cap = document.createElement('figcaption');
    cap.appendChild(el('span', title));
    cap.appendChild(el('span', (last === null ? '-' : num(last, digits)) + ' ' + unit + ' (max ' + num(max, digits) + ')', 'muted'));
    f.appendChild(cap);
    var W = 300, H = 60, n = Math.max(values.length - 1, 1), top = max > 0 ? max * 1.1 : 1;
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': title + ': latest ' + (last === null ? 'none' : num(last, digits) + ' ' + unit) + ', max ' + num(max, digits) + ' ' + unit, 'class': 'chart ' + (cls || '') });
    s.appendChild(svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    // Gaps (no value) break the line rather than drawing a false zero.
    var pts = [];
    function flush() { if (pts.length > 0) s.appendChild(svg('polyline', { points: pts.join(' ') })); pts = []; }
    values.forEach(function (v, i) { if (v === null) { flush(); return; } pts.push((i / n * W).toFixed(1) + ',' + (H - v / top * H).toFixed(1)); });
    flush();
    f.appendChild(s);
    return f;
  }
  function renderCharts(status) {
    var box = document.getElementById('charts');
    box.textContent = '';
    var names = (status.routes || []).map(function (r) { return r.name; }).filter(function (n) { return hist.series[n]; });
    Object.keys(hist.series).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); });
    if (names.length === 0) { box.appendChild(el('p', 'No history yet: points appear once traffic has been sampled.', 'muted')); return; }
    names.slice(0, MAX_CHART_ROUTES).forEach(function (n) {
      var s = hist.series[n];
      box.appendChild(chart(n + ' · requests', 'req/s', s.rps, '', 1));
      box.appendChild(chart(n + ' · errors', '% 5xx', s.err, 'err', 1));
      box.appendChild(chart(n + ' · p99', 'ms', s.p99, 'lat', 1));
    });
    if (names.length > MAX_CHART_ROUTES) box.appendChild(el('p', (names.length - MAX_CHART_ROUTES) + ' more routes not charted (GET /v1/history has them all).', 'muted'));
  }
  // ---- endpoints: shared-table rows joined with the health checker's reasons ----
  function renderEndpoints(status) {
    var health = {};
    (status.upstreams || []).forEach(function (u) { (u.endpointHealth || []).forEach(function (h) { health[u.name + ' ' + h.endpoint] = h; }); });
    var rows = [];
    (status.balancing || []).forEach(function (u) {
      (u.endpoints || []).forEach(function (e) {
        var h = health[u.name + ' ' + e.address];
        var state = e.stateName;
        var cls = state === 'healthy' ? 'ok' : state === 'ejected' ? 'bad' : 'warn';
        var st = el('td', state, 'state ' + cls);
        var why = h && h.reason ? h.reason : '';
        var ramp = e.weightPercent < 100 ? e.weightPercent + ' %' : 'done';
        rows.push(row([u.name, e.address, st, el('td', why, 'text muted'), h && h.since ? ago(h.since) : '-', e.weight, u.slowStartMs > 0 ? ramp : '-', e.inFlight, num(e.ewmaUs / 1000, 2), e.requests, e.failures]));
      });
    });
    fill('endpoints', rows);
  }
  // ---- protection: breakers, concurrency limits, shed level, adaptive rate limits ----
  function renderProtection(status) {
    var p = status.protection || {};
    var sh = p.shedding;
    var shedText = !sh || !sh.enabled ? 'Gateway shed level: off.' : 'Gateway shed level ' + sh.level + (sh.level === 0 ? ' (admitting every priority)' : ' (shedding the lowest ' + sh.level + ' priorities)') + ' for ' + num(sh.sinceMs / 1000, 0) + ' s; sheds: ' + Object.keys(sh.shed || {}).map(function (k) { return k + ' ' + sh.shed[k]; }).join(', ') + '.';
    document.getElementById('shedding').textContent = shedText + ' Event-loop utilisation ' + num((p.eventLoopUtilization || 0) * 100, 0) + ' %.';
    fill('protection', (p.upstreams || []).map(function (u) {
      var b = u.breaker, c = u.concurrency, k = u.counts || {};
      var bcls = !b ? 'muted' : b.state === 'closed' ? 'ok' : b.state === 'open' ? 'bad' : 'warn';
      var since = b && b.sinceMs !== undefined ? num(b.sinceMs / 1000, 0) + ' s' : '-';
      var win = b && b.window ? num(b.window.failureRate, 0) + ' % of ' + b.window.requests : '-';
      return row([u.upstream, el('td', b ? b.state + (b.forced ? ' (forced)' : '') : 'off', 'state ' + bcls), since, b ? b.trips : '-', b ? num(b.failureRateThreshold, 0) : '-', win,
        c ? c.mode + (c.phase ? ', ' + c.phase : '') : 'off', c ? c.limit : '-', c ? c.inFlight : '-', c && c.minRttMs ? num(c.minRttMs, 1) : '-', c && c.sampleRttMs ? num(c.sampleRttMs, 1) : '-', k.shed || 0, k.circuitOpen || 0]);
    }));
    var adaptive = {};
    (p.rateLimits || []).forEach(function (r) { adaptive[r.route + ' ' + r.policy] = r; });
    fill('ratelimits', (status.rateLimits || []).map(function (r) {
      var a = adaptive[r.route + ' ' + r.name];
      var m = r.multiplier === undefined ? 1 : r.multiplier;
      return row([r.route, r.name, r.configuredRate + ' burst ' + r.burst, el('td', num(m * 100, 0) + ' %', m < 1 ? 'n warn' : 'n'), a ? a.verdict : 'static',
        a ? num(a.latencyMs, 1) + ' / ' + a.latencyTargetMs : '-', a ? num(a.errorRate, 1) + ' % / ' + a.errorRateTarget + ' %' : '-', r.allowed, el('td', String(r.denied), r.denied ? 'n warn' : 'n')]);
    }));
  }
  // ---- run-time control: overrides in force and canary rollouts ----
  function inSeconds(iso) { if (!iso) return 'never'; var s = Math.round((Date.parse(iso) - Date.now()) / 1000); return s <= 0 ? 'now' : s < 90 ? 'in ' + s + ' s' : 'in ' + Math.round(s / 60) + ' min'; }
  function renderControl(status) {
    var ov = (status.overrides && status.overrides.active) || [];
    fill('overrides', ov.map(function (o) {
      return row([o.id, o.kind, el('td', o.key, 'text'), el('td', JSON.stringify(o.value), 'text'), o.createdBy, el('td', o.reason || '', 'text muted'), el('td', inSeconds(o.expiresAt), 'n')]);
    }));
    var ro = (status.rollouts && status.rollouts.rollouts) || [];
    fill('rollouts', ro.map(function (r) {
      var cls = r.phase === 'rolled-back' ? 'bad' : r.phase === 'paused' ? 'warn' : r.phase === 'promoted' ? 'ok' : '';
      var last = r.lastCheck ? (r.lastCheck.verdict || (r.lastCheck.pass ? 'pass' : 'fail')) : '-';
      return row([r.name, r.route, el('td', r.phase, 'state ' + cls), r.step === undefined ? '-' : r.step, num(r.weight, 0) + ' %', r.checks, last, el('td', r.reason || '', 'text muted')]);
    }));
  }
  // ---- decisions ----
  function whyText(d) {
    var w = d.why || {};
    if (typeof w.reason === 'string') return (w.cause ? w.cause + ': ' : '') + w.reason;
    return Object.keys(w).filter(function (k) { return k !== 'stack'; }).slice(0, 6).map(function (k) { var v = w[k]; return k + '=' + (typeof v === 'object' ? JSON.stringify(v) : String(v)); }).join(' ');
  }
  function subjectText(s) { return [s.upstream, s.endpoint, s.route, s.worker === undefined ? undefined : 'worker ' + s.worker].filter(function (x) { return x !== undefined; }).join(' ') || '-'; }
  function mergeDecisions(r) {
    r.decisions.forEach(function (d) { if (d.id > lastDecision) { decisions.unshift(d); lastDecision = d.id; } });
    if (decisions.length > MAX_DECISIONS) decisions.length = MAX_DECISIONS;
    if (lastDecision < 0) lastDecision = r.latestId;
    fill('decisions', decisions.map(function (d) {
      var cls = d.level === 'error' ? 'bad' : d.level === 'warn' ? 'warn' : '';
      return row([d.id, d.time.slice(11, 19), el('td', d.kind, cls), subjectText(d.subject), el('td', whyText(d), 'text')]);
    }));
  }
  function render(status, metrics) {
    document.getElementById('version').textContent = status.version;
    document.getElementById('generation').textContent = status.generation;
    document.getElementById('uptime').textContent = status.uptimeSeconds;
    var elu = byLabel(metrics, 'tidegate_worker_event_loop_utilization_ratio', 'worker');
    var lag = byLabel(metrics, 'tidegate_worker_event_loop_delay_p99_seconds', 'worker');
    fill('workers', status.workers.map(function (w) {
      return row([w.slot, el('td', w.phase, w.phase === 'listening' ? 'ok' : 'bad'), w.requests, w.inFlight, w.responses ? w.responses['5xx'] : '-', num(elu[w.slot], 2), num(lag[w.slot] * 1000, 1), w.restarts]);
    }));
    var reqs = byLabel(metrics, 'tidegate_route_requests_total', 'route');
    var errs = byLabel(metrics, 'tidegate_route_requests_total', 'route', function (l) { return l.code_class === '5xx'; });
    var now = Date.now();
    var dt = prevAt ? (now - prevAt) / 1000 : 0;
    var routes = (status.routes || []).map(function (r) { return r.name; });
    Object.keys(reqs).forEach(function (n) { if (routes.indexOf(n) < 0) routes.push(n); });
    var upstreamOf = {};
    (status.routes || []).forEach(function (r) { upstreamOf[r.name] = r.upstream; });
    fill('routes', routes.map(function (n) {
      var rate = dt > 0 && prevRoute[n] !== undefined ? ((reqs[n] || 0) - prevRoute[n]) / dt : null;
      return row([n, upstreamOf[n] || '-', reqs[n] || 0, el('td', String(errs[n] || 0), errs[n] ? 'n bad' : 'n'), num(rate, 1)]);
    }));
    prevRoute = reqs; prevAt = now;
    var scaling = status.scaling || [];
    fill('scaling', scaling.map(function (s) {
      var rec = s.recommendation;
      return row([s.upstream, num(s.requestRate, 1), s.forecast ? num(s.forecast.value, 1) + ' in ' + s.forecast.horizonSeconds + 's' : '-', rec ? rec.current : '-', el('td', rec ? String(rec.recommended) : '-', rec && rec.recommended !== rec.current ? 'n bad' : 'n'), el('td', rec ? rec.reason : '', 'muted')]);
    }));
    renderEndpoints(status);
    renderProtection(status);
    renderControl(status);
    renderCharts(status);
    document.getElementById('updated').textContent = new Date(now).toISOString();
    document.getElementById('error').textContent = '';
    document.body.setAttribute('data-ready', '1');
  }
  function poll() {
    Promise.all([
      getJson('status'),
      api('metrics').then(function (r) { if (!r.ok) throw new Error('/metrics: HTTP ' + r.status); return r.text(); }),
      getJson('v1/history?kind=route' + (histSince ? '&since=' + histSince : '')),
      getJson(lastDecision < 0 ? 'v1/decisions?limit=' + MAX_DECISIONS : 'v1/decisions?since=' + lastDecision)
    ]).then(function (res) {
      mergeHistory(res[2]);
      mergeDecisions(res[3]);
      render(res[0], parseMetrics(res[1]));
    }, function (err) {
      document.getElementById('error').textContent = 'poll failed: ' + err.message;
    }).then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
</script>
</body>
</html>
`;
