// run.mjs - issue 5's messaging benchmark, end to end: 1:1 encrypt+send and receive+decrypt,
// messages per second and CPU per message on one core, libwa (bench_messaging) and Baileys
// (baileys.mjs) in the same run against the same wasim. Prints figures and ratios; asserts
// nothing.
//
//   node bench/messaging/run.mjs --build BUILD [--n 5000] [--baileys 7,6|none]
//        [--baileys-keys cached|files|cached,files] [--window 64] [--warmup 20]
//        [--client-cpu 0] [--server-cpu 1] [--rounds 3] [--work DIR]
//
// One wasim (ws://: Baileys to a self-signed wss:// needs an agent that trusts it) pinned to
// --server-cpu. Accounts: libwa A (measured), libwa S (the peer of every measurement), one per
// Baileys version. For each implementation X (pinned to --client-cpu, where nothing else of the
// benchmark runs; the machine's other users may):
//   send: S runs `recv` (next to wasim); X sends N texts to S (after a warm-up that sets up the
//         sessions); msgs/s from the first send to the last server ack, CPU of X per message;
//   recv: X runs `recv`; S sends warm-up + N texts to X; msgs/s from the first to the last
//         text, CPU of X from READY to the last text per text received.
// A 1:1 text goes to every device of the peer and to our own other devices: here the peer's
// companion and phone and our own phone (wasim's virtual phones decrypt and answer receipts),
// so each send encrypts three times and each receiver decrypts once.
// Before that, one short round both ways (not counted) so that every measured message is a
// `msg` on an established session, not a `pkmsg` (a sender sends pkmsg until its peer answers;
// the copies for the virtual phones, which never answer, stay pkmsg for every implementation).
// The measurements run --rounds times (each implementation in turn); the summary shows the
// median of each figure (this machine is shared and noisy).
// Throughput is bounded by the other side too (S and wasim share the other core): CPU per
// message of the measured process is the fair figure; both are printed.
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import readline from 'readline';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));

function usage(msg) {
    process.stderr.write(`run.mjs: ${msg}\nusage: node run.mjs --build BUILD [--n 5000] ` +
        '[--baileys 7,6|none] [--baileys-keys cached|files|cached,files] [--window W] ' +
        '[--warmup K] [--client-cpu C] [--server-cpu C] [--rounds R] [--work DIR]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { n: 5000, baileys: [7, 6], keys: ['cached'], window: 64, warmup: 20, clientCpu: 0,
        serverCpu: 1, rounds: 3 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--build') o.build = path.resolve(val());
        else if (a === '--n') o.n = Number(val());
        else if (a === '--baileys') {
            const v = val();
            o.baileys = v === 'none' ? [] : v.split(',').map(Number);
        } else if (a === '--baileys-keys') o.keys = val().split(',');
        else if (a === '--window') o.window = Number(val());
        else if (a === '--warmup') o.warmup = Number(val());
        else if (a === '--client-cpu') o.clientCpu = Number(val());
        else if (a === '--server-cpu') o.serverCpu = Number(val());
        else if (a === '--rounds') o.rounds = Number(val());
        else if (a === '--work') o.work = path.resolve(val());
        else usage(`unknown argument ${a}`);
    }
    if (!o.build) usage('--build is required');
    if (!(o.n > 1)) usage('--n wants a number > 1');
    if (!(o.rounds >= 1)) usage('--rounds wants a number >= 1');
    for (const v of o.baileys) if (v !== 6 && v !== 7) usage(`bad Baileys version ${v}`);
    for (const k of o.keys) if (k !== 'files' && k !== 'cached') usage(`bad --baileys-keys ${k}`);
    return o;
}

const opts = parseArgs(process.argv.slice(2));
const WASIM = path.join(opts.build, 'sim', 'wasim');
const BENCH = path.join(opts.build, 'bench', 'messaging', 'bench_messaging');
for (const f of [WASIM, BENCH]) {
    if (!fs.existsSync(f)) {
        process.stderr.write(`run.mjs: ${f} is missing: build the targets wasim and bench_messaging\n`);
        process.exit(1);
    }
}
const work = opts.work || fs.mkdtempSync(path.join(os.tmpdir(), 'wa-bench-messaging-'));
fs.mkdirSync(work, { recursive: true });
const children = new Set();
process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const say = line => process.stdout.write(line + '\n');
const sleep = ms => new Promise(r => setTimeout(r, ms));
const f1 = x => (x === null || x === undefined || !Number.isFinite(x) ? '-' : Number(x).toFixed(1));

