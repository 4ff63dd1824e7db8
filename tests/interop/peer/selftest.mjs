// selftest.mjs - checks the Baileys peer driver (peer.mjs, shim.mjs, lib.mjs) without wasim.
//
// 1. A throw-away `ws` server on 127.0.0.1:0 stands in for wasim. For Baileys 6.17 and 7:
//    the peer connects to /ws/chat with Origin https://web.whatsapp.com; its first binary message
//    is the intro 57 41 06 02 (v6, dictionary 2) / 57 41 06 03 (v7) followed by one complete
//    3-byte-length frame; a close from the server gives `connection` close 428
//    (connectionClosed) with willReconnect and a new connection; `end` closes without
//    reconnecting, `connect` reconnects; commands that cannot work answer ok:false; `quit`
//    exits 0; so does closing stdin; --reconnect none stays closed.
// 2. Offline, both versions: messages built by Baileys from the peer's `send` options (text,
//    reply, mentions, reaction, edit, delete, location, contact), encoded and decoded as on the
//    wire, come out of the peer's formatter with the fields tests will match on.
// Fails (exit 1) with a clear message when tests/interop/node_modules is missing.
// SPDX-License-Identifier: GPL-3.0-or-later
import { requireNodeModules } from './shim.mjs';

requireNodeModules('selftest');

const { assert, run, sleep, startPeer, test, tmpDir } = await import('./lib.mjs');
const { buildSend, formatMessage, loadBaileys, statusName, userReceiptType, groupInfo } =
    await import('./shim.mjs');
const { fakeWa } = await import('./fakewa.mjs');
const b6 = (await import('module')).createRequire(import.meta.url)('baileys6');

const INTRO = { 6: [0x57, 0x41, 0x06, 0x02], 7: [0x57, 0x41, 0x06, 0x03] };
const WAIT_MS = 15000;
const QUIET_MS = 1500;
const KEY_SETTLE_MS = 300;

/** The peer reported no `error` event other than the ones the test provoked. */
function noErrors(peer, allowed = /^$/) {
    const errs = peer.events.filter(e => e.ev === 'error' && !allowed.test(e.message));
    assert.deepEqual(errs, [], `peer ${peer.name} reported errors`);
}

async function checkIntro(c, v) {
    assert.equal(c.path, '/ws/chat', 'upgrade path');
    assert.equal(c.origin, 'https://web.whatsapp.com', 'Origin header');
    const { data, isBinary } = await Promise.race([
        c.first,
        new Promise((_, rej) => setTimeout(() => rej(new Error('no first message')), WAIT_MS)),
    ]);
    assert.ok(isBinary, 'first message is binary');
    const b = Buffer.from(data);
    assert.deepEqual([...b.subarray(0, 4)], INTRO[v], `intro of v${v}: ${b.subarray(0, 8).toString('hex')}`);
    // The rest is one WA frame: 3-byte big-endian length, then the clientHello.
    assert.ok(b.length > 7, 'a frame follows the intro');
    assert.equal(b.readUIntBE(4, 3), b.length - 7, 'frame length covers the rest');
}

// ---- against the fake server ----

