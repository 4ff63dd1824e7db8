// baileys.mjs - K unmodified Baileys sockets in ONE node process against one wasim, the Baileys
// side of bench/clients (issue 4's benchmark). Prints figures, asserts nothing. Driven by
// run.mjs; usable alone:
//
//   node [--expose-gc] baileys.mjs pair  --version 6|7 --url WS --control URL --n K --dir DIR
//        [--from I] [--phone-base P]
//       [--auth memory|files]
//       Pairs accounts I..I+K-1 at once (auth DIR/acc<i>): the QR of
//       each socket is scanned through POST /phones/{P+i}/scan; after the 515 a new socket logs
//       in with the saved credentials (what every Baileys app does); an account counts once
//       that socket is "open". Reports the time and the peak RSS (VmHWM) of pairing all K.
//       --auth memory (default) keeps the keys in memory and writes them out at the end in
//       useMultiFileAuthState's layout (see memoryAuthState for why); --auth files uses
//       useMultiFileAuthState throughout. The login phase always uses useMultiFileAuthState.
//   node --expose-gc baileys.mjs login --version 6|7 --url WS --control URL --n K --dir DIR
//        [--keepalive MS] [--idle-pings P] [--settle MS]
//       A fresh process: K sockets log in from the saved credentials; time to all "open"; then
//       P keep-alive intervals idle: RSS per client ((RSS_K - RSS_before) / K, before and after
//       a forced GC), V8 heap per client, CPU per client per keep-alive (process.cpuUsage over
//       the window / (K x P)).
//
// Progress goes to stderr; figures to stdout, ending with one line `RESULT {json}`.
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from 'fs';
import { createRequire } from 'module';
import path from 'path';
import util from 'util';

import { loadBaileys, NODE_MODULES, requireNodeModules } from '../../tests/interop/peer/shim.mjs';

// libsignal logs session changes with console.*: keep stdout for the figures.
for (const f of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
    console[f] = (...a) => process.stderr.write(util.format(...a) + '\n');
}

function usage(msg) {
    process.stderr.write(`baileys.mjs: ${msg}\nusage: node baileys.mjs pair|login --version 6|7 ` +
        '--url WS --control URL --n K --dir DIR [--phone-base P] [--keepalive MS] ' +
        '[--idle-pings P] [--settle MS]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { from: 0, phoneBase: 17770000000, keepalive: 5000, pings: 4, settle: 3000, auth: 'memory' };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === 'pair' || a === 'login') o.cmd = a;
        else if (a === '--version') o.version = Number(val());
        else if (a === '--url') o.url = val();
        else if (a === '--control') o.control = val();
        else if (a === '--n') o.n = Number(val());
        else if (a === '--from') o.from = Number(val());
        else if (a === '--dir') o.dir = val();
        else if (a === '--phone-base') o.phoneBase = Number(val());
        else if (a === '--keepalive') o.keepalive = Number(val());
        else if (a === '--idle-pings') o.pings = Number(val());
        else if (a === '--settle') o.settle = Number(val());
        else if (a === '--auth') o.auth = val();
        else usage(`unknown argument ${a}`);
    }
    if (!o.cmd || !o.url || !o.control || !o.dir || !(o.n > 0)) usage('missing arguments');
    if (o.version !== 6 && o.version !== 7) usage('--version must be 6 or 7');
    if (o.auth !== 'memory' && o.auth !== 'files') usage('--auth must be memory or files');
    if (o.cmd === 'login') o.auth = 'files';
    return o;
}

const opts = parseArgs(process.argv.slice(2));
requireNodeModules('baileys.mjs');
const pino = createRequire(path.join(NODE_MODULES, 'noop.js'))('pino');
const B = await loadBaileys(opts.version);
const Bmod = opts.version === 7
    ? await import(path.join(NODE_MODULES, 'baileys7', 'lib', 'index.js'))
    : createRequire(path.join(NODE_MODULES, 'noop.js'))('baileys6');
const logger = pino({ level: 'silent' });

function status() {
    const out = {};
    for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
        const m = /^(VmRSS|VmHWM):\s+(\d+) kB/.exec(line);
        if (m) out[m[1]] = Number(m[2]);
    }
    return out;
}

function cpuSeconds() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

async function ctl(method, p, body) {
    const r = await fetch(opts.control + p, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: await r.text() };
}

async function wasimStats() {
    try {
        const r = await ctl('GET', '/stats');
        return r.status === 200 ? JSON.parse(r.body) : null;
    } catch {
        return null;
    }
}

function gc() {
    if (global.gc) {
        global.gc();
        global.gc();
    }
}

