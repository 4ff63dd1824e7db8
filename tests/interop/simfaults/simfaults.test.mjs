// simfaults.test.mjs - acceptance test of wasim's session control, fault injection and bad-input
// handling with unmodified Baileys 6.17 and 7 (issue 3: items 7 and 8, "Bad input", stats):
//   - faults: delay (an iq round trip grows by N ms), iq-error (Baileys' query fails with the
//     code, clearing restores it), stream-error 515 (restart at once), drop (reconnect with the
//     saved credentials), stall (Baileys' keep-alive gives up, it reconnects: 6.17 at once, 7
//     after the ws library's 30 s close timeout, so this one runs in the background on clients
//     of its own), refuse (new connections refused for N s, then accepted); every one counted
//     in GET /stats;
//   - bad input while the two clients keep working (iq round trips and messages during each
//     case): bytes that are not HTTP (a TLS ClientHello refused at its first bytes), oversized
//     headers and messages, WebSockets of non-WA
//     frames, junk Noise handshakes, a completed handshake followed by garbage or a junk
//     ClientPayload; each closes only its own connection, with a logged reason, and
//     bad_input_closes grows; silent or stuck handshakes are dropped at the handshake deadline;
//   - control API bad input: 4xx JSON errors, wasim unaffected;
//   - replace: a second login of the same device (a copy of the auth dir) closes the first with
//     connectionReplaced (440), no reconnect, the second stays open;
//   - logout: POST /devices/{jid}/logout closes with loggedOut (401), no reconnect, the device is
//     gone and a later login with the same credentials gets <failure reason='401'>; a client's
//     own logout (remove-companion-device) unlinks it the same way.
// The clients are tests/interop/peer/peer.mjs (one Baileys per child process); both versions
// run side by side in each test.
//
//   node simfaults.test.mjs WASIM_BIN
//
// Prints one line per test and "N passed, N failed"; exits 1 when anything failed.
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = path.resolve(here, '..', 'node_modules');
for (const p of ['baileys6', 'baileys7', 'pino', 'ws']) {
    if (!fs.existsSync(path.join(NODE_MODULES, p, 'package.json'))) {
        console.error(`simfaults.test: ${NODE_MODULES} lacks ${p}: run scripts/deps.sh first`);
        console.log('0 passed, 1 failed');
        process.exit(1);
    }
}
const { assert, httpJson, httpOk, sleep, startPeer, startProcess, test, run, tmpDir } =
    await import('../peer/lib.mjs');
const J = await import('./junk.mjs');

const wasimBin = process.argv[2];
if (!wasimBin || !fs.existsSync(wasimBin)) {
    console.error('usage: node simfaults.test.mjs WASIM_BIN');
    console.log('0 passed, 1 failed');
    process.exit(1);
}

const PAIR_MS = 20000;   // pairing, 515 and login
const OPEN_MS = 15000;   // a reconnect until "open"
const KEEPALIVE_MS = 1000; // Baileys gives up after KEEPALIVE_MS + 5 s without a frame
const STALL_MS = KEEPALIVE_MS + 5000 + 6000;
const HANDSHAKE_DEADLINE_MS = 20000; // wasim's limit for a connection to finish its handshake
const PEER_LOG = process.env.WA_PEER_LOG || undefined; // Baileys' log level (stderr), e.g. debug

const tmp = tmpDir('wa-simfaults-');
const sim = await startProcess(wasimBin, ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0',
    '--trace', path.join(tmp, 'trace.txt')], {
    name: 'wasim',
    readyRegex: /wasim ready ws=(\S+) control=(\S+)/,
});
const WS = sim.match[1];
const CTL = sim.match[2];
const { host: WS_HOST, port: WS_PORT } = J.hostPort(WS);

const stats = () => httpOk('GET', `${CTL}/stats`);
const devices = async phone => (await httpOk('GET', `${CTL}/phones/${phone}`)).devices;
const devUrl = (jid, action) => `${CTL}/devices/${encodeURIComponent(jid)}/${action}`;

/** Runs fn for each client side by side; fails with every client's error. */
async function both(list, fn) {
    const rs = await Promise.allSettled(list.map(x => fn(x)));
    const bad = rs.map((r, i) => [r, list[i]]).filter(([r]) => r.status === 'rejected');
    if (bad.length) {
        throw new Error(bad.map(([r, x]) => `[${x.label}] ${r.reason && r.reason.stack || r.reason}`)
            .join('\n'));
    }
    return rs.map(r => r.value);
}

