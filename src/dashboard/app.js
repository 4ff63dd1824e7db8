// wagate dashboard: sessions with live status, create/start/stop/logout/delete, the selected
// session's live QR code (refreshed as WhatsApp rotates it) or pairing by phone code, a "send a
// test message" form, and a live event log.
//
// Live updates come from the event stream, Server-Sent Events on GET /api/events. A browser's
// EventSource cannot send X-Api-Key, so the key goes in ?api_key= (accepted on that route only).
// A session.status event updates its row at once and triggers a refresh of the list. While the
// stream is down (refused, server restarting) the list is polled every POLL_MS instead; the
// browser reconnects by itself and resumes after the last event it saw (Last-Event-ID).
//
// No build step, no dependencies, nothing inline (the page's CSP allows none). Text from the
// server is only ever set with textContent.
// SPDX-License-Identifier: GPL-3.0-or-later
'use strict';

const WG = (() => {
  const POLL_MS = 2000; // session list while the event stream is down
  const LIVE_POLL_MS = 15000; // ... and while it is up (memory figures, anything missed)
  const QR_POLL_MS = 2500; // QR while the selected session waits for a scan
  const STREAM_RETRY_MS = 5000; // a refused stream (wrong key, 503) is tried again after this
  const REFRESH_DELAY_MS = 150; // events in a burst make one refresh
  const EVENTS_MAX = 200;
  const KEY_STORE = 'wagate.apiKey';

  const sessions = new Map(); // name -> session as GET /api/sessions gives it
  let selected = null; // name of the session in the link panel
  let shownQr = null; // text of the QR image on screen
  let source = null; // EventSource
  let live = false;
  let pollTimer = null;
  let refreshTimer = null;
  let retryTimer = null;
  let sendResult = ''; // what the last send gave

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

  function sessionPath(name) { return '/api/sessions/' + encodeURIComponent(name); }

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
    try { await fn(); notice(''); } catch (e) { notice(e.message); }
    await refresh();
  }

  // ---- sessions ----

  function renderSessions() {
    const body = $('sessions').querySelector('tbody');
    body.replaceChildren();
    $('empty').hidden = sessions.size > 0;
    for (const s of sessions.values()) {
      const path = sessionPath(s.name);
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
      const row = el('tr', { className: s.name === selected ? 'selected' : '' }, [
        el('td', { textContent: s.name, className: 'name' }),
        el('td', {}, [status]),
        el('td', { textContent: s.me ? s.me.jid : '', className: 'muted',
                   title: s.me && s.me.lid ? s.me.lid : '' }),
        el('td', { textContent: fmtBytes(s.memory_bytes), className: 'muted' }),
        actions,
      ]);
      row.dataset.name = s.name;
      row.addEventListener('click', (ev) => { if (ev.target.tagName !== 'BUTTON') select(s.name); });
      body.append(row);
    }
    if (selected && !sessions.has(selected)) selected = null;
    renderLink();
    renderSend();
  }

  function select(name) {
    selected = name;
    renderSessions();
  }

  async function refresh() {
    refreshReady();
    if (!apiKey()) {
      notice('Enter the API key (wagate prints it at first start; it is in DATA_DIR/api_key).');
      return;
    }
    try {
      const data = await api('GET', '/api/sessions');
      sessions.clear();
      for (const s of data.sessions) sessions.set(s.name, s);
      renderSessions();
    } catch (e) {
      notice(e.status === 401 || e.status === 403 ? 'API key rejected: ' + e.message : e.message);
    }
  }

  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, REFRESH_DELAY_MS);
  }

  async function refreshReady() {
    const badge = $('ready');
    try {
      const res = await fetch('/ready');
      const r = await res.json();
      badge.textContent = r.status;
      badge.className = 'badge ' + r.status;
      badge.title = 'GET /ready: ' + JSON.stringify(r.checks);
    } catch (e) {
      badge.textContent = 'unreachable';
      badge.className = 'badge fail';
    }
  }

  // ---- linking: live QR, pairing code ----

  function clearQr() {
    shownQr = null;
    $('qr').replaceChildren();
  }

  async function loadQr() {
    const name = selected;
    let data;
    try {
      data = await api('GET', sessionPath(name) + '/qr?format=json');
    } catch (e) {
      if (e.status === 409 || e.status === 404) { clearQr(); refreshSoon(); }
      return;
    }
    if (name !== selected || data.qr === shownQr) return;
    shownQr = data.qr;
    const img = el('img', { id: 'qr-img', alt: 'QR code to link ' + name,
                            src: 'data:image/png;base64,' + data.png_base64 });
    img.dataset.session = name;
    $('qr').replaceChildren(img);
  }

  function renderLink() {
    const s = selected ? sessions.get(selected) : null;
    $('link-panel').hidden = !s;
    if (!s) { clearQr(); return; }
    const paired = !!s.me || s.status === 'WORKING';
    let state;
    if (s.status === 'SCAN_QR')
      state = 'Scan this code with WhatsApp on the phone: Linked devices > Link a device. ' +
              'It changes every 20 s or so; this page follows.';
    else if (s.status === 'PAIRING_CODE' && s.pair_code)
      state = 'On the phone: WhatsApp > Linked devices > Link a device > Link with phone ' +
              'number instead, then type this code:';
    else if (paired)
      state = (s.me ? 'Linked as ' + s.me.jid : 'Linked') + ' (' + s.status + ').';
    else if (!s.running)
      state = 'Stopped (' + s.status + (s.reason ? ': ' + s.reason : '') +
              '). Start it for a QR code, or link it with a phone number.';
    else
      state = 'Status ' + s.status + (s.reason ? ': ' + s.reason : '') +
              '. The QR code appears here when the session waits for a scan.';
    $('link-session').textContent = s.name;
    $('link-state').textContent = state;
    const code = $('pair-code');
    code.hidden = !(s.status === 'PAIRING_CODE' && s.pair_code);
    code.textContent = s.pair_code || '';
    $('pair-form').hidden = paired;
    if (s.status === 'SCAN_QR') loadQr(); else clearQr();
  }

  function onQrTimer() {
    const s = selected ? sessions.get(selected) : null;
    if (s && s.status === 'SCAN_QR') loadQr();
  }

  // ---- send a test message ----

  function renderSend() {
    const ready = selected && sessions.get(selected) &&
                  sessions.get(selected).status === 'WORKING';
    for (const id of ['send-to', 'send-text', 'send-button']) $(id).disabled = !ready;
    $('send-note').textContent = ready ? 'From ' + selected + '. ' + sendResult
                                       : 'Select a WORKING session first.';
  }

  // ---- events ----

  function logEvent(evt) {
    const list = $('events');
    const when = evt.timestamp ? new Date(evt.timestamp).toLocaleTimeString() : '';
    const li = el('li', {}, [
      el('span', { className: 'time', textContent: when }), ' ',
      el('span', { className: 'session', textContent: evt.session || '-' }), ' ',
      el('span', { className: 'event', textContent: evt.event || '' }), ' ',
      el('span', { className: 'payload', textContent: JSON.stringify(evt.payload || {}) }),
    ]);
    li.dataset.event = evt.event || '';
    li.dataset.session = evt.session || '';
    li.title = evt.id || '';
    list.prepend(li);
    while (list.children.length > EVENTS_MAX) list.lastChild.remove();
  }

  function onEvent(evt) {
    logEvent(evt);
    if (evt.event === 'session.status' && evt.session && evt.payload) {
      const s = sessions.get(evt.session);
      if (s) {
        s.status = evt.payload.status;
        s.reason = evt.payload.reason || '';
        if (evt.payload.me) s.me = evt.payload.me;
        renderSessions();
      }
      refreshSoon(); // the rest (me, pair_code, running) from the API
    }
  }

  function setLive(on) {
    live = on;
    const badge = $('stream');
    badge.textContent = on ? 'live' : 'polling';
    badge.className = 'badge ' + (on ? 'ok' : 'degraded');
    clearInterval(pollTimer);
    pollTimer = setInterval(refresh, on ? LIVE_POLL_MS : POLL_MS);
  }

  function connectEvents() {
    clearTimeout(retryTimer);
    if (source) { source.close(); source = null; }
    setLive(false);
    if (!apiKey() || typeof EventSource === 'undefined') return;
    const es = new EventSource('/api/events?api_key=' + encodeURIComponent(apiKey()));
    source = es;
    es.onopen = () => { if (source === es) { setLive(true); refreshSoon(); } };
    es.onmessage = (m) => {
      let evt;
      try { evt = JSON.parse(m.data); } catch (e) { return; }
      onEvent(evt);
    };
    es.onerror = () => {
      if (source !== es) return;
      setLive(false);
      // CONNECTING: the browser retries by itself. CLOSED: refused (wrong key, 503): later.
      if (es.readyState === EventSource.CLOSED) {
        source = null;
        retryTimer = setTimeout(connectEvents, STREAM_RETRY_MS);
      }
    };
  }

  // ---- start ----

  function start() {
    takeKeyFromFragment();
    $('api-key').value = apiKey();
    $('key-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY_STORE, $('api-key').value.trim());
      notice('');
      connectEvents();
      refresh();
    });
    $('create-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = $('new-name').value.trim();
      run(async () => {
        const s = await api('POST', '/api/sessions', { name });
        $('new-name').value = '';
        sessions.set(s.name, s);
        selected = s.name;
        renderSessions();
      });
    });
    $('pair-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = selected;
      if (!name) return;
      $('pair-button').disabled = true;
      run(async () => {
        try {
          const r = await api('POST', sessionPath(name) + '/pair-code',
                              { phone: $('pair-phone').value.trim() });
          const s = sessions.get(name);
          if (s) { s.status = 'PAIRING_CODE'; s.pair_code = r.code; renderSessions(); }
        } finally {
          $('pair-button').disabled = false;
        }
      });
    });
    $('send-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (!selected) return;
      run(async () => {
        const r = await api('POST', sessionPath(selected) + '/messages',
                            { to: $('send-to').value.trim(), text: $('send-text').value });
        $('send-text').value = '';
        sendResult = 'Sent: ' + (r.id || r.status || 'ok') + '.';
      });
    });
    $('events-clear').addEventListener('click', () => $('events').replaceChildren());
    renderSend();
    connectEvents();
    refresh();
    setInterval(onQrTimer, QR_POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', start);
  return { api, refresh, onEvent, connectEvents, sessions, isLive: () => live };
})();
