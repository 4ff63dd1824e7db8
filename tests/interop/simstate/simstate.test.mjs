// simstate.test.mjs - acceptance test of `wasim --state FILE` with unmodified Baileys 6.17 and 7
// clients (tests/interop/peer): what the clients paired, sent and created survives a wasim
// restart, after SIGTERM and after SIGKILL.
//
//   1. wasim --state F; a Baileys 6.17 (phone A) and a Baileys 7 (phone B) pair by QR; they
//      exchange texts, A's virtual phone sends B a text, A creates a group with B.
//   2. SIGTERM (wasim exits 0), nothing sent meanwhile; a new wasim on the same F and ports has
//      the same root key (GET /root-key); both peers reconnect by themselves and reach "open"
//      without pairing again (no QR, no pair-success); texts go both ways; A's virtual phone
//      decrypts B's next message on the Signal session it had before the restart (no retry).
//   3. B away; A and A's virtual phone send; SIGKILL; a new wasim: B reconnects and gets both
//      queued texts; the delivery receipts find A and A's phone (the receipt routing map was
//      kept too).
//   4. The group is still there: metadata on both peers, and a group message goes through.
//
// Usage: node simstate.test.mjs WASIM_BIN      (ctest: interop_simstate, label interop)
// Prints one line per test, then "N passed, N failed"; exits 1 on any failure. WA_PEER_VERBOSE=1,
// WA_TEST_FILTER, WA_KEEP_TMP as in tests/interop/peer/README.md.
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from 'fs';
import path from 'path';

import { requireNodeModules } from '../peer/shim.mjs';

requireNodeModules('simstate.test');

const { assert, startPeer, startProcess, httpOk, test, run, tmpDir, sleep, freePort } =
    await import('../peer/lib.mjs');

const WASIM = process.argv[2];
if (!WASIM) {
    console.error('usage: node simstate.test.mjs WASIM_BIN');
    process.exit(2);
}

const WAIT_MS = 20000;
const QR_MS = 8000;
const PAIR_ATTEMPTS = 3;
const PHONES = { a6: '15550000811', b7: '15550000812' };

const dir = tmpDir('wa-simstate-');
const stateFile = path.join(dir, 'wasim.db');
let sim, url, ctl, rootKey, runs = 0, traceFile;
const peers = {};

/** Starts wasim on the state file, on the same ports every time (the peers reconnect there). */
let ports = null;
async function startSim() {
    if (!ports) ports = { ws: await freePort(), ctl: await freePort() };
    runs++;
    traceFile = path.join(dir, `trace-${runs}.txt`);
    sim = await startProcess(WASIM, ['--listen', `127.0.0.1:${ports.ws}`, '--control',
        `127.0.0.1:${ports.ctl}`, '--state', stateFile, '--trace', traceFile],
    { readyRegex: /wasim ready ws=(\S+) control=(\S+)/, name: `wasim#${runs}` });
    [, url, ctl] = sim.match;
    return (await (await fetch(`${ctl}/root-key`)).text()).trim();
}

async function pair(key, version) {
    // Baileys 6.17 can lose the server's first frame under load (PROTOCOL.md §2): retry then.
    let p, qr;
    for (let i = 1; !qr; i++) {
        p = await startPeer({ version, url, auth: tmpDir(), name: key });
        try {
            qr = await p.next('qr', QR_MS);
        } catch (err) {
            await p.close();
            if (i >= PAIR_ATTEMPTS) throw err;
            console.log(`# ${key}: no QR within ${QR_MS} ms, new client (attempt ${i + 1})`);
        }
    }
    await httpOk('POST', `${ctl}/phones/${PHONES[key]}/scan`, { qr: qr.qr });
    await p.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
    p.phone = PHONES[key];
    peers[key] = p;
    return p;
}

/** Waits until the server sees device 1 of phone online (or offline). */
async function deviceOnline(phone, want) {
    for (let i = 0; i < 400; i++) {
        const r = await httpOk('GET', `${ctl}/phones/${phone}`);
        const d = r.devices.find(x => x.id === 1);
        if (d && d.online === want) return d;
        await sleep(25);
    }
    throw new Error(`device ${phone}:1 never became ${want ? 'online' : 'offline'}`);
}

const isText = text => e => e.ev === 'message' && e.text === text;

async function oneWay(from, to, text) {
    const r = await from.ok({ cmd: 'send', to: to.phone, text });
    const m = await to.next(isText(text), WAIT_MS);
    assert.equal(m.from, `${from.phone}@s.whatsapp.net`);
    assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
    return r.id;
}

/** Both peers lost wasim and came back to the new one: open again, with no pairing. */
async function bothReopen(who = Object.keys(peers)) {
    for (const k of who) {
        const p = peers[k];
        await p.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
        await deviceOnline(p.phone, true);
    }
}

/** Lines of the current run's trace mentioning a stanza id. */
function traceLines(id) {
    return fs.readFileSync(traceFile, 'utf8').split('\n').filter(l => l.includes(`id="${id}"`));
}

