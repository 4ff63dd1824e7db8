// phone.test.mjs - acceptance test of wasim's virtual phone (sim/phone.c) with unmodified Baileys
// 6.17 and 7 companions (tests/interop/peer): the phone sends real Signal-encrypted texts through
// POST /phones/{phone}/send (pkmsg first, then msg) and each Baileys emits them decrypted; the
// sender's own companion gets a deviceSentMessage copy (fromMe); a group message goes out with
// sender keys; LID addressing; texts Baileys sends to the phone's number show up decrypted in
// GET /phones/{phone}/messages and Baileys gets the phone's delivery receipt; the companions'
// receipts for the phone's messages show up in GET /phones/{phone}/receipts; bad requests get
// 4xx errors.
//
// Usage: node phone.test.mjs WASIM_BIN        (ctest: interop_sim_phone, label interop)
// Prints one line per test, then "N passed, N failed"; exits 1 on any failure. WA_SIM_TRACE=FILE
// has wasim write its stanza trace there; WA_PEER_VERBOSE=1 and WA_TEST_FILTER as in
// tests/interop/peer/README.md.
// SPDX-License-Identifier: GPL-3.0-or-later
import { requireNodeModules } from '../peer/shim.mjs';

requireNodeModules('phone.test');

const { assert, startPeer, startProcess, httpJson, httpOk, test, run, tmpDir, sleep } = await import(
    '../peer/lib.mjs');
const fs = await import('fs');
const path = await import('path');

const WASIM = process.argv[2];
if (!WASIM) {
    console.error('usage: node phone.test.mjs WASIM_BIN');
    process.exit(2);
}

const WAIT_MS = 20000;
// v6 and v7: phones with one Baileys companion each; P: a phone without companions
const PHONES = { v6: '15550001601', v7: '15550001702' };
const P = '15550001900';
const S = '@s.whatsapp.net';

let sim, url, ctl;
const peers = {};

async function pair(key, version) {
    const auth = tmpDir();
    const p = await startPeer({ version, url, auth, name: key, logLevel: process.env.WA_PEER_LOG });
    p.authDir = auth;
    const qr = await p.next('qr', WAIT_MS);
    await httpOk('POST', `${ctl}/phones/${PHONES[key]}/scan`, { qr: qr.qr });
    await p.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
    // Baileys holds message events until <ib><offline/> (and 6.17 until its app-state sync)
    await p.next('received_pending', WAIT_MS);
    p.phone = PHONES[key];
    p.lid = (await httpOk('GET', `${ctl}/phones/${p.phone}`)).lid;
    peers[key] = p;
    return p;
}

const phoneSend = (phone, to, text) => httpOk('POST', `${ctl}/phones/${phone}/send`, { to, text });
const isText = text => e => e.ev === 'message' && e.text === text;

/** Polls GET /phones/{phone}/{what} until pick(body) is truthy; returns that value. */
async function poll(phone, what, pick, ms = WAIT_MS) {
    const end = Date.now() + ms;
    let last;
    while (Date.now() < end) {
        last = await httpOk('GET', `${ctl}/phones/${phone}/${what}`);
        const v = pick(last);
        if (v) return v;
        await sleep(50);
    }
    throw new Error(`GET /phones/${phone}/${what}: condition not met in ${ms} ms: ` +
        JSON.stringify(last).slice(0, 600));
}

const deliveredBy = (id, dev) => b => b.receipts.find(r => r.id === id && r.from === dev &&
    r.type === 'delivery');

/** The phone sends text to peer p (by `to`); p emits it decrypted; p's receipt reaches the phone. */
async function phoneToPeer(p, to, text, fromJid = `${P}${S}`) {
    const r = await phoneSend(P, to, text);
    assert.match(r.id, /^[0-9A-F]{32}$/);
    assert.equal(r.devices, 1, 'one companion reached');
    const m = await p.next(isText(text), WAIT_MS);
    assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
    assert.equal(m.fromMe, false);
    assert.equal(m.from, fromJid);
    assert.equal(m.id, r.id);
    await poll(P, 'receipts', deliveredBy(r.id, `${p.phone}:1${S}`));
    return m;
}

