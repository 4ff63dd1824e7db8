// baileys.mjs - one unmodified Baileys socket (6.17 or 7) against wasim: the Baileys side of
// bench/messaging (issue 5's benchmark), the counterpart of bench_messaging.c. Prints figures,
// asserts nothing. Driven by run.mjs (which pins it to one core with taskset); usable alone:
//
//   node baileys.mjs pair --version 6|7 --url WS --control URL --auth DIR --phone P
//       Pairs (QR -> POST /phones/P/scan), reconnects after the 515 as apps do, waits for the
//       login with the saved credentials, exits.
//   node baileys.mjs send --version 6|7 --url WS --auth DIR --to PHONE --n N [--window W]
//        [--warmup K] [--keys files|cached]
//       Logs in from DIR, waits for the offline queue to drain, sends K warm-up texts, then N
//       texts to PHONE, one sendMessage call at a time (concurrent calls break 6.17's sessions:
//       it reuses chain keys) and at most W (default 64) waiting for their server ack (Baileys
//       does not surface the ack: we listen to the socket's `CB:ack,class:message` frames, as
//       Baileys' own handler does). Reports messages/s from the first send to the last ack and
//       the process CPU (process.cpuUsage) over that window per message.
//   node baileys.mjs recv --version 6|7 --url WS --auth DIR --n N [--keys files|cached]
//       Logs in, drains, prints READY, counts `messages.upsert` texts that start with
//       "bench-msg" until N came; messages/s from the first text after READY (warm-up included)
//       to the last; CPU from READY to the last per text received since READY (6.17 emits
//       upserts in batches after decrypting them: counting from the first event would miss
//       work).
//
// --keys files (default): useMultiFileAuthState as is (what tests/interop/peer uses); cached:
// the key store wrapped in makeCacheableSignalKeyStore, as Baileys' README suggests.
// Progress goes to stderr; figures to stdout, ending with one line `RESULT {json}`.
// SPDX-License-Identifier: GPL-3.0-or-later
import crypto from 'crypto';
import { createRequire } from 'module';
import path from 'path';
import util from 'util';

import { loadBaileys, NODE_MODULES, requireNodeModules } from '../../tests/interop/peer/shim.mjs';

// libsignal logs session changes with console.*: keep stdout for the figures.
for (const f of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
    console[f] = (...a) => process.stderr.write(util.format(...a) + '\n');
}

const MSG_PREFIX = 'bench-msg';
const WARM_PREFIX = 'bench-warm';
const QUIET_MS = 1500;

function usage(msg) {
    process.stderr.write(`baileys.mjs: ${msg}\nusage: node baileys.mjs pair|send|recv --version 6|7 ` +
        '--url WS --auth DIR [--control URL --phone P] [--to PHONE] [--n N] [--window W] ' +
        '[--warmup K] [--keys files|cached]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { window: 64, warmup: 20, keys: 'files' };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === 'pair' || a === 'send' || a === 'recv') o.cmd = a;
        else if (a === '--version') o.version = Number(val());
        else if (a === '--url') o.url = val();
        else if (a === '--control') o.control = val();
        else if (a === '--auth') o.auth = val();
        else if (a === '--phone') o.phone = val();
        else if (a === '--to') o.to = val();
        else if (a === '--n') o.n = Number(val());
        else if (a === '--window') o.window = Number(val());
        else if (a === '--warmup') o.warmup = Number(val());
        else if (a === '--keys') o.keys = val();
        else usage(`unknown argument ${a}`);
    }
    if (!o.cmd || !o.url || !o.auth) usage('missing arguments');
    if (o.version !== 6 && o.version !== 7) usage('--version must be 6 or 7');
    if (o.cmd === 'pair' && (!o.control || !o.phone)) usage('pair needs --control and --phone');
    if (o.cmd === 'send' && (!o.to || !(o.n > 0))) usage('send needs --to and --n');
    if (o.cmd === 'recv' && !(o.n > 0)) usage('recv needs --n');
    if (o.keys !== 'files' && o.keys !== 'cached') usage('--keys must be files or cached');
    return o;
}