/** The connection ids of phone's logins in the current run's trace. */
function connsOf(phone) {
    return new Set(fs.readFileSync(traceFile, 'utf8').split('\n')
        .map(l => l.match(/^(\d+) payload \{"username":(\d+),/))
        .filter(m => m && m[2] === phone).map(m => m[1]));
}

/** The <enc type> of every copy of message id the trace shows sent to phone's connections. */
function encTypesTo(phone, id) {
    const conns = connsOf(phone);
    return traceLines(id).filter(l => / out <message /.test(l) && conns.has(l.split(' ')[0]))
        .map(l => (l.match(/<enc [^>]*type="(\w+)"/) || [])[1]);
}

let group;

test('setup: wasim --state, a Baileys 6.17 and a Baileys 7 paired by QR, both open', async () => {
    rootKey = await startSim();
    assert.match(rootKey, /^[0-9a-f]{64}$/);
    await Promise.all([pair('a6', 6), pair('b7', 7)]);
    // from here on, any QR or pair-success would mean a second pairing
    for (const p of Object.values(peers)) p.events.forEach(e => { e.__beforeRestart = true; });
});

test('before the restart: texts both ways, the virtual phone sends, a group is made', async () => {
    const { a6, b7 } = peers;
    await oneWay(a6, b7, 'a6 to b7 before');
    await oneWay(b7, a6, 'b7 to a6 before');
    // each virtual phone sends the other's companion a text: B's phone answers on the session
    // a6 started with it, so a6's later messages to it are type msg, which only the session
    // kept across the restart decrypts (a pkmsg would make a new one)
    for (const [phone, to, text] of [[a6.phone, b7, 'phone A to b7 before'],
        [b7.phone, a6, 'phone B to a6 before']]) {
        const sent = await httpOk('POST', `${ctl}/phones/${phone}/send`, { to: to.phone, text });
        const pm = await to.next(isText(text), WAIT_MS);
        assert.equal(pm.id, sent.id);
        assert.ok(!pm.stub, `decrypted, not a ${pm.stub} stub`);
    }
    group = await a6.ok({ cmd: 'group_create', subject: 'kept across restarts',
        participants: [b7.phone] });
    assert.match(group.id, /^120363\d+@g\.us$/);
    await b7.next({ ev: 'group', action: 'upsert', id: group.id }, WAIT_MS);
    await a6.ok({ cmd: 'send', to: group.id, text: 'group before' });
    const gm = await b7.next(isText('group before'), WAIT_MS);
    assert.equal(gm.from, group.id);
    assert.ok(!gm.stub, `decrypted, not a ${gm.stub} stub`);
});

test('SIGTERM, then a new wasim on the same --state: same root key, both reconnect without pairing',
    async () => {
        const stopped = await sim.stop(5000);
        assert.deepEqual(stopped, { code: 0, signal: null }, 'wasim exits cleanly on SIGTERM');
        for (const p of Object.values(peers)) {
            await p.next(e => e.ev === 'connection' && e.connection === 'close', WAIT_MS);
        }
        const again = await startSim();
        assert.equal(again, rootKey, 'GET /root-key unchanged');
        await bothReopen();
        for (const [k, p] of Object.entries(peers)) {
            const fresh = p.events.filter(e => !e.__beforeRestart);
            assert.ok(!fresh.some(e => e.ev === 'qr' || e.ev === 'paired'),
                `${k} paired again: ${JSON.stringify(fresh.filter(e => e.ev === 'qr' || e.ev === 'paired'))}`);
            const info = await httpOk('GET', `${ctl}/phones/${p.phone}`);
            assert.deepEqual(info.devices.map(d => d.id), [0, 1], `${k}: devices 0 and 1 kept`);
        }
        const stats = await httpOk('GET', `${ctl}/stats`);
        assert.equal(stats.pairings, 0, 'no pairing in the new run');
        assert.ok(stats.logins >= 2, `logins ${stats.logins}`);
    });

test('after the restart: texts both ways; the phones use the Signal sessions they kept', async () => {
    const { a6, b7 } = peers;
    const id = await oneWay(a6, b7, 'a6 to b7 after SIGTERM');
    await oneWay(b7, a6, 'b7 to a6 after SIGTERM');
    // a6's copy for B's device 0 (the virtual phone) is a msg on the session of before
    const toPhone = new RegExp(`<to jid="${b7.phone}@s\\.whatsapp\\.net"><enc [^>]*type="(\\w+)"`);
    const encs = traceLines(id).map(l => (l.match(toPhone) || [])[1]).filter(Boolean);
    assert.deepEqual(encs, ['msg'], 'a6 sent device 0 of B a msg on its existing session');
    let msg;
    for (let i = 0; i < 200 && !(msg && msg.text); i++) {
        const r = await httpOk('GET', `${ctl}/phones/${b7.phone}/messages?id=${id}`);
        msg = r.messages[0];
        if (!(msg && msg.text)) await sleep(25);
    }
    assert.ok(msg && msg.text === 'a6 to b7 after SIGTERM' && !msg.error,
        `phone B decrypted a6's message: ${JSON.stringify(msg)}`);
    const retries = traceLines(id).filter(l => /<receipt [^>]*type="retry"/.test(l));
    assert.deepEqual(retries, [], 'no retry receipt for it');
    // and the phones send on their kept sessions (a lost session would make a pkmsg)
    for (const [phone, to, text] of [[a6.phone, b7, 'phone A to b7 after'],
        [b7.phone, a6, 'phone B to a6 after']]) {
        const sent = await httpOk('POST', `${ctl}/phones/${phone}/send`, { to: to.phone, text });
        const pm = await to.next(isText(text), WAIT_MS);
        assert.ok(!pm.stub, `decrypted, not a ${pm.stub} stub`);
        assert.deepEqual(encTypesTo(to.phone, sent.id), ['msg'], `phone ${phone} to ${to.name}`);
    }
});

test('offline across SIGKILL: b7 away, a6 sends, wasim killed and restarted, b7 gets it', async () => {
    const { a6, b7 } = peers;
    await b7.ok({ cmd: 'end' });
    await deviceOnline(b7.phone, false);
    const text = 'a6 to away b7 across SIGKILL', ptext = 'phone A to away b7 across SIGKILL';
    const r = await a6.ok({ cmd: 'send', to: b7.phone, text });
    const pr = await httpOk('POST', `${ctl}/phones/${a6.phone}/send`, { to: b7.phone, text: ptext });
    let dev;
    for (let i = 0; i < 200; i++) {
        dev = (await httpOk('GET', `${ctl}/phones/${b7.phone}`)).devices.find(d => d.id === 1);
        if (dev.queued >= 2) break;
        await sleep(25);
    }
    assert.ok(dev.queued >= 2, `queued for b7: ${dev.queued}`);
    sim.kill('SIGKILL');
    const killed = await sim.exited;
    assert.equal(killed.signal, 'SIGKILL');
    await a6.next(e => e.ev === 'connection' && e.connection === 'close', WAIT_MS);
    const again = await startSim();
    assert.equal(again, rootKey, 'GET /root-key unchanged after SIGKILL');
    const queued = (await httpOk('GET', `${ctl}/phones/${b7.phone}`)).devices.find(d => d.id === 1);
    assert.ok(queued && queued.queued >= 2, `the queue came back: ${JSON.stringify(queued)}`);
    await bothReopen(['a6']);
    await b7.ok({ cmd: 'connect' });
    await bothReopen(['b7']);
    for (const t of [text, ptext]) {
        const m = await b7.next(isText(t), WAIT_MS);
        assert.equal(m.from, `${a6.phone}@s.whatsapp.net`);
        assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
    }
    await a6.next(e => e.ev === 'receipt' && e.id === r.id &&
        (e.type === 'delivery' || e.type === 'read'), WAIT_MS);
    // b7's receipt for the phone's message names only A's user (device 0): it finds the phone
    // through the receipt routing map kept across the kill
    let receipts = [];
    for (let i = 0; i < 400 && !receipts.length; i++) {
        receipts = (await httpOk('GET', `${ctl}/phones/${a6.phone}/receipts?id=${pr.id}`)).receipts
            .filter(x => x.type !== 'retry');
        if (!receipts.length) await sleep(25);
    }
    assert.ok(receipts.length, `phone A got b7's receipt for ${pr.id}`);
    const after = await deviceOnline(b7.phone, true);
    assert.equal(after.queued, 0, 'queue drained');
    for (const [k, p] of Object.entries(peers)) {
        assert.ok(!p.events.some(e => !e.__beforeRestart && (e.ev === 'qr' || e.ev === 'paired')),
            `${k} never paired again`);
    }
});

test('the group survived both restarts: metadata on both peers, a group message goes through',
    async () => {
        const { a6, b7 } = peers;
        for (const p of [a6, b7]) {
            const md = await p.ok({ cmd: 'group_metadata', jid: group.id });
            assert.equal(md.subject, 'kept across restarts');
            assert.deepEqual([...md.participants].sort(),
                [a6.phone, b7.phone].map(n => `${n}@s.whatsapp.net`).sort());
        }
        await b7.ok({ cmd: 'send', to: group.id, text: 'group after restarts' });
        const gm = await a6.next(isText('group after restarts'), WAIT_MS);
        assert.equal(gm.from, group.id);
        assert.ok(!gm.stub, `decrypted, not a ${gm.stub} stub`);
    });

test('teardown: peers quit, wasim exits cleanly on SIGTERM', async () => {
    await Promise.all(Object.values(peers).map(p => p.close()));
    const r = await sim.stop(5000);
    assert.equal(r.code, 0, `wasim exit ${JSON.stringify(r)}`);
});

await run();