test('setup: wasim up, a Baileys 6.17 and a Baileys 7 companion paired and open', async () => {
    const trace = process.env.WA_SIM_TRACE ? ['--trace', process.env.WA_SIM_TRACE] : [];
    sim = await startProcess(WASIM, ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', ...trace],
        { readyRegex: /wasim ready ws=(\S+) control=(\S+)/, name: 'wasim' });
    [, url, ctl] = sim.match;
    await httpOk('GET', `${ctl}/phones/${P}`); // the phone exists from now on
    await Promise.all([pair('v6', 6), pair('v7', 7)]);
});

test('phone -> Baileys 6.17: twice (pkmsg until it answers); delivery receipts recorded', async () => {
    await phoneToPeer(peers.v6, peers.v6.phone, 'phone to v6 #1');
    await phoneToPeer(peers.v6, `+${peers.v6.phone}`, 'phone to v6 #2');
});

test('phone -> Baileys 7: twice (sender_lid gives Baileys the LID)', async () => {
    const m = await phoneToPeer(peers.v7, `${peers.v7.phone}${S}`, 'phone to v7 #1');
    const { lid } = await httpOk('GET', `${ctl}/phones/${P}`);
    assert.equal(m.fromAlt, `${lid}@lid`);
    await phoneToPeer(peers.v7, peers.v7.phone, 'phone to v7 #2');
});

test('phone -> Baileys 7 by LID: from is the phone\'s LID', async () => {
    const { lid } = await httpOk('GET', `${ctl}/phones/${P}`);
    await phoneToPeer(peers.v7, `${peers.v7.lid}@lid`, 'phone to v7 by lid', `${lid}@lid`);
});

for (const key of ['v6', 'v7']) {
    test(`Baileys ${key === 'v6' ? '6.17' : '7'} -> phone: decrypted in /messages, twice, ` +
        'delivery receipts back', async () => {
        const p = peers[key];
        for (const n of [1, 2]) {
            const text = `${key} to phone #${n}`;
            const r = await p.ok({ cmd: 'send', to: P, text });
            const m = await poll(P, 'messages', b => b.messages.find(x => x.id === r.id));
            assert.equal(m.text, text, JSON.stringify(m));
            assert.equal(m.from, `${p.phone}:1${S}`);
            assert.equal(m.chat, `${p.phone}${S}`);
            assert.equal(m.fromMe, false);
            assert.equal(m.error, undefined);
            await p.next(e => e.ev === 'receipt' && e.id === r.id && e.type === 'delivery', WAIT_MS);
            // Baileys' copy for its own phone (deviceSentMessage) decrypts there
            const own = await poll(p.phone, 'messages', b => b.messages.find(x => x.id === r.id));
            assert.equal(own.text, text, JSON.stringify(own));
            assert.equal(own.fromMe, true);
            assert.equal(own.chat, `${P}${S}`);
        }
        // and the phone answers over the session Baileys started
        await phoneToPeer(p, p.phone, `phone answers ${key}`);
    });
}

for (const key of ['v6', 'v7']) {
    test(`retry: Baileys ${key === 'v6' ? '6.17' : '7'} lost its session with the phone, asks ` +
        'for a retry, the phone rebuilds it and resends', async () => {
        const p = peers[key];
        const { lid } = await httpOk('GET', `${ctl}/phones/${P}`);
        // Baileys' file store: session-<user>[_1].<device>.json
        const gone = fs.readdirSync(p.authDir).filter(f => f.startsWith(`session-${P}`) ||
            f.startsWith(`session-${lid}_1`));
        assert.ok(gone.length > 0, `a session file in ${fs.readdirSync(p.authDir).join(' ')}`);
        for (const f of gone) fs.rmSync(path.join(p.authDir, f));
        const text = `phone to ${key} after its session was lost`;
        const r = await phoneSend(P, p.phone, text);
        await poll(P, 'receipts', b => b.receipts.find(x => x.id === r.id && x.type === 'retry'));
        const m = await p.next(isText(text), WAIT_MS);
        assert.equal(m.id, r.id);
        assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
        await poll(P, 'receipts', deliveredBy(r.id, `${p.phone}:1${S}`));
    });
}

