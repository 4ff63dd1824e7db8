// wagate dashboard: session list with live status (polling), create/start/stop/logout/delete.
// No build step, no dependencies. Untrusted text is only ever set with textContent.
// Linking: the selected session's QR (as an image once wagate renders them, else the text) or a
// pairing code for a phone number. Hook for later (search "HOOK"): the live event log.
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
        el('td', { textContent: s.me ? s.me.jid : '', className: 'muted',
                   title: s.me && s.me.lid ? s.me.lid : '' }),
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

  // The QR panel: re-rendered only when what it shows changes (the list refreshes every
  // POLL_MS, and the phone-number field must keep what is being typed).
  async function renderQr(s) {
    const panel = $('qr-panel');
    const box = $('qr');
    const path = '/api/sessions/' + encodeURIComponent(s.name);
    panel.hidden = false;
    $('qr-session').textContent = s.name;
    if (s.status === 'SCAN_QR') {
      let data;
      try { data = await api('GET', path + '/qr?format=json'); } catch (e) { return; }
      const key = 'qr:' + s.name + ':' + data.qr;
      if (box.dataset.key === key) return;
      box.dataset.key = key;
      const shown = data.png
        ? [el('img', { alt: 'QR code for ' + s.name, src: 'data:image/png;base64,' + data.png })]
        : [el('p', { className: 'muted', textContent:
              'This wagate does not render QR images yet: encode this text as a QR code ' +
              '(e.g. qrencode -t ansiutf8) and scan it from WhatsApp > Linked devices.' }),
           el('code', { className: 'qr-text', textContent: data.qr })];
      box.replaceChildren(...shown);
      return;
    }
    if (s.status === 'PAIRING_CODE' && s.pair_code) {
      const key = 'code:' + s.name + ':' + s.pair_code;
      if (box.dataset.key === key) return;
      box.dataset.key = key;
      box.replaceChildren(
        el('p', { textContent: 'On the phone: WhatsApp > Linked devices > Link with phone number, then type' }),
        el('p', { className: 'pair-code', textContent: s.pair_code }));
      return;
    }
    const key = 'state:' + s.name + ':' + s.status + ':' + (s.me ? 1 : 0);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    const parts = [el('p', { className: 'muted', textContent: s.me
      ? 'Linked as ' + s.me.jid + ' (status ' + s.status + ').'
      : 'Status ' + s.status + '. While the session waits for a scan its QR appears here.' })];
    if (!s.me && s.status !== 'WORKING') {
      const phone = el('input', { type: 'tel', placeholder: '+15551234567', required: true,
                                  pattern: '\\+?[1-9][0-9]{4,19}', title: 'the number with its country code' });
      const form = el('form', { className: 'pair-form' }, [
        el('label', { textContent: 'Or link with a phone number: ' }), phone, ' ',
        el('button', { type: 'submit', textContent: 'Get a pairing code' })]);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        run(async () => {
          await api('POST', path + '/pair-code', { phone: phone.value.trim() });
          notice('');
        });
      });
      parts.push(form);
    }
    box.replaceChildren(...parts);
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
        notice('The session backend ("' + r.backend + '") does not connect to WhatsApp.');
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