for (const v of [6, 7]) {
    test(`v${v}: intro, server close -> 428 + reconnect, end/connect, quit exits 0`, async () => {
        const srv = fakeWa();
        await srv.ready;
        const peer = await startPeer({ version: v, url: srv.url(), auth: tmpDir(), name: `self${v}` });
        try {
            const start = peer.events[0];
            assert.equal(start.ev, 'start');
            assert.equal(start.version, v);
            assert.match(start.baileys, v === 6 ? /^6\.17\./ : /^7\.0\.0/);
            assert.equal(start.paired, false);

            await peer.next({ ev: 'connection', connection: 'connecting' }, WAIT_MS);
            const c1 = await srv.next();
            await checkIntro(c1, v);

            const st = await peer.ok({ cmd: 'state' });
            assert.equal(st.connection, 'connecting');
            assert.equal(st.generation, 1);

            // The server hangs up in the middle of the handshake.
            c1.ws.close();
            const closed = await peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
            assert.equal(closed.statusCode, 428, JSON.stringify(closed));
            assert.equal(closed.reason, 'connectionClosed');
            assert.equal(closed.willReconnect, true);

            const c2 = await srv.next();
            await checkIntro(c2, v);
            await peer.next({ ev: 'connection', connection: 'connecting' }, WAIT_MS);

            // Commands that cannot work before login answer ok:false, not silence.
            const bad = await peer.cmd({ cmd: 'nope' });
            assert.equal(bad.ok, false);
            assert.match(bad.error, /unknown command/);
            const noTo = await peer.cmd({ cmd: 'send', text: 'x' });
            assert.equal(noTo.ok, false);
            assert.match(noTo.error, /needs "to"/);
            peer.proc.stdin.write('{not json\n');
            await peer.next({ ev: 'error', message: /bad command line/ }, WAIT_MS);

            // end: closed for good, no new connection.
            await peer.ok({ cmd: 'end' });
            const ended = await peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
            assert.equal(ended.willReconnect, false);
            assert.equal(ended.statusCode, null);
            await c2.gone;
            const n = srv.count();
            await peer.none({ ev: 'connection', connection: 'connecting' }, QUIET_MS);
            assert.equal(srv.count(), n, 'no reconnect after end');
            assert.equal((await peer.ok({ cmd: 'state' })).connection, 'close');

            // connect: a new socket with the same credentials.
            await peer.ok({ cmd: 'connect' });
            const c3 = await srv.next();
            await checkIntro(c3, v);
            const again = await peer.cmd({ cmd: 'connect' });
            assert.equal(again.ok, false, 'connect while connecting refused');

            noErrors(peer, /bad command line/);
            const code = await peer.close();
            assert.equal(code, 0, 'quit exits 0');
            await c3.gone;
        } finally {
            peer.kill('SIGKILL');
            await srv.close();
        }
    }, { timeoutMs: 60000 });

    test(`v${v}: --reconnect none stays closed; stdin EOF exits 0`, async () => {
        const srv = fakeWa();
        await srv.ready;
        const peer = await startPeer({ version: v, url: srv.url(), auth: tmpDir(), reconnect: 'none' });
        try {
            await peer.next({ ev: 'connection', connection: 'connecting' }, WAIT_MS);
            const c1 = await srv.next();
            await checkIntro(c1, v);
            c1.ws.terminate();
            const closed = await peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
            assert.equal(closed.willReconnect, false);
            await peer.none({ ev: 'connection', connection: 'connecting' }, QUIET_MS);
            assert.equal(srv.count(), 1);
            noErrors(peer);
            peer.proc.stdin.end();
            const { code } = await peer.exited;
            assert.equal(code, 0);
        } finally {
            peer.kill('SIGKILL');
            await srv.close();
        }
    }, { timeoutMs: 60000 });
}

// ---- through a Noise handshake: pairing code, 515, login, commands, 401 / 440 ----

const PHONE = '491110000001';
const OTHER = '491110000002';

const isIq = (type, xmlns) => n => n.tag === 'iq' && n.attrs.type === type && (!xmlns || n.attrs.xmlns === xmlns);
const child = (n, tag) => (Array.isArray(n.content) ? n.content.find(c => c.tag === tag) : undefined);