/** Waits until dir/creds.json holds the device (Baileys writes it asynchronously). */
async function credsSaved(dir, jid) {
    const until = Date.now() + 5000;
    for (;;) {
        try {
            const c = JSON.parse(fs.readFileSync(path.join(dir, 'creds.json'), 'utf8'));
            if (c.me && c.me.id === jid && c.account) return;
        } catch {
            // not written yet, or being written
        }
        if (Date.now() > until) throw new Error(`${dir}/creds.json does not hold ${jid}`);
        await sleep(50);
    }
}

// The client is live: it deletes a one-time prekey file when a pkmsg uses it (its own phone's
// peer messages at login are pkmsgs), so a file can vanish mid-copy: then copy again.
function copyDir(from, to) {
    for (let i = 0; ; i++) {
        try {
            fs.cpSync(from, to, { recursive: true });
            return to;
        } catch (e) {
            if (e.code !== 'ENOENT' || i >= 20) throw e;
            fs.rmSync(to, { recursive: true, force: true });
        }
    }
}

async function nextClose(peer, ms = OPEN_MS) {
    return peer.next({ ev: 'connection', connection: 'close' }, ms);
}

async function nextOpen(peer, ms = OPEN_MS) {
    return peer.next({ ev: 'connection', connection: 'open' }, ms);
}

/** Drops every unconsumed connection event (so later waits see only new ones). */
function consumeConnectionEvents(peer) {
    for (const e of peer.events) if (e.ev === 'connection') e.__used = true;
}

/** A client paired by QR through /scan, open, its credentials saved. */
async function pairClient(version, phone, label, extra = {}) {
    const dir = path.join(tmp, label);
    const peer = await startPeer({ version, url: WS, auth: dir, name: label, keepalive: KEEPALIVE_MS,
        logLevel: PEER_LOG, ...extra });
    const qr = await peer.next('qr', PAIR_MS);
    const r = await httpJson('POST', `${CTL}/phones/${phone}/scan`, { qr: qr.qr });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const jid = r.body.device;
    const close = await nextClose(peer, PAIR_MS);
    assert.equal(close.statusCode, 515);
    const open = await nextOpen(peer, PAIR_MS);
    assert.equal(open.me.id, jid);
    await credsSaved(dir, jid);
    return { version, phone, label, dir, peer, jid };
}

/** One w:p ping through Baileys' query(): the round trip in ms. */
async function ping(c, ms = 10000) {
    const r = await c.peer.cmd({ cmd: 'ping', timeoutMs: ms }, ms + 2000);
    assert.ok(r.ok, `[${c.label}] ping failed: ${r.error}`);
    return r.ms;
}

async function isOnline(c) {
    const d = (await devices(c.phone)).find(x => x.jid === c.jid);
    return !!(d && d.online);
}

async function waitOnline(c, want = true, ms = 5000) {
    const until = Date.now() + ms;
    while ((await isOnline(c)) !== want) {
        if (Date.now() > until) throw new Error(`[${c.label}] ${c.jid} online is not ${want}`);
        await sleep(50);
    }
}

// the two long-lived clients, one per Baileys version (replaced by their copies in 'replace')
const clients = [];
const C = v => clients.find(c => c.version === v);

/**
 * The clients work: pings, a usync contact query, and a text each way with the message
 * arriving at the other side.
 */
async function clientsWork(tag) {
    const [a, b] = [C(6), C(7)];
    await both(clients, async c => {
        await ping(c);
        const r = await c.peer.cmd({ cmd: 'on_whatsapp', phones: [a.phone, b.phone] });
        assert.ok(r.ok, `[${c.label}] on_whatsapp: ${r.error}`);
        assert.deepEqual(r.results.map(x => x.exists), [true, true], JSON.stringify(r.results));
    });
    for (const [from, to] of [[a, b], [b, a]]) {
        const text = `${tag}: ${from.label} -> ${to.label} ${Math.random().toString(36).slice(2)}`;
        await from.peer.ok({ cmd: 'send', to: to.phone, text });
        await to.peer.next({ ev: 'message', text }, 15000);
    }
}

// ---------------------------------------------------------------------------------------------

// two more, on phones of their own, for the stall (Baileys 7 takes ~36 s to get over one)
const stallers = [];

