// run.mjs - issue 4's client benchmark, end to end: starts wasim, runs bench_clients (N libwa
// clients on one loop) and baileys.mjs (K Baileys sockets in one node process), prints the
// figures and the ratios. Asserts nothing.
//
//   node bench/clients/run.mjs --build BUILD [--n 1000,10000] [--transport wss,ws]
//        [--baileys 7,6|none] [--baileys-n 100] [--keepalive 5000] [--idle-pings 4]
//        [--ramp 500] [--route-n 1000] [--sessions K] [--sessions-n N,..] [--work DIR]
//
// For each transport: one wasim (--tls for wss, trusting its /ca.pem); the largest N accounts
// are paired once (the first 100 all at once: time and peak RSS), then for each N a fresh
// bench_clients process logs the first N in from the store, idles and reports. wasim's /stats
// gives its RSS with the connections held. Baileys runs against its own wasim over ws:// (the
// fair pair: Baileys to a self-signed wss:// needs an agent that trusts it), K accounts paired
// at once (in batches of 100 beyond that; the first batch is the pairing figure), then a fresh
// process logs them in from the saved credentials (pairing leaves garbage behind), beside a
// libwa run of the same K over ws://. Then wasim's routing throughput: bench_clients route with
// --route-n clients (half send to the other half) over the first transport (0 skips it).
// --sessions K (issue 5): after the logins above, every account of the store gets K Signal
// sessions with K distinct peer devices (bench_clients sessions, offline: bundle, pkmsg, the
// peer's answer), and each N logs in again: RSS per idle client with a populated store beside
// the figure without, for the N of --sessions-n (default: the smallest N; building the sessions
// takes ~3 ms each, so 10,000 accounts x 100 is most of an hour).
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import readline from 'readline';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));

function usage(msg) {
    process.stderr.write(`run.mjs: ${msg}\nusage: node run.mjs --build BUILD [--n 1000,10000] ` +
        '[--transport wss,ws] [--baileys 7,6|none] [--baileys-n 100] [--keepalive MS] ' +
        '[--idle-pings P] [--ramp K] [--route-n N] [--sessions K] [--sessions-n N,..] [--work DIR]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { n: [1000, 10000], transport: ['wss', 'ws'], baileys: [7, 6], baileysN: 100,
        keepalive: 5000, pings: 4, ramp: 500, routeN: 1000, sessions: 0 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--build') o.build = path.resolve(val());
        else if (a === '--n') o.n = val().split(',').map(Number).filter(x => x > 0);
        else if (a === '--transport') o.transport = val().split(',');
        else if (a === '--baileys') {
            const v = val();
            o.baileys = v === 'none' ? [] : v.split(',').map(Number);
        } else if (a === '--baileys-n') o.baileysN = Number(val());
        else if (a === '--keepalive') o.keepalive = Number(val());
        else if (a === '--idle-pings') o.pings = Number(val());
        else if (a === '--ramp') o.ramp = Number(val());
        else if (a === '--route-n') o.routeN = Number(val());
        else if (a === '--sessions') o.sessions = Number(val());
        else if (a === '--sessions-n') o.sessionsN = val().split(',').map(Number).filter(x => x > 0);
        else if (a === '--work') o.work = path.resolve(val());
        else usage(`unknown argument ${a}`);
    }
    if (!o.build) usage('--build is required');
    if (!o.n.length) usage('--n wants numbers');
    if (!o.sessionsN) o.sessionsN = [Math.min(...o.n)];
    for (const t of o.transport) if (t !== 'ws' && t !== 'wss') usage(`bad transport ${t}`);
    for (const v of o.baileys) if (v !== 6 && v !== 7) usage(`bad Baileys version ${v}`);
    return o;
}

const opts = parseArgs(process.argv.slice(2));
const WASIM = path.join(opts.build, 'sim', 'wasim');
const BENCH = path.join(opts.build, 'bench', 'clients', 'bench_clients');
for (const f of [WASIM, BENCH]) {
    if (!fs.existsSync(f)) {
        process.stderr.write(`run.mjs: ${f} is missing: build the targets wasim and bench_clients\n`);
        process.exit(1);
    }
}
const work = opts.work || fs.mkdtempSync(path.join(os.tmpdir(), 'wa-bench-clients-'));
fs.mkdirSync(work, { recursive: true });
const children = new Set();
process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
});

function say(line) {
    process.stdout.write(line + '\n');
}