const opts = parseArgs(process.argv.slice(2));
requireNodeModules('baileys.mjs');
const req = createRequire(path.join(NODE_MODULES, 'noop.js'));
const pino = req('pino');
const B = await loadBaileys(opts.version);
const Bmod = opts.version === 7
    ? await import(path.join(NODE_MODULES, 'baileys7', 'lib', 'index.js'))
    : req('baileys6');
const logger = pino({ level: 'silent' });
const sleep = ms => new Promise(r => setTimeout(r, ms));
const say = line => process.stdout.write(line + '\n');
const result = obj => process.stdout.write('RESULT ' + JSON.stringify(obj) + '\n');

function cpuSeconds() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

const { state, saveCreds } = await B.useMultiFileAuthState(opts.auth);
const auth = opts.keys === 'cached'
    ? { creds: state.creds, keys: Bmod.makeCacheableSignalKeyStore(state.keys, logger) }
    : state;

let sock = null;
let opened = null;
let lastMsg = Date.now();
let onText = null; // (text) => void, for recv
let scanned = false;

function connect() {
    const s = B.makeWASocket({
        waWebSocketUrl: opts.url,
        auth,
        logger,
        browser: B.Browsers.macOS('Desktop'),
        markOnlineOnConnect: false,
        syncFullHistory: false,
        connectTimeoutMs: 60000,
        defaultQueryTimeoutMs: 60000,
    });
    sock = s;
    s.ev.on('creds.update', () => saveCreds().catch(() => {}));
    s.ev.on('connection.update', async u => {
        if (s !== sock) return;
        if (u.qr && opts.cmd === 'pair' && !scanned) {
            scanned = true;
            const r = await fetch(`${opts.control}/phones/${opts.phone}/scan`, {
                method: 'POST', headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ qr: u.qr }),
            });
            if (r.status !== 200) {
                scanned = false;
                process.stderr.write(`baileys: scan: ${r.status} ${await r.text()}\n`);
            }
        }
        if (u.connection === 'open') opened?.();
        else if (u.connection === 'close') {
            const code = u.lastDisconnect?.error?.output?.statusCode;
            if (code === 515 || code === 408 || code === 428 || code === 503) {
                setTimeout(connect, code === 515 ? 0 : 1000);
            } else {
                process.stderr.write(`baileys: closed: ${code}\n`);
                process.exit(1);
            }
        }
    });
    s.ev.on('messages.upsert', ({ messages }) => {
        lastMsg = Date.now();
        if (!onText) return;
        for (const m of messages) {
            const msg = m.message || {};
            const t = msg.conversation || msg.extendedTextMessage?.text;
            if (!m.key?.fromMe && typeof t === 'string' &&
                (t.startsWith(MSG_PREFIX) || t.startsWith(WARM_PREFIX))) onText(t);
        }
    });
}

async function login() {
    const open = new Promise(r => (opened = r));
    connect();
    await Promise.race([open, sleep(60000).then(() => {
        throw new Error('no login within 60 s');
    })]);
    lastMsg = Date.now();
    while (Date.now() - lastMsg < QUIET_MS) await sleep(100);
}

async function pair() {
    await login();
    await sleep(3000); // the first login's uploads and writes
    say(`baileys${opts.version} pair: ${sock.user?.id} paired`);
    result({ phase: 'pair', baileys: B.pkgVersion, jid: sock.user?.id, ok: true });
}

// Sends `count` texts with at most opts.window waiting for their server ack.
function sendBatch(prefix, count, acks) {
    const jid = `${opts.to}@s.whatsapp.net`;
    return new Promise(resolve => {
        let started = 0;
        let done = 0;
        let failed = 0;
        let inflight = 0;
        let tLast = 0;
        let chain = Promise.resolve();
        const finish = () => {
            done++;
            inflight--;
            tLast = Date.now();
            if (done === count) resolve({ acked: done - failed, failed, tLast });
            else fill();
        };
        const fill = () => {
            while (started < count && inflight < opts.window) {
                const id = '3EB0' + crypto.randomBytes(9).toString('hex').toUpperCase();
                const text = `${prefix} ${started}: the quick brown fox jumps over the lazy dog`;
                started++;
                inflight++;
                acks.set(id, ok => {
                    if (!ok) failed++;
                    finish();
                });
                // one sendMessage at a time (6.17 has no lock around a session's encryption:
                // concurrent sends to one device reuse chain keys), W waiting for their ack
                chain = chain.then(() => sock.sendMessage(jid, { text }, { messageId: id })).catch(err => {
                    process.stderr.write(`baileys: send: ${err.message}\n`);
                    if (acks.delete(id)) {
                        failed++;
                        finish();
                    }
                });
            }
        };
        fill();
    });
}

