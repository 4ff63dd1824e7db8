// content.test.mjs - libwa's content kinds and presence (issue 5, client part 2) through wasim,
// with wa-cli (libwa) and unmodified Baileys 6.17 and 7 peers (tests/interop/peer), both ways:
//   - location (degreesLatitude/Longitude, name, address) and contact (displayName, vCard);
//   - a burst of 24 texts to a contact libwa has no session with (Baileys 7): all arrive, and
//     each stored session record (libsignal RecordStructure) holds no previous session states;
//   - chat states: composing / paused (and recording, Baileys -> libwa), 1:1 and in a group
//     (Baileys sees presence.update for the group with libwa as participant; libwa gets
//     chat_state with the group and the participant);
//   - presence: available / unavailable seen by a subscribed peer (with last seen);
//   - identity changes of a contact's phone (wasim POST /phones/{p}/reinstall): announced by
//     <notification type='encrypt'><identity/></notification>, and unannounced (only the next
//     pkmsg carries the new key, or libwa sends first and the retry receipt brings the new keys):
//     identity_changed exactly once, and messaging both ways (with the phone and with its
//     Baileys companion) still works after.
//
// Usage: node content.test.mjs WASIM_BIN WA_CLI_BIN    (ctest: interop_content, label interop)
// WA_PEER_VERBOSE=1 echoes every event and stderr line; WA_TEST_FILTER=regex runs some tests;
// WA_KEEP_TMP=1 keeps the temporary directory (stores, trace).
// SPDX-License-Identifier: GPL-3.0-or-later
import { execFileSync } from 'child_process';
import fs from 'fs';
import path from 'path';

import { requireNodeModules } from '../peer/shim.mjs';

requireNodeModules('content.test');

const { assert, startPeer, startProcess, httpOk, test, run, tmpDir } = await import('../peer/lib.mjs');
const { WaCli } = await import('../peer/wacli.mjs');

const [WASIM, WA_CLI] = process.argv.slice(2);
if (!WASIM || !WA_CLI) {
    console.error('usage: node content.test.mjs WASIM_BIN WA_CLI_BIN');
    process.exit(2);
}

const WAIT_MS = 30000;
const PHONES = { b6: '15550003601', b7: '15550003702', l1: '15550003801', p3: '15550003903' };
const verbose = process.env.WA_PEER_VERBOSE === '1';
const VERSIONS = { b6: '6.17', b7: '7' };

let sim, url, ctl, root, dir, cli;
const peers = {};
process.on('exit', () => {
    if (cli && cli.proc && !cli.ended) cli.proc.kill('SIGKILL');
});

// ---- wa-cli listen: JSON events on stdout, commands on stdin ----


async function pairLibwa(key) {
    const store = path.join(dir, `${key}.db`);
    const p = await startProcess(WA_CLI, ['--store', store, '--url', url, '--root-key', root,
        'pair'], { readyRegex: /^QR (\S+)/, name: `${key}-pair` });
    await httpOk('POST', `${ctl}/phones/${PHONES[key]}/scan`, { qr: p.match[1] });
    await p.waitLine(/^PAIRED /, WAIT_MS);
    const r = await p.exited;
    assert.equal(r.code, 0, `${key}: pair exits 0`);
    const c = new WaCli(key, store, { bin: WA_CLI, connect: () => ({ url, root }), dir,
        args: ['--push-name', 'Libwa One'], waitMs: WAIT_MS, verbose }).start();
    await c.next({ event: 'connected' });
    c.phone = PHONES[key];
    c.jid = `${c.phone}@s.whatsapp.net`;
    c.lid = (await httpOk('GET', `${ctl}/phones/${c.phone}`)).lid;
    return c;
}

