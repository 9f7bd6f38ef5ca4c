// The console's action buttons, as part of the page's one script (joined into it by
// page.ts, so it shares that scope: el, authHeaders, caller, pollNow …). Every button
// is one admin API v1 request sent with the token the user typed; the page never
// decides what is allowed: the API does, and its refusal (status and code) is shown
// as it came. Buttons carry what their request needs in data- attributes and one
// listener on the document handles them all, so the tables can be redrawn every poll
// without losing a click.
export const ACTIONS_SCRIPT = `
  // ---- actions: one admin API v1 request per button ----
  var overridesByKey = {};
  function indexOverrides(status) {
    overridesByKey = {};
    ((status.overrides && status.overrides.active) || []).forEach(function (o) { overridesByKey[o.kind + ' ' + o.key] = o; });
  }
  function overrideOf(kind, key) { return overridesByKey[kind + ' ' + key]; }
  function btn(word, label, data) {
    var b = el('button', word);
    b.type = 'button';
    b.setAttribute('aria-label', label);
    b.title = label;
    Object.keys(data).forEach(function (k) { b.dataset[k] = data[k]; });
    b.dataset.label = label;
    return b;
  }
  function actions(buttons) { var td = el('td', '', 'actions'); buttons.forEach(function (b) { td.appendChild(b); }); return td; }
  function breakerButtons(upstream, forced) {
    var out = [];
    if (forced !== 'open') out.push(btn('force open', 'force the breaker of ' + upstream + ' open', { act: 'breaker', upstream: upstream, state: 'open' }));
    if (forced !== 'closed') out.push(btn('force closed', 'force the breaker of ' + upstream + ' closed', { act: 'breaker', upstream: upstream, state: 'closed' }));
    if (forced) out.push(btn('auto', 'let the breaker of ' + upstream + ' step by itself again', { act: 'breaker', upstream: upstream, state: 'auto' }));
    return out;
  }
  // The actions each phase accepts (the API refuses the others with 409).
  var ROLLOUT_ACTIONS = { pending: ['start', 'promote', 'abort'], progressing: ['pause', 'promote', 'abort'], paused: ['resume', 'promote', 'abort'], 'rolled-back': ['start', 'promote'], promoted: ['start', 'abort'] };
  function rolloutButtons(name, phase) {
    return (ROLLOUT_ACTIONS[phase] || []).map(function (a) { return btn(a, a + ' rollout ' + name, { act: 'rollout', name: name, action: a }); });
  }
  function withReason(body) {
    var r = document.getElementById('reason').value.trim();
    if (r) body.reason = r;
    return body;
  }
  var enc = encodeURIComponent;
  /** [method, path, body?] of a button's request */
  function requestOf(d) {
    switch (d.act) {
      case 'drain': return ['PUT', 'v1/upstreams/' + enc(d.upstream) + '/endpoints/' + enc(d.endpoint), withReason({ state: 'drain' })];
      case 'breaker': return ['PUT', 'v1/upstreams/' + enc(d.upstream) + '/breaker', d.state === 'auto' ? { state: 'auto' } : withReason({ state: d.state })];
      case 'rollout': return ['POST', 'v1/rollouts/' + enc(d.name) + '/' + enc(d.action)];
      case 'delete-override': return ['DELETE', 'v1/overrides/' + enc(d.id)];
      case 'lift': return ['DELETE', 'v1/bans/' + enc(d.key)];
      case 'restore-access': return ['DELETE', 'v1/access/' + enc(d.policy)];
    }
    return null;
  }
  function showResult(outcome, text) {
    var p = document.getElementById('action-result');
    p.dataset.outcome = outcome;
    p.textContent = text;
  }
  function act(b) {
    var d = b.dataset;
    var req = requestOf(d);
    if (req === null) return;
    var init = { method: req[0], cache: 'no-store', headers: authHeaders() };
    if (req[2] !== undefined) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(req[2]); }
    b.disabled = true;
    showResult('pending', d.label + ': sent');
    fetch(req[1], init).then(function (r) {
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (e) { j = null; }
        if (r.ok) {
          showResult('done', 'done: ' + d.label + (j && j.id ? ' (override ' + j.id + ')' : ''));
          document.getElementById('reason').value = '';
        } else {
          var er = j && j.error ? j.error : {};
          showResult('refused', 'refused: ' + d.label + ': HTTP ' + r.status + (er.code ? ' ' + er.code : '') + (er.message ? ': ' + er.message : ''));
        }
      });
    }, function (err) {
      showResult('failed', 'failed: ' + d.label + ': ' + err.message);
    }).then(function () { b.disabled = false; pollNow(); });
  }
  document.addEventListener('click', function (ev) {
    var t = ev.target;
    var b = t && t.closest ? t.closest('button[data-act]') : null;
    if (b && !b.disabled) act(b);
  });
  // A hint, not a gate: the API is what refuses.
  function scopeHint() {
    var s = caller ? caller.scopes : [];
    var missing = ['traffic', 'access'].filter(function (x) { return s.indexOf(x) < 0; });
    document.getElementById('act-scope').textContent = caller && missing.length > 0 ? 'Token ' + caller.name + ' lacks the ' + missing.join(' and ') + ' scope: the API will refuse ' + (missing.length === 2 ? 'every action' : missing[0] === 'traffic' ? 'all but the access-list and ban actions' : 'the access-list and ban actions') + '.' : '';
  }
`;
