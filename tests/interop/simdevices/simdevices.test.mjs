// simdevices.test.mjs - wasim's device lifecycle with unmodified Baileys 6.17 and 7 clients
// (tests/interop/peer):
//   - unlink: POST /devices/{jid}/logout and a client's own logout send the connected client
//     <stream:error code='401'><conflict type='device_removed'/></stream:error>, as the real
//     server does (Baileys: loggedOut, "Stream Errored (conflict)"; whatsmeow: LoggedOut);
//   - device ids are never reused: a companion linked after an unlink gets the next id, not the
//     freed one, also across a wasim restart with --state (the counter is kept); usync device
//     lists and prekey bundles use those ids (a sender that fetched the list anew reaches every
//     companion);
//   - devices notifications: when a companion is linked or unlinked, the account's other
//     companions and the devices that fetched its device list get
//     <notification type='devices'><add|remove><device jid/><key-index-list/></..>, queued while
//     offline, and acknowledge them; a Baileys 7 sender that cached the list then reaches the
//     new companion at once (without the notification only after its 5-minute cache expires).
// Clients: phone P has companions a6 (6.17), b7 (7), then c6, d7; x7 (7) on phone Q messages P.
// Stanzas are checked in wasim's --trace file.
//
//   node simdevices.test.mjs WASIM_BIN
//
// Prints one line per test and "N passed, N failed"; exits 1 when anything failed.
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from 'node:fs';
import path from 'node:path';

import { requireNodeModules } from '../peer/shim.mjs';

requireNodeModules('simdevices.test');

const { assert, freePort, httpJson, httpOk, sleep, startPeer, startProcess, test, run, tmpDir } =
    await import('../peer/lib.mjs');

const WASIM = process.argv[2];
if (!WASIM || !fs.existsSync(WASIM)) {
    console.error('usage: node simdevices.test.mjs WASIM_BIN');
    console.log('0 passed, 1 failed');
    process.exit(1);
}

const WAIT_MS = 20000;
const QR_MS = 8000;
const PAIR_ATTEMPTS = 3;
const MSG_MS = 15000;
const P = '15550021001';
const Q = '15550021002';

const tmp = tmpDir('wa-simdevices-');
const stateFile = path.join(tmp, 'wasim.db');
let sim, WS, CTL, traceFile, runs = 0, ports = null;

async function startSim() {
    if (!ports) ports = { ws: await freePort(), ctl: await freePort() };
    runs++;
    traceFile = path.join(tmp, `trace-${runs}.txt`);
    sim = await startProcess(WASIM, ['--listen', `127.0.0.1:${ports.ws}`, '--control',
        `127.0.0.1:${ports.ctl}`, '--state', stateFile, '--trace', traceFile],
    { readyRegex: /wasim ready ws=(\S+) control=(\S+)/, name: `wasim#${runs}` });
    [, WS, CTL] = sim.match;
}

const devUrl = (jid, action) => `${CTL}/devices/${encodeURIComponent(jid)}/${action}`;
const deviceIds = async phone =>
    (await httpOk('GET', `${CTL}/phones/${phone}`)).devices.map(d => d.id).sort((a, b) => a - b);
const jidOf = (phone, id) => `${phone}:${id}@s.whatsapp.net`;

/** Marks every connection event so far as seen: later waits get only new ones. */
function consumeConnectionEvents(peer) {
    for (const e of peer.events) if (e.ev === 'connection') e.__used = true;
}

async function waitFor(what, fn, ms = WAIT_MS) {
    const until = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
    }
}

async function online(jid) {
    const phone = jid.split(':')[0];
    const d = (await httpOk('GET', `${CTL}/phones/${phone}`)).devices.find(x => x.jid === jid);
    return !!(d && d.online);
}

/** A client paired by QR on phone, open. Baileys 6.17 can lose the first frame under load:
 * a new client then. */
async function pair(version, phone, label) {
    for (let i = 1; ; i++) {
        const dir = path.join(tmp, `${label}-${runs}-${i}`);
        const peer = await startPeer({ version, url: WS, auth: dir, name: label });
        let qr;
        try {
            qr = await peer.next('qr', QR_MS);
        } catch (err) {
            await peer.close();
            if (i >= PAIR_ATTEMPTS) throw err;
            console.log(`# ${label}: no QR within ${QR_MS} ms, new client (attempt ${i + 1})`);
            continue;
        }
        const r = await httpJson('POST', `${CTL}/phones/${phone}/scan`, { qr: qr.qr });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const open = await peer.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
        assert.equal(open.me.id, r.body.device);
        await waitFor(`${label} online`, () => online(r.body.device));
        consumeConnectionEvents(peer);
        return { version, phone, label, dir, peer, jid: r.body.device };
    }
}