async function pairBaileys(key, version) {
    const p = await startPeer({ version, url, auth: tmpDir(), name: key,
        logLevel: process.env.WA_PEER_LOG_LEVEL || undefined });
    const qr = await p.next('qr', WAIT_MS);
    await httpOk('POST', `${ctl}/phones/${PHONES[key]}/scan`, { qr: qr.qr });
    await p.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
    p.phone = PHONES[key];
    p.jid = `${p.phone}@s.whatsapp.net`;
    peers[key] = p;
    return p;
}

const near = (a, b) => Math.abs(Number(a) - b) < 1e-9;
/** A Baileys presence.update about jid whose state is `state`. */
const presenceOf = (jid, state) => e => e.ev === 'presence' && e.id === jid &&
    Object.values(e.presences || {}).some(x => x.lastKnownPresence === state);
const libwaText = text => e => e.event === 'message' && e.text === text;
const isText = text => e => e.ev === 'message' && e.text === text;

/** The virtual phone got a message with this text (GET /phones/{p}/messages). */
async function phoneGot(phone, text) {
    for (let i = 0; i < 600; i++) {
        const r = await httpOk('GET', `${ctl}/phones/${phone}/messages`);
        const m = (r.messages || []).find(x => x.text === text);
        if (m) return m;
        await new Promise(res => setTimeout(res, 50));
    }
    throw new Error(`phone ${phone} never got ${JSON.stringify(text)}`);
}

test('setup: wasim, Baileys 6.17 and 7 peers, a libwa client, all paired and online', async () => {
    dir = tmpDir('wa-content-');
    sim = await startProcess(WASIM, ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0',
        '--trace', path.join(dir, 'trace.txt')],
    { readyRegex: /wasim ready ws=(\S+) control=(\S+)/, name: 'wasim' });
    [, url, ctl] = sim.match;
    root = (await (await fetch(`${ctl}/root-key`)).text()).trim();
    assert.match(root, /^[0-9a-f]{64}$/);
    await Promise.all([pairBaileys('b6', 6), pairBaileys('b7', 7)]);
    cli = await pairLibwa('l1');
}, { timeoutMs: 180000 });

/**
 * The top-level fields of a protobuf message, counted by field number (varint, 64-bit,
 * length-delimited and 32-bit wire types; anything else throws).
 */
function protoFieldCounts(buf) {
    const counts = {};
    let i = 0;
    const varint = () => {
        let v = 0, shift = 0;
        for (;;) {
            if (i >= buf.length || shift > 63) throw new Error(`bad varint at ${i}`);
            const b = buf[i++];
            v += (b & 0x7f) * 2 ** shift;
            shift += 7;
            if (!(b & 0x80)) return v;
        }
    };
    while (i < buf.length) {
        const key = varint(), field = Math.floor(key / 8), wire = key % 8;
        if (wire === 0) varint();
        else if (wire === 1) i += 8;
        else if (wire === 2) {
            const n = varint(); // (not `i += varint()`: that reads i before the call moves it)
            i += n;
        }
        else if (wire === 5) i += 4;
        else throw new Error(`wire type ${wire} at ${i}`);
        if (i > buf.length) throw new Error('truncated field');
        counts[field] = (counts[field] || 0) + 1;
    }
    return counts;
}

/** libwa's stored Signal session records with a user's devices (both name forms). */
function sessionRecords(store, phone, lid) {
    const out = execFileSync('sqlite3', ['-separator', ' ', store,
        `SELECT name, device, hex(record) FROM session WHERE name IN ('${phone}', '${lid}_1') ORDER BY device;`])
        .toString().trim();
    return out ? out.split('\n').map(l => {
        const [name, device, hex] = l.split(' ');
        return { name, device: Number(device), record: Buffer.from(hex, 'hex') };
    }) : [];
}

