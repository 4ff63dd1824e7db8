// pair.test.mjs - acceptance test of wasim's pairing with unmodified Baileys 6.17 and 7:
//   - phone-number code (requestPairingCode): the test types the code the client shows through
//     POST /phones/{phone}/link-code; a wrong code is refused (GET .../link-code answers 422)
//     and does not pair; the right code pairs, the client restarts after 515 and reaches open;
//     three wrong codes end the request (410) and the client stays unpaired;
//   - QR (POST /phones/{phone}/scan), 515, open;
//   - re-login from the saved credentials after the client process is restarted;
//   - malformed link_code_companion_reg iqs from a registering client get iq errors, and wasim
//     stays up.
// The clients are tests/interop/peer/peer.mjs (one Baileys per child process).
//
//   node pair.test.mjs WASIM_BIN
//
// Prints one line per test and "N passed, N failed"; exits 1 when anything failed, and at once
// with a clear message when tests/interop/node_modules is missing (scripts/deps.sh).
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = path.resolve(here, '..', 'node_modules');
for (const p of ['baileys6', 'baileys7', 'pino', 'ws']) {
    if (!fs.existsSync(path.join(NODE_MODULES, p, 'package.json'))) {
        console.error(`pair.test: ${NODE_MODULES} lacks ${p}: run scripts/deps.sh first`);
        console.log('0 passed, 1 failed');
        process.exit(1);
    }
}
const { assert, httpJson, httpOk, sleep, startPeer, startProcess, test, run, tmpDir } =
    await import('../peer/lib.mjs');

const wasimBin = process.argv[2];
if (!wasimBin || !fs.existsSync(wasimBin)) {
    console.error('usage: node pair.test.mjs WASIM_BIN');
    console.log('0 passed, 1 failed');
    process.exit(1);
}

const PAIR_MS = 20000; // one pairing, 515 and login included
const tmp = tmpDir('wa-pair-');
const sim = await startProcess(wasimBin, ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0',
    '--trace', path.join(tmp, 'trace.txt')], {
    name: 'wasim',
    readyRegex: /wasim ready ws=(\S+) control=(\S+)/,
});
const WS = sim.match[1];
const CTL = sim.match[2];

const auth = name => path.join(tmp, name);
const phoneUrl = phone => `${CTL}/phones/${phone}`;

/** A valid code that is not `code` (same alphabet, one character changed). */
function otherCode(code) {
    const c = code[0] === 'A' ? 'B' : 'A';
    return c + code.slice(1);
}

/** Polls GET /phones/{phone}/link-code until the state leaves code_sent. */
async function linkCodeOutcome(phone, ms = 10000) {
    const until = Date.now() + ms;
    for (;;) {
        const r = await httpJson('GET', `${phoneUrl(phone)}/link-code`);
        if (r.status !== 202) return r;
        if (Date.now() > until) throw new Error(`link-code still pending after ${ms} ms`);
        await sleep(50);
    }
}

async function devices(phone) {
    return (await httpOk('GET', phoneUrl(phone))).devices;
}

async function stats() {
    return httpOk('GET', `${CTL}/stats`);
}

/** After pair-success: the 515 close, the reconnect and "open" as the device wasim made. */
async function expectRestartAndOpen(peer, deviceJid) {
    const paired = await peer.next('paired', PAIR_MS);
    assert.equal(paired.me.id, deviceJid);
    const close = await peer.next({ ev: 'connection', connection: 'close' }, PAIR_MS);
    assert.equal(close.statusCode, 515, `closed with ${close.statusCode}, want 515`);
    assert.equal(close.willReconnect, true);
    const open = await peer.next({ ev: 'connection', connection: 'open' }, PAIR_MS);
    assert.equal(open.me.id, deviceJid);
    const st = await peer.ok({ cmd: 'state' });
    assert.equal(st.paired, true);
}

async function expectOnline(phone, deviceJid) {
    const devs = await devices(phone);
    const d = devs.find(x => x.jid === deviceJid);
    assert.ok(d, `${deviceJid} not in ${JSON.stringify(devs)}`);
    assert.equal(d.online, true);
}

const saved = {}; // name -> { version, auth, phone, jid } of a paired client, for the re-login test

/**
 * Ends the peer's socket, waits until its credentials hold the device, and returns a copy of
 * its auth folder taken then: peer.mjs's quit does not wait for a creds.update write in flight,
 * so the folder itself can be left with an empty creds.json.
 */
