// The operator console served at GET /ui on the admin port: one static HTML document
// with inline JS (no build step, no dependencies, no third-party requests) that polls
// /status, /metrics and the /v1 reads, and whose buttons are admin API v1 calls made
// with the token the user typed. Charts are plain inline SVG drawn by the page. Kept
// as string modules so `tsc` ships it with the rest of dist/; the panels and the
// actions are their own modules, joined into the page's one script scope. (The page's
// script avoids template literals and "${" so these files need no escaping beyond
// doubled backslashes.)
import { ACTIONS_SCRIPT } from './page-actions.js';
import { PANELS_SCRIPT } from './page-panels.js';

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
  caption { text-align: left; font-size: .85rem; color: #52606d; padding: .3rem 0; }
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
  svg.chart polyline.under { stroke-dasharray: 4 3; stroke-width: 1.2; opacity: .8; }
  svg.chart line { stroke: #e3e8ee; stroke-width: 1; vector-effect: non-scaling-stroke; }
  .note { background: #eef2f6; padding: .4rem .7rem; border-left: 3px solid #6a7785; margin: .8rem 0; }
  p { overflow-wrap: anywhere; }
  .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
  td.actions { white-space: nowrap; }
  td.actions button { font: inherit; font-size: .85rem; padding: .1rem .45rem; margin: 0 .25rem .15rem 0; border: 1px solid #9aa5b1; border-radius: 3px; background: #fff; color: #1d2733; cursor: pointer; }
  td.actions button:hover, td.actions button:focus { background: #eef2f6; }
  td.actions button[disabled] { color: #9aa5b1; cursor: wait; }
  #act label { font-size: .9rem; } #act input { font: inherit; max-width: 100%; }
  #action-result { min-height: 1.4em; margin: .4rem 0; }
  #action-result[data-outcome="refused"], #action-result[data-outcome="failed"] { color: #b42318; font-weight: 600; }
  #action-result[data-outcome="done"] { color: #067647; }
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
<section id="act" aria-labelledby="act-h">
  <h2 id="act-h" class="sr">Actions</h2>
  <p class="note">Each button (drain, re-enable, force a breaker, drive a rollout, delete an override, lift a ban) makes one admin API v1 request with the token above; the admin API decides, and a refusal shows its status and code here. <span id="act-scope"></span></p>
  <label for="reason">reason for the next change (optional, kept with the override)</label> <input id="reason" type="text" maxlength="200" size="30" autocomplete="off">
  <p id="action-result" role="status" aria-live="polite" data-outcome="none"></p>
</section>
<h2>Traffic by route</h2>
<div id="charts" class="charts" aria-live="off"></div>
<h2>Endpoints</h2>
<div class="scroll"><table id="endpoints"><caption>Every endpoint of every upstream: state, why and since when (health checks, overrides)</caption><thead><tr><th scope="col">upstream</th><th scope="col">endpoint</th><th scope="col">state</th><th scope="col">why</th><th scope="col" class="n">since</th><th scope="col" class="n">weight</th><th scope="col" class="n">slow start</th><th scope="col" class="n">in flight</th><th scope="col" class="n">EWMA (ms)</th><th scope="col" class="n">requests</th><th scope="col" class="n">failures</th><th scope="col">actions</th></tr></thead><tbody></tbody></table></div>
<h2>Protection</h2>
<p id="shedding" class="muted">-</p>
<div class="scroll"><table id="protection"><caption>Breakers and concurrency limits per guarded upstream</caption><thead><tr><th scope="col">upstream</th><th scope="col">breaker</th><th scope="col">breaker actions</th><th scope="col" class="n">since</th><th scope="col" class="n">trips</th><th scope="col" class="n">trip at (% failed)</th><th scope="col" class="n">window failed</th><th scope="col">concurrency</th><th scope="col" class="n">limit</th><th scope="col" class="n">in flight</th><th scope="col" class="n">minRTT (ms)</th><th scope="col" class="n">sample RTT (ms)</th><th scope="col" class="n">shed</th><th scope="col" class="n">refused open</th></tr></thead><tbody></tbody></table></div>
<div class="scroll"><table id="ratelimits"><caption>Rate-limit policies and the share of their rate they admit now</caption><thead><tr><th scope="col">route</th><th scope="col">policy</th><th scope="col">rate</th><th scope="col" class="n">admitting</th><th scope="col">verdict</th><th scope="col" class="n">upstream p99 / target (ms)</th><th scope="col" class="n">errors / target</th><th scope="col" class="n">allowed</th><th scope="col" class="n">limited</th></tr></thead><tbody></tbody></table></div>
<h2>Overrides and rollouts</h2>
<div class="scroll"><table id="overrides"><caption>Run-time changes in force (admin API and event rules)</caption><thead><tr><th scope="col">id</th><th scope="col">kind</th><th scope="col">overrides</th><th scope="col">value</th><th scope="col">by</th><th scope="col">reason</th><th scope="col" class="n">expires</th><th scope="col">actions</th></tr></thead><tbody></tbody></table></div>
<div class="scroll"><table id="rollouts"><caption>Canary rollouts: phase, progress and the last analysis check</caption><thead><tr><th scope="col">rollout</th><th scope="col">route</th><th scope="col">phase</th><th scope="col" class="n">step</th><th scope="col" class="n">canary weight</th><th scope="col" class="n">checks</th><th scope="col">last check</th><th scope="col">why</th><th scope="col">actions</th></tr></thead><tbody></tbody></table></div>
<h2>Access lists and bans</h2>
<div class="scroll"><table id="ipaccess"><caption>ip-access lists in force, from the config or changed at run time</caption><thead><tr><th scope="col">policy</th><th scope="col">routes</th><th scope="col">lists from</th><th scope="col">allow</th><th scope="col">deny</th><th scope="col" class="n">since</th><th scope="col">actions</th></tr></thead><tbody></tbody></table></div>
<div class="scroll"><table id="bans"><caption>Clients banned now (automatic abuse blocking and operator bans)</caption><thead><tr><th scope="col">key</th><th scope="col">policy</th><th scope="col" class="n">since</th><th scope="col" class="n">until</th><th scope="col">reason</th><th scope="col">source</th><th scope="col" class="n">trips</th><th scope="col">actions</th></tr></thead><tbody></tbody></table></div>
<h2>Cache</h2>
<p id="cache-summary" class="muted">-</p>
<div class="scroll"><table id="cache"><caption>Response cache per caching route (the store and its figures above are shared by every route)</caption><thead><tr><th scope="col">route</th><th scope="col" class="n">requests</th><th scope="col" class="n">hit ratio</th><th scope="col" class="n">hits</th><th scope="col" class="n">stale served</th><th scope="col" class="n">revalidated</th><th scope="col" class="n">coalesced</th><th scope="col" class="n">misses</th><th scope="col" class="n">bypass</th><th scope="col" class="n">uncacheable</th></tr></thead><tbody></tbody></table></div>
<h2>Plugins and shared dictionaries</h2>
<p id="plugins-summary" class="muted">-</p>
<div class="scroll"><table id="plugins"><caption>Plugins in use and the routes that run them</caption><thead><tr><th scope="col">plugin</th><th scope="col">routes</th></tr></thead><tbody></tbody></table></div>
<div class="scroll"><table id="dicts"><caption>Shared dictionaries: size and use</caption><thead><tr><th scope="col">dictionary</th><th scope="col" class="n">size</th><th scope="col" class="n">used</th><th scope="col" class="n">free</th><th scope="col" class="n">items</th><th scope="col" class="n">evictions</th><th scope="col" class="n">expired removed</th></tr></thead><tbody></tbody></table></div>
<h2>Decisions</h2>
<div class="scroll"><table id="decisions"><caption>The last decisions, newest first, with their inputs</caption><thead><tr><th scope="col" class="n">#</th><th scope="col">time</th><th scope="col">kind</th><th scope="col">subject</th><th scope="col">why</th></tr></thead><tbody></tbody></table></div>
<h2>Workers</h2>
<div class="scroll"><table id="workers"><caption>Worker threads of the data plane</caption><thead><tr><th scope="col" class="n">slot</th><th scope="col">phase</th><th scope="col" class="n">requests</th><th scope="col" class="n">in flight</th><th scope="col" class="n">5xx</th><th scope="col" class="n">loop util.</th><th scope="col" class="n">loop p99 (ms)</th><th scope="col" class="n">restarts</th></tr></thead><tbody></tbody></table></div>
<h2>Routes</h2>
<div class="scroll"><table id="routes"><caption>Requests per route since start, the rate between the last two polls, and the latest interval's percentiles</caption><thead><tr><th scope="col">route</th><th scope="col">upstream</th><th scope="col" class="n">requests</th><th scope="col" class="n">errors (5xx)</th><th scope="col" class="n">req/s</th><th scope="col" class="n">p50 (ms)</th><th scope="col" class="n">p90 (ms)</th><th scope="col" class="n">p99 (ms)</th></tr></thead><tbody></tbody></table></div>
<h2>Upstreams and scaling</h2>
<div class="scroll"><table id="scaling"><caption>Request rate per upstream, its forecast and the replica recommendation</caption><thead><tr><th scope="col">upstream</th><th scope="col" class="n">req/s</th><th scope="col">forecast</th><th scope="col" class="n">current</th><th scope="col" class="n">recommended</th><th scope="col">reason</th></tr></thead><tbody></tbody></table></div>
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
  function fill(id, rows) {
    var t = document.getElementById(id), tb = t.querySelector('tbody');
    tb.textContent = '';
    rows.forEach(function (r) { tb.appendChild(r); });
    // An empty table says so, rather than looking like one that failed to load.
    if (rows.length === 0) { var td = el('td', 'none', 'muted empty'); td.colSpan = t.querySelectorAll('thead th').length; var tr = document.createElement('tr'); tr.appendChild(td); tb.appendChild(tr); }
  }
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
      scopeHint();
    }, function () {});
  }
  document.getElementById('login').addEventListener('submit', function (ev) {
    ev.preventDefault();
    token = document.getElementById('token').value;
    sessionStorage.setItem(TOKEN_KEY, token);
    document.getElementById('token').value = '';
    whoAmI();
    pollNow();
  });
  document.getElementById('forget').addEventListener('click', function () { token = ''; caller = null; sessionStorage.removeItem(TOKEN_KEY); scopeHint(); askToken(''); });
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
  var SERIES = ['rps', 'err', 'p50', 'p90', 'p99'];
  function pad(m, len) { SERIES.forEach(function (k) { while (m[k].length < len) m[k].push(null); }); }
  function mergeHistory(h) {
    var g = h.routes; if (!g || g.times.length === 0) return;
    var start = hist.times.length;
    g.times.forEach(function (t) { hist.times.push(t); });
    g.series.forEach(function (s) {
      var mine = hist.series[s.name];
      if (!mine) { mine = hist.series[s.name] = { rps: [], err: [], p50: [], p90: [], p99: [] }; pad(mine, start); }
      for (var j = 0; j < g.times.length; j++) {
        var rps = s.rps[j], eps = s.errorsPerSecond[j];
        mine.rps.push(rps); mine.p50.push(s.p50Ms[j]); mine.p90.push(s.p90Ms[j]); mine.p99.push(s.p99Ms[j]);
        mine.err.push(rps === null || eps === null ? null : rps > 0 ? 100 * eps / rps : 0);
      }
    });
    Object.keys(hist.series).forEach(function (n) { pad(hist.series[n], hist.times.length); });
    var drop = hist.times.length - MAX_POINTS;
    if (drop > 0) { hist.times.splice(0, drop); Object.keys(hist.series).forEach(function (n) { var m = hist.series[n]; SERIES.forEach(function (k) { m[k].splice(0, drop); }); }); }
    histSince = g.times[g.times.length - 1];
  }
  /** The newest non-empty value of a history column, or null. */
  function latest(values) { for (var i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i]; return null; }
  function svg(tag, attrs) { var e = document.createElementNS(SVG, tag); Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); return e; }
  // under: a second, dashed series drawn on the same scale (p50 under p99): the dash, not a colour, tells them apart.
  function chart(title, unit, values, cls, digits, under) {
    var f = document.createElement('figure');
    var last = latest(values), max = 0;
    values.concat(under ? under.values : []).forEach(function (v) { if (v !== null && v > max) max = v; });
    var cap = document.createElement('figcaption');
    cap.appendChild(el('span', title));
    var now = (under ? under.over + ' ' : '') + (last === null ? '-' : num(last, digits)) + ' ' + unit;
    var low = under ? under.label + ' ' + (latest(under.values) === null ? '-' : num(latest(under.values), digits)) + ' ' + unit + ' (dashed) · ' : '';
    cap.appendChild(el('span', low + now + ' (max ' + num(max, digits) + ')', 'muted'));
    f.appendChild(cap);
    var W = 300, H = 60, n = Math.max(values.length - 1, 1), top = max > 0 ? max * 1.1 : 1;
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', 'aria-label': title + ': latest ' + (last === null ? 'none' : num(last, digits) + ' ' + unit) + ', max ' + num(max, digits) + ' ' + unit, 'class': 'chart ' + (cls || '') });
    s.appendChild(svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    // Gaps (no value) break the line rather than drawing a false zero.
    function draw(vals, extra) {
      var pts = [];
      function flush() { if (pts.length > 0) { var pl = svg('polyline', { points: pts.join(' ') }); if (extra) pl.setAttribute('class', extra); s.appendChild(pl); } pts = []; }
      vals.forEach(function (v, i) { if (v === null) { flush(); return; } pts.push((i / n * W).toFixed(1) + ',' + (H - v / top * H).toFixed(1)); });
      flush();
    }
    if (under) draw(under.values, 'under');
    draw(values);
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
      box.appendChild(chart(n + ' · latency', 'ms', s.p99, 'lat', 1, { values: s.p50, label: 'p50', over: 'p99' }));
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
        var pin = overrideOf('endpoint', u.name + '/' + e.address);
        var drained = pin && pin.value && pin.value.state === 'drain';
        // A state the override holds is explained by the override, not by the last health verdict.
        if (pin && (drained || !why)) why = (drained ? 'drained by ' : 'override by ') + pin.createdBy + (pin.reason ? ': ' + pin.reason : '') + (pin.expiresAt ? ' (ends ' + inSeconds(pin.expiresAt) + ')' : '');
        var acts = drained ? [btn('re-enable', 're-enable ' + u.name + ' ' + e.address, { act: 'delete-override', id: pin.id })] : [btn('drain', 'drain ' + u.name + ' ' + e.address, { act: 'drain', upstream: u.name, endpoint: e.address })];
        rows.push(row([u.name, e.address, st, el('td', why, 'text muted'), h && h.since ? ago(h.since) : '-', e.weight, u.slowStartMs > 0 ? ramp : '-', e.inFlight, num(e.ewmaUs / 1000, 2), e.requests, e.failures, actions(acts)]));
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
      return row([u.upstream, el('td', b ? b.state + (b.forced ? ' (forced)' : '') : 'off', 'state ' + bcls), actions(b ? breakerButtons(u.upstream, b.forced) : []), since, b ? b.trips : '-', b ? num(b.failureRateThreshold, 0) : '-', win,
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
  /** One analysis check in words: the verdict, then each side's figures over that interval. */
  function checkText(c) {
    if (!c) return 'none yet';
    var side = function (x) { return x ? x.requests + ' req, ' + num(100 * x.errorRate, 1) + ' % errors, p99 ' + num(x.p99Ms, 1) + ' ms' : '-'; };
    return (c.verdict || '?') + ' at ' + num(c.weight, 0) + ' %: canary ' + side(c.canary) + '; stable ' + side(c.stable) + (c.latency && typeof c.latency.pValue === 'number' ? '; latency p = ' + num(c.latency.pValue, 2) : '');
  }
  function renderControl(status) {
    var ov = (status.overrides && status.overrides.active) || [];
    fill('overrides', ov.map(function (o) {
      // The id's first 8 characters tell overrides apart; the whole id is the cell's title.
      var idCell = el('td', o.id.length > 9 ? o.id.slice(0, 8) + '…' : o.id);
      idCell.title = o.id;
      return row([idCell, o.kind, el('td', o.key, 'text'), el('td', JSON.stringify(o.value), 'text'), o.createdBy, el('td', o.reason || '', 'text muted'), el('td', inSeconds(o.expiresAt), 'n'), actions([btn('delete', 'delete override ' + o.id + ' (' + o.kind + ' ' + o.key + ')', { act: 'delete-override', id: o.id })])]);
    }));
    var ro = (status.rollouts && status.rollouts.rollouts) || [];
    fill('rollouts', ro.map(function (r) {
      var cls = r.phase === 'rolled-back' ? 'bad' : r.phase === 'paused' ? 'warn' : r.phase === 'promoted' ? 'ok' : '';
      var last = checkText(r.lastCheck);
      return row([r.name, r.route, el('td', r.phase, 'state ' + cls), r.step === undefined ? '-' : r.step, num(r.weight, 0) + ' %', r.checks, el('td', last, 'text'), el('td', r.reason || '', 'text muted'), actions(rolloutButtons(r.name, r.phase))]);
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
  function render(status, metrics, extra) {
    indexOverrides(status);
    document.getElementById('version').textContent = status.version;
    document.getElementById('generation').textContent = status.generation;
    document.getElementById('uptime').textContent = status.uptimeSeconds;
    var elu = byLabel(metrics, 'tidegate_worker_event_loop_utilization_ratio', 'worker');
    var lag = byLabel(metrics, 'tidegate_worker_event_loop_delay_p99_seconds', 'worker');
    fill('workers', status.workers.map(function (w) {
      return row([w.slot, el('td', w.phase, w.phase === 'listening' ? 'ok' : 'bad'), w.requests, w.inFlight, w.responses ? w.responses['5xx'] : '-', elu[w.slot] === undefined ? '-' : num(elu[w.slot] * 100, 0) + ' %', num(lag[w.slot] * 1000, 1), w.restarts]);
    }));
    var reqs = byLabel(metrics, 'tidegate_route_requests_total', 'route');
    var errs = byLabel(metrics, 'tidegate_route_requests_total', 'route', function (l) { return l.code_class === '5xx'; });
    var now = Date.now();
    var dt = prevAt ? (now - prevAt) / 1000 : 0;
    var routes = (status.routes || []).map(function (r) { return r.name; });
    Object.keys(reqs).forEach(function (n) { if (routes.indexOf(n) < 0) routes.push(n); });
    var upstreamOf = {};
    (status.routes || []).forEach(function (r) { upstreamOf[r.name] = r.upstream || (r.split ? 'split ' + r.split.join(' / ') : undefined); });
    fill('routes', routes.map(function (n) {
      var rate = dt > 0 && prevRoute[n] !== undefined ? ((reqs[n] || 0) - prevRoute[n]) / dt : null;
      var h = hist.series[n] || { p50: [], p90: [], p99: [] };
      return row([n, upstreamOf[n] || '-', reqs[n] || 0, el('td', String(errs[n] || 0), errs[n] ? 'n bad' : 'n'), num(rate, 1), num(latest(h.p50), 1), num(latest(h.p90), 1), num(latest(h.p99), 1)]);
    }));
    prevRoute = reqs; prevAt = now;
    var scaling = status.scaling || [];
    fill('scaling', scaling.map(function (s) {
      var rec = s.recommendation;
      // A forecast from fewer than 3 samples is the last value repeated: not yet a forecast.
      var f = s.forecastEnabled === false ? 'off' : s.forecast && s.forecast.model !== 'naive' ? num(s.forecast.value, 1) + ' req/s in ' + s.forecast.horizonSeconds + ' s (' + s.forecast.model + ')' : 'learning';
      var none = s.target === null ? 'no target' : 'learning';
      var recCls = rec && rec.recommended !== rec.current ? 'n bad' : 'n';
      return row([s.upstream, num(s.requestRate, 1), el('td', f, f === 'learning' || f === 'off' ? 'muted' : ''), el('td', rec ? String(rec.current) : none, 'n' + (rec ? '' : ' muted')), el('td', rec ? String(rec.recommended) + (rec.recommended > rec.current ? ' (up)' : rec.recommended < rec.current ? ' (down)' : '') : none, recCls + (rec ? '' : ' muted')), el('td', rec ? rec.reason : s.target === null ? 'no scaling target for this upstream (observability.scaling.upstreams)' : 'waiting for the first scaling interval', 'muted')]);
    }));
    renderEndpoints(status);
    renderProtection(status);
    renderControl(status);
    renderPanels(status, extra);
    renderCharts(status);
    document.getElementById('updated').textContent = new Date(now).toISOString();
    document.getElementById('error').textContent = '';
    document.body.setAttribute('data-ready', '1');
  }
  var pollTimer = null, polling = false, pollAgain = false;
  function poll() {
    if (polling) { pollAgain = true; return; }
    polling = true;
    clearTimeout(pollTimer);
    Promise.all([
      getJson('status'),
      api('metrics').then(function (r) { if (!r.ok) throw new Error('/metrics: HTTP ' + r.status); return r.text(); }),
      getJson('v1/history?kind=route' + (histSince ? '&since=' + histSince : '')),
      getJson(lastDecision < 0 ? 'v1/decisions?limit=' + MAX_DECISIONS : 'v1/decisions?since=' + lastDecision),
      getJson('v1/cache'),
      getJson('v1/bans'),
      getJson('v1/plugins')
    ]).then(function (res) {
      mergeHistory(res[2]);
      mergeDecisions(res[3]);
      render(res[0], parseMetrics(res[1]), { cache: res[4], bans: res[5].bans, plugins: res[6] });
    }, function (err) {
      document.getElementById('error').textContent = 'poll failed: ' + err.message;
    }).then(function () {
      polling = false;
      pollTimer = setTimeout(poll, pollAgain ? 0 : POLL_MS);
      pollAgain = false;
    });
  }
  /** After an action: show its effect now rather than at the next tick. */
  function pollNow() { poll(); }
${PANELS_SCRIPT}${ACTIONS_SCRIPT}
  poll();
})();
</script>
</body>
</html>
`;