test('retry: the phone lost its sessions; Baileys 6.17 and 7 resend on its retry receipt', async () => {
    const f = await httpOk('POST', `${ctl}/phones/${P}/forget-sessions`, {});
    assert.ok(f.sessions >= 1, JSON.stringify(f));
    for (const p of [peers.v6, peers.v7]) {
        const text = `${p.name} to the phone that forgot`;
        const r = await p.ok({ cmd: 'send', to: P, text });
        const m = await poll(P, 'messages', b => b.messages.find(x => x.id === r.id && x.text));
        assert.equal(m.text, text, JSON.stringify(m));
        assert.equal(m.error, undefined);
        await p.next(e => e.ev === 'receipt' && e.id === r.id && e.type === 'delivery', WAIT_MS);
        await phoneToPeer(p, p.phone, `phone to ${p.name} after forgetting`);
    }
});

test('phone -> peer: its own companion gets a deviceSentMessage copy (fromMe)', async () => {
    const { v6, v7 } = peers;
    const text = 'v6 phone to v7';
    const r = await phoneSend(v6.phone, v7.phone, text);
    assert.equal(r.devices, 2, 'the peer\'s companion and the sender\'s own');
    const m = await v7.next(isText(text), WAIT_MS);
    assert.equal(m.from, `${v6.phone}${S}`);
    assert.equal(m.fromMe, false);
    const own = await v6.next(isText(text), WAIT_MS);
    assert.equal(own.fromMe, true);
    assert.equal(own.from, `${v7.phone}${S}`, 'the chat is the destination');
    assert.equal(own.id, r.id);
});

test('phone -> group (6.17 creator, 7, phone): sender keys, then again without SKDM', async () => {
    const { v6, v7 } = peers;
    const g = await v6.ok({ cmd: 'group_create', subject: 'phone test', participants: [v7.phone, P] });
    await v7.next({ ev: 'group', action: 'upsert', id: g.id }, WAIT_MS);
    for (const n of [1, 2]) {
        const text = `phone in group #${n}`;
        const r = await phoneSend(P, g.id, text);
        assert.equal(r.devices, 2);
        for (const p of [v6, v7]) {
            const m = await p.next(isText(text), WAIT_MS);
            assert.equal(m.from, g.id);
            assert.ok(m.participant && m.participant.startsWith(P), m.participant);
            assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
            await poll(P, 'receipts', b => b.receipts.find(x => x.id === r.id &&
                x.from === `${p.phone}:1${S}`));
        }
    }
    // a member's group message reaches the phone too (pairwise SKDM + skmsg)
    const r = await v7.ok({ cmd: 'send', to: g.id, text: 'v7 in group' });
    const m = await poll(P, 'messages', b => b.messages.find(x => x.id === r.id));
    assert.equal(m.text, 'v7 in group', JSON.stringify(m));
    assert.equal(m.chat, g.id);
});

test('bad requests: 4xx JSON errors', async () => {
    const bad = async (body, status) => {
        const r = await httpJson('POST', `${ctl}/phones/${P}/send`, body);
        assert.equal(r.status, status, `${JSON.stringify(body)} -> ${r.status} ${JSON.stringify(r.body)}`);
        assert.ok(r.body && r.body.error, JSON.stringify(r.body));
    };
    await bad({ text: 'x' }, 400);
    await bad({ to: peers.v6.phone }, 400);
    await bad({ to: 'not a jid@', text: 'x' }, 400);
    await bad({ to: `${peers.v6.phone}:1${S}`, text: 'x' }, 400);
    await bad({ to: P, text: 'x' }, 400);
    await bad({ to: '19998887777', text: 'x' }, 404);
    await bad({ to: '120363000000000009@g.us', text: 'x' }, 404);
    await bad({ to: peers.v6.phone, text: 'x'.repeat(70000) }, 413);
    const r = await httpJson('POST', `${ctl}/phones/${P}/send`, undefined);
    assert.equal(r.status, 400);
    // a group the phone is not in
    const g = await peers.v6.ok({ cmd: 'group_create', subject: 'no phone', participants: [peers.v7.phone] });
    await bad({ to: g.id, text: 'x' }, 403);
});

test('teardown: peers quit, wasim exits cleanly on SIGTERM', async () => {
    await Promise.all(Object.values(peers).map(p => p.close()));
    const r = await sim.stop(5000);
    assert.equal(r.code, 0, `wasim exit ${JSON.stringify(r)}`);
});

await run();