// Runs a program; its stdout lines are echoed (RESULT lines parsed, not echoed), stderr goes to
// a log file. Resolves with the parsed RESULT objects.
function runProgram(cmd, args, logName) {
    return new Promise((resolve, reject) => {
        const log = fs.openSync(path.join(work, logName), 'a');
        const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', log] });
        children.add(p);
        const results = [];
        readline.createInterface({ input: p.stdout }).on('line', line => {
            if (line.startsWith('RESULT ')) results.push(JSON.parse(line.slice(7)));
            else say(`  ${line}`);
        });
        p.on('error', reject);
        p.on('close', code => {
            children.delete(p);
            fs.closeSync(log);
            if (!results.length) say(`  (${path.basename(cmd)} exited ${code} without figures: ` +
                `see ${path.join(work, logName)})`);
            resolve(results);
        });
    });
}

async function startWasim(name, tls) {
    const args = ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--log-level', 'error'];
    if (tls) args.push('--tls');
    const err = fs.openSync(path.join(work, `${name}.err`), 'a');
    const p = spawn(WASIM, args, { stdio: ['ignore', 'pipe', err] });
    children.add(p);
    const ready = await new Promise((resolve, reject) => {
        const rl = readline.createInterface({ input: p.stdout });
        const t = setTimeout(() => reject(new Error('wasim did not start')), 15000);
        rl.on('line', line => {
            const m = /wasim ready ws=(\S+) control=(\S+)/.exec(line);
            if (m) {
                clearTimeout(t);
                resolve({ ws: m[1], control: m[2] });
            }
        });
        p.on('close', code => reject(new Error(`wasim exited ${code}`)));
    });
    const sim = { proc: p, ...ready };
    sim.root = (await (await fetch(`${sim.control}/root-key`)).text()).trim();
    if (tls) {
        sim.ca = path.join(work, `${name}-ca.pem`);
        fs.writeFileSync(sim.ca, await (await fetch(`${sim.control}/ca.pem`)).text());
    }
    sim.stats = async () => (await fetch(`${sim.control}/stats`)).json();
    sim.stop = async () => {
        const done = new Promise(r => p.on('close', r));
        p.kill('SIGTERM');
        await done;
        children.delete(p);
    };
    return sim;
}

function simArgs(sim) {
    const a = ['--url', sim.ws, '--control', sim.control, '--root-key', sim.root];
    if (sim.ca) a.push('--ca', sim.ca);
    return a;
}

const PAIR_BATCH = 100; /* Baileys accounts paired at once (pairing is measured on the first) */
const sleep = ms => new Promise(r => setTimeout(r, ms));
const kib = x => `${Math.round(x)} KiB`;
const f1 = x => (x === null || x === undefined ? '-' : Number(x).toFixed(1));

const out = { libwa: {}, wasim: {}, baileys: {} };

async function libwaRuns(transport, ns, extraN, routeN) {
    const sim = await startWasim(`wasim-${transport}`, transport === 'wss');
    const store = path.join(work, `libwa-${transport}.db`);
    const maxN = Math.max(...ns, extraN || 0, routeN || 0);
    say(`== libwa over ${transport}:// (wasim ${sim.ws}) ==`);
    say(`$ bench_clients pair ${simArgs(sim).join(' ')} --store ${store} --n ${maxN}`);
    const [pair] = await runProgram(BENCH, ['pair', ...simArgs(sim), '--store', store, '--n',
        String(maxN)], `pair-${transport}.log`);
    out.libwa[`${transport}-pair`] = pair;
    const statsPaired = await sim.stats();
    say(`  wasim after pairing (no connection): ${statsPaired.phones} phones, RSS ` +
        `${kib(statsPaired.rss_kib)}`);
    const list = [...new Set([...(extraN ? [extraN] : []), ...ns])].sort((a, b) => a - b);
    for (const n of list) {
        await sleep(2000);
        const args = ['login', ...simArgs(sim), '--store', store, '--n', String(n), '--ramp',
            String(opts.ramp), '--keepalive', String(opts.keepalive), '--idle-pings',
            String(opts.pings)];
        say(`$ bench_clients ${args.join(' ')}`);
        const [r] = await runProgram(BENCH, args, `login-${transport}-${n}.log`);
        out.libwa[`${transport}-${n}`] = r;
        if (r) {
            out.wasim[`${transport}-${n}`] = { n, connections: r.wasim_connections,
                rss_kib: r.wasim_rss_kib, rss_paired_kib: statsPaired.rss_kib };
        }
    }
    const sns = [...new Set(opts.sessionsN)].filter(n => ns.includes(n)).sort((a, b) => a - b);
    if (opts.sessions > 0 && sns.length) {
        const sn = Math.max(...sns);
        const args = ['sessions', '--store', store, '--n', String(sn), '--sessions',
            String(opts.sessions)];
        say(`$ bench_clients ${args.join(' ')}`);
        const [sr] = await runProgram(BENCH, args, `sessions-${transport}.log`);
        if (sr) sr.store_kib = fs.statSync(store).size / 1024;
        out.libwa[`${transport}-sessions`] = sr;
        if (sr && sr.ok) {
            for (const n of sns) {
                await sleep(2000);
                const largs = ['login', ...simArgs(sim), '--store', store, '--n', String(n),
                    '--ramp', String(opts.ramp), '--keepalive', String(opts.keepalive),
                    '--idle-pings', String(opts.pings)];
                say(`$ bench_clients ${largs.join(' ')}    (${opts.sessions} sessions per account)`);
                const [r] = await runProgram(BENCH, largs, `login-${transport}-${n}-s${opts.sessions}.log`);
                if (r) r.sessions = opts.sessions;
                out.libwa[`${transport}-${n}-s${opts.sessions}`] = r;
            }
        }
    }
    if (routeN) {
        await sleep(2000);
        const args = ['route', ...simArgs(sim), '--store', store, '--n', String(routeN), '--ramp',
            String(opts.ramp), '--wasim-pid', String(sim.proc.pid)];
        say(`$ bench_clients ${args.join(' ')}`);
        const [r] = await runProgram(BENCH, args, `route-${transport}.log`);
        out.route = { transport, ...r };
    }
    await sim.stop();
}

