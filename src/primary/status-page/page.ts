// The read-only status page served at GET /ui on the admin port: one static HTML
// document with inline JS (no build step, no dependencies) that polls /status and
// /metrics. Kept as a string module so `tsc` ships it with the rest of dist/.
// (The page's own script avoids template literals so this file needs no escaping.)
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tidegate status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2733; background: #f7f9fb; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
  table { border-collapse: collapse; background: #fff; min-width: 40rem; }
  th, td { padding: .3rem .7rem; border-bottom: 1px solid #e3e8ee; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  th { background: #eef2f6; font-weight: 600; }
  .muted { color: #6a7785; } .bad { color: #b42318; font-weight: 600; } .ok { color: #067647; }
  #error { color: #b42318; }
</style>
</head>
<body data-ready="0">
<h1>tidegate</h1>
<div class="muted">version <span id="version">-</span> · generation <span id="generation">-</span> · uptime <span id="uptime">-</span> s · updated <span id="updated">never</span></div>
<div id="error"></div>
<h2>Workers</h2>
<table id="workers"><thead><tr><th>slot</th><th>phase</th><th>requests</th><th>in flight</th><th>5xx</th><th>loop util.</th><th>loop p99 (ms)</th><th>restarts</th></tr></thead><tbody></tbody></table>
<h2>Routes</h2>
<table id="routes"><thead><tr><th>route</th><th>upstream</th><th>requests</th><th>errors (5xx)</th><th>req/s</th></tr></thead><tbody></tbody></table>
<h2>Upstreams and scaling</h2>
<table id="scaling"><thead><tr><th>upstream</th><th>req/s</th><th>forecast</th><th>current</th><th>recommended</th><th>reason</th></tr></thead><tbody></tbody></table>
<script>
(function () {
  'use strict';
  var POLL_MS = 2000;
  var prevRoute = {};
  var prevAt = 0;
  function el(tag, text, cls) { var e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls; return e; }
  function row(cells) { var tr = document.createElement('tr'); cells.forEach(function (c) { tr.appendChild(typeof c === 'object' ? c : el('td', String(c))); }); return tr; }
  function fill(id, rows) { var tb = document.querySelector('#' + id + ' tbody'); tb.textContent = ''; rows.forEach(function (r) { tb.appendChild(r); }); }
  function num(v, d) { return v === null || v === undefined || isNaN(v) ? '-' : Number(v).toFixed(d === undefined ? 0 : d); }
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
      return row([n, upstreamOf[n] || '-', reqs[n] || 0, el('td', String(errs[n] || 0), errs[n] ? 'bad' : ''), num(rate, 1)]);
    }));
    prevRoute = reqs; prevAt = now;
    var scaling = status.scaling || [];
    fill('scaling', scaling.map(function (s) {
      var rec = s.recommendation;
      return row([s.upstream, num(s.requestRate, 1), s.forecast ? num(s.forecast.value, 1) + ' in ' + s.forecast.horizonSeconds + 's' : '-', rec ? rec.current : '-', el('td', rec ? String(rec.recommended) : '-', rec && rec.recommended !== rec.current ? 'bad' : ''), el('td', rec ? rec.reason : '', 'muted')]);
    }));
    document.getElementById('updated').textContent = new Date(now).toISOString();
    document.getElementById('error').textContent = '';
    document.body.setAttribute('data-ready', '1');
  }
  function poll() {
    Promise.all([
      fetch('status', { cache: 'no-store' }).then(function (r) { if (!r.ok) throw new Error('/status: HTTP ' + r.status); return r.json(); }),
      fetch('metrics', { cache: 'no-store' }).then(function (r) { if (!r.ok) throw new Error('/metrics: HTTP ' + r.status); return r.text(); })
    ]).then(function (res) { render(res[0], parseMetrics(res[1])); }, function (err) {
      document.getElementById('error').textContent = 'poll failed: ' + err.message;
    }).then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
</script>
</body>
</html>
`;
