// wagate dashboard: session list with live status (polling), create/start/stop/logout/delete.
// No build step, no dependencies. Untrusted text is only ever set with textContent.
// Hooks for later parts (search "HOOK"): live QR / pairing code, live event log.
// SPDX-License-Identifier: GPL-3.0-or-later
'use strict';

const WG = (() => {
  const POLL_MS = 2000;
  const EVENTS_MAX = 200;
  const KEY_STORE = 'wagate.apiKey';
  let selected = null; // session shown in the QR panel
  let timer = null;

  const $ = (id) => document.getElementById(id);

  function apiKey() { return sessionStorage.getItem(KEY_STORE) || ''; }

  // The key may arrive in the URL fragment (wagate prints http://host/#key=... once); the
  // fragment never reaches the server. Keep it for this tab only and drop it from the URL.
  function takeKeyFromFragment() {
    const m = location.hash.match(/[#&]key=([^&]+)/);
    if (m) {
      sessionStorage.setItem(KEY_STORE, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
  }

  async function api(method, path, body) {
    const headers = { 'X-Api-Key': apiKey() };
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = (data && data.error) || { code: 'http_' + res.status, message: res.statusText };
      const e = new Error(err.message);
      e.status = res.status;
      e.code = err.code;
      throw e;
    }
    return data;
  }

  function notice(text) {
    const n = $('notice');
    n.textContent = text || '';
    n.hidden = !text;
  }

  function el(tag, props, children) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const c of children || []) e.append(c);
    return e;
  }

  function fmtBytes(n) {
    if (n == null) return '';
    if (n < 1024) return n + ' B';
    if (n < 1 << 20) return (n / 1024).toFixed(1) + ' KiB';
    return (n / (1 << 20)).toFixed(1) + ' MiB';
  }

  function action(label, fn, cls) {
    return el('button', { type: 'button', textContent: label, className: cls || '', onclick: fn });
  }

  async function run(fn) {
    try { await fn(); await refresh(); } catch (e) { notice(e.message); }
  }

  function renderSessions(list) {
    const body = $('sessions').querySelector('tbody');
    body.replaceChildren();
    $('empty').hidden = list.length > 0;
    for (const s of list) {
      const path = '/api/sessions/' + encodeURIComponent(s.name);
      const status = el('span', { className: 'status ' + s.status, textContent: s.status,
                                  title: s.reason || '' });
      const actions = el('td', { className: 'actions' }, [
        s.running ? action('Stop', () => run(() => api('POST', path + '/stop')))
                  : action('Start', () => run(() => api('POST', path + '/start'))),
        ' ',
        action('Logout', () => run(() => api('POST', path + '/logout'))),
        ' ',
        action('Delete', () => {
          if (confirm('Delete session ' + s.name + ' and its credentials?'))
            run(() => api('DELETE', path));
        }, 'danger'),
      ]);
      const row = el('tr', { dataset: { name: s.name } }, [
        el('td', { textContent: s.name }),
        el('td', {}, [status]),
        el('td', { textContent: s.me || '', className: 'muted' }),
        el('td', { textContent: fmtBytes(s.memory_bytes), className: 'muted' }),
        actions,
      ]);
      row.addEventListener('click', (ev) => { if (ev.target.tagName !== 'BUTTON') select(s); });
      body.append(row);
      if (selected && selected.name === s.name) renderQr(s);
    }
  }

  function select(s) {
    selected = s;
    renderQr(s);
  }

  // HOOK (QR and pairing by code): GET /api/sessions/{name}/qr?format=png and
  // POST /api/sessions/{name}/pair-code are planned; until they exist this only says so.
  function renderQr(s) {
    const panel = $('qr-panel');
    panel.hidden = false;
    $('qr-session').textContent = s.name;
    const box = $('qr');
    if (s.status === 'SCAN_QR') {
      box.replaceChildren(el('img', { alt: 'QR code for ' + s.name,
        src: '/api/sessions/' + encodeURIComponent(s.name) + '/qr?format=png' }));
      // An <img> cannot send X-Api-Key: the QR route will be fetched with api() and shown
      // through a blob URL once it exists.
    } else {
      box.replaceChildren(el('p', { className: 'muted',
        textContent: 'Status ' + s.status + '. The QR appears here while the session waits for a scan.' }));
    }
  }

  // HOOK (live event log): called with each event envelope {id, timestamp, session, event,
  // payload} once GET /api/events (WebSocket / SSE) exists; see connectEvents.
  function onEvent(evt) {
    const list = $('events');
    list.prepend(el('li', { textContent:
      (evt.timestamp || '') + ' ' + (evt.session || '') + ' ' + (evt.event || '') + ' ' +
      JSON.stringify(evt.payload || {}) }));
    while (list.children.length > EVENTS_MAX) list.lastChild.remove();
  }

  function connectEvents() {
    // Planned: new EventSource('/api/events?...') or a WebSocket. Until then nothing streams.
    const list = $('events');
    if (!list.children.length)
      list.append(el('li', { className: 'muted', textContent: 'Event stream not available yet.' }));
  }

  async function refreshReady() {
    const badge = $('ready');
    try {
      const res = await fetch('/ready');
      const r = await res.json();
      badge.textContent = r.status;
      badge.className = 'badge ' + r.status;
      badge.title = JSON.stringify(r.checks);
      if (r.connected_to_whatsapp === false)
        notice('This build\'s session backend ("' + r.backend + '") does not connect to WhatsApp yet: ' +
               'sessions stay STARTING.');
    } catch (e) {
      badge.textContent = 'unreachable';
      badge.className = 'badge fail';
    }
  }

  async function refresh() {
    await refreshReady();
    if (!apiKey()) {
      notice('Enter the API key (wagate prints it at first start; it is in DATA_DIR/api_key).');
      return;
    }
    try {
      const data = await api('GET', '/api/sessions');
      renderSessions(data.sessions);
    } catch (e) {
      notice(e.status === 401 || e.status === 403 ? 'API key rejected: ' + e.message : e.message);
    }
  }

  function start() {
    takeKeyFromFragment();
    $('api-key').value = apiKey();
    $('key-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY_STORE, $('api-key').value.trim());
      notice('');
      refresh();
    });
    $('create-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = $('new-name').value.trim();
      run(async () => {
        await api('POST', '/api/sessions', { name });
        $('new-name').value = '';
        notice('');
      });
    });
    connectEvents();
    refresh();
    timer = setInterval(refresh, POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', start);
  return { api, refresh, renderQr, onEvent, connectEvents, stop: () => clearInterval(timer) };
})();