/** Logs c in: answers the prekey count and usync, sends <success>, waits for `open`. */
async function login(peer, c) {
    await c.ready;
    assert.equal(String(c.payload.username), PHONE, 'login payload carries the phone number');
    // Baileys 6.17 logs in with passive=false, Baileys 7 with passive=true.
    assert.equal(c.payload.passive, peer.version === 7);
    assert.equal(c.payload.pull, true);
    c.iqContent.encrypt = n => (child(n, 'count') ? [{ tag: 'count', attrs: { value: '200' } }] : undefined);
    // read receipts on: `read` then sends type 'read' (else Baileys sends 'read-self')
    c.iqContent.privacy = () => [{ tag: 'privacy', attrs: {},
        content: [{ tag: 'category', attrs: { name: 'readreceipts', value: 'all' } }] }];
    c.iqContent.usync = () => [{
        tag: 'usync', attrs: {}, content: [{
            tag: 'list', attrs: {}, content: [{
                tag: 'user', attrs: { jid: `${OTHER}@s.whatsapp.net` },
                content: [{ tag: 'contact', attrs: { type: 'in' }, content: `+${OTHER}` }],
            }],
        }],
    }];
    c.send({ tag: 'success', attrs: { t: '1700000000', lid: '99990000001:0@lid', props: '1' } });
    const open = await peer.next({ ev: 'connection', connection: 'open' }, WAIT_MS);
    assert.equal(open.me.id.split(':')[0].split('@')[0], PHONE);
    return open;
}

