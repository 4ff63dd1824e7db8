// run.mjs - issue 6's gateway benchmark: wagate with N sessions (default 1,000) against wasim.
// Prints figures; asserts nothing.
//
//   node bench/gateway/run.mjs --build BUILD [--n 1000] [--transport wss|ws] [--idle 20]
//        [--wrk-seconds 20] [--wrk-connections 64] [--wrk-threads 2] [--work DIR]
//        [--stop-after pair|boot] [--health-interval MS]
//
// Event-loop lag: wagate runs its self-check every --health-interval ms (default 1000) and a
// monitor here reads /metrics every 250 ms: the largest wagate_event_loop_lag_max_seconds (the
// lag probe's maximum over the last self-check interval) and wagate_event_loop_lag_seconds seen
// during each phase is printed as "max loop lag", with the slowest /metrics answer (what a
// liveness probe would wait). --stop-after pair ends the run after step 2, boot after step 3.
// 1. wasim (--tls for wss://, its CA given to wagate as WA_CA_FILE) and a wagate with an empty
//    DATA_DIR: its RSS with no session is the baseline.
// 2. N sessions created through the API (POST /api/sessions), each QR fetched (GET .../qr?
//    format=raw) and scanned by session i's simulated phone (wasim POST /phones/{phone}/scan),
//    100 pairings in flight; until every session is WORKING.
// 3. wagate restarted (SIGTERM, start) on the same DATA_DIR: the time from the spawn to all N
//    sessions WORKING (GET /api/sessions polled every 100 ms) - the boot figure, logins admitted
//    200 at a time by the gateway's ramp.
// 4. Idle for --idle seconds (one keep-alive at wagate's default 15 s): RSS total and per session
//    ((RSS - baseline) / N), and what the API reports per session (memory_bytes: the gateway's
//    handle plus libwa's wa_client_memory).
// 5. wrk (Debian package wrk) with send.lua: POST /api/sessions/{name}/messages spread over the
//    sessions round-robin, session i to the phone of session i+1 (a wasim account: its virtual
//    phone and the other session's device get the message), after a warm-up that sends every
//    session's first message (device lists, prekey bundles, new Signal sessions: timed apart):
//    requests/s, p50/p90/p99 latency (a 201 is the server's ack of the message), statuses, and
//    the CPU time wagate and wasim spent.
// 6. The keep-alive round-trip histogram from /metrics (count, mean).
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import readline from 'readline';
import { fileURLToPath } from 'url';

const here = path.dirname(fileURLToPath(import.meta.url));
const KEY = 'bench-gateway-key-0123456789abcdef';
const PREFIX = 'gb';          // session i: gb%05d
const PHONE_PREFIX = '1555';  // its phone: 1555%07d
const PAIR_INFLIGHT = 100;

function usage(msg) {
    process.stderr.write(`run.mjs: ${msg}\nusage: node run.mjs --build BUILD [--n 1000] ` +
        '[--transport wss|ws] [--idle S] [--wrk-seconds S] [--wrk-connections C] ' +
        '[--wrk-threads T] [--work DIR] [--stop-after pair|boot] [--health-interval MS]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { n: 1000, transport: 'wss', idle: 20, wrkSeconds: 20, wrkConns: 64, wrkThreads: 2,
        healthMs: 1000 };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--build') o.build = path.resolve(val());
        else if (a === '--n') o.n = Number(val());
        else if (a === '--transport') o.transport = val();
        else if (a === '--idle') o.idle = Number(val());
        else if (a === '--wrk-seconds') o.wrkSeconds = Number(val());
        else if (a === '--wrk-connections') o.wrkConns = Number(val());
        else if (a === '--wrk-threads') o.wrkThreads = Number(val());
        else if (a === '--work') o.work = path.resolve(val());
        else if (a === '--stop-after') o.stopAfter = val();
        else if (a === '--health-interval') o.healthMs = Number(val());
        else usage(`unknown argument ${a}`);
    }
    if (!o.build) usage('--build is required');
    if (!(o.n >= 2 && o.n <= 99999)) usage('--n wants 2..99999');
    if (o.transport !== 'ws' && o.transport !== 'wss') usage('--transport is ws or wss');
    if (o.stopAfter && o.stopAfter !== 'pair' && o.stopAfter !== 'boot')
        usage('--stop-after is pair or boot');
    if (!(o.healthMs >= 250 && o.healthMs <= 3600000)) usage('--health-interval wants 250..3600000');
    return o;
}