test('a burst of sends to a contact never messaged before leaves one session state per device (Baileys 7)', async () => {
    const p = peers.b7, N = 24;
    const lid = (await httpOk('GET', `${ctl}/phones/${p.phone}`)).lid;
    assert.ok(lid, 'wasim names the LID of b7');
    assert.deepEqual(sessionRecords(cli.store, p.phone, lid), [], 'no session with b7 yet');
    // every send starts before the first one has its session: N jobs for the same new devices
    const texts = Array.from({ length: N }, (_, i) => `burst to b7 #${i}`);
    for (const t of texts) cli.cmd(`send ${p.phone} ${t}`);
    const ids = [];
    for (let i = 0; i < N; i++) {
        const q = await cli.next(e => e.event === 'queued' || e.event === 'error');
        assert.equal(q.event, 'queued', JSON.stringify(q));
        ids.push(q.id);
    }
    for (const id of ids) {
        const s = await cli.next(e => (e.event === 'sent' || e.event === 'send_failed') && e.id === id,
            60000);
        assert.equal(s.event, 'sent', JSON.stringify(s));
    }
    const got = [];
    for (let i = 0; i < N; i++) {
        const m = await p.next(e => e.ev === 'message' && texts.includes(e.text), 60000);
        assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
        assert.equal(m.id, ids[texts.indexOf(m.text)], `the id of ${m.text}`);
        got.push(m.text);
    }
    assert.deepEqual([...got].sort(), [...texts].sort(), 'every text once');
    await p.none(e => e.ev === 'message' && texts.includes(e.text), 500); // and no duplicate
    // on the wire (wasim's trace) each id went once (no re-send: no retry receipt), in the order
    // of the commands (Baileys hands them over in its own order, which is not checked)
    const wire = fs.readFileSync(path.join(dir, 'trace.txt'), 'utf8').split('\n')
        .map(l => (l.match(/^\d+ in <message\b[^>]* id="([^"]+)"/) || [])[1]).filter(id => ids.includes(id));
    assert.deepEqual(wire, ids, 'sent once each, in order');
    // the records: RecordStructure { 1: currentSession, 2: repeated previousSessions }
    const recs = sessionRecords(cli.store, p.phone, lid);
    assert.deepEqual(recs.map(r => r.device), [0, 1],
        `sessions with the phone and the companion: ${recs.map(r => `${r.name}.${r.device}`)}`);
    for (const r of recs) {
        const f = protoFieldCounts(r.record);
        assert.equal(f[1], 1, `${r.name}.${r.device}: one current session`);
        assert.equal(f[2] || 0, 0,
            `${r.name}.${r.device}: ${f[2]} previous session states (${r.record.length} bytes)`);
    }
}, { timeoutMs: 240000 });

for (const key of ['b6', 'b7']) {
    const V = VERSIONS[key];

    test(`libwa -> Baileys ${V}: location and contact`, async () => {
        const p = peers[key];
        const id = await cli.send(`send-location ${p.phone} 52.516275 13.377704 Brandenburger Tor ${key}|Pariser Platz, 10117 Berlin`);
        const m = await p.next(e => e.ev === 'message' && e.id === id, WAIT_MS);
        assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
        assert.equal(m.type, 'locationMessage');
        const l = m.raw.locationMessage;
        assert.ok(near(l.degreesLatitude, 52.516275), `latitude ${l.degreesLatitude}`);
        assert.ok(near(l.degreesLongitude, 13.377704), `longitude ${l.degreesLongitude}`);
        assert.equal(l.name, `Brandenburger Tor ${key}`);
        assert.equal(l.address, 'Pariser Platz, 10117 Berlin');
        // negative coordinates, no name
        const id2 = await cli.send(`send-location ${p.phone} -33.856784 -151.215297`);
        const m2 = await p.next(e => e.ev === 'message' && e.id === id2, WAIT_MS);
        assert.ok(near(m2.raw.locationMessage.degreesLatitude, -33.856784));
        assert.ok(near(m2.raw.locationMessage.degreesLongitude, -151.215297));
        assert.equal(m2.raw.locationMessage.name, undefined);

        const vcard = `BEGIN:VCARD\nVERSION:3.0\nFN:Ada ${key}\nTEL;type=CELL;waid=15550009999:+1 555 000 9999\nEND:VCARD`;
        const file = path.join(dir, `ada-${key}.vcf`);
        fs.writeFileSync(file, vcard);
        const id3 = await cli.send(`send-contact ${p.phone} Ada_${key} ${file}`);
        const m3 = await p.next(e => e.ev === 'message' && e.id === id3, WAIT_MS);
        assert.ok(!m3.stub, `decrypted, not a ${m3.stub} stub`);
        assert.equal(m3.type, 'contactMessage');
        assert.equal(m3.raw.contactMessage.displayName, `Ada_${key}`);
        assert.equal(m3.raw.contactMessage.vcard, vcard);
    });

    test(`Baileys ${V} -> libwa: location and contact`, async () => {
        const p = peers[key];
        const r = await p.ok({ cmd: 'send', to: cli.phone,
            location: { lat: 48.858370, lng: 2.294481, name: `Tour Eiffel ${key}`, address: 'Champ de Mars, Paris' } });
        const m = await cli.next(e => e.event === 'message' && e.id === r.id);
        assert.equal(m.kind, 'location');
        assert.equal(m.chat, p.jid);
        assert.ok(near(m.latitude, 48.858370), `latitude ${m.latitude}`);
        assert.ok(near(m.longitude, 2.294481), `longitude ${m.longitude}`);
        assert.equal(m.location_name, `Tour Eiffel ${key}`);
        assert.equal(m.location_address, 'Champ de Mars, Paris');

        const vcard = `BEGIN:VCARD\nVERSION:3.0\nFN:Grace ${key}\nTEL;type=CELL;waid=15550008888:+1 555 000 8888\nEND:VCARD`;
        const r2 = await p.ok({ cmd: 'send', to: cli.phone, contact: { name: `Grace ${key}`, vcard } });
        const m2 = await cli.next(e => e.event === 'message' && e.id === r2.id);
        assert.equal(m2.kind, 'contact');
        assert.equal(m2.contact_name, `Grace ${key}`);
        assert.equal(m2.vcard, vcard);
    });

    test(`chat states: libwa -> Baileys ${V} (composing, paused) and back (composing, recording, paused)`, async () => {
        const p = peers[key];
        await cli.ok(`chatstate ${p.phone} composing`, 'chatstate_sent');
        await p.next(presenceOf(cli.jid, 'composing'), WAIT_MS);
        await cli.ok(`chatstate ${p.phone} paused`, 'chatstate_sent');
        await p.next(presenceOf(cli.jid, 'available'), WAIT_MS); // Baileys reads paused as available

        for (const [type, state] of [['composing', 'composing'], ['recording', 'recording'], ['paused', 'paused']]) {
            await p.ok({ cmd: 'presence', type, to: cli.jid });
            const s = await cli.next(e => e.event === 'chat_state' && e.chat === p.jid);
            assert.equal(s.state, state, JSON.stringify(s));
            assert.equal(s.sender, p.jid);
        }
    });

    test(`presence: libwa -> subscribed Baileys ${V}, and Baileys ${V} -> subscribed libwa`, async () => {
        const p = peers[key];
        // libwa's availability, seen by Baileys
        await cli.ok('presence unavailable', 'presence_sent');
        await p.ok({ cmd: 'presence_subscribe', jid: cli.jid });
        await p.next(presenceOf(cli.jid, 'unavailable'), WAIT_MS); // the answer to the subscription
        await cli.ok('presence available', 'presence_sent');
        await p.next(presenceOf(cli.jid, 'available'), WAIT_MS);

        // Baileys sends presence only once it knows its own push name: a message from its phone
        // (deviceSentMessage with notify) teaches it
        const text = `phone of ${key} names itself`;
        await httpOk('POST', `${ctl}/phones/${p.phone}/send`, { to: cli.phone, text });
        await cli.next(libwaText(text));
        await p.next(e => e.ev === 'message' && e.fromMe === true && e.text === text, WAIT_MS);
        await p.ok({ cmd: 'presence', type: 'unavailable' });
        await cli.ok(`subscribe ${p.jid}`, 'subscribe_sent');
        const first = await cli.next(e => e.event === 'presence' && e.from === p.jid);
        assert.equal(first.available, false, JSON.stringify(first));
        await p.ok({ cmd: 'presence', type: 'available' });
        const on = await cli.next(e => e.event === 'presence' && e.from === p.jid);
        assert.equal(on.available, true, JSON.stringify(on));
        await p.ok({ cmd: 'presence', type: 'unavailable' });
        const off = await cli.next(e => e.event === 'presence' && e.from === p.jid);
        assert.equal(off.available, false, JSON.stringify(off));
        assert.ok(Math.abs(off.last_seen - Date.now() / 1000) < 120, `last seen ${off.last_seen}`);
    });
}

test('group chat states: libwa -> Baileys 6.17 and 7 and back (composing, paused, recording)', async () => {
    cli.cmd(`group-create ${PHONES.b6},${PHONES.b7} typing group`);
    const g = await cli.next(e => (e.event === 'group' && e.op === 'create') || e.event === 'error');
    assert.equal(g.event, 'group', JSON.stringify(g));
    for (const key of ['b6', 'b7']) await peers[key].next({ ev: 'group', action: 'upsert', id: g.jid }, WAIT_MS);
    // Baileys: presence.update { id: group, presences: { participant: { lastKnownPresence } } }
    const me = [cli.jid, `${cli.lid}@lid`];
    const inGroup = state => e => e.ev === 'presence' && e.id === g.jid &&
        Object.entries(e.presences || {}).some(([who, x]) => me.includes(who) && x.lastKnownPresence === state);
    for (const [cmd, state] of [['composing', 'composing'], ['paused', 'available'], ['recording', 'recording']]) {
        await cli.ok(`chatstate ${g.jid} ${cmd}`, 'chatstate_sent');
        await Promise.all(['b6', 'b7'].map(key => peers[key].next(inGroup(state), WAIT_MS)));
    }
    for (const key of ['b6', 'b7']) {
        const p = peers[key];
        for (const state of ['composing', 'recording', 'paused']) {
            await p.ok({ cmd: 'presence', type: state, to: g.jid });
            const s = await cli.next(e => e.event === 'chat_state' && e.chat === g.jid);
            assert.equal(s.sender, p.jid, JSON.stringify(s));
            assert.equal(s.state, state, JSON.stringify(s));
        }
    }
    await cli.none(e => e.event === 'chat_state' && e.chat === g.jid, 500); // nothing else
});

/** libwa <-> the reinstalled phone and its Baileys companion, both ways. */
async function stillWorks(key, tag) {
    const p = peers[key];
    const t1 = `${tag}: phone ${key} to libwa`;
    await httpOk('POST', `${ctl}/phones/${p.phone}/send`, { to: cli.phone, text: t1 });
    await cli.next(libwaText(t1));
    const t2 = `${tag}: libwa to ${key}`;
    await cli.send(`send ${p.phone} ${t2}`);
    await phoneGot(p.phone, t2); // the phone (new identity) decrypted it
    const m = await p.next(isText(t2), WAIT_MS); // and its companion
    assert.ok(!m.stub, `decrypted, not a ${m.stub} stub`);
    const t3 = `${tag}: ${key} to libwa`;
    await p.ok({ cmd: 'send', to: cli.phone, text: t3 });
    await cli.next(libwaText(t3));
}

test('identity change announced by the server (<notification type=encrypt><identity/>): one event, messaging works after', async () => {
    const p = peers.b7;
    // libwa knows the phone (session with its device 0, device list fetched)
    await stillWorks('b7', 'before');
    const r = await httpOk('POST', `${ctl}/phones/${p.phone}/reinstall`, { notify: true });
    assert.ok(r.told >= 1, `devices told: ${r.told}`);
    const ev = await cli.next({ event: 'identity_changed' });
    assert.equal(ev.jid, p.jid);
    await stillWorks('b7', 'after notification');
    await cli.none({ event: 'identity_changed' }, 1500); // the new key's pkmsg is no second change
    await cli.none({ event: 'decrypt_failed', sender: new RegExp(`^${p.phone}@`) }, 100);
}, { timeoutMs: 180000 });

test('identity change seen only in a pkmsg (no notification): one event, messaging works after', async () => {
    const p = peers.b6;
    await stillWorks('b6', 'before');
    const r = await httpOk('POST', `${ctl}/phones/${p.phone}/reinstall`, { notify: false });
    assert.equal(r.told, 0);
    await cli.none({ event: 'identity_changed' }, 1000);
    const text = 'first words of the reinstalled phone';
    await httpOk('POST', `${ctl}/phones/${p.phone}/send`, { to: cli.phone, text });
    const ev = await cli.next({ event: 'identity_changed' });
    assert.equal(ev.jid, p.jid);
    await cli.next(libwaText(text));
    await stillWorks('b6', 'after pkmsg');
    await cli.none({ event: 'identity_changed' }, 1500);
}, { timeoutMs: 180000 });

test('identity change found when libwa sends first (retry receipt with the new keys): one event, delivered', async () => {
    const phone = PHONES.p3;
    // wasim lists a phone's device 0 once it has a companion: a second libwa, stopped at once
    const l2 = await pairLibwa('p3');
    await l2.stop();
    const t1 = 'libwa to p3 before';
    await cli.send(`send ${phone} ${t1}`);
    await phoneGot(phone, t1);
    const r = await httpOk('POST', `${ctl}/phones/${phone}/reinstall`, { notify: false });
    assert.equal(r.told, 0);
    // libwa's session is with the old key: the phone cannot decrypt, asks for a re-send with its
    // new keys (retry receipt), and libwa's new session from them names the new identity
    const t2 = 'libwa to the reinstalled p3';
    await cli.send(`send ${phone} ${t2}`);
    const ev = await cli.next({ event: 'identity_changed' });
    assert.equal(ev.jid, `${phone}@s.whatsapp.net`);
    const m = await phoneGot(phone, t2);
    assert.ok(!m.error, `decrypted after the re-send: ${JSON.stringify(m)}`);
    const t3 = 'p3 answers';
    await httpOk('POST', `${ctl}/phones/${phone}/send`, { to: cli.phone, text: t3 });
    await cli.next(libwaText(t3));
    await cli.none({ event: 'identity_changed' }, 1500);
}, { timeoutMs: 180000 });

test('wa-cli refuses bad content commands', async () => {
    cli.cmd(`send-location ${PHONES.b7} 91 0`);
    let e = await cli.next({ event: 'error', cmd: 'send-location' });
    assert.equal(e.error, 'WA_EINVAL');
    cli.cmd(`send-location ${PHONES.b7} 1.5x 2`);
    e = await cli.next({ event: 'error', cmd: 'send-location' });
    assert.equal(e.error, 'WA_EINVAL');
    cli.cmd(`chatstate ${PHONES.b7} dancing`);
    e = await cli.next({ event: 'error', cmd: 'chatstate' });
    assert.equal(e.error, 'WA_EINVAL');
    cli.cmd('presence away');
    e = await cli.next({ event: 'error', cmd: 'presence' });
    assert.equal(e.error, 'WA_EINVAL');
    cli.cmd(`send-contact ${PHONES.b7} NoCard`);
    e = await cli.next({ event: 'error', cmd: 'send-contact' });
    assert.equal(e.error, 'WA_EINVAL');
});

test('teardown', async () => {
    await cli.stop();
    await Promise.all(Object.values(peers).map(p => p.close()));
    await sim.stop();
    if (process.env.WA_KEEP_TMP !== '1') fs.rmSync(dir, { recursive: true, force: true });
});

await run();