// Starts a program; stdout lines: RESULT parsed, READY resolves `ready`, others echoed; stderr
// to a log file. `done` resolves with the last RESULT (or null).
function start(cmd, args, logName, cpu) {
    const log = fs.openSync(path.join(work, logName), 'a');
    const argv = cpu === undefined ? [cmd, ...args] : ['taskset', '-c', String(cpu), cmd, ...args];
    const short = a => {
        const r = path.isAbsolute(a) ? path.relative(process.cwd(), a) : a;
        return r && !r.startsWith('..') ? r : a;
    };
    say(`$ ${argv.map(short).join(' ')}`);
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', log] });
    children.add(p);
    let result = null;
    let onReady;
    const ready = new Promise(r => (onReady = r));
    readline.createInterface({ input: p.stdout }).on('line', line => {
        if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7));
        else if (line === 'READY') onReady(true);
        else say(`  ${line}`);
    });
    const done = new Promise((resolve, reject) => {
        p.on('error', reject);
        p.on('close', code => {
            children.delete(p);
            fs.closeSync(log);
            onReady(false);
            if (!result) say(`  (${path.basename(cmd)} exited ${code} without figures: see ` +
                `${path.join(work, logName)})`);
            resolve(result);
        });
    });
    return { proc: p, ready, done };
}

async function startWasim() {
    const args = ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--log-level', 'error'];
    const err = fs.openSync(path.join(work, 'wasim.err'), 'a');
    const p = spawn('taskset', ['-c', String(opts.serverCpu), WASIM, ...args],
        { stdio: ['ignore', 'pipe', err] });
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
    sim.stop = async () => {
        const done = new Promise(r => p.on('close', r));
        p.kill('SIGTERM');
        await done;
        children.delete(p);
    };
    return sim;
}

const PHONE = { A: '15550005001', S: '15550005002', 6: '15550005006', 7: '15550005007' };
const sim = await startWasim();
say(`bench/messaging: work dir ${work}; wasim ${sim.ws} on CPU ${opts.serverCpu}; measured ` +
    `clients on CPU ${opts.clientCpu}; N = ${opts.n} texts each way, ${opts.window} in flight, ` +
    `${opts.warmup} warm-up texts`);
const simArgs = ['--url', sim.ws, '--control', sim.control, '--root-key', sim.root];
const libwa = who => ['--store', path.join(work, `${who}.db`), '--account', who];
const baileysJs = path.join(here, 'baileys.mjs');
const bArgs = v => ['--version', String(v), '--url', sim.ws, '--auth', path.join(work, `baileys${v}`)];

// ---- pairing ----
say('== pairing ==');
for (const who of ['A', 'S']) {
    await start(BENCH, ['pair', ...simArgs, ...libwa(who), '--phone', PHONE[who]], `pair-${who}.log`).done;
}
for (const v of opts.baileys) {
    await start(process.execPath, [baileysJs, 'pair', ...bArgs(v), '--control', sim.control,
        '--phone', PHONE[v]], `pair-baileys${v}.log`).done;
}

// ---- measurements ----
const impls = [{ name: 'libwa', label: 'libwa', phone: PHONE.A }];
for (const v of opts.baileys) {
    for (const k of opts.keys) {
        impls.push({ name: `baileys${v}`, label: `Baileys ${v === 7 ? '7' : '6.17'} (${k} keys)`,
            phone: PHONE[v], v, keys: k });
    }
}
let N = opts.n; /* texts per measurement (the handshake round uses fewer) */
const sendArgs = to => ['--to', to, '--n', String(N), '--window', String(opts.window),
    '--warmup', String(opts.warmup)];
async function measureSend(x) {
    const tag = `${x.name}${x.keys ? `-${x.keys}` : ''}`;
    const sink = start(BENCH, ['recv', ...simArgs, ...libwa('S'), '--n', String(N), '--log-level',
        'warn', '--cpu', String(opts.serverCpu)], `send-${tag}-sink.log`);
    if (!(await sink.ready)) return null;
    const r = x.name === 'libwa'
        ? await start(BENCH, ['send', ...simArgs, ...libwa('A'), ...sendArgs(PHONE.S), '--cpu',
            String(opts.clientCpu)], `send-${tag}.log`).done
        : await start(process.execPath, [baileysJs, 'send', ...bArgs(x.v), '--keys', x.keys,
            ...sendArgs(PHONE.S)], `send-${tag}.log`, opts.clientCpu).done;
    // the sink ends once it has all N; give it a little, then stop it
    const t = setTimeout(() => sink.proc.kill('SIGTERM'), 30000);
    await sink.done;
    clearTimeout(t);
    return r;
}