async function endAndSave(peer, dir, jid) {
    await peer.ok({ cmd: 'end' });
    const until = Date.now() + 5000;
    for (;;) {
        try {
            const files = {};
            for (const f of fs.readdirSync(dir)) {
                const text = fs.readFileSync(path.join(dir, f), 'utf8');
                JSON.parse(text); // a file being written does not parse
                files[f] = text;
            }
            const c = JSON.parse(files['creds.json']);
            if (c.me && c.me.id === jid && c.account) {
                const copy = `${dir}-saved`;
                fs.mkdirSync(copy);
                for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(copy, f), text);
                return copy;
            }
        } catch {
            // not written yet, or being written
        }
        if (Date.now() > until) throw new Error(`${dir}/creds.json does not hold ${jid}`);
        await sleep(50);
    }
}

async function codePairing(version, phone, typeForm) {
    const dir = auth(`code${version}`);
    const peer = await startPeer({ version, url: WS, auth: dir, name: `code${version}`, pairPhone: phone });
    try {
        const { code } = await peer.next('pairing_code', PAIR_MS);
        assert.match(code, /^[1-9A-HJ-NP-TV-Z]{8}$/);
        const pairingsBefore = (await stats()).pairings;

        // a wrong code: wasim can only tell once the client's key bundle does not decrypt
        let r = await httpJson('POST', `${phoneUrl(phone)}/link-code`, { code: otherCode(code) });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        r = await linkCodeOutcome(phone);
        assert.equal(r.status, 422, JSON.stringify(r.body));
        assert.equal(r.body.state, 'wrong_code');
        assert.match(r.body.error.message, /code/);
        assert.equal(r.body.attempts_left, 2);
        assert.deepEqual((await devices(phone)).map(d => d.id), [0]);
        assert.equal((await stats()).pairings, pairingsBefore);
        assert.equal((await peer.ok({ cmd: 'state' })).paired, false);
        assert.ok(!peer.events.some(e => e.ev === 'paired'), 'paired after a wrong code');

        // the right code, typed the way a person might
        r = await httpJson('POST', `${phoneUrl(phone)}/link-code`, { code: typeForm(code) });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        r = await linkCodeOutcome(phone);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.state, 'paired');
        assert.match(r.body.device, new RegExp(`^${phone}:[1-9][0-9]*@s\\.whatsapp\\.net$`));
        await expectRestartAndOpen(peer, r.body.device);
        await expectOnline(phone, r.body.device);
        assert.equal((await stats()).pairings, pairingsBefore + 1);
        const copy = await endAndSave(peer, dir, r.body.device);
        saved[`code${version}`] = { version, auth: copy, phone, jid: r.body.device };
    } finally {
        await peer.close();
    }
}

async function qrPairing(version, phone) {
    const dir = auth(`qr${version}`);
    const peer = await startPeer({ version, url: WS, auth: dir, name: `qr${version}` });
    try {
        const qr = await peer.next('qr', PAIR_MS);
        const r = await httpJson('POST', `${phoneUrl(phone)}/scan`, { qr: qr.qr });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        await expectRestartAndOpen(peer, r.body.device);
        await expectOnline(phone, r.body.device);
        const copy = await endAndSave(peer, dir, r.body.device);
        saved[`qr${version}`] = { version, auth: copy, phone, jid: r.body.device };
    } finally {
        await peer.close();
    }
}

test('baileys 6.17: phone code: wrong code refused, right code pairs, 515, open', () =>
    codePairing(6, '15550006001', c => c));

test('baileys 7: phone code: wrong code refused, right code (abcd-efgh) pairs, 515, open', () =>
    codePairing(7, '15550007001', c => `${c.slice(0, 4)}-${c.slice(4)}`.toLowerCase()));

