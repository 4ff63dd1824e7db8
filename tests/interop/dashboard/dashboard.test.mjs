// dashboard.test.mjs - wagate's dashboard (src/dashboard) in headless Chromium (Debian's
// chromium, driven by playwright-core) against wagate and the simulator wasim:
//   open the dashboard with the API key in the URL fragment (it leaves the URL), the event
//   stream goes live (SSE with ?api_key=); create a session in the page; the live QR image
//   appears; a screenshot of it decodes (zbarimg) to the session's QR text from the API
//   (format=raw); a new QR text (a rotated ref) replaces the image without a status change;
//   that text, scanned by wasim's simulated phone, turns the row WORKING in the
//   page within the time of an event (not of a poll) and the event log shows it; pairing by
//   phone code through the page's form (the code shown, typed on the phone: WORKING); the send
//   form is disabled until a WORKING session is selected, then sends a text the simulated phone
//   decrypts and the other linked session's event shows in the log; a second tab whose event
//   stream is blocked falls back to polling and still follows a status change; no page errors
//   (CSP violations included).
//   node dashboard.test.mjs <wagate> <wasim>
// Needs chromium (CHROMIUM or /usr/bin/chromium), zbarimg (zbar-tools) and playwright-core
// (tests/interop/node_modules, or NODE_PATH): scripts/deps.sh. Fails, never skips, without them.
// KEEP_LOGS=1 keeps the logs and screenshots (dashboard-qr.png, qr.png, dashboard.png) in the
// temporary directory.
// SPDX-License-Identifier: GPL-3.0-or-later
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const [WAGATE, WASIM] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// characters that need encoding in the fragment and in ?api_key= (generated keys are base64)
const KEY = 'dash+key/0123456789abcdef==';
const LIVE_MAX_MS = 5000; // the page polls every 15 s while live: faster than this is the stream

let passed = 0;
let failed = 0;
function check(name, cond, detail) {
  if (cond) {
    passed++;
    console.log(`ok   ${name}`);
  } else {
    failed++;
    console.log(`FAIL ${name} ${detail === undefined ? '' : String(typeof detail === 'string' ? detail : JSON.stringify(detail)).slice(0, 2000)}`);
  }
  return cond;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, ms, step = 100) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); } catch (e) { last = undefined; }
    if (last) return last;
    await sleep(step);
  }
  return last;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

class Proc {
  constructor(tmp, name, argv, env) {
    this.log = path.join(tmp, `${name}.log`);
    this.out = '';
    this.p = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const add = (d) => { this.out += d; fs.appendFileSync(this.log, d); };
    this.p.stdout.on('data', add);
    this.p.stderr.on('data', add);
    this.exited = new Promise((r) => this.p.on('exit', (code, sig) => r({ code, sig })));
  }

  async stop(sig = 'SIGTERM') {
    const t0 = Date.now();
    if (this.p.exitCode === null && this.p.signalCode === null) this.p.kill(sig);
    const r = await Promise.race([this.exited, sleep(10000).then(() => null)]);
    if (!r) this.p.kill('SIGKILL');
    return { ...(r || { code: null }), secs: (Date.now() - t0) / 1000 };
  }
}

async function api(base, method, p, body, key = KEY) {
  const headers = {};
  if (key) headers['X-Api-Key'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = null; }
  return { status: res.status, json, text };
}

function loadPlaywright() {
  const require = createRequire(import.meta.url);
  try {
    return require('playwright-core');
  } catch (e) {
    console.error('dashboard test: playwright-core is not installed (tests/interop/package.json; run scripts/deps.sh)');
    process.exit(1);
  }
}