// The pairing's key store kept in memory, then written out in useMultiFileAuthState's layout
// (creds.json, <type>-<id>.json) for the login phase. Pairing with useMultiFileAuthState itself
// fails at 100 accounts at once: Baileys 7 writes its 812 initial prekeys as 812 files per
// account concurrently, which exhausts the 20,000 descriptors of the process (EMFILE).
function memoryAuthState(dir) {
    const creds = Bmod.initAuthCreds();
    const data = new Map(); // "type-id" -> value
    const fix = f => f.replace(/\//g, '__').replace(/:/g, '-');
    return {
        state: {
            creds,
            keys: {
                get: async (type, ids) => {
                    const out = {};
                    for (const id of ids) {
                        const v = data.get(`${type}-${id}`);
                        if (v !== undefined) out[id] = v;
                    }
                    return out;
                },
                set: async upd => {
                    for (const type of Object.keys(upd)) {
                        for (const id of Object.keys(upd[type])) {
                            const v = upd[type][id];
                            if (v) data.set(`${type}-${id}`, v);
                            else data.delete(`${type}-${id}`);
                        }
                    }
                },
            },
        },
        saveCreds: async () => {},
        save: () => {
            fs.mkdirSync(dir, { recursive: true });
            const w = (file, v) => fs.writeFileSync(path.join(dir, fix(file)),
                JSON.stringify(v, Bmod.BufferJSON.replacer));
            w('creds.json', creds);
            for (const [k, v] of data) w(`${k}.json`, v);
        },
    };
}

// One account: sockets made as an app makes them (a new one with the saved credentials after
// a 515). Resolves `opened` on the first "open".
class Account {
    constructor(i) {
        this.i = i;
        this.dir = path.join(opts.dir, `acc${i}`);
        this.scanned = false;
        this.opens = 0;
        this.closes = 0;
        this.stopped = null;
        this.opened = new Promise(r => (this.onOpen = r));
    }

    async start() {
        if (opts.auth === 'memory') {
            const m = memoryAuthState(this.dir);
            this.state = m.state;
            this.saveCreds = m.saveCreds;
            this.save = m.save;
        } else {
            const { state, saveCreds } = await B.useMultiFileAuthState(this.dir);
            this.state = state;
            this.saveCreds = saveCreds;
        }
        this.connect();
    }

    connect() {
        const s = B.makeWASocket({
            waWebSocketUrl: opts.url,
            auth: this.state,
            logger,
            browser: B.Browsers.macOS('Desktop'),
            markOnlineOnConnect: false,
            syncFullHistory: false,
            keepAliveIntervalMs: opts.keepalive,
            connectTimeoutMs: 120000,
            defaultQueryTimeoutMs: 120000,
        });
        this.sock = s;
        s.ev.on('creds.update', () => this.saveCreds().catch(() => {}));
        s.ev.on('connection.update', u => {
            if (s !== this.sock) return;
            if (u.qr && !this.scanned) this.scan(u.qr);
            if (u.connection === 'open') {
                this.opens++;
                this.onOpen();
            } else if (u.connection === 'close') {
                this.closes++;
                const code = u.lastDisconnect?.error?.output?.statusCode;
                if (this.ending) return;
                if (code === 515 || code === 408 || code === 428 || code === 503) {
                    setTimeout(() => this.connect(), code === 515 ? 0 : 1000);
                } else {
                    this.stopped = code ?? 'closed';
                    process.stderr.write(`baileys: account ${this.i} stopped: ${code}\n`);
                    this.onOpen();
                }
            }
        });
    }

    async scan(qr) {
        this.scanned = true;
        try {
            const r = await ctl('POST', `/phones/${opts.phoneBase + this.i}/scan`, { qr });
            if (r.status !== 200) {
                this.scanned = false;
                process.stderr.write(`baileys: scan ${this.i}: ${r.status} ${r.body}\n`);
            }
        } catch (err) {
            this.scanned = false;
            process.stderr.write(`baileys: scan ${this.i}: ${err.message}\n`);
        }
    }

    async end() {
        this.ending = true;
        try {
            await this.sock.end(undefined);
        } catch {
            /* already closed */
        }
    }
}

// Figures go to stdout (console.* is sent to stderr above).
function say(line) {
    process.stdout.write(line + '\n');
}

function result(obj) {
    process.stdout.write('RESULT ' + JSON.stringify(obj) + '\n');
}

async function pair() {
    gc();
    const before = status();
    const t0 = Date.now();
    const c0 = cpuSeconds();
    const accts = [];
    for (let i = 0; i < opts.n; i++) accts.push(new Account(opts.from + i));
    await Promise.all(accts.map(a => a.start()));
    const timer = setInterval(() => {
        const open = accts.filter(a => a.opens > 0).length;
        process.stderr.write(`baileys: ${open}/${opts.n} paired and open, RSS ${status().VmRSS} KiB\n`);
    }, 5000);
    await Promise.all(accts.map(a => a.opened));
    const t1 = Date.now();
    const c1 = cpuSeconds();
    clearInterval(timer);
    // let the first login finish its uploads and writes before the process ends
    await sleep(3000);
    const peak = status().VmHWM;
    const ok = accts.filter(a => a.opens > 0 && a.stopped === null).length;
    await Promise.all(accts.map(a => a.end()));
    await sleep(500);
    for (const a of accts) if (a.save) a.save();
    say(`baileys${opts.version} pair (${opts.auth} auth state): ${opts.n} accounts paired at once: ${ok} open in ` +
        `${((t1 - t0) / 1000).toFixed(2)} s; peak RSS ${peak} KiB (${peak - before.VmRSS} KiB ` +
        `above the ${before.VmRSS} KiB before), CPU ${(c1 - c0).toFixed(2)} s`);
    result({ phase: 'pair', baileys: B.pkgVersion, n: opts.n, paired: ok, batch_s: (t1 - t0) / 1000,
        batch_peak_rss_kib: peak, rss_before_kib: before.VmRSS, batch_cpu_s: c1 - c0, auth: opts.auth,
        ok: ok === opts.n });
    process.exit(0);
}

async function login() {
    gc();
    const before = status();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = Date.now();
    const c0 = cpuSeconds();
    const accts = [];
    for (let i = 0; i < opts.n; i++) accts.push(new Account(i));
    await Promise.all(accts.map(a => a.start()));
    await Promise.all(accts.map(a => a.opened));
    const t1 = Date.now();
    const c1 = cpuSeconds();
    const open = accts.filter(a => a.opens > 0 && a.stopped === null).length;
    say(`baileys${opts.version} login: ${open} of ${opts.n} open from the saved ` +
        `credentials in ${((t1 - t0) / 1000).toFixed(2)} s (all at once), CPU ` +
        `${(c1 - c0).toFixed(2)} s`);
    await sleep(opts.settle);
    gc();
    const stats0 = await wasimStats();
    const closes0 = accts.reduce((s, a) => s + a.closes, 0);
    const cw0 = cpuSeconds();
    const tw0 = Date.now();
    await sleep(opts.keepalive * opts.pings);
    const cw1 = cpuSeconds();
    const tw1 = Date.now();
    const idle = status();
    const heapIdle = process.memoryUsage().heapUsed;
    gc();
    const afterGc = status();
    const heapGc = process.memoryUsage().heapUsed;
    const closes = accts.reduce((s, a) => s + a.closes, 0) - closes0;
    const stats1 = await wasimStats();
    const iqs = stats0 && stats1 ? stats1.iqs - stats0.iqs : null;
    const stillOpen = accts.filter(a => a.opens > 0 && a.stopped === null).length;
    const per = (a, b) => (a - b) / opts.n;
    const cpuUs = (cw1 - cw0) * 1e6 / (opts.n * opts.pings);
    say(`baileys${opts.version} idle: ${stillOpen} open after ` +
        `${((tw1 - tw0) / 1000).toFixed(1)} s (${opts.pings} keep-alives of ${opts.keepalive} ms), ` +
        `${closes} closes in the window; wasim answered ${iqs} iqs (${opts.n * opts.pings} ` +
        'keep-alives expected)');
    say(`baileys${opts.version} idle: RSS ${idle.VmRSS} KiB with ${opts.n} clients, ` +
        `${before.VmRSS} KiB before them: ${per(idle.VmRSS, before.VmRSS).toFixed(1)} KiB per ` +
        `client (${per(afterGc.VmRSS, before.VmRSS).toFixed(1)} KiB after a forced GC); V8 heap ` +
        `${(per(heapGc, heap0) / 1024).toFixed(1)} KiB per client after GC`);
    say(`baileys${opts.version} idle: CPU ${(cw1 - cw0).toFixed(3)} s over the window: ` +
        `${cpuUs.toFixed(1)} us per client per keep-alive`);
    result({ phase: 'login', baileys: B.pkgVersion, n: opts.n, connected: stillOpen,
        login_s: (t1 - t0) / 1000, login_cpu_s: c1 - c0, rss_before_kib: before.VmRSS,
        rss_kib: idle.VmRSS, rss_per_client_kib: per(idle.VmRSS, before.VmRSS),
        rss_gc_kib: afterGc.VmRSS, rss_gc_per_client_kib: per(afterGc.VmRSS, before.VmRSS),
        heap_per_client_kib: per(heapGc, heap0) / 1024, heap_idle_per_client_kib:
            per(heapIdle, heap0) / 1024, idle_s: (tw1 - tw0) / 1000, keepalive_ms: opts.keepalive,
        pings: opts.pings, idle_cpu_s: cw1 - cw0, cpu_us_per_client_ping: cpuUs,
        closes_in_window: closes, wasim_iqs_in_window: iqs, gc: !!global.gc, ok: stillOpen === opts.n });
    process.exit(0);
}

process.on('unhandledRejection', err => process.stderr.write(`baileys: unhandled: ${err?.stack || err}\n`));
if (opts.cmd === 'pair') await pair();
else await login();