// ---- the trace ----

function traceLines() {
    return fs.readFileSync(traceFile, 'utf8').split('\n');
}

/** Connection ids (as strings) on which device jid logged in, in this run's trace. */
function connsOf(jid) {
    const [user, rest] = jid.split(':');
    const dev = Number(rest.split('@')[0]);
    const out = new Set();
    for (const l of traceLines()) {
        const m = l.match(/^(\d+) payload (\{.*)$/);
        if (!m) continue;
        try {
            const p = JSON.parse(m[2]);
            if (String(p.username) === user && Number(p.device || 0) === dev) out.add(m[1]);
        } catch {
            // not JSON: not a login
        }
    }
    return out;
}

const attr = (line, name) => (line.match(new RegExp(` ${name}="([^"]*)"`)) || [])[1];

/**
 * The devices notifications sent to device jid's connections that name changed device `id`
 * (any form), with `change` add|remove: [{ conn, id, line, acked }].
 */
function notesTo(jid, change, id) {
    const conns = connsOf(jid);
    const lines = traceLines();
    const re = new RegExp(`<${change} [^>]*><device jid="\\d+:${id}@(s\\.whatsapp\\.net|lid)"`);
    return lines.filter(l => / out <notification /.test(l) && / type="devices"/.test(l) &&
            conns.has(l.split(' ')[0]) && re.test(l))
        .map(l => {
            const conn = l.split(' ')[0];
            const nid = attr(l, 'id');
            const acked = lines.some(a => a.startsWith(`${conn} in <ack `) &&
                attr(a, 'class') === 'notification' && attr(a, 'id') === nid);
            return { conn, id: nid, line: l, acked };
        });
}

/** Waits until jid got an acknowledged devices notification about `id`. */
async function toldAndAcked(jid, change, id) {
    return waitFor(`${jid}: acked <${change}> of device ${id}`,
        () => notesTo(jid, change, id).find(n => n.acked));
}

/** The device ids wasim's usync answers listed for user (PN or LID) after line `from`. */
function usyncDeviceLists(users, from = 0) {
    const lists = [];
    for (const l of traceLines().slice(from)) {
        if (!/ out <iq /.test(l) || !/<usync /.test(l)) continue;
        for (const chunk of l.split('<user ').slice(1)) {
            const jid = attr(` ${chunk}`, 'jid');
            if (!users.includes(jid) || !chunk.includes('<device-list>')) continue;
            const list = chunk.split('</device-list>')[0];
            lists.push([...list.matchAll(/<device id="(\d+)"/g)].map(m => Number(m[1])));
        }
    }
    return lists;
}

async function sendReaches(from, text, to, notTo = []) {
    await from.peer.ok({ cmd: 'send', to: P, text });
    await Promise.all(to.map(c => c.peer.next({ ev: 'message', text }, MSG_MS)));
    for (const c of notTo) await c.peer.none({ ev: 'message', text }, 500);
}

// ---------------------------------------------------------------------------------------------

const C = {};

test('setup: companions a6 (P:1) and b7 (P:2), x7 on Q; x7 texts P, both companions get it', async () => {
    await startSim();
    C.a6 = await pair(6, P, 'a6');
    C.b7 = await pair(7, P, 'b7');
    C.x7 = await pair(7, Q, 'x7');
    assert.equal(C.a6.jid, jidOf(P, 1));
    assert.equal(C.b7.jid, jidOf(P, 2));
    await sendReaches(C.x7, 'x7 to P, first', [C.a6, C.b7]);
    // b7 was told of nothing before: a6 was linked before it
    assert.deepEqual(await deviceIds(P), [0, 1, 2]);
});

test('unlink by the phone: stream:error 401 <conflict type=device_removed/>, loggedOut; the others are told', async () => {
    const { a6, b7, x7 } = C;
    const r = await httpJson('POST', devUrl(a6.jid, 'logout'), {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const close = await a6.peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
    assert.equal(close.statusCode, 401, JSON.stringify(close));
    assert.equal(close.reason, 'loggedOut');
    assert.equal(close.message, 'Stream Errored (conflict)', JSON.stringify(close));
    assert.equal(close.willReconnect, false);
    const conns = connsOf(a6.jid);
    const sent = traceLines().filter(l => conns.has(l.split(' ')[0]) && / out <stream:error /.test(l));
    assert.equal(sent.length, 1, sent.join('\n'));
    assert.match(sent[0], /<stream:error code="401"><conflict type="device_removed"\/><\/stream:error>/);
    await a6.peer.close();
    // the account's other companion and the peer that fetched P's device list
    const nb = await toldAndAcked(b7.jid, 'remove', 1);
    assert.equal(attr(nb.line, 'from'), `${P}@s.whatsapp.net`);
    assert.match(nb.line, / device_hash="2:[A-Za-z0-9+/]{8}"/);
    await toldAndAcked(x7.jid, 'remove', 1);
    assert.deepEqual(await deviceIds(P), [0, 2]);
});

test('a new companion gets id 3, not the freed 1; offline b7 gets the add queued; x7 reaches it at once', async () => {
    const { b7, x7 } = C;
    await b7.peer.ok({ cmd: 'end' });
    consumeConnectionEvents(b7.peer);
    await waitFor('b7 offline', async () => !(await online(b7.jid)));
    C.c6 = await pair(6, P, 'c6');
    const { c6 } = C;
    assert.equal(c6.jid, jidOf(P, 3), 'the unlinked device\'s id was handed out again');
    assert.deepEqual(await deviceIds(P), [0, 2, 3]);
    const nx = await toldAndAcked(x7.jid, 'add', 3);
    assert.match(nx.line, /<key-index-list ts="\d+"\/>/);
    assert.match(nx.line, / key-index="\d+"/);
    // x7 cached P's devices when it first sent: the notification put P:3 in, P:1 out
    const text = 'x7 to P, after c6 was linked';
    await x7.peer.ok({ cmd: 'send', to: P, text });
    await c6.peer.next({ ev: 'message', text }, MSG_MS);
    // b7 comes back: the add notification waited in its queue, then x7's text
    assert.equal(notesTo(b7.jid, 'add', 3).length, 0);
    await b7.peer.ok({ cmd: 'connect' });
    await b7.peer.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
    await toldAndAcked(b7.jid, 'add', 3);
    await b7.peer.next({ ev: 'message', text }, MSG_MS);
    assert.ok(traceLines().some(l => / queued <notification /.test(l) && / type="devices"/.test(l)),
        'no devices notification was queued');
});

test('a client\'s own logout: device_removed on its stream, the others are told', async () => {
    const { b7, c6, x7 } = C;
    const r = await c6.peer.cmd({ cmd: 'logout' });
    assert.ok(r.ok, `logout: ${r.error}`);
    const close = await c6.peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
    assert.equal(close.statusCode, 401, JSON.stringify(close));
    await c6.peer.close();
    await waitFor('P:3 gone', async () => !(await deviceIds(P)).includes(3));
    const conns = connsOf(c6.jid);
    assert.ok(traceLines().some(l => conns.has(l.split(' ')[0]) &&
        /<stream:error code="401"><conflict type="device_removed"\/>/.test(l)), 'no device_removed');
    await toldAndAcked(b7.jid, 'remove', 3);
    await toldAndAcked(x7.jid, 'remove', 3);
});

test('--state keeps the id counter: after a restart the next companion is P:4, not P:3', async () => {
    const { b7, x7 } = C;
    const lid = (await httpOk('GET', `${CTL}/phones/${P}`)).lid;
    for (const c of [b7, x7]) consumeConnectionEvents(c.peer);
    const stopped = await sim.stop(5000);
    assert.equal(stopped.code, 0, JSON.stringify(stopped));
    await startSim();
    for (const c of [b7, x7]) {
        await c.peer.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
        await waitFor(`${c.label} online`, () => online(c.jid));
    }
    assert.deepEqual(await deviceIds(P), [0, 2]);
    const from = traceLines().length;
    C.d7 = await pair(7, P, 'd7');
    assert.equal(C.d7.jid, jidOf(P, 4), 'an id used before the restart was handed out again');
    await toldAndAcked(b7.jid, 'add', 4);
    // x7's new socket has no cached list: its usync gets the real ids, its bundles P:2 and P:4
    await sendReaches(x7, 'x7 to P, after the restart', [b7, C.d7]);
    const lists = usyncDeviceLists([`${P}@s.whatsapp.net`, `${lid}@lid`], from);
    assert.ok(lists.length >= 1, 'no usync answer for P after the restart');
    for (const l of lists) assert.deepEqual(l, [0, 2, 4]);
});

test('wasim exits cleanly', async () => {
    for (const c of Object.values(C)) await c.peer.close();
    const { code, signal } = await sim.stop(5000);
    assert.equal(signal, null);
    assert.equal(code, 0);
});

await run();
