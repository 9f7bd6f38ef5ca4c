// The console's panels for access lists and bans, the response cache, and plugins
// with their shared dictionaries: part of the page's one script (joined by page.ts,
// sharing its helpers: el, row, fill, num, ago, btn, actions, overrideOf). Their data
// come from /status (ip-access lists, ban policies), GET /v1/bans, GET /v1/cache and
// GET /v1/plugins, fetched with the rest of each poll.
export const PANELS_SCRIPT = `
  // ---- access lists, bans, cache, plugins and shared dictionaries ----
  function bytes(n) {
    if (n === null || n === undefined || isNaN(n)) return '-';
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }
  function pct(ratio) { return ratio === null || ratio === undefined || isNaN(ratio) ? '-' : (100 * ratio).toFixed(1) + ' %'; }
  function ncell(text) { return el('td', String(text), 'n'); }
  function until(iso) { if (!iso) return '-'; var s = Math.round((Date.parse(iso) - Date.now()) / 1000); return s <= 0 ? 'now' : s < 90 ? 'in ' + s + ' s' : 'in ' + Math.round(s / 60) + ' min'; }
  function durationText(ms) { if (ms === undefined || ms === null) return '?'; return ms % 60000 === 0 ? ms / 60000 + ' min' : ms % 1000 === 0 ? ms / 1000 + ' s' : ms + ' ms'; }
  function renderAccess(status) {
    var ip = (status.access && status.access.ipAccess) || [];
    fill('ipaccess', ip.map(function (p) {
      var runtime = p.source === 'run-time';
      var ov = overrideOf('ip-access', 'ip-access:' + p.name);
      var acts = !runtime ? [] : [ov ? btn('restore', 'delete override ' + ov.id + ': the configured lists of ' + p.name + ' again', { act: 'delete-override', id: ov.id }) : btn('restore', 'put the configured lists of ' + p.name + ' back', { act: 'restore-access', policy: p.name })];
      return row([p.name, el('td', (p.routes || []).join(', '), 'text'), el('td', runtime ? 'run-time' : 'config', runtime ? 'state warn' : ''), el('td', (p.allow || []).join(', ') || 'any', 'text'), el('td', (p.deny || []).join(', ') || 'none', 'text'), p.since ? ago(Date.parse(p.since)) : '-', actions(acts)]);
    }));
  }
  function renderBans(status, bans) {
    var rules = {};
    ((status.bans && status.bans.policies) || []).forEach(function (p) { rules[p.name] = p; });
    fill('bans', (bans || []).map(function (b) {
      var ov = overrideOf('ban', 'ban:' + b.key);
      var rule = rules[b.policy];
      var why = ov ? (ov.reason || 'override ' + ov.id) + ' (by ' + ov.createdBy + ')' : b.source === 'automatic' && rule ? rule.count + ' answers ' + (rule.statuses || []).join('/') + ' within ' + durationText(rule.windowMs) : b.source === 'manual' ? 'banned through the admin API' : '';
      var lift = ov ? btn('lift', 'lift the ban on ' + b.key + ' (delete override ' + ov.id + ')', { act: 'delete-override', id: ov.id }) : btn('lift', 'lift the ban on ' + b.key, { act: 'lift', key: b.key });
      return row([b.key, b.policy, b.since ? ago(Date.parse(b.since)) : '-', el('td', until(b.until), 'n'), el('td', why, 'text'), b.source, b.trips, actions([lift])]);
    }));
  }
  function renderCache(c) {
    var sum = document.getElementById('cache-summary');
    if (!c || !c.enabled) { sum.textContent = 'No route caches: the response cache is off.'; fill('cache', []); return; }
    sum.textContent = 'Store: ' + c.entries + ' of ' + c.maxEntries + ' entries, ' + bytes(c.usedBytes) + ' of ' + bytes(c.sizeBytes) + ' used (' + bytes(c.bodyBytes) + ' of bodies); ' + c.stored + ' stored, ' + c.evictions + ' evicted, ' + c.admissionsRefused + ' refused admission, ' + c.purged + ' purged. Hit ratio of every caching route: ' + pct(c.hitRatio) + '.';
    fill('cache', (c.routes || []).map(function (r) {
      var q = r.requests, all = 0;
      Object.keys(q).forEach(function (k) { all += q[k]; });
      var hits = q.hit + q.coalesced + q.stale + q.stale_if_busy + q.revalidated;
      return row([r.route, all, ncell(all === 0 ? '-' : pct(hits / all)), q.hit, q.stale + q.stale_if_busy, q.revalidated, q.coalesced, q.miss, q.bypass, q.uncacheable]);
    }));
  }
  function renderPlugins(status, p) {
    var errors = 0;
    (status.workers || []).forEach(function (w) { errors += w.pluginErrors || 0; });
    var mods = (p && p.modules) || [];
    document.getElementById('plugins-summary').textContent = mods.length === 0 ? 'No plugin modules loaded (config plugins).' : mods.length + ' plugin module' + (mods.length === 1 ? '' : 's') + ' loaded: ' + mods.join(', ') + '. Plugin calls that threw, all workers: ' + errors + '.';
    fill('plugins', ((p && p.plugins) || []).map(function (x) { return row([x.name, el('td', x.routes.join(', '), 'text')]); }));
    fill('dicts', ((p && p.shared) || []).map(function (d) {
      return row([d.name, ncell(bytes(d.capacityBytes)), ncell(bytes(d.usedBytes) + ' (' + pct(d.capacityBytes > 0 ? d.usedBytes / d.capacityBytes : null) + ')'), ncell(bytes(d.freeBytes)), d.items, d.evictions, d.expiredRemoved]);
    }));
  }
  function renderPanels(status, extra) {
    renderAccess(status);
    renderBans(status, extra.bans);
    renderCache(extra.cache);
    renderPlugins(status, extra.plugins);
  }
`;