const opts = parseArgs(process.argv.slice(2));
const WASIM = path.join(opts.build, 'sim', 'wasim');
const WAGATE = path.join(opts.build, 'src', 'wagate');
for (const f of [WASIM, WAGATE]) {
    if (!fs.existsSync(f)) {
        process.stderr.write(`run.mjs: ${f} is missing: build the targets wasim and wagate\n`);
        process.exit(1);
    }
}
if (!opts.stopAfter && spawnSync('wrk', ['-v']).error) {
    process.stderr.write('run.mjs: wrk is missing (Debian package wrk: scripts/deps.sh)\n');
    process.exit(1);
}
const work = opts.work || fs.mkdtempSync(path.join(os.tmpdir(), 'wa-bench-gateway-'));
fs.mkdirSync(work, { recursive: true });
const children = new Set();
process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
});

const say = line => process.stdout.write(line + '\n');
const sleep = ms => new Promise(r => setTimeout(r, ms));
const f1 = x => Number(x).toFixed(1);
const name = i => `${PREFIX}${String(i).padStart(5, '0')}`;
const phone = i => `${PHONE_PREFIX}${String(i).padStart(7, '0')}`;

function rssKib(pid) {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
}

const HZ = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;
function cpuSec(pid) {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / HZ; /* utime + stime */
}