async function measureRecv(x) {
    const tag = `${x.name}${x.keys ? `-${x.keys}` : ''}`;
    const rx = x.name === 'libwa'
        ? start(BENCH, ['recv', ...simArgs, ...libwa('A'), '--n', String(N), '--cpu',
            String(opts.clientCpu)], `recv-${tag}.log`)
        : start(process.execPath, [baileysJs, 'recv', ...bArgs(x.v), '--keys', x.keys, '--n',
            String(N)], `recv-${tag}.log`, opts.clientCpu);
    if (!(await rx.ready)) return rx.done;
    await start(BENCH, ['send', ...simArgs, ...libwa('S'), ...sendArgs(x.phone), '--cpu',
        String(opts.serverCpu)], `recv-${tag}-source.log`).done;
    const t = setTimeout(() => rx.proc.kill('SIGTERM'), 60000);
    const r = await rx.done;
    clearTimeout(t);
    return r;
}

// Sessions both ways first: a sender sends pkmsg until its peer answers with a message of its
// own, and a pkmsg costs the receiver more. One short round each way, not counted (X -> S, then
// S -> X, whose messages acknowledge X's sessions at S's side and S's at X's).
say('== handshake: sessions both ways (not counted) ==');
N = Math.max(opts.warmup, 2);
for (const x of impls) {
    await measureSend(x);
    await measureRecv(x);
}
N = opts.n;
const rounds = {}; /* label -> [{send, recv}] */
for (let round = 1; round <= opts.rounds; round++) {
    for (const x of impls) {
        say(`== round ${round}/${opts.rounds}: ${x.label}: encrypt+send ${N} texts to libwa S ==`);
        const s = await measureSend(x);
        await sleep(1000);
        say(`== round ${round}/${opts.rounds}: ${x.label}: receive+decrypt ${N} texts from libwa S ==`);
        const r = await measureRecv(x);
        await sleep(1000);
        (rounds[x.label] ||= []).push({ send: s, recv: r });
    }
}
await sim.stop();

// ---- summary: the median of the rounds for each figure ----
const median = xs => {
    const v = xs.filter(x => Number.isFinite(x)).sort((a, b) => a - b);
    if (!v.length) return null;
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const out = {};
for (const [label, rs] of Object.entries(rounds)) {
    const m = (dir, k) => median(rs.map(r => r[dir]?.[k]));
    out[label] = { rounds: rs };
    for (const dir of ['send', 'recv']) {
        out[label][dir] = { msgs_per_s: m(dir, 'msgs_per_s'), cpu_us_per_msg: m(dir, 'cpu_us_per_msg'),
            ok: rs.every(r => r[dir]?.ok) };
    }
}
say('');
say(`== summary: 1:1 texts on one core (CPU ${opts.clientCpu}), N = ${N} each way, median of ` +
    `${opts.rounds} round(s) ==`);
say('  implementation               send msgs/s  send CPU us/msg  recv msgs/s  recv CPU us/msg');
for (const [label, { send: s, recv: r }] of Object.entries(out)) {
    const flag = !s.ok || !r.ok ? '  (INCOMPLETE)' : '';
    say(`  ${label.padEnd(27)} ${f1(s.msgs_per_s).padStart(11)}  ${f1(s.cpu_us_per_msg).padStart(15)}  ` +
        `${f1(r.msgs_per_s).padStart(11)}  ${f1(r.cpu_us_per_msg).padStart(15)}${flag}`);
}
const base = out.libwa;
for (const [label, b] of Object.entries(out)) {
    if (label === 'libwa' || !base) continue;
    const ratio = (x, y) => (x && y ? x / y : null);
    say(`  libwa vs ${label}: CPU per message ${f1(ratio(b.send.cpu_us_per_msg, base.send.cpu_us_per_msg))}x ` +
        `less (send), ${f1(ratio(b.recv.cpu_us_per_msg, base.recv.cpu_us_per_msg))}x less (recv); ` +
        `msgs/s ${f1(ratio(base.send.msgs_per_s, b.send.msgs_per_s))}x (send), ` +
        `${f1(ratio(base.recv.msgs_per_s, b.recv.msgs_per_s))}x (recv)`);
}
say('  (CPU per message is the fair figure: throughput is also bounded by the peer and wasim, ' +
    `which share CPU ${opts.serverCpu})`);
fs.writeFileSync(path.join(work, 'results.json'), JSON.stringify(out, null, 2));
say(`(all figures: ${path.join(work, 'results.json')})`);