test('baileys 7: three wrong codes end the request; the client stays unpaired', async () => {
    const phone = '15550007002';
    const peer = await startPeer({ version: 7, url: WS, auth: auth('wrong7'), name: 'wrong7', pairPhone: phone });
    try {
        const { code } = await peer.next('pairing_code', PAIR_MS);
        const bad = otherCode(code);
        for (let i = 1; i <= 3; i++) {
            const r = await httpJson('POST', `${phoneUrl(phone)}/link-code`, { code: bad });
            assert.equal(r.status, 202, JSON.stringify(r.body));
            const o = await linkCodeOutcome(phone);
            if (i < 3) {
                assert.equal(o.status, 422, JSON.stringify(o.body));
                assert.equal(o.body.attempts_left, 3 - i);
            } else {
                assert.equal(o.status, 410, JSON.stringify(o.body));
                assert.equal(o.body.state, 'expired');
                assert.match(o.body.error.message, /too many wrong codes/);
            }
        }
        // even the right code is refused now
        const r = await httpJson('POST', `${phoneUrl(phone)}/link-code`, { code });
        assert.equal(r.status, 410, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'code_expired');
        assert.deepEqual((await devices(phone)).map(d => d.id), [0]);
        assert.equal((await peer.ok({ cmd: 'state' })).paired, false);
        assert.ok(!peer.events.some(e => e.ev === 'paired'), 'paired after wrong codes');
    } finally {
        await peer.close();
    }
});

test('link-code control API: bad codes 400, unknown request 404', async () => {
    let r = await httpJson('POST', `${phoneUrl('15550009001')}/link-code`, { code: 'ABCDEFGH' });
    assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'no_pending_code');
    for (const code of ['ABCDEFG', 'ABCDEFGHJ', 'ABCD_EFG', 'ABC-DEFGH', '']) {
        r = await httpJson('POST', `${phoneUrl('15550009001')}/link-code`, { code });
        assert.equal(r.status, 400, `${code}: ${JSON.stringify(r.body)}`);
    }
    r = await httpJson('POST', `${phoneUrl('15550009001')}/link-code`, { code: 12345678 });
    assert.equal(r.status, 400);
    r = await httpJson('GET', `${phoneUrl('15550009001')}/link-code`);
    assert.equal(r.status, 404);
});

test('baileys 6.17: QR scan, 515, open', () => qrPairing(6, '15550006101'));

test('baileys 7: QR scan, 515, open', () => qrPairing(7, '15550007101'));

test('re-login from saved credentials after the client process restarts (6 and 7, code and QR)',
    async () => {
        const keys = ['code6', 'code7', 'qr6', 'qr7'];
        for (const k of keys) assert.ok(saved[k], `no paired ${k} client (its test failed)`);
        const loginsBefore = (await stats()).logins;
        const peers = [];
        try {
            // one after the other: Baileys 6.17 loses a frame that comes too soon after its
            // handshake (PROTOCOL.md §2), which a loaded machine makes more likely
            for (const k of keys) {
                const p = await startPeer({ version: saved[k].version, url: WS, auth: saved[k].auth,
                    name: `re-${k}` });
                peers.push(p);
                assert.ok(p.events[0].paired, `${k}: the saved credentials are not paired`);
                const open = await p.next({ ev: 'connection', connection: 'open' }, PAIR_MS);
                assert.equal(open.me.id, saved[k].jid);
                assert.ok(!p.events.some(e => e.ev === 'qr'), `${k} showed a QR`);
                await expectOnline(saved[k].phone, saved[k].jid);
            }
            assert.ok((await stats()).logins >= loginsBefore + keys.length);
        } finally {
            await Promise.all(peers.map(p => p.close()));
        }
    });