test('pair Baileys 6.17 and 7 clients by QR; they work', async () => {
    const made = await both([
        { label: 'b6', v: 6, phone: '15550016001' }, { label: 'b7', v: 7, phone: '15550017001' },
        { label: 's6', v: 6, phone: '15550016002' }, { label: 's7', v: 7, phone: '15550017002' },
    ], x => pairClient(x.v, x.phone, x.label));
    clients.push(made[0], made[1]);
    stallers.push(made[2], made[3]);
    await clientsWork('paired');
});

// Stall: wasim reads and writes nothing on the connection. Baileys' keep-alive notices after
// keepAliveIntervalMs + 5 s and ends the socket: 6.17 reports the close (408) at once and
// reconnects; 7 awaits the WebSocket closing handshake first, which a stalled server never
// answers, so its close comes when the ws library gives up (30 s later). The check runs in the
// background and is awaited by a later test.
let stallRun = null;
const WS_CLOSE_TIMEOUT_MS = 30000;

async function stallOne(c) {
    consumeConnectionEvents(c.peer);
    const t0 = Date.now();
    const r = await httpJson('POST', devUrl(c.jid, 'stall'), {});
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // a stalled connection answers nothing, pings included
    const p = await c.peer.cmd({ cmd: 'ping', timeoutMs: 1500 }, 5000);
    assert.equal(p.ok, false, `[${c.label}] a stalled connection answered a ping`);
    const limit = STALL_MS + (c.version === 7 ? WS_CLOSE_TIMEOUT_MS : 0);
    const close = await nextClose(c.peer, limit);
    const dt = Date.now() - t0;
    assert.equal(close.statusCode, 408, JSON.stringify(close));
    assert.equal(close.reason, 'timedOut'); // connectionLost, as peer.mjs names 408
    assert.equal(close.willReconnect, true);
    assert.ok(dt >= 4500, `[${c.label}] closed after ${dt} ms, before the keep-alive limit`);
    const open = await nextOpen(c.peer);
    assert.equal(open.me.id, c.jid);
    await waitOnline(c);
    await ping(c);
    return dt;
}

test('stall (started): the stalled connections stop answering, pings included; stats', async () => {
    const before = (await stats()).faults.stalled;
    stallRun = both(stallers, stallOne);
    stallRun.catch(() => {}); // awaited later
    const until = Date.now() + 3000;
    while ((await stats()).faults.stalled !== before + 2) {
        if (Date.now() > until) throw new Error('faults.stalled did not grow by 2');
        await sleep(50);
    }
});

test('delay: frames to the device arrive N ms later (iq round trip), 0 ends it; stats', async () => {
    const before = (await stats()).faults.delayed;
    const N = 1200;
    await both(clients, async c => {
        const base = await ping(c);
        assert.ok(base < N / 2, `[${c.label}] baseline ping ${base} ms`);
        let r = await httpJson('POST', devUrl(c.jid, 'delay'), { ms: N });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const slow = [await ping(c), await ping(c)];
        for (const t of slow) assert.ok(t >= N - 50 && t < N + 1500, `[${c.label}] delayed ping ${t} ms`);
        r = await httpJson('POST', devUrl(c.jid, 'delay'), { ms: 0 });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        await ping(c); // may still be held by the last delay
        const fast = await ping(c);
        assert.ok(fast < N / 2, `[${c.label}] ping after the delay ended: ${fast} ms`);
    });
    assert.equal((await stats()).faults.delayed, before + 2);
});