async function send() {
    await login();
    const acks = new Map();
    // the server's ack of each message (Baileys itself only looks at failed ones)
    sock.ws.on('CB:ack,class:message', node => {
        const cb = acks.get(node.attrs.id);
        if (!cb) return;
        acks.delete(node.attrs.id);
        cb(!node.attrs.error);
    });
    const w = await sendBatch(WARM_PREFIX, opts.warmup, acks);
    await sleep(1000);
    process.stderr.write(`baileys: warm-up: ${w.acked} acked, ${w.failed} failed\n`);
    const c0 = cpuSeconds();
    const t0 = Date.now();
    const r = await sendBatch(MSG_PREFIX, opts.n, acks);
    const c1 = cpuSeconds();
    const secs = Math.max((r.tLast - t0) / 1000, 0.001);
    const us = r.acked ? (c1 - c0) * 1e6 / r.acked : -1;
    say(`baileys${opts.version} send (${opts.keys} keys): ${opts.n} texts to ${opts.to}, ` +
        `${opts.window} in flight at most: ${r.acked} acked, ${r.failed} failed in ` +
        `${secs.toFixed(2)} s: ${Math.round(r.acked / secs)} msgs/s; CPU ${(c1 - c0).toFixed(3)} s: ` +
        `${us.toFixed(1)} us per message`);
    result({ phase: 'send', impl: `baileys${opts.version}`, baileys: B.pkgVersion, keys: opts.keys,
        n: opts.n, window: opts.window, acked: r.acked, failed: r.failed, seconds: secs,
        msgs_per_s: r.acked / secs, cpu_s: c1 - c0, cpu_us_per_msg: us, ok: r.acked === opts.n });
    await sleep(500);
}

async function recv() {
    await login();
    let got = 0;
    let warm = 0;
    let tFirst = 0;
    let tLast = 0;
    let cLast = 0;
    const all = new Promise(resolve => {
        onText = t => {
            const now = Date.now();
            if (got + warm === 0) tFirst = now;
            if (t.startsWith(WARM_PREFIX)) {
                warm++;
                return;
            }
            got++;
            tLast = now;
            if (got === opts.n) {
                cLast = cpuSeconds();
                resolve();
            }
        };
    });
    const c0 = cpuSeconds();
    say('READY');
    const timeout = sleep(120000 + opts.n * 50).then(() => 'timeout');
    await Promise.race([all, timeout]);
    if (got < opts.n) cLast = cpuSeconds();
    const total = got + warm; // texts received since READY
    const secs = Math.max((tLast - tFirst) / 1000, 0.001);
    const rate = (total > 1 ? total - 1 : 0) / secs;
    const cpu = cLast - c0;
    const us = total ? cpu * 1e6 / total : -1;
    say(`baileys${opts.version} recv (${opts.keys} keys): ${got} of ${opts.n} texts (+${warm} ` +
        `warm-up) in ${secs.toFixed(2)} s (first to last): ${Math.round(rate)} msgs/s; CPU ` +
        `${cpu.toFixed(3)} s: ${us.toFixed(1)} us per message`);
    result({ phase: 'recv', impl: `baileys${opts.version}`, baileys: B.pkgVersion, keys: opts.keys,
        n: opts.n, got, warm, seconds: secs, msgs_per_s: rate, cpu_s: cpu, cpu_us_per_msg: us,
        ok: got === opts.n });
    await sleep(1000); // the last receipts leave
}

process.on('unhandledRejection', err => process.stderr.write(`baileys: unhandled: ${err?.stack || err}\n`));
try {
    if (opts.cmd === 'pair') await pair();
    else if (opts.cmd === 'send') await send();
    else await recv();
} catch (err) {
    process.stderr.write(`baileys: ${err.message}\n`);
    process.exit(1);
}
process.exit(0);