test('malformed link_code_companion_reg iqs get iq errors; wasim stays up', async () => {
    const require = createRequire(import.meta.url);
    const B = require(path.join(NODE_MODULES, 'baileys6'));
    const pino = require(path.join(NODE_MODULES, 'pino'));
    const { state } = await B.useMultiFileAuthState(auth('raw6'));
    const sock = B.default({ waWebSocketUrl: WS, auth: state, logger: pino({ level: 'silent' }),
        markOnlineOnConnect: false });
    try {
        await new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error('no QR (registering) within 10 s')), 10000);
            sock.ev.on('connection.update', u => {
                if (u.qr) {
                    clearTimeout(t);
                    resolve();
                }
            });
        });
        const noise = Buffer.from(state.creds.noiseKey.public);
        const reg = (attrs, content) => ({
            tag: 'iq',
            attrs: { to: '@s.whatsapp.net', type: 'set', id: sock.generateMessageTag(), xmlns: 'md' },
            content: [{ tag: 'link_code_companion_reg', attrs, content }],
        });
        const hello = (jid, wrappedLen, noiseKey) => reg(
            { jid, stage: 'companion_hello', should_show_push_notification: 'true' },
            [
                { tag: 'link_code_pairing_wrapped_companion_ephemeral_pub', attrs: {},
                    content: Buffer.alloc(wrappedLen, 7) },
                { tag: 'companion_server_auth_key_pub', attrs: {}, content: noiseKey },
                { tag: 'companion_platform_id', attrs: {}, content: '1' },
                { tag: 'companion_platform_display', attrs: {}, content: 'Chrome (Linux)' },
                { tag: 'link_code_pairing_nonce', attrs: {}, content: '0' },
            ]);
        const finish = (bundleLen, ref, jid = '15550009002@s.whatsapp.net') => reg(
            { jid, stage: 'companion_finish' },
            [
                { tag: 'link_code_pairing_wrapped_key_bundle', attrs: {}, content: Buffer.alloc(bundleLen, 1) },
                { tag: 'companion_identity_public', attrs: {},
                    content: Buffer.from(state.creds.signedIdentityKey.public) },
                { tag: 'link_code_pairing_ref', attrs: {}, content: Buffer.from(ref) },
            ]);
        const cases = [
            ['wrapped key 79 bytes', hello('15550009002@s.whatsapp.net', 79, noise), 400],
            ['wrapped key 81 bytes', hello('15550009002@s.whatsapp.net', 81, noise), 400],
            ['not our Noise key', hello('15550009002@s.whatsapp.net', 80, Buffer.alloc(32, 9)), 401],
            ['no jid', hello(undefined, 80, noise), 400],
            ['group jid', hello('1234567890-12345@g.us', 80, noise), 400],
            ['device jid', hello('15550009002:3@s.whatsapp.net', 80, noise), 400],
            ['not a phone number', hello('0123@s.whatsapp.net', 80, noise), 400],
            ['no children', reg({ jid: '15550009002@s.whatsapp.net', stage: 'companion_hello' }, []), 400],
            ['unknown stage', reg({ jid: '15550009002@s.whatsapp.net', stage: 'bogus' }, []), 501],
            ['no stage', reg({ jid: '15550009002@s.whatsapp.net' }, []), 400],
            ['finish before any code was typed', finish(156, '2@nothing'), 404],
        ];
        for (const [name, node, want] of cases) {
            const err = await sock.query(node).then(() => null, e => e);
            assert.ok(err, `${name}: no error`);
            assert.equal(err.data, want, `${name}: ${err.message}`);
        }
        // a well-formed hello, then finish with a garbage bundle before the code was typed
        const res = await sock.query(hello('15550009002@s.whatsapp.net', 80, noise));
        const ref = B.getBinaryNodeChild(B.getBinaryNodeChild(res, 'link_code_companion_reg'),
            'link_code_pairing_ref');
        assert.ok(ref && ref.content && ref.content.length > 2, 'no link_code_pairing_ref');
        let err = await sock.query(finish(156, Buffer.from(ref.content))).then(() => null, e => e);
        assert.equal(err?.data, 404, 'finish while waiting for the code');
        // the user types a code: finish with a garbage bundle (wrong length, then wrong tag)
        let r = await httpJson('POST', `${phoneUrl('15550009002')}/link-code`, { code: 'ABCDEFGH' });
        assert.equal(r.status, 202, JSON.stringify(r.body));
        err = await sock.query(finish(155, Buffer.from(ref.content))).then(() => null, e => e);
        assert.equal(err?.data, 400, 'short bundle');
        err = await sock.query(finish(156, 'wrong-ref')).then(() => null, e => e);
        assert.equal(err?.data, 404, 'wrong ref');
        err = await sock.query(finish(156, Buffer.from(ref.content), '15550009003@s.whatsapp.net'))
            .then(() => null, e => e);
        assert.equal(err?.data, 400, 'another phone');
        err = await sock.query(finish(156, Buffer.from(ref.content))).then(() => null, e => e);
        assert.equal(err?.data, 400, 'garbage bundle');
        r = await linkCodeOutcome('15550009002');
        assert.equal(r.status, 422, JSON.stringify(r.body));
        assert.deepEqual((await devices('15550009002')).map(d => d.id), [0]);
        const st = await stats();
        assert.equal(typeof st.connections, 'number');
    } finally {
        sock.end(undefined);
    }
    assert.equal(sim.proc.exitCode, null, 'wasim exited');
});

// A test that fails because wasim died says so, with wasim's last words.
sim.exited.then(({ code, signal }) => {
    if (stopping) return;
    console.log(`wasim exited (code ${code}, signal ${signal}); its last output:\n  ` +
        sim.lines.slice(-30).join('\n  '));
});
let stopping = false;
process.on('exit', () => {
    stopping = true;
});

await run();