async function startWasim() {
    const args = ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--log-level', 'error'];
    if (opts.transport === 'wss') args.push('--tls');
    const err = fs.openSync(path.join(work, 'wasim.err'), 'a');
    const p = spawn(WASIM, args, { stdio: ['ignore', 'pipe', err] });
    children.add(p);
    const ready = await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('wasim did not start')), 15000);
        readline.createInterface({ input: p.stdout }).on('line', line => {
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
    if (opts.transport === 'wss') {
        sim.ca = path.join(work, 'wasim-ca.pem');
        fs.writeFileSync(sim.ca, await (await fetch(`${sim.control}/ca.pem`)).text());
    }
    return sim;
}

let port = 0;
async function startWagate(sim, data) {
    if (!port) { /* a free port: bind, read, close */
        const net = await import('net');
        port = await new Promise(resolve => {
            const s = net.createServer().listen(0, '127.0.0.1', () => {
                const p = s.address().port;
                s.close(() => resolve(p));
            });
        });
    }
    const env = { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: data,
        API_KEY: KEY, WA_WS_URL: sim.ws, WA_ROOT_KEY: sim.root, LOG_LEVEL: 'warn',
        MAX_CONNECTIONS: String(opts.n + 100), HEALTH_CHECK_INTERVAL: String(opts.healthMs) };
    delete env.K_SERVICE;
    delete env.WEBHOOK_URL;
    if (sim.ca) env.WA_CA_FILE = sim.ca;
    const err = fs.openSync(path.join(work, 'wagate.log'), 'a');
    const t0 = performance.now();
    const p = spawn(WAGATE, [], { env, stdio: ['ignore', err, err] });
    children.add(p);
    const gw = { proc: p, base: `http://127.0.0.1:${port}`, t0 };
    for (let i = 0; ; i++) {
        try {
            if ((await fetch(`${gw.base}/health`)).status === 200) break;
        } catch { /* not listening yet */ }
        if (p.exitCode !== null || i > 300) throw new Error(`wagate did not start: see ${work}/wagate.log`);
        await sleep(50);
    }
    gw.stop = async () => {
        const done = new Promise(r => p.on('close', r));
        p.kill('SIGTERM');
        await done;
        children.delete(p);
    };
    return gw;
}

async function api(gw, method, p, body) {
    const r = await fetch(gw.base + p, { method, headers: { 'X-Api-Key': KEY,
        'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* raw text */ }
    return { status: r.status, text, json };
}

async function statusCounts(gw) {
    const r = await api(gw, 'GET', '/api/sessions');
    const counts = {};
    let bytes = 0;
    for (const s of r.json.sessions) {
        counts[s.status] = (counts[s.status] || 0) + 1;
        bytes += s.memory_bytes || 0;
    }
    return { counts, bytes, n: r.json.sessions.length };
}

async function pairOne(gw, sim, i) {
    const r = await api(gw, 'POST', '/api/sessions', { name: name(i) });
    if (r.status !== 201) throw new Error(`create ${name(i)}: ${r.status} ${r.text}`);
    for (let attempt = 0; attempt < 600; attempt++) {
        const q = await api(gw, 'GET', `/api/sessions/${name(i)}/qr?format=raw`);
        if (q.status === 200) {
            const s = await fetch(`${sim.control}/phones/${phone(i)}/scan`, { method: 'POST',
                body: JSON.stringify({ qr: q.text.trim() }) });
            if (s.status === 200) return;
        }
        await sleep(200);
    }
    throw new Error(`${name(i)}: no QR scanned`);
}

async function waitAll(gw, status, timeoutMs) {
    const t0 = performance.now();
    for (;;) {
        const c = await statusCounts(gw);
        if ((c.counts[status] || 0) === opts.n) return { ...c, ms: performance.now() - t0 };
        if (performance.now() - t0 > timeoutMs) return { ...c, ms: -1 };
        await sleep(100);
    }
}

function runWrk(gw, seconds, label) {
    const args = [`-t${opts.wrkThreads}`, `-c${opts.wrkConns}`, `-d${seconds}s`, '--timeout', '30s',
        '-s', path.join(here, 'send.lua'), gw.base, '--', String(opts.n), PREFIX, PHONE_PREFIX, KEY];
    say(`$ wrk ${args.join(' ').replace(KEY, '$API_KEY')}   (${label})`);
    return new Promise((resolve, reject) => {
        const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
        children.add(p);
        let result = null;
        readline.createInterface({ input: p.stdout }).on('line', line => {
            if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7));
        });
        p.on('error', reject);
        p.on('close', () => {
            children.delete(p);
            resolve(result);
        });
    });
}

function metric(text, re) {
    const m = re.exec(text);
    return m ? Number(m[1]) : null;
}

// The loop-lag monitor: /metrics every 250 ms (see the top comment). Each phase reads and
// resets its figures with lagPhase(); the monitor follows gw when wagate is restarted.
const lag = { max: 0, rttMaxMs: 0, samples: 0, at: '', stop: false, gw: null, status: '' };
async function lagMonitor() {
    while (!lag.stop) {
        const g = lag.gw;
        if (g) {
            try {
                const t = performance.now();
                const m = await (await fetch(`${g.base}/metrics`)).text();
                const rtt = performance.now() - t;
                const v = Math.max(metric(m, /^wagate_event_loop_lag_max_seconds (\S+)/m) || 0,
                    metric(m, /^wagate_event_loop_lag_seconds (\S+)/m) || 0);
                lag.samples++;
                if (v > lag.max) {
                    lag.max = v;
                    lag.at = lag.status;
                }
                if (rtt > lag.rttMaxMs) lag.rttMaxMs = rtt;
            } catch { /* restarting */ }
        }
        await sleep(250);
    }
}
function lagPhase(label) {
    const r = { max_lag_s: lag.max, max_metrics_rtt_ms: lag.rttMaxMs, samples: lag.samples,
        at: lag.at };
    say(`  max loop lag during ${label}: ${lag.max.toFixed(3)} s (wagate's probe, ${lag.samples} ` +
        `samples${lag.at ? `, worst at ${lag.at}` : ''}); slowest /metrics answer ` +
        `${lag.rttMaxMs.toFixed(0)} ms`);
    lag.max = lag.rttMaxMs = lag.samples = 0;
    lag.at = '';
    return r;
}

// ---- the run ----
say(`bench/gateway: work dir ${work}; N = ${opts.n} sessions over ${opts.transport}://`);
const sim = await startWasim();
say(`wasim ${sim.ws} (control ${sim.control})`);
const data = path.join(work, 'data');
fs.mkdirSync(data, { recursive: true });
let gw = await startWagate(sim, data);
const lagMon = lagMonitor();
lag.gw = gw;
await sleep(2000);
const rssBase = rssKib(gw.proc.pid);
say(`wagate (pid ${gw.proc.pid}) with no session: RSS ${rssBase} KiB`);
const lags = {};
lags.empty = lagPhase('2 s of an empty wagate');

// pairing through the API
let t0 = performance.now();
let next = 0;
const failures = [];
await Promise.all(Array.from({ length: PAIR_INFLIGHT }, async () => {
    while (next < opts.n) {
        const i = next++;
        try {
            await pairOne(gw, sim, i);
            lag.status = `${i + 1} of ${opts.n} scanned`;
        } catch (e) {
            failures.push(e.message);
        }
    }
}));
let all = await waitAll(gw, 'WORKING', 120000);
say(`paired ${opts.n} sessions through the API (${PAIR_INFLIGHT} in flight): ` +
    `${f1((performance.now() - t0) / 1000)} s, ${all.counts.WORKING || 0} WORKING` +
    `${failures.length ? `, ${failures.length} failed: ${failures[0]}` : ''}; RSS ` +
    `${rssKib(gw.proc.pid)} KiB`);
lag.status = 'all WORKING';
await sleep(Math.max(1500, 2 * opts.healthMs)); /* the last self-check interval of the phase */
lags.pairing = lagPhase('pairing');

async function finish(extra) {
    lag.stop = true;
    await lagMon;
    await gw.stop();
    sim.proc.kill('SIGTERM');
    const summary = { n: opts.n, transport: opts.transport, stopped_after: opts.stopAfter,
        loop_lag: lags, ...extra };
    fs.writeFileSync(path.join(work, 'results.json'), JSON.stringify(summary, null, 2));
    say(`(all figures: ${path.join(work, 'results.json')})`);
    process.exit(0);
}
if (opts.stopAfter === 'pair')
    await finish({ paired_working: all.counts.WORKING || 0, pair_failures: failures.length });

// restart: boot to all WORKING
lag.gw = null;
await gw.stop();
lag.status = 'booting';
gw = await startWagate(sim, data);
lag.gw = gw;
all = await waitAll(gw, 'WORKING', 300000);
const bootS = all.ms >= 0 ? (performance.now() - gw.t0) / 1000 : -1;
say(`boot: wagate restarted with ${opts.n} stored sessions: all WORKING ${bootS >= 0 ?
    `${f1(bootS)} s after the spawn` : `NOT within 300 s (${JSON.stringify(all.counts)})`}`);
lag.status = 'all WORKING';
await sleep(Math.max(1500, 2 * opts.healthMs));
lags.boot = lagPhase('boot');
if (opts.stopAfter === 'boot')
    await finish({ boot_all_working_s: bootS });
lag.status = 'idle';

// idle
await sleep(opts.idle * 1000);
const idle = await statusCounts(gw);
const rssIdle = rssKib(gw.proc.pid);
const perSession = (rssIdle - rssBase) / opts.n;
say(`idle ${opts.idle} s with ${idle.counts.WORKING || 0} WORKING: RSS ${rssIdle} KiB total, ` +
    `${f1(perSession)} KiB per session above the ${rssBase} KiB of an empty wagate; the API ` +
    `reports ${f1(idle.bytes / opts.n / 1024)} KiB per session (memory_bytes, mean)`);

// wrk
// warm-up: every session's first send (device lists, prekey bundles, a new Signal session
// with each device of the peer and of our own phone), one per session, wrk's connection count
// in flight
const warm = { n: 0, statuses: {}, lat: [] };
{
    const tw = performance.now();
    let k = 0;
    await Promise.all(Array.from({ length: opts.wrkConns }, async () => {
        while (k < opts.n) {
            const i = k++;
            const t = performance.now();
            const r = await api(gw, 'POST', `/api/sessions/${name(i)}/messages`,
                { to: `${phone((i + 1) % opts.n)}@s.whatsapp.net`, text: `first message ${i}` });
            warm.lat.push(performance.now() - t);
            warm.statuses[r.status] = (warm.statuses[r.status] || 0) + 1;
        }
    }));
    warm.seconds = (performance.now() - tw) / 1000;
    warm.lat.sort((a, b) => a - b);
    const pct = q => warm.lat[Math.min(warm.lat.length - 1, Math.floor(q * warm.lat.length))];
    warm.p50_ms = pct(0.5);
    warm.p99_ms = pct(0.99);
    delete warm.lat;
    lags.idle_first_sends = lagPhase('idle and the first sends');
    say(`first send of every session (warm-up, ${opts.wrkConns} in flight): ${opts.n} in ` +
        `${f1(warm.seconds)} s, ${f1(opts.n / warm.seconds)}/s, p50 ${warm.p50_ms.toFixed(1)} ms, ` +
        `p99 ${warm.p99_ms.toFixed(1)} ms; statuses ${JSON.stringify(warm.statuses)}`);
}
const cpu0 = [cpuSec(gw.proc.pid), cpuSec(sim.proc.pid)];
lag.status = 'wrk';
const run = await runWrk(gw, opts.wrkSeconds, 'steady state');
lags.wrk = lagPhase('wrk');
const cpu1 = [cpuSec(gw.proc.pid), cpuSec(sim.proc.pid)];
if (run) {
    run.wagate_cpu_s = cpu1[0] - cpu0[0];
    run.wasim_cpu_s = cpu1[1] - cpu0[1];
    say(`  ${run.requests} requests in ${f1(run.seconds)} s: ${f1(run.requests / run.seconds)} ` +
        `sends/s; latency p50 ${run.p50_ms.toFixed(2)} ms, p90 ${run.p90_ms.toFixed(2)} ms, p99 ` +
        `${run.p99_ms.toFixed(2)} ms, max ${run.max_ms.toFixed(1)} ms; statuses ` +
        `${JSON.stringify(run.statuses)}; socket errors ${run.socket_errors}`);
    const msPerSend = (1000 * run.wagate_cpu_s / Math.max(1, run.requests)).toFixed(2);
    say(`  CPU during the run: wagate ${f1(run.wagate_cpu_s)} s (${msPerSend} ms per send), ` +
        `wasim ${f1(run.wasim_cpu_s)} s (it also plays ` +
        `every recipient phone: decrypts, receipts); ${os.cpus().length} cores, load average ` +
        `${os.loadavg()[0].toFixed(1)}`);
}
const rssAfter = rssKib(gw.proc.pid);
const m = await (await fetch(`${gw.base}/metrics`)).text();
const cnt = metric(m, /^wagate_whatsapp_keepalive_rtt_seconds_count (\S+)/m);
const sum = metric(m, /^wagate_whatsapp_keepalive_rtt_seconds_sum (\S+)/m);
const out = metric(m, /^wagate_messages_total\{direction="out"\} (\S+)/m);
say(`after wrk: RSS ${rssAfter} KiB; keep-alive round trips observed: ${cnt}` +
    `${cnt ? `, mean ${(1000 * sum / cnt).toFixed(2)} ms` : ''}; messages out (metrics): ${out}`);
lag.stop = true;
await lagMon;
await gw.stop();
sim.proc.kill('SIGTERM');

const summary = { loop_lag: lags, n: opts.n, transport: opts.transport, rss_base_kib: rssBase,
    boot_all_working_s: bootS, rss_idle_kib: rssIdle, rss_per_session_kib: perSession,
    api_memory_bytes_mean: idle.bytes / opts.n, wrk: run, first_sends: warm,
    rss_after_wrk_kib: rssAfter, keepalive_count: cnt, keepalive_mean_ms: cnt ? 1000 * sum / cnt : null };
fs.writeFileSync(path.join(work, 'results.json'), JSON.stringify(summary, null, 2));
say('');
say('== summary ==');
say(`wagate, ${opts.n} sessions over ${opts.transport}:// against wasim:`);
say(`  boot to all WORKING:   ${f1(bootS)} s`);
say(`  idle RSS:              ${f1(rssIdle / 1024)} MiB total, ${f1(perSession)} KiB per session ` +
    `(API memory_bytes: ${f1(idle.bytes / opts.n / 1024)} KiB per session)`);
say(`  first send per session: ${f1(opts.n / warm.seconds)}/s, p50 ${warm.p50_ms.toFixed(1)} ms, ` +
    `p99 ${warm.p99_ms.toFixed(1)} ms (device lists, prekeys, new Signal sessions)`);
if (run) {
    say(`  API sends under wrk:   ${f1(run.requests / run.seconds)}/s, p50 ${run.p50_ms.toFixed(2)} ms, ` +
        `p99 ${run.p99_ms.toFixed(2)} ms (${opts.wrkConns} connections, ${opts.wrkThreads} threads)`);
}
say(`  max loop lag:          pairing ${lags.pairing.max_lag_s.toFixed(3)} s, boot ` +
    `${lags.boot.max_lag_s.toFixed(3)} s, idle + first sends ` +
    `${lags.idle_first_sends.max_lag_s.toFixed(3)} s, wrk ${lags.wrk.max_lag_s.toFixed(3)} s`);
say(`(all figures: ${path.join(work, 'results.json')})`);