async function baileysRuns() {
    const sim = await startWasim('wasim-baileys', false);
    say(`== Baileys over ws:// (wasim ${sim.ws}), K = ${opts.baileysN} sockets in one node process ==`);
    for (const v of opts.baileys) {
        const dir = path.join(work, `baileys${v}`);
        const common = ['--version', String(v), '--url', sim.ws, '--control', sim.control,
            '--dir', dir];
        // pairing: batches of 100 at once (the first one is the "100 at once" figure)
        let pair = null;
        for (let from = 0; from < opts.baileysN; from += PAIR_BATCH) {
            const k = Math.min(PAIR_BATCH, opts.baileysN - from);
            const pairArgs = ['--expose-gc', path.join(here, 'baileys.mjs'), 'pair', ...common,
                '--n', String(k), '--from', String(from), '--phone-base',
                String(17000000000 + v * 100000000)];
            say(`$ node ${pairArgs.join(' ')}`);
            const [r] = await runProgram(process.execPath, pairArgs, `baileys${v}-pair.log`);
            if (!pair) pair = r;
            if (!r || !r.ok) break;
        }
        await sleep(2000);
        const loginArgs = ['--expose-gc', path.join(here, 'baileys.mjs'), 'login', ...common,
            '--n', String(opts.baileysN), '--keepalive', String(opts.keepalive), '--idle-pings', String(opts.pings)];
        say(`$ node ${loginArgs.join(' ')}`);
        const [login] = await runProgram(process.execPath, loginArgs, `baileys${v}-login.log`);
        out.baileys[v] = { pair, login };
    }
    await sim.stop();
}

say(`bench/clients: work dir ${work}; keep-alive ${opts.keepalive} ms, ${opts.pings} intervals ` +
    `idle; logins ${opts.ramp ? `${opts.ramp} at a time` : 'all at once'}`);
for (const [i, t] of opts.transport.entries()) {
    await libwaRuns(t, opts.n, t === 'ws' && opts.baileys.length ? opts.baileysN : 0,
        i === 0 ? opts.routeN : 0);
}
if (opts.baileys.length && !opts.transport.includes('ws')) await libwaRuns('ws', [], opts.baileysN);
if (opts.baileys.length) await baileysRuns();