function decodeQr(file) {
  try {
    return execFileSync('zbarimg', ['--raw', '-q', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .replace(/\n$/, '');
  } catch (e) {
    return null; // exit status 4: no code found
  }
}

async function main() {
  for (const [what, file] of [['chromium', CHROMIUM], ['wagate', WAGATE], ['wasim', WASIM]]) {
    if (!file || !fs.existsSync(file)) {
      console.error(`dashboard test: ${what} not found (${file}); run scripts/deps.sh`);
      return 1;
    }
  }
  const { chromium } = loadPlaywright();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wagate_dash_'));
  const procs = [];
  let browser = null;
  try {
    // --- wasim and wagate ---
    const sim = new Proc(tmp, 'wasim', [WASIM, '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0'], process.env);
    procs.push(sim);
    const ready = await waitFor(() => sim.out.match(/wasim ready ws=(\S+) control=(\S+)/), 10000);
    if (!ready) throw new Error('wasim did not start: ' + sim.out);
    const [, wsUrl, ctl] = ready;
    const root = (await (await fetch(ctl + '/root-key')).text()).trim();
    const port = await freePort();
    const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: path.join(tmp, 'data'),
                  API_KEY: KEY, WA_WS_URL: wsUrl, WA_ROOT_KEY: root, LOG_FORMAT: 'json', LOG_LEVEL: 'info' };
    delete env.WEBHOOK_URL;
    delete env.K_SERVICE;
    const gw = new Proc(tmp, 'wagate', [WAGATE], env);
    procs.push(gw);
    const base = `http://127.0.0.1:${port}`;
    if (!await waitFor(async () => (await fetch(base + '/health')).ok, 10000))
      throw new Error('wagate did not come up: ' + gw.out);

    // --- the page ---
    const t0 = Date.now();
    browser = await chromium.launch({ executablePath: CHROMIUM });
    check(`chromium ${browser.version()} started by playwright-core (${Date.now() - t0} ms)`, true);
    const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
    page.on('console', (m) => {
      // a QR poll racing the scan gets 409 (no QR any more): the page handles it
      const benign = /status of 409/.test(m.text()) && /\/qr\?format=json$/.test(m.location().url || '');
      if (m.type() === 'error' && !benign)
        problems.push('console: ' + m.text() + ' ' + JSON.stringify(m.location()));
    });
    await page.goto(`${base}/#key=${encodeURIComponent(KEY)}`);
    check('the key leaves the URL (fragment dropped)', await waitFor(() => page.evaluate(() => location.hash === ''), 3000),
          page.url());
    check('the event stream is live (SSE with ?api_key=)',
          await waitFor(async () => (await page.textContent('#stream')) === 'live', 5000),
          await page.textContent('#stream'));
    check('the send form is disabled with a note until a WORKING session is selected',
          await page.isDisabled('#send-button') && /Select a WORKING session/.test(await page.textContent('#send-note')),
          await page.textContent('#send-note'));

    // --- create a session in the page: live QR ---
    await page.fill('#new-name', 'dash1');
    await page.click('#create-button');
    check('the new session is listed', await waitFor(() => page.$('tr[data-name="dash1"]'), 5000));
    const img = await waitFor(() => page.evaluate(() => {
      const i = document.getElementById('qr-img');
      return i && i.complete && i.naturalWidth > 0 && i.dataset.session === 'dash1' ? i.naturalWidth : 0;
    }), 10000);
    check(`the QR image appears (${img} px wide)`, img > 100, img);
    await page.screenshot({ path: path.join(tmp, 'dashboard-qr.png'), fullPage: true });
    let decoded = null;
    let raw = null;
    for (let attempt = 0; attempt < 2 && img; attempt++) {
      const file = path.join(tmp, 'qr.png');
      await page.locator('#qr-img').screenshot({ path: file });
      decoded = decodeQr(file);
      raw = (await api(base, 'GET', '/api/sessions/dash1/qr?format=raw')).text;
      if (decoded === raw) break;
      await sleep(3000); // the QR rotated between the two: the page follows within QR_POLL_MS
    }
    check('the screenshot of the QR decodes (zbarimg)', decoded && decoded.length > 20, decoded);
    check('... to the session\'s QR text (GET qr?format=raw)', decoded === raw, { decoded, raw });

    // --- rotation: a new QR text replaces the image while the status stays SCAN_QR. WhatsApp
    // rotates refs after 60 s, too slow for this test: the page's QR requests for dash1 are
    // answered with another session's QR instead, then released. ---
    const shot = async () => {
      const file = path.join(tmp, 'qr-now.png');
      await page.locator('#qr-img').screenshot({ path: file });
      return decodeQr(file);
    };
    check('another session (not shown) created through the API',
          (await api(base, 'POST', '/api/sessions', { name: 'rot' })).status === 201);
    const other = await waitFor(async () => {
      const r = await api(base, 'GET', '/api/sessions/rot/qr?format=json');
      return r.status === 200 ? r.json : null;
    }, 10000);
    const qrRoute = /\/api\/sessions\/dash1\/qr\?format=json$/;
    await page.route(qrRoute, (route) => route.fulfill({ status: 200, contentType: 'application/json',
                                                         body: JSON.stringify(other) }));
    check('a rotated QR replaces the image without a status change',
          other && await waitFor(async () => (await shot()) === other.qr, 8000, 300));
    await page.unroute(qrRoute);
    check('... and the next one too (back to the real QR)',
          await waitFor(async () => (await shot()) === raw, 8000, 300));
    check('the other session deleted', (await api(base, 'DELETE', '/api/sessions/rot')).status === 200);

    // --- the phone scans what the page shows ---
    const scan = await fetch(ctl + '/phones/15550001234/scan', { method: 'POST', body: JSON.stringify({ qr: decoded }) });
    const scanned = Date.now();
    check('wasim\'s phone scans the decoded QR', scan.status === 200, await scan.text());
    const working = await waitFor(async () =>
      (await page.textContent('tr[data-name="dash1"] .status')) === 'WORKING', 10000, 50);
    const took = Date.now() - scanned;
    check(`the page shows WORKING ${took} ms after the scan (live, not a poll)`, working && took < LIVE_MAX_MS,
          await page.textContent('tr[data-name="dash1"] .status'));
    check('the event log shows the session.status WORKING event',
          await waitFor(() => page.evaluate(() => [...document.querySelectorAll('#events li[data-event="session.status"][data-session="dash1"] .payload')]
            .some((e) => JSON.parse(e.textContent).status === 'WORKING')), 3000));
    check('the account column shows the linked JID',
          await waitFor(async () => /^15550001234:\d+@s\.whatsapp\.net$/.test(await page.textContent('tr[data-name="dash1"] td:nth-child(3)')), 5000),
          await page.textContent('tr[data-name="dash1"] td:nth-child(3)'));
    check('the link panel says linked, no QR, no pairing form',
          /^Linked as 15550001234:/.test(await page.textContent('#link-state')) &&
          !(await page.$('#qr-img')) && await page.isHidden('#pair-form'),
          await page.textContent('#link-state'));

    // --- pairing by phone code through the page ---
    await page.fill('#new-name', 'dash2');
    await page.click('#create-button');
    check('dash2 created and selected', await waitFor(async () => (await page.textContent('#link-session')) === 'dash2', 5000));
    await waitFor(async () => (await page.textContent('tr[data-name="dash2"] .status')) === 'SCAN_QR', 10000);
    await page.fill('#pair-phone', '+15550005678');
    await page.click('#pair-button');
    const code = await waitFor(async () => {
      const t = (await page.textContent('#pair-code')) || '';
      return (await page.isVisible('#pair-code')) && /^[0-9A-Z]{8}$/.test(t) ? t : null;
    }, 15000);
    const s2 = (await api(base, 'GET', '/api/sessions/dash2')).json;
    check('the page shows the pairing code of the session', code && s2 && s2.pair_code === code, { code, s2 });
    const typed = await fetch(ctl + '/phones/15550005678/link-code', { method: 'POST', body: JSON.stringify({ code }) });
    check('the code is typed on the phone', typed.status === 202, await typed.text());
    check('dash2 turns WORKING in the page',
          await waitFor(async () => (await page.textContent('tr[data-name="dash2"] .status')) === 'WORKING', 10000));

    // --- send a test message from the page (dash2 is selected and WORKING) ---
    check('the send form is enabled for the WORKING session',
          await waitFor(async () => !(await page.isDisabled('#send-button')) &&
                        /^From dash2\./.test(await page.textContent('#send-note')), 5000),
          await page.textContent('#send-note'));
    const text = `dashboard test ${Date.now()}`;
    await page.fill('#send-to', '+15550001234');
    await page.fill('#send-text', text);
    await page.click('#send-button');
    const sentId = await waitFor(async () => {
      const m = /Sent: (3EB0[0-9A-F]+)\./.exec(await page.textContent('#send-note'));
      return m ? m[1] : null;
    }, 15000);
    check('the page shows the sent message id', !!sentId, await page.textContent('#send-note'));
    const got = await waitFor(async () => {
      const r = await (await fetch(`${ctl}/phones/15550001234/messages?id=${sentId}`)).json();
      return (r.messages || []).find((m) => m.id === sentId && m.text === text);
    }, 15000);
    check('the phone +15550001234 received and decrypted it', !!got, got);
    check('the event log shows it arriving at dash1, the phone\'s linked session',
          await waitFor(() => page.evaluate(([id]) => [...document.querySelectorAll('#events li[data-event="message"][data-session="dash1"] .payload')]
            .some((e) => JSON.parse(e.textContent).id === id), [sentId]), 10000));

    // --- fallback: a tab without the event stream polls ---
    const page2 = await context.newPage();
    page2.on('pageerror', (e) => problems.push('page2 pageerror: ' + e.message));
    await page2.route('**/api/events**', (route) => route.abort());
    await page2.goto(`${base}/#key=${encodeURIComponent(KEY)}`);
    check('tab 2, event stream blocked: polling',
          await waitFor(async () => (await page2.textContent('#stream')) === 'polling' &&
                                    (await page2.textContent('tr[data-name="dash1"] .status')) === 'WORKING', 5000),
          await page2.textContent('#stream'));
    const r = await api(base, 'POST', '/api/sessions/dash1/stop');
    check('stop dash1 through the API', r.status === 200, r.text);
    check('tab 2 follows by polling: STOPPED',
          await waitFor(async () => (await page2.textContent('tr[data-name="dash1"] .status')) === 'STOPPED', 5000));
    check('tab 1 follows live: STOPPED',
          await waitFor(async () => (await page.textContent('tr[data-name="dash1"] .status')) === 'STOPPED', 3000));
    await page2.close();

    await page.screenshot({ path: path.join(tmp, 'dashboard.png'), fullPage: true });
    check('no page errors, no console errors (CSP included)', problems.length === 0, problems);
    await browser.close();
    browser = null;

    const stop = await gw.stop();
    check('wagate: SIGTERM, exit 0 within 8 s', stop.code === 0 && stop.secs < 8, stop);
    check('the API key never reaches the logs', !gw.out.includes(KEY) && !gw.out.includes(encodeURIComponent(KEY)));
  } catch (e) {
    check('no exception', false, e && e.stack);
  } finally {
    if (browser) await browser.close().catch(() => {});
    for (const p of procs) await p.stop('SIGKILL');
    if (failed && !process.env.KEEP_LOGS)
      for (const p of procs) console.log('----', p.log, '\n' + p.out.slice(-4000));
    if (process.env.KEEP_LOGS) console.log('logs and screenshots kept in', tmp);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exit(await main());