test('iq-error: iqs of an xmlns get that error (blocklist, usync), clearing restores them; stats', async () => {
    const before = (await stats()).faults.iq_errors;
    let r = await httpJson('POST', `${CTL}/faults/iq-error`, { xmlns: 'blocklist', code: 503 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await httpJson('POST', `${CTL}/faults/iq-error`, { xmlns: 'usync', code: 429 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await both(clients, async c => {
        const bl = await c.peer.cmd({ cmd: 'blocklist' });
        assert.equal(bl.ok, false, `[${c.label}] blocklist answered despite the fault`);
        assert.equal(bl.data, 503, JSON.stringify(bl));
        const raw = await c.peer.cmd({ cmd: 'iq', xmlns: 'usync', type: 'get', children: [{ tag: 'usync' }] });
        assert.equal(raw.ok, false, JSON.stringify(raw));
        assert.equal(raw.data, 429, JSON.stringify(raw));
        await ping(c); // other iqs are not affected
    });
    r = await httpJson('POST', `${CTL}/faults/iq-error`, { xmlns: 'blocklist', code: 0 });
    assert.equal(r.status, 200);
    r = await httpJson('POST', `${CTL}/faults/iq-error`, { xmlns: 'usync', code: 0 });
    assert.equal(r.status, 200);
    await both(clients, async c => {
        const bl = await c.peer.cmd({ cmd: 'blocklist' });
        assert.ok(bl.ok, `[${c.label}] blocklist after clearing: ${bl.error}`);
        assert.deepEqual(bl.jids, []);
    });
    assert.equal((await stats()).faults.iq_errors, before + 4);
    await clientsWork('after iq-error'); // usync again
});

test('stream-error 515: Baileys restarts at once with its saved credentials; stats', async () => {
    const before = (await stats()).faults.stream_errors;
    await both(clients, async c => {
        consumeConnectionEvents(c.peer);
        const t0 = Date.now();
        const r = await httpJson('POST', devUrl(c.jid, 'stream-error'), { code: '515' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const close = await nextClose(c.peer);
        assert.equal(close.statusCode, 515, JSON.stringify(close));
        assert.equal(close.reason, 'restartRequired');
        assert.equal(close.willReconnect, true);
        const open = await nextOpen(c.peer);
        assert.equal(open.me.id, c.jid);
        assert.ok(Date.now() - t0 < 5000, `[${c.label}] reopened after ${Date.now() - t0} ms`);
        await ping(c);
    });
    assert.equal((await stats()).faults.stream_errors, before + 2);
});

test('drop: the client reconnects with its saved credentials and is open again; stats', async () => {
    const before = await stats();
    await both(clients, async c => {
        consumeConnectionEvents(c.peer);
        const r = await httpJson('POST', devUrl(c.jid, 'drop'), {});
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const close = await nextClose(c.peer);
        assert.equal(close.willReconnect, true, JSON.stringify(close));
        assert.equal(close.statusCode, 428, JSON.stringify(close)); // connectionClosed
        const open = await nextOpen(c.peer);
        assert.equal(open.me.id, c.jid);
        await waitOnline(c);
        await ping(c);
    });
    const after = await stats();
    assert.equal(after.faults.dropped, before.faults.dropped + 2);
    assert.ok(after.logins >= before.logins + 2);
    await clientsWork('after drop');
});

test('refuse: new connections are refused for N s, then accepted; the clients get back; stats', async () => {
    const N = 3;
    const before = (await stats()).faults.refused;
    const r = await httpJson('POST', `${CTL}/faults/refuse`, { seconds: N });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const t0 = Date.now();
    // a raw connection is hung up on at once
    const raw = await J.rawTcp(WS_HOST, WS_PORT, [], 2000);
    assert.ok(raw.closed && raw.data.length === 0);
    await both(clients, async c => {
        consumeConnectionEvents(c.peer);
        const d = await httpJson('POST', devUrl(c.jid, 'drop'), {});
        assert.equal(d.status, 200, JSON.stringify(d.body));
        const first = await nextClose(c.peer);
        assert.equal(first.willReconnect, true, JSON.stringify(first));
        // every attempt inside the window fails
        const refused = await nextClose(c.peer, OPEN_MS);
        assert.equal(refused.willReconnect, true, `[${c.label}] a refusal must be retried: ${JSON.stringify(refused)}`);
        const open = await nextOpen(c.peer, N * 1000 + OPEN_MS);
        const dt = Date.now() - t0;
        assert.ok(dt >= N * 1000 - 100, `[${c.label}] open after ${dt} ms, inside the refusal window`);
        assert.equal(open.me.id, c.jid);
        await ping(c);
    });
    const after = (await stats()).faults.refused;
    assert.ok(after >= before + 3, `refused ${before} -> ${after}`);
    await clientsWork('after refuse');
});

// --- bad input -------------------------------------------------------------------------------

const idle = []; // silent connections opened in the bad-input test, checked at the end

function badCloseLogged(linesBefore) {
    return sim.lines.slice(linesBefore).filter(l => /closing on bad input|bad ClientPayload/.test(l));
}

/** Runs one bad client; checks that it was closed, the counter grew and the log says why. */
async function expectBadClose(label, fn) {
    const s0 = (await stats()).bad_input_closes;
    const l0 = sim.lines.length;
    const res = await fn();
    assert.ok(res.closed, `${label}: not closed`);
    const until = Date.now() + 2000;
    let s1;
    while ((s1 = (await stats()).bad_input_closes) === s0 && Date.now() < until) await sleep(20);
    assert.equal(s1, s0 + 1, `${label}: bad_input_closes ${s0} -> ${s1}`);
    const logged = badCloseLogged(l0);
    assert.ok(logged.length >= 1 && /: \S/.test(logged[0]), `${label}: no logged reason`);
    return { ...res, reason: logged[0] };
}

test('bad input: each bad connection is closed with a logged reason while the clients keep working', async () => {
    const reasons = [];
    const cases = [
        ['binary garbage', () => J.rawTcp(WS_HOST, WS_PORT, [J.randomBytes(64), '\r\n\r\n'])],
        // refused at its first bytes (they cannot start "GET "), not at the handshake deadline
        ['a TLS ClientHello on the ws port', async () => {
            const r = await J.rawTcp(WS_HOST, WS_PORT,
                [Buffer.from('16030100c4010000c00303', 'hex'), J.randomBytes(200)]);
            assert.match(r.data.toString('latin1'), /^HTTP\/1\.1 400 /);
            // the 400 at once; the close after wasim's linger (1 s), long before the deadline
            assert.ok(r.ms < 3000, `closed after ${r.ms} ms`);
            return r;
        }],
        ['a header line of 100 KiB', () => J.rawTcp(WS_HOST, WS_PORT,
            [`GET /ws/chat HTTP/1.1\r\nX-Junk: ${'a'.repeat(100 * 1024)}\r\n\r\n`])],
        ['HTTP without an upgrade', () => J.rawTcp(WS_HOST, WS_PORT,
            ['GET /ws/chat HTTP/1.1\r\nHost: x\r\n\r\n'])],
        ['an unmasked frame after the upgrade', async () => {
            const r = await J.rawTcp(WS_HOST, WS_PORT, [J.UPGRADE, Buffer.from([0x82, 0x05, 1, 2, 3, 4, 5])]);
            assert.match(r.data.toString('latin1'), /^HTTP\/1\.1 101 /);
            return r;
        }],
        ['a WebSocket message over the size limit', () => J.wsJunk(WS, [Buffer.alloc(18 << 20)])],
        ['WebSocket of text frames', () => J.wsJunk(WS, ['hello, this is not WhatsApp'])],
        ['WebSocket of binary frames without the WA intro', () => J.wsJunk(WS,
            [Buffer.from('GET / HTTP/1.1\r\n\r\n'), J.randomBytes(100)])],
        ['intro, then a junk Noise hello', () => J.wsJunk(WS,
            [Buffer.concat([J.intro(3), J.waFrame(J.randomBytes(40))])])],
        ['intro, then a client hello with a 5-byte ephemeral', () => J.wsJunk(WS,
            [Buffer.concat([J.intro(2), J.waFrame(J.clientHello(J.randomBytes(5)))])])],
        ['intro with dictionary version 9', () => J.wsJunk(WS,
            [Buffer.concat([J.intro(9), J.waFrame(J.clientHello(J.randomBytes(32)))])])],
        ['handshake done, then a frame that does not decrypt', async () => {
            const h = await J.handshaken(WS);
            assert.equal(h.first.tag, 'iq'); // pair-device
            const t0 = Date.now();
            h.sendRaw(J.waFrame(J.randomBytes(48)));
            return { closed: true, ms: (await h.closed).at - t0 };
        }],
        ['handshake done, then an encrypted frame that is no node', async () => {
            const h = await J.handshaken(WS);
            const t0 = Date.now();
            h.sendEncrypted(Buffer.from([0x00, 0xf8, 0xff, 0xff, 0xff, 0x01, 0x02]));
            return { closed: true, ms: (await h.closed).at - t0 };
        }],
        ['handshake done, then a node with a truncated list', async () => {
            const h = await J.handshaken(WS);
            const node = h.encodeNode({ tag: 'iq', attrs: { id: '1', type: 'get', xmlns: 'w:p' },
                content: [{ tag: 'ping', attrs: {} }] });
            const t0 = Date.now();
            h.sendEncrypted(node.subarray(0, node.length - 2));
            return { closed: true, ms: (await h.closed).at - t0 };
        }],
        ['handshake with a ClientPayload that is not a protobuf', async () => {
            const h = await J.handshaken(WS, { payload: Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]) });
            const t0 = Date.now();
            return { closed: true, ms: (await h.closed).at - t0 };
        }],
    ];
    for (const [label, fn] of cases) {
        // the two clients talk while the bad connection does its thing
        const [res] = await Promise.all([expectBadClose(label, fn), clientsWork(`during: ${label}`)]);
        assert.ok(res.ms < J.CLOSE_MS, `${label}: closed after ${res.ms} ms`);
        reasons.push(`${label} -> ${res.reason.replace(/^.*closing on bad input: /, '')}`);
        // the long-lived clients are untouched
        for (const c of clients) assert.ok(await isOnline(c), `${c.label} went offline after: ${label}`);
    }
    // connections that never finish their handshake: the deadline ends them (checked at the end)
    const hold = (what, chunks, early = false) =>
        idle.push({ what, early, t0: Date.now(), ...J.idleTcp(WS_HOST, WS_PORT, chunks) });
    hold('silent TCP', []);
    hold('half an HTTP request', ['GET /ws/chat HTTP/1.1\r\nHost: x\r\n']);
    // a legal 16 MiB frame length in the handshake: the frame never comes
    hold('intro, then a frame of 16 MiB that never comes',
        [J.UPGRADE, J.maskedFrame(Buffer.concat([J.intro(3), Buffer.from([0xff, 0xff, 0xff])]))], true);
    if (process.env.WA_PEER_VERBOSE === '1') console.error(reasons.join('\n'));
    await clientsWork('after bad input');
});

test('control API bad input: 4xx JSON errors, wasim unaffected', async () => {
    const c = C(6);
    const cases = [
        ['POST', `${CTL}/faults/refuse`, '{"seconds": 1', 400, 'bad_json'],
        ['POST', `${CTL}/faults/refuse`, '[1, 2]', 400, 'bad_json'],
        ['POST', `${CTL}/faults/refuse`, '', 400],
        ['POST', `${CTL}/faults/refuse`, '{"seconds": "3"}', 400, 'bad_field'],
        ['POST', `${CTL}/faults/refuse`, '{"seconds": -1}', 400, 'bad_field'],
        ['POST', `${CTL}/faults/refuse`, '{"seconds": 1e300}', 400, 'bad_field'],
        ['POST', `${CTL}/faults/iq-error`, '{"xmlns": 5}', 400, 'bad_field'],
        ['POST', `${CTL}/faults/iq-error`, `{"xmlns": "${'x'.repeat(100)}"}`, 400, 'bad_field'],
        ['POST', `${CTL}/faults/iq-error`, '{"xmlns": "usync", "code": "500"}', 400, 'bad_field'],
        ['POST', `${CTL}/faults/nonsense`, '{}', 404, 'not_found'],
        ['POST', `${CTL}/faults/nonsense`, '', 404, 'not_found'],
        ['POST', devUrl(c.jid, 'delay'), '{"ms": "100"}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'delay'), '{"ms": 1.5}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'delay'), '{"ms": 99999999999}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'delay'), 'ms=100', 400, 'bad_json'],
        ['POST', devUrl(c.jid, 'stream-error'), '{"code": true}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'stream-error'), '{"code": "515", "conflict": 5}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'stream-error'), '{"conflict": ""}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'stream-error'), '{"code": -1}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'stream-error'), '{}', 400, 'bad_field'],
        ['POST', devUrl(c.jid, 'explode'), '{}', 404, 'not_found'],
        ['POST', devUrl('not a jid', 'drop'), '{}', 400, 'bad_jid'],
        ['POST', devUrl('19999999999:1@s.whatsapp.net', 'drop'), '{}', 404, 'no_such_device'],
        ['POST', devUrl('19999999999:99@s.whatsapp.net', 'logout'), '{}', 404],
        ['POST', devUrl(`${c.phone}:0@s.whatsapp.net`, 'logout'), '{}', 400, 'bad_device'],
        ['POST', `${CTL}/phones/0123/scan`, '{"qr": "x"}', 400, 'bad_phone'],
        ['POST', `${CTL}/phones/abc/scan`, '{"qr": "x"}', 400, 'bad_phone'],
        ['POST', `${CTL}/phones/15550019999/scan`, '{"qr": 7}', 400, 'bad_field'],
        ['POST', `${CTL}/phones/15550019999/scan`, '{"qr": "1@abc,def,ghi"}', 400],
        ['POST', `${CTL}/phones/15550019999/scan`, '{"qr": "\\u0000\\u0001"}', 400],
        ['POST', `${CTL}/phones/15550019999/frobnicate`, '{}', 404, 'not_found'],
        ['GET', `${CTL}/nothing/here`, undefined, 404, 'not_found'],
        ['DELETE', `${CTL}/stats`, undefined, 404],
        ['PUT', `${CTL}/faults/refuse`, '{"seconds": 1}', 404],
        ['GET', `${CTL}/${'a/'.repeat(100)}`, undefined, 404, 'not_found'],
        ['GET', `${CTL}/${'a/'.repeat(400)}`, undefined, 414],
        ['POST', `${CTL}/faults/iq-error`, '{"xmlns": "usync", "code": 70000}', 400, 'bad_field'],
        ['POST', `${CTL}/faults/iq-error`, '{"xmlns": ""}', 400, 'bad_field'],
        ['GET', `${CTL}/${'a'.repeat(2000)}`, undefined, 414],
        ['POST', `${CTL}/faults/refuse`, `{"seconds": 1, "pad": "${'x'.repeat(200 * 1024)}"}`, 413],
        ['POST', `${CTL}/faults/refuse`, '{"a":'.repeat(5000) + '1' + '}'.repeat(5000), 400, 'bad_json'],
    ];
    const fails = [];
    for (const [method, url, body, status, code] of cases) {
        const init = { method, headers: {} };
        if (body !== undefined) {
            init.headers['content-type'] = 'application/json';
            init.body = body;
        }
        const res = await fetch(url, init);
        const text = await res.text();
        let j = null;
        try {
            j = JSON.parse(text);
        } catch {
            // not JSON: reported below
        }
        const what = `${method} ${url.slice(CTL.length, CTL.length + 60)} ${String(body).slice(0, 40)}`;
        if (res.status !== status) fails.push(`${what}: status ${res.status}, want ${status}: ${text.slice(0, 200)}`);
        else if (!j || !j.error || typeof j.error.code !== 'string') fails.push(`${what}: not a JSON error: ${text.slice(0, 200)}`);
        else if (code && j.error.code !== code) fails.push(`${what}: code ${j.error.code}, want ${code}`);
    }
    assert.deepEqual(fails, []);
    // nothing above changed a thing
    await clientsWork('after control API bad input');
    const s = await stats();
    assert.equal(s.devices_online >= 2, true);
    const raw = await J.wsJunk(WS, ['probe']).catch(e => e); // new connections are accepted
    assert.ok(raw.closed, `a new connection was not accepted: ${raw.message}`);
});

// --- session control -------------------------------------------------------------------------

test('replace: a second login of the same device closes the first with 440 (no reconnect); the second stays open', async () => {
    await both(clients, async c => {
        consumeConnectionEvents(c.peer);
        const dir2 = copyDir(c.dir, path.join(tmp, `${c.label}-copy`));
        const second = await startPeer({ version: c.version, url: WS, auth: dir2, name: `${c.label}-copy`,
            keepalive: KEEPALIVE_MS, logLevel: PEER_LOG });
        const open2 = await nextOpen(second);
        assert.equal(open2.me.id, c.jid);
        const close = await nextClose(c.peer);
        assert.equal(close.statusCode, 440, JSON.stringify(close));
        assert.equal(close.reason, 'connectionReplaced');
        assert.equal(close.willReconnect, false);
        await c.peer.none({ ev: 'connection', connection: 'connecting' }, 2000);
        assert.equal((await c.peer.ok({ cmd: 'state' })).connection, 'close');
        await c.peer.close();
        // the second is the device now
        const old = { ...c };
        c.peer = second;
        c.dir = dir2;
        c.oldDir = old.dir;
        await second.none({ ev: 'connection', connection: 'close' }, 1000);
        await ping(c);
        await waitOnline(c);
    });
    await clientsWork('after replace');
});

test('logout (POST /devices/{jid}/logout): 401 loggedOut, no reconnect, device gone, later login gets failure 401', async () => {
    await both(clients, async c => {
        consumeConnectionEvents(c.peer);
        const r = await httpJson('POST', devUrl(c.jid, 'logout'), {});
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const close = await nextClose(c.peer);
        assert.equal(close.statusCode, 401, JSON.stringify(close));
        assert.equal(close.reason, 'loggedOut');
        assert.equal(close.willReconnect, false);
        await c.peer.none({ ev: 'connection', connection: 'connecting' }, 1500);
        const devs = await devices(c.phone);
        assert.ok(!devs.some(d => d.jid === c.jid), `${c.jid} still listed: ${JSON.stringify(devs)}`);
        let x = await httpJson('POST', devUrl(c.jid, 'drop'), {});
        assert.equal(x.status, 404, JSON.stringify(x.body));
        await c.peer.close();
        // the same credentials (the replaced copy's) are refused from now on
        const again = await startPeer({ version: c.version, url: WS, auth: c.oldDir, name: `${c.label}-again`,
            reconnect: 'none' });
        try {
            const refused = await nextClose(again);
            assert.equal(refused.statusCode, 401, JSON.stringify(refused));
            assert.equal(refused.message, 'Connection Failure');
            assert.ok(!again.events.some(e => e.ev === 'connection' && e.connection === 'open'));
            x = await httpJson('GET', `${CTL}/phones/${c.phone}`);
            assert.ok(!x.body.devices.some(d => d.jid === c.jid));
        } finally {
            await again.close();
        }
    });
});

test('logout by the client (remove-companion-device): 401, the device is unlinked, re-login refused', async () => {
    const fresh = await both([{ label: 'lo6', v: 6, phone: '15550016001' }, { label: 'lo7', v: 7, phone: '15550017001' }],
        x => pairClient(x.v, x.phone, x.label));
    await both(fresh, async c => {
        try {
            const copy = copyDir(c.dir, path.join(tmp, `${c.label}-copy`));
            consumeConnectionEvents(c.peer);
            const r = await c.peer.cmd({ cmd: 'logout' });
            assert.ok(r.ok, `[${c.label}] logout: ${r.error}`);
            const close = await nextClose(c.peer);
            assert.equal(close.statusCode, 401, JSON.stringify(close));
            assert.equal(close.willReconnect, false);
            const until = Date.now() + 3000;
            while ((await devices(c.phone)).some(d => d.jid === c.jid)) {
                if (Date.now() > until) throw new Error(`[${c.label}] ${c.jid} still linked after its logout`);
                await sleep(50);
            }
            const again = await startPeer({ version: c.version, url: WS, auth: copy, name: `${c.label}-again`,
                reconnect: 'none' });
            try {
                const refused = await nextClose(again);
                assert.equal(refused.statusCode, 401, JSON.stringify(refused));
            } finally {
                await again.close();
            }
        } finally {
            await c.peer.close();
        }
    });
});

test('stall: Baileys\' keep-alive gives up (408; 7 after the WebSocket close timeout), it reconnects', async () => {
    const [t6, t7] = await stallRun;
    if (process.env.WA_PEER_VERBOSE === '1') console.error(`stall closes after ${t6} ms (6.17), ${t7} ms (7)`);
});

test('every fault is counted in /stats; silent connections hit the handshake deadline; wasim is fine', async () => {
    const s = await stats();
    for (const k of ['dropped', 'stalled', 'delayed', 'refused', 'iq_errors', 'stream_errors']) {
        assert.ok(s.faults[k] > 0, `faults.${k} = ${s.faults[k]}`);
    }
    assert.ok(s.bad_input_closes >= 15, `bad_input_closes = ${s.bad_input_closes}`);
    const bad0 = s.bad_input_closes;
    for (const i of idle) {
        const left = HANDSHAKE_DEADLINE_MS + 3000 - (Date.now() - i.t0);
        const r = await Promise.race([i.closed, sleep(Math.max(left, 0)).then(() => null)]);
        i.destroy();
        assert.ok(r, `${i.what}: still open after ${Date.now() - i.t0} ms`);
        if (!i.early) assert.ok(r.ms >= HANDSHAKE_DEADLINE_MS - 1000, `${i.what}: closed after ${r.ms} ms`);
    }
    const logged = sim.lines.filter(l => /closing on bad input: no handshake within/.test(l)).length;
    assert.ok(logged >= 2, `${logged} handshake deadline closes logged`);
    assert.ok((await stats()).bad_input_closes >= bad0, 'bad_input_closes shrank');
    assert.equal(sim.proc.exitCode, null, 'wasim exited');
    const { code, signal } = await sim.stop(5000);
    assert.equal(signal, null, `wasim ended by ${signal}`);
    assert.equal(code, 0, `wasim exit code ${code}`);
});

await run();