// ---- summary ----
say('');
say('== summary ==');
say('libwa idle clients on one loop (RSS per client = (RSS with N - RSS before) / N):');
say('  transport       N  sessions  login s  RSS/client  after trim  heap/client  CPU us/client/keep-alive');
for (const [k, r] of Object.entries(out.libwa)) {
    if (!r || r.phase !== 'login') continue;
    const t = k.split('-')[0];
    say(`  ${t.padEnd(9)} ${String(r.n).padStart(6)}  ${String(r.sessions || 0).padStart(8)}  ` +
        `${f1(r.login_s).padStart(7)}  ` +
        `${(f1(r.rss_per_client_kib) + ' KiB').padStart(10)}  ` +
        `${(f1(r.rss_trim_per_client_kib) + ' KiB').padStart(10)}  ` +
        `${(f1(r.heap_per_client_kib) + ' KiB').padStart(11)}  ${f1(r.cpu_us_per_client_ping)}` +
        `${r.ok ? '' : '  (INCOMPLETE)'}`);
}
for (const [k, r] of Object.entries(out.libwa)) {
    if (!r || r.phase !== 'login' || !r.sessions) continue;
    const plain = out.libwa[k.replace(/-s\d+$/, '')];
    if (!plain || !(plain.rss_per_client_kib > 0)) continue;
    say(`libwa (${k.split('-')[0]}, N = ${r.n}): RSS per idle client ${f1(r.rss_per_client_kib)} KiB ` +
        `with ${r.sessions} Signal sessions per account in the store, ${f1(plain.rss_per_client_kib)} ` +
        `KiB without (${r.rss_per_client_kib >= plain.rss_per_client_kib ? '+' : ''}` +
        `${f1(r.rss_per_client_kib - plain.rss_per_client_kib)} KiB); heap ` +
        `${f1(r.heap_per_client_kib)} vs ${f1(plain.heap_per_client_kib)} KiB per client`);
}
for (const [k, r] of Object.entries(out.libwa)) {
    if (!r || r.phase !== 'sessions') continue;
    say(`libwa store populated offline (${k.split('-')[0]}): ${r.n} accounts x ${r.sessions} sessions ` +
        `in ${f1(r.seconds)} s (store file ${Math.round((r.store_kib || 0) / 1024)} MiB)`);
}
for (const [k, r] of Object.entries(out.libwa)) {
    if (!r || r.phase !== 'pair') continue;
    say(`libwa pairing ${r.batch} accounts at once over ${k.split('-')[0]}://: ${f1(r.batch_s)} s, ` +
        `peak RSS ${kib(r.batch_peak_rss_kib)} (+${kib(r.batch_peak_rss_kib - r.rss_before_kib)})`);
}
for (const [k, w] of Object.entries(out.wasim)) {
    const t = k.split('-')[0];
    const largest = Math.max(...Object.values(out.wasim).filter((x, i) =>
        Object.keys(out.wasim)[i].startsWith(`${t}-`)).map(x => x.n));
    if (!w.rss_kib || w.rss_kib < 0 || w.n !== largest) continue; /* at the largest N only */
    const perGiB = w.connections / (w.rss_kib / 1048576);
    say(`wasim (${k.split('-')[0]}) holding ${w.connections} connections: RSS ${kib(w.rss_kib)} ` +
        `-> ${Math.round(perGiB)} connections per GiB of RSS (RSS ${kib(w.rss_paired_kib)} ` +
        `with the ${k.split('-')[0]} accounts and no connection)`);
}
if (out.route && out.route.messages_per_s) {
    const r = out.route;
    say(`wasim routing (${r.transport}://, ${r.pairs} senders -> ${r.pairs} receivers, ${r.window} ` +
        `in flight each): ${Math.round(r.messages_per_s)} messages/s routed with their receipts; ` +
        `wasim CPU ${f1(r.wasim_cpu_us_per_message)} us per message`);
}
const base = out.libwa[`ws-${opts.baileysN}`];
for (const [v, b] of Object.entries(out.baileys)) {
    if (b.pair) {
        say(`Baileys ${b.pair.baileys} pairing ${b.pair.n} accounts at once (keys in memory): ` +
            `${f1(b.pair.batch_s)} s, peak RSS ${kib(b.pair.batch_peak_rss_kib)} ` +
            `(+${kib(b.pair.batch_peak_rss_kib - b.pair.rss_before_kib)})`);
    }
    const l = b.login;
    if (!l) continue;
    say(`Baileys ${l.baileys}, ${l.n} idle sockets over ws://: login ${f1(l.login_s)} s, RSS ` +
        `${f1(l.rss_per_client_kib)} KiB per client (${f1(l.rss_gc_per_client_kib)} KiB after a ` +
        `forced GC), CPU ${f1(l.cpu_us_per_client_ping)} us per client per keep-alive` +
        `${l.ok ? '' : ' (INCOMPLETE)'}`);
    if (base && base.rss_per_client_kib > 0) {
        say(`  ratio Baileys ${l.baileys} / libwa per idle client (N = ${l.n}, ws://): RSS ` +
            `${f1(l.rss_per_client_kib / base.rss_per_client_kib)}x ` +
            `(${f1(l.rss_gc_per_client_kib / base.rss_per_client_kib)}x after Baileys' forced ` +
            `GC), CPU per keep-alive ${f1(l.cpu_us_per_client_ping / base.cpu_us_per_client_ping)}x`);
    }
    const lp = out.libwa['ws-pair'];
    if (b.pair && lp && lp.batch === b.pair.n) {
        say(`  pairing ${b.pair.n} at once, Baileys ${b.pair.baileys} / libwa (ws://): time ` +
            `${f1(b.pair.batch_s / lp.batch_s)}x, peak RSS above start ` +
            `${f1((b.pair.batch_peak_rss_kib - b.pair.rss_before_kib) / (lp.batch_peak_rss_kib - lp.rss_before_kib))}x`);
    }
}
fs.writeFileSync(path.join(work, 'results.json'), JSON.stringify(out, null, 2));
say(`(all figures: ${path.join(work, 'results.json')})`);