for (const v of [6, 7]) {
    test(`v${v}: qr + pairing code, 515 restart, login, commands, 401 stays closed`, async () => {
        const srv = fakeWa({ handshake: true });
        await srv.ready;
        const auth = tmpDir();
        const peer = await startPeer({ version: v, url: srv.url(), auth, pairPhone: `+${PHONE}` });
        try {
            const c1 = await srv.next();
            await c1.ready;
            assert.equal(c1.dict, v === 6 ? 2 : 3);
            assert.ok(c1.payload.devicePairingData, 'registration payload');
            assert.equal(c1.payload.devicePairingData.eIdent.length, 32);

            c1.send({ tag: 'iq', attrs: { from: '@s.whatsapp.net', type: 'set', id: 'pd1', xmlns: 'md' },
                content: [{ tag: 'pair-device', attrs: {}, content: [
                    { tag: 'ref', attrs: {}, content: Buffer.from('REF-ONE') },
                    { tag: 'ref', attrs: {}, content: Buffer.from('REF-TWO') },
                ] }] });
            await c1.nextNode(n => n.tag === 'iq' && n.attrs.type === 'result' && n.attrs.id === 'pd1');
            const qr = await peer.next('qr', WAIT_MS);
            if (v === 6) assert.match(qr.qr, /^REF-ONE,[^,]+,[^,]+,[^,]+$/);
            else assert.match(qr.qr, /^https:\/\/wa\.me\/settings\/linked_devices#REF-ONE,[^,]+,[^,]+,[^,]+,7$/);
            assert.equal(qr.ref, 'REF-ONE');
            assert.equal(Buffer.from(qr.noiseKey, 'base64').length, 32, 'noise public key');
            assert.equal(Buffer.from(qr.identityKey, 'base64').length, 32, 'identity public key');
            assert.equal(Buffer.from(qr.advSecret, 'base64').length, 32, 'adv secret');
            assert.deepEqual(Buffer.from(qr.noiseKey, 'base64'), c1.clientStatic, 'qr noise key is the static key');

            // --pair-phone: requestPairingCode after the first qr.
            const reg = await c1.nextNode(isIq('set', 'md'));
            const lc = child(reg, 'link_code_companion_reg');
            assert.ok(lc, 'link_code_companion_reg');
            assert.equal(lc.attrs.jid, `${PHONE}@s.whatsapp.net`);
            assert.equal(lc.attrs.stage, 'companion_hello');
            const pc = await peer.next('pairing_code', WAIT_MS);
            assert.match(pc.code, /^[0-9A-Z]{8}$/);
            const creds = await peer.next('creds', WAIT_MS);
            assert.equal(creds.me.id, `${PHONE}@s.whatsapp.net`);
            assert.equal(creds.paired, false);

            // 515: reconnect at once with the saved credentials (same noise key).
            c1.send({ tag: 'stream:error', attrs: { code: '515' } });
            const r = await peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
            assert.equal(r.statusCode, 515);
            assert.equal(r.reason, 'restartRequired');
            assert.equal(r.willReconnect, true);
            const c2 = await srv.next();
            await c2.ready;
            assert.deepEqual(c2.clientStatic, c1.clientStatic, 'same noise static key');
            await login(peer, c2);
            const st = await peer.ok({ cmd: 'state' });
            assert.equal(st.connection, 'open');

            const pr = await peer.ok({ cmd: 'presence', type: 'available' });
            assert.equal(pr.ok, true);
            const pn = await c2.nextNode(n => n.tag === 'presence' && n.attrs.type === 'available');
            assert.ok(pn);
            const ow = await peer.ok({ cmd: 'on_whatsapp', phones: [OTHER] });
            assert.deepEqual(ow.results, [{ jid: `${OTHER}@s.whatsapp.net`, exists: true }]);
            const uq = await c2.nextNode(isIq('get', 'usync'));
            assert.ok(uq);

            // ping / iq / blocklist: one iq each through Baileys' query()
            const pg = await peer.ok({ cmd: 'ping' });
            assert.ok(Number.isInteger(pg.ms) && pg.ms >= 0, JSON.stringify(pg));
            const pq = await c2.nextNode(n => isIq('get', 'w:p')(n) && child(n, 'ping'));
            assert.ok(pq);
            c2.iqContent.blocklist = () => [{ tag: 'list', attrs: {}, content: [
                { tag: 'item', attrs: { jid: `${OTHER}@s.whatsapp.net` } }] }];
            const bl = await peer.ok({ cmd: 'blocklist' });
            assert.deepEqual(bl.jids, [`${OTHER}@s.whatsapp.net`]);
            c2.autoIq = false;
            const iqP = peer.cmd({ cmd: 'iq', xmlns: 'test:x', type: 'set', children: [{ tag: 'thing', attrs: { a: '1' } }] });
            const xq = await c2.nextNode(isIq('set', 'test:x'));
            assert.equal(child(xq, 'thing').attrs.a, '1');
            c2.send({ tag: 'iq', attrs: { id: xq.attrs.id, type: 'error', from: '@s.whatsapp.net' },
                content: [{ tag: 'error', attrs: { code: '429', text: 'rate-overlimit' } }] });
            const xr = await iqP;
            assert.equal(xr.ok, false);
            assert.equal(xr.data, 429, JSON.stringify(xr));
            assert.match(xr.error, /rate-overlimit/);
            const okP = peer.cmd({ cmd: 'iq', xmlns: 'test:y' });
            const yq = await c2.nextNode(isIq('get', 'test:y'));
            c2.send({ tag: 'iq', attrs: { id: yq.attrs.id, type: 'result', from: '@s.whatsapp.net' },
                content: [{ tag: 'one', attrs: {} }, { tag: 'two', attrs: {} }] });
            const yr = await okP;
            assert.equal(yr.ok, true, JSON.stringify(yr));
            assert.deepEqual(yr.reply.children, ['one', 'two']);
            assert.equal(yr.reply.attrs.type, 'result');
            c2.autoIq = true;

            // The server's 401 is final: no reconnect.
            c2.send({ tag: 'failure', attrs: { reason: '401' } });
            const lo = await peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
            assert.equal(lo.statusCode, 401);
            assert.equal(lo.reason, 'loggedOut');
            assert.equal(lo.willReconnect, false);
            await peer.none({ ev: 'connection', connection: 'connecting' }, QUIET_MS);
            assert.equal(srv.count(), 2);

            // connect logs in again with the credentials saved on disk by the first socket.
            noErrors(peer);
            assert.equal(await peer.close(), 0);
            const peer2 = await startPeer({ version: v, url: srv.url(), auth, name: `again${v}` });
            try {
                assert.equal(peer2.events[0].me.id, `${PHONE}@s.whatsapp.net`, 'creds saved');
                const c3 = await srv.next();
                await c3.ready;
                assert.deepEqual(c3.clientStatic, c1.clientStatic, 'noise key from disk');
                await login(peer2, c3);
                // logout: remove-companion-device, then 401 and no reconnect
                const out = await peer2.cmd({ cmd: 'logout' });
                assert.equal(out.ok, true, JSON.stringify(out));
                const rm = await c3.nextNode(isIq('set', 'md'));
                assert.ok(child(rm, 'remove-companion-device'));
                const lc2 = await peer2.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
                assert.equal(lc2.statusCode, 401);
                assert.equal(lc2.willReconnect, false);
                noErrors(peer2);
                assert.equal(await peer2.close(), 0);
            } finally {
                peer2.kill('SIGKILL');
            }
        } finally {
            peer.kill('SIGKILL');
            await srv.close();
        }
    }, { timeoutMs: 90000 });

    test(`v${v}: --keepalive pings; stream:error conflict replaced -> 440, no reconnect`, async () => {
        const srv = fakeWa({ handshake: true });
        await srv.ready;
        const peer = await startPeer({ version: v, url: srv.url(), auth: tmpDir(), keepalive: 300 });
        try {
            const c1 = await srv.next();
            await c1.ready;
            // keepAliveIntervalMs 300 (Baileys' default is 30 s): w:p pings come at once
            const isPing = n => isIq('get', 'w:p')(n) && child(n, 'ping');
            const t0 = Date.now();
            await c1.nextNode(isPing, 3000);
            await c1.nextNode(isPing, 3000);
            assert.ok(Date.now() - t0 < 3000, 'two keep-alive pings within 3 s');
            c1.send({ tag: 'stream:error', attrs: {},
                content: [{ tag: 'conflict', attrs: { type: 'replaced' } }] });
            const r = await peer.next({ ev: 'connection', connection: 'close' }, WAIT_MS);
            assert.equal(r.statusCode, 440);
            assert.equal(r.reason, 'connectionReplaced');
            assert.equal(r.willReconnect, false);
            await peer.none({ ev: 'connection', connection: 'connecting' }, QUIET_MS);
            assert.equal(srv.count(), 1);
            noErrors(peer);
            assert.equal(await peer.close(), 0);
        } finally {
            peer.kill('SIGKILL');
            await srv.close();
        }
    }, { timeoutMs: 60000 });
}

// ---- receive path with plaintext stanzas: message, receipts, read, group events ----

const GROUP = '120363000000000001@g.us';

function plaintext(from, id, message, extra = {}) {
    const { proto } = b6;
    return {
        tag: 'message',
        attrs: { from, id, t: '1700000100', type: 'text', ...extra },
        content: [{ tag: 'plaintext', attrs: {}, content: proto.Message.encode(message).finish() }],
    };
}

for (const v of [6, 7]) {
    test(`v${v}: receive message, receipts, read, group events, group_metadata`, async () => {
        const srv = fakeWa({ handshake: true });
        await srv.ready;
        const auth = tmpDir();
        // credentials as after a pairing: log in straight away
        const p0 = await startPeer({ version: v, url: srv.url(), auth, pairPhone: PHONE, reconnect: 'none' });
        const c0 = await srv.next();
        await c0.ready;
        c0.send({ tag: 'iq', attrs: { from: '@s.whatsapp.net', type: 'set', id: 'pd1', xmlns: 'md' },
            content: [{ tag: 'pair-device', attrs: {}, content: [{ tag: 'ref', attrs: {}, content: 'R' }] }] });
        await p0.next('creds', WAIT_MS);
        assert.equal(await p0.close(), 0);

        const peer = await startPeer({ version: v, url: srv.url(), auth, logLevel: process.env.WA_SELFTEST_LOG });
        try {
            const c = await srv.next();
            await login(peer, c);
            c.iqContent['w:g2'] = () => [{
                tag: 'group',
                attrs: { id: GROUP.split('@')[0], subject: 'Team', creation: '1700000000',
                    creator: `${OTHER}@s.whatsapp.net`, s_t: '1700000000', s_o: `${OTHER}@s.whatsapp.net` },
                content: [
                    { tag: 'participant', attrs: { jid: `${OTHER}@s.whatsapp.net`, type: 'superadmin' } },
                    { tag: 'participant', attrs: { jid: `${PHONE}@s.whatsapp.net` } },
                ],
            }];
            // What Baileys waits for before it emits messages: an app-state key from our own
            // phone, then the end of the offline queue.
            c.send(plaintext(`${PHONE}@s.whatsapp.net`, 'K1', {
                protocolMessage: {
                    type: 6, // APP_STATE_SYNC_KEY_SHARE
                    appStateSyncKeyShare: { keys: [{
                        keyId: { keyId: Buffer.from('0001', 'hex') },
                        keyData: { keyData: Buffer.alloc(32, 7), fingerprint: { rawId: 1, currentIndex: 0,
                            deviceIndexes: [0] }, timestamp: 1700000000 },
                    }] },
                },
            }));
            // Baileys 6.17 starts buffering for good when `ib offline` finds no app-state key
            // (only a history sync would flush it): the key must be processed first. Baileys
            // processes a message just after its receipt (7 sends no separate ack).
            await c.nextNode(n => n.tag === 'receipt' && n.attrs.id === 'K1');
            await sleep(KEY_SETTLE_MS);
            c.send(plaintext(`${OTHER}@s.whatsapp.net`, 'M1', { conversation: 'hi there' }, { notify: 'Bob' }));
            c.send({ tag: 'ib', attrs: {}, content: [{ tag: 'offline', attrs: { count: '2' } }] });

            const m = await peer.next({ ev: 'message', id: 'M1' }, WAIT_MS);
            assert.equal(m.from, `${OTHER}@s.whatsapp.net`);
            assert.equal(m.fromMe, false);
            assert.equal(m.text, 'hi there');
            assert.equal(m.type, 'conversation');
            assert.equal(m.pushName, 'Bob');
            assert.equal(m.upsert, 'notify');
            const dr = await c.nextNode(n => n.tag === 'receipt' && n.attrs.id === 'M1');
            // a delivery receipt: 'inactive' while the peer has not sent presence available
            assert.ok(dr.attrs.type === undefined || dr.attrs.type === 'inactive', dr.attrs.type);

            await peer.ok({ cmd: 'read', keys: ['M1'] });
            const rr = await c.nextNode(n => n.tag === 'receipt' && n.attrs.type === 'read');
            assert.equal(rr.attrs.id, 'M1');
            assert.equal(rr.attrs.to, `${OTHER}@s.whatsapp.net`);

            // A read receipt from the other side for one of "our" messages.
            c.send({ tag: 'receipt', attrs: { from: `${OTHER}@s.whatsapp.net`, id: '3EB0AA', type: 'read',
                t: '1700000200' } });
            const rc = await peer.next({ ev: 'receipt', id: '3EB0AA' }, WAIT_MS);
            assert.equal(rc.type, 'read');
            assert.equal(rc.from, `${OTHER}@s.whatsapp.net`);

            // A group created by OTHER with us in it, then OTHER adds a third member.
            c.send({ tag: 'notification', attrs: { from: GROUP, type: 'w:gp2', id: 'N1', t: '1700000300',
                participant: `${OTHER}@s.whatsapp.net` }, content: [{ tag: 'create', attrs: {},
                content: c.iqContent['w:g2']() }] });
            const gc = await peer.next({ ev: 'group', action: 'upsert' }, WAIT_MS);
            assert.equal(gc.id, GROUP);
            assert.equal(gc.subject, 'Team');
            assert.deepEqual(gc.participants, [`${OTHER}@s.whatsapp.net`, `${PHONE}@s.whatsapp.net`]);
            c.send({ tag: 'notification', attrs: { from: GROUP, type: 'w:gp2', id: 'N2', t: '1700000400',
                participant: `${OTHER}@s.whatsapp.net` }, content: [{ tag: 'add', attrs: {},
                content: [{ tag: 'participant', attrs: { jid: '491110000003@s.whatsapp.net' } }] }] });
            const ga = await peer.next({ ev: 'group', action: 'add' }, WAIT_MS);
            assert.equal(ga.id, GROUP);
            assert.deepEqual(ga.participants, ['491110000003@s.whatsapp.net']);
            assert.equal(ga.author, `${OTHER}@s.whatsapp.net`);

            const md = await peer.ok({ cmd: 'group_metadata', jid: GROUP });
            assert.equal(md.id, GROUP);
            assert.equal(md.subject, 'Team');
            assert.equal(md.owner, `${OTHER}@s.whatsapp.net`);
            assert.deepEqual(md.participants, [`${OTHER}@s.whatsapp.net`, `${PHONE}@s.whatsapp.net`]);
            assert.deepEqual(md.admins, [`${OTHER}@s.whatsapp.net`]);
            noErrors(peer);
            assert.equal(await peer.close(), 0);
        } finally {
            peer.kill('SIGKILL');
            await srv.close();
        }
    }, { timeoutMs: 90000 });
}

// ---- offline: send options -> Baileys message -> wire -> formatter ----

const ME = '491110000001@s.whatsapp.net';
const PEER = '491110000002@s.whatsapp.net';

async function wireRoundTrip(B, m, fromMe) {
    const obj = B.proto.WebMessageInfo.toObject(m);
    obj.key.fromMe = fromMe;
    const bytes = B.proto.WebMessageInfo.encode(B.proto.WebMessageInfo.fromObject(obj)).finish();
    return B.proto.WebMessageInfo.decode(bytes);
}

async function sent(B, store, cmd, fromMe = true) {
    const { jid, content, options } = buildSend(cmd, store);
    const m = await B.generateWAMessage(jid, content, { userJid: ME, ...options });
    const w = await wireRoundTrip(B, m, fromMe);
    store.set(w.key.id, w);
    const ev = formatMessage(B, w, 'notify');
    assert.doesNotMatch(JSON.stringify(ev), /"type":"Buffer"/, 'bytes are base64');
    return ev;
}

for (const v of [6, 7]) {
    test(`v${v}: send options and message events (offline)`, async () => {
        const B = await loadBaileys(v);
        const store = new Map();

        const hello = await sent(B, store, { to: '+49 111 0000002', text: 'hello', id: 'AAA1' }, false);
        assert.equal(hello.id, 'AAA1');
        assert.equal(hello.from, PEER);
        assert.equal(hello.fromMe, false);
        assert.equal(hello.type, 'extendedTextMessage'); // Baileys sends text this way
        assert.equal(hello.text, 'hello');
        assert.equal(hello.raw.extendedTextMessage.text, 'hello');
        assert.equal(typeof hello.ts, 'number');
        assert.ok(hello.ts > 1.6e9);

        // what phones send: a bare conversation, from a group member, with a push name
        const plain = B.proto.WebMessageInfo.decode(B.proto.WebMessageInfo.encode({
            key: { remoteJid: '120363000000000001@g.us', id: 'AAA0', fromMe: false, participant: PEER },
            message: { conversation: 'plain' },
            messageTimestamp: 1700000000,
            pushName: 'Bob',
        }).finish());
        const pe = formatMessage(B, plain, 'notify');
        assert.equal(pe.type, 'conversation');
        assert.equal(pe.text, 'plain');
        assert.equal(pe.participant, PEER);
        assert.equal(pe.pushName, 'Bob');
        assert.equal(pe.ts, 1700000000);
        assert.deepEqual(pe.raw, { conversation: 'plain' });

        // a message Baileys could not decrypt: a stub without content
        const stub = formatMessage(B, { key: { remoteJid: PEER, id: 'S1' }, messageStubType: 2,
            messageStubParameters: ['No session'] }, 'notify');
        assert.equal(stub.stub, 'CIPHERTEXT');
        assert.deepEqual(stub.stubParams, ['No session']);
        assert.equal(stub.raw, null);
        assert.equal(stub.text, null);

        const reply = await sent(B, store, {
            to: PEER, text: 'reply', quoted: { id: 'AAA1' }, mentions: ['491110000002'],
        });
        assert.equal(reply.type, 'extendedTextMessage');
        assert.equal(reply.text, 'reply');
        assert.equal(reply.fromMe, true);
        assert.deepEqual(reply.quoted, { id: 'AAA1', participant: PEER, text: 'hello' });
        assert.deepEqual(reply.mentions, [PEER]);
        assert.equal(reply.raw.extendedTextMessage.contextInfo.stanzaId, 'AAA1');

        // quoting a message the peer never saw
        const r2 = await sent(B, store, { to: PEER, text: 'r2', quoted: { id: 'ZZZ9', text: 'old' } });
        assert.equal(r2.quoted.id, 'ZZZ9');
        assert.equal(r2.quoted.text, 'old');

        const react = await sent(B, store, { to: PEER, reaction: { key: 'AAA1', text: '👍' } });
        assert.equal(react.type, 'reactionMessage');
        assert.equal(react.reaction.text, '👍');
        assert.deepEqual(react.reaction.key, { remoteJid: PEER, id: 'AAA1', fromMe: false });

        const edit = await sent(B, store, { to: PEER, edit: { key: reply.id, text: 'edited' } });
        assert.equal(edit.type, 'protocolMessage');
        assert.equal(edit.protocol, 'MESSAGE_EDIT');
        assert.equal(edit.edit.key.id, reply.id);
        assert.equal(edit.edit.key.fromMe, true);
        assert.equal(edit.edit.text, 'edited');
        assert.equal(edit.raw.protocolMessage.type, 'MESSAGE_EDIT');

        const del = await sent(B, store, { to: PEER, delete: { key: { id: reply.id } } });
        assert.equal(del.protocol, 'REVOKE');
        assert.equal(del.revoke.key.id, reply.id);
        assert.equal(del.raw.protocolMessage.key.id, reply.id);

        const loc = await sent(B, store, { to: PEER, location: { lat: 52.5, lng: 13.4, name: 'B' } });
        assert.equal(loc.type, 'locationMessage');
        assert.deepEqual(loc.location, { lat: 52.5, lng: 13.4, name: 'B' });

        const card = await sent(B, store, { to: PEER, contact: { name: 'Ann', phone: '+49 222' } });
        assert.equal(card.type, 'contactMessage');
        assert.match(card.raw.contactMessage.vcard, /waid=49222:\+49222/);
        assert.equal(card.raw.contactMessage.displayName, 'Ann');

        const grp = await sent(B, store, { to: '120363000000000001@g.us', text: 'to group' });
        assert.equal(grp.from, '120363000000000001@g.us');
        assert.equal(grp.participant, ME);

        assert.throws(() => buildSend({ to: PEER }, store), /needs text/);
        // a key the peer never saw belongs to the chat of `to`
        const rk = buildSend({ to: PEER, reaction: { key: 'NOPE', text: 'x' } }, new Map()).content.react.key;
        assert.deepEqual(rk, { remoteJid: PEER, id: 'NOPE', fromMe: false });
    });
}

test('receipt and group helpers', async () => {
    assert.equal(statusName(2), 'server_ack');
    assert.equal(statusName(3), 'delivery');
    assert.equal(statusName(4), 'read');
    assert.equal(userReceiptType({ receiptTimestamp: 1 }), 'delivery');
    assert.equal(userReceiptType({ receiptTimestamp: 1, readTimestamp: 2 }), 'read');
    assert.deepEqual(groupInfo({ id: 'g@g.us', subject: 's', participants: ['a@s.whatsapp.net'] }),
        { id: 'g@g.us', subject: 's', participants: ['a@s.whatsapp.net'] });
    assert.deepEqual(groupInfo({
        id: 'g@g.us', subject: 's', owner: 'a@s.whatsapp.net',
        participants: [{ id: 'a@s.whatsapp.net', admin: 'superadmin' }, { id: 'b@s.whatsapp.net' }],
    }), {
        id: 'g@g.us', subject: 's', owner: 'a@s.whatsapp.net',
        participants: ['a@s.whatsapp.net', 'b@s.whatsapp.net'], admins: ['a@s.whatsapp.net'],
    });
});

await run();
