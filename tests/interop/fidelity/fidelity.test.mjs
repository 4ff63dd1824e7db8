// fidelity.test.mjs - wire fidelity of libwa against Baileys 7 (issue 4, acceptance "wire
// fidelity"). One wasim with --trace; the same scenario run by libwa (tools/wa-cli) and by
// Baileys 7.0.0-rc14 (tests/interop/peer/peer.mjs), one phone number each:
//   qr           the QR text each client shows;
//   register     the unpaired connection: ClientPayload, then pair-device / pair-success answers
//                (QR scanned through wasim's control API) up to wasim's 515;
//   first-login  the login right after the 515 (prekey upload);
//   login        a later login from the stored credentials, with one text message from a third
//                phone waiting offline;
// then, on the same connection (each phase a window of trace lines, ended when the trace is quiet):
//   send         a 1:1 text to a third phone (a virtual phone: no session yet, pkmsg fan-out to
//                it and to the sender's own phone);
//   group-create a group with that phone;  group-first / group-later  a first text to it (sender
//                key distribution to each device, skmsg) and a second one (skmsg only);
//   receipts     a text from another phone, answered with a delivery then a read receipt;
//   retry        a 1:1 text that the receiving phone cannot decrypt (it dropped its sessions,
//                wasim's forget-sessions) and asks again for (retry receipt), and its re-send.
// Sent messages are also compared as the Message protobufs the receiving phone and the
// sender's own phone decrypted (wasim's GET /phones/{p}/messages keeps each enc's plaintext).
// The stanzas each client sends (`in` at wasim) and its ClientPayloads are normalized (ids,
// keys, times, refs, phone numbers, LIDs, registration ids) and compared (compare.mjs); every
// difference must be listed, with its reason, in docs/fidelity.md, which also says how stanzas
// are matched and which must keep their order.
//
//   node fidelity.test.mjs WASIM_BIN WA_CLI_BIN      run everything
//   node fidelity.test.mjs --replay DIR              compare again a kept run (WA_KEEP_TMP=1
//                                                    keeps DIR: trace.txt + meta.json)
// Env: WA_FIDELITY_VERBOSE=1 prints both stanzas of explained differences too;
//      WA_FIDELITY_DOC=FILE reads the rules from FILE instead of docs/fidelity.md.
// Prints the diff, one line per test, "N passed, N failed"; exits 1 on any failure.
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

import * as C from './compare.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..', '..', '..');
const DOC = process.env.WA_FIDELITY_DOC || path.join(ROOT, 'docs', 'fidelity.md');
const NODE_MODULES = path.resolve(here, '..', 'node_modules');
for (const p of ['baileys7', 'pino', 'ws']) {
    if (!fs.existsSync(path.join(NODE_MODULES, p, 'package.json'))) {
        console.error(`fidelity.test: ${NODE_MODULES} lacks ${p}: run scripts/deps.sh first`);
        console.log('0 passed, 1 failed');
        process.exit(1);
    }
}
const { assert, httpOk, sleep, startPeer, startProcess, test, run, tmpDir } =
    await import('../peer/lib.mjs');
const { proto } = await import(path.join(NODE_MODULES, 'baileys7', 'WAProto', 'index.js'));

const replay = process.argv[2] === '--replay' ? process.argv[3] : null;
const [wasimBin, cliBin] = process.argv.slice(2);
if (!replay && (!wasimBin || !fs.existsSync(wasimBin) || !cliBin || !fs.existsSync(cliBin))) {
    console.error('usage: node fidelity.test.mjs WASIM_BIN WA_CLI_BIN | --replay DIR');
    console.log('0 passed, 1 failed');
    process.exit(1);
}
const VERBOSE = process.env.WA_FIDELITY_VERBOSE === '1';

const PHONE_LIBWA = '15550000101';
const PHONE_BAILEYS = '15550000202';
const PHONE_SENDER = '15550000303'; // sends the offline text and the one read (a virtual phone)
const PHONE_PEER = '15550000404'; // the third party both clients send to (a virtual phone: it
// decrypts, and wasim's control API shows the Message protobuf of each enc it decrypted)
const TEXT = { send: 'fidelity 1:1', 'group-first': 'fidelity group 1', 'group-later': 'fidelity group 2',
    receipts: 'fidelity read me', retry: 'fidelity retry' };
const SUBJECT = 'fidelity group';
const STEP_MS = 20000; // one pairing or login, 515 included
const QUIET_MS = 1200; // a client is done when the trace has been quiet this long...
const SETTLE_MAX_MS = 8000; // ...or after this long

const decodeDeviceProps = hex => proto.DeviceProps.toObject(
    proto.DeviceProps.decode(Buffer.from(hex, 'hex')), { enums: String, longs: String, defaults: false });

/** Waits until `file` has not grown for QUIET_MS (at most SETTLE_MAX_MS). */
async function settle(file) {
    const until = Date.now() + SETTLE_MAX_MS;
    let size = -1;
    let since = Date.now();
    while (Date.now() < until) {
        const s = fs.statSync(file).size;
        if (s !== size) {
            size = s;
            since = Date.now();
        } else if (Date.now() - since >= QUIET_MS) {
            return;
        }
        await sleep(100);
    }
}

// ---- comparer self-checks (no processes) -------------------------------------------------------

const T = lines => C.parseTrace(lines.map(l => `1 ${l}`).join('\n'));

test('comparer: the trace syntax round-trips and ids, times, JIDs, numbers are normalized', () => {
    const n = C.parseXml('<iq to="@s.whatsapp.net" id="3.1-7" t="1796403333"><a x="&quot;&lt;"/>' +
        '<b></b><c>[26 bytes]</c><d>hi 15550001111</d><user jid="15550001111:2@s.whatsapp.net" ' +
        'lid="216477575646900:1@lid"/></iq>');
    assert.equal(C.render(C.normalizeNode(n)), '<iq to="@s.whatsapp.net" id="{ID}" t="{T}">' +
        '<a x="&quot;&lt;"/><b></b><c>[26 bytes]</c><d>hi {N}</d><user jid="{PN}:2@s.whatsapp.net" ' +
        'lid="{LID}:1@lid"/></iq>');
    const list = C.parseXml('<list><key><id>[3 bytes]</id></key><key><id>[3 bytes]</id></key><x/></list>');
    assert.equal(C.render(C.normalizeNode(list)), '<list><key><id>[3 bytes]</id></key>×2<x/></list>');
    assert.throws(() => C.parseXml('<iq><a></iq>'), /expected/);
    assert.throws(() => C.parseXml('<iq id="1"'), /bad attribute|expected/);
});

const stanzasOf = (lines, opts) => C.clientStanzas(T(lines), [1], opts).stanzas;
const LOGIN_A = [
    'in <iq id="1.1-1" xmlns="encrypt" type="get" to="@s.whatsapp.net"><count/></iq>',
    'out <iq from="s.whatsapp.net" type="result" id="1.1-1"><count value="0"/></iq>',
    'in <iq xmlns="abt" to="@s.whatsapp.net" type="get" id="1.1-2"><props protocol="1"/></iq>',
    'in <iq xmlns="blocklist" to="@s.whatsapp.net" type="get" id="1.1-3"/>',
    'in <iq to="@s.whatsapp.net" xmlns="passive" type="set" id="1.1-4"><active/></iq>',
];

test('comparer: equal after normalization -> no difference; parallel requests may swap', () => {
    const b = stanzasOf(LOGIN_A);
    const swapped = [LOGIN_A[0].replace(/1\.1-/g, '9.9-'), LOGIN_A[1].replace(/1\.1-/g, '9.9-'),
        LOGIN_A[3], LOGIN_A[2], LOGIN_A[4]];
    const order = ['iq[xmlns=encrypt,type=get]/count', 'iq[xmlns=passive,type=set]/active'];
    assert.deepEqual(C.compareStanzas('login', stanzasOf(swapped), b, order), []);
    const l = stanzasOf([LOGIN_A[4], ...LOGIN_A.slice(0, 4)]);
    const d = C.compareStanzas('login', l, b, order);
    assert.equal(d.length, 1);
    assert.match(d[0].id, /^order: libwa=iq\[xmlns=passive.* < iq\[xmlns=encrypt.* baileys=iq\[xmlns=encrypt/);
});

test('comparer: planted differences are each reported', () => {
    const b = stanzasOf(['in <iq xmlns="encrypt" type="set" to="@s.whatsapp.net" id="2"><registration>[4 bytes]' +
        '</registration><list><key><id>[3 bytes]</id></key><key><id>[3 bytes]</id></key></list></iq>',
    'in <receipt id="AB" to="15550001111@s.whatsapp.net" type="inactive"/>']);
    const l = stanzasOf(['in <iq type="set" xmlns="encrypt" to="s.whatsapp.net" id="7"><registration>[3 bytes]' +
        '</registration><list><key><id>[3 bytes]</id></key></list></iq>',
    'in <ack id="CD" class="message"/>']);
    const ids = C.compareStanzas('first-login', l, b).map(d => d.id).sort();
    const key = 'iq[xmlns=encrypt,type=set]/registration';
    assert.deepEqual(ids, [
        `attr ${key} @to: libwa="s.whatsapp.net" baileys="@s.whatsapp.net"`,
        `attr-order ${key}: libwa=type,xmlns,to,id baileys=xmlns,type,to,id`,
        `content ${key} /registration: libwa=[3 bytes] baileys=[4 bytes]`,
        `count ${key} /list/key: libwa=1 baileys=2`,
        'only-baileys receipt[type=inactive]',
        'only-libwa ack[class=message]',
    ].sort());
});

test('comparer: pings, stanzas after a stream error and answers to redeliveries are skipped', () => {
    const tr = C.parseTrace([
        '1 out <message from="15550001111@s.whatsapp.net" id="M1" type="text"><enc>[9 bytes]</enc></message>',
        '2 out <message from="15550001111@s.whatsapp.net" id="M1" type="text"><enc>[9 bytes]</enc></message>',
        '2 out <message from="15550001111@s.whatsapp.net" id="M2" type="text"><enc>[9 bytes]</enc></message>',
        '2 in <receipt id="M1" to="15550001111@s.whatsapp.net"/>',
        '2 in <receipt id="M2" to="15550001111@s.whatsapp.net"/>',
        '2 in <iq id="p" xmlns="w:p" type="get" to="@s.whatsapp.net"><ping/></iq>',
        '2 out <stream:error code="515"/>',
        '2 in <ib><unified_session id="5"/></ib>',
    ].join('\n'));
    const r = C.clientStanzas(tr, [2], { earlierConns: [1] });
    assert.deepEqual(r.stanzas.map(s => s.key), ['receipt[]']);
    assert.deepEqual(r.skipped.map(s => s.why), ['answers a redelivered stanza', 'keep-alive ping',
        'sent after the server closed the stream']);
    assert.equal(C.clientStanzas(tr, [2], { skipAnswers: true }).stanzas.length, 0);
});

test('comparer: answer lengths set by the server are compared relative to the server\'s', () => {
    const pair = (server, client) => C.clientStanzas(C.parseTrace([
        `1 out <iq from="s.whatsapp.net" type="set" id="P1" xmlns="md"><pair-success><device-identity>[${server} bytes]` +
        '</device-identity></pair-success></iq>',
        '1 in <iq to="@s.whatsapp.net" type="result" id="P1"><pair-device-sign><device-identity key-index="1">' +
        `[${client} bytes]</device-identity></pair-device-sign></iq>`].join('\n')), [1]).stanzas;
    const a = pair(152, 148);
    assert.match(a[0].canon, /\[S-4 bytes\]/);
    assert.deepEqual(C.compareStanzas('register', pair(151, 147), a), []);
    assert.deepEqual(C.compareStanzas('register', pair(151, 148), a).map(d => d.id), [
        'content iq[type=result]/pair-device-sign ← iq[xmlns=md,type=set]/pair-success ' +
        '/pair-device-sign/device-identity: libwa=[S-3 bytes] baileys=[S-4 bytes]']);
});

test('comparer: payloads and QR texts are normalized and compared field by field', () => {
    const dp = proto.DeviceProps.encode({ os: 'Mac OS', platformType: 1, requireFullSync: false }).finish();
    const base = { username: 15550001111, passive: true, userAgent: { platform: 'WEB', device: 'Desktop' },
        devicePairingData: { eRegid: '0000361f', eIdent: 'ab'.repeat(32), deviceProps: Buffer.from(dp).toString('hex') } };
    const other = JSON.parse(JSON.stringify(base));
    other.username = 15550002222;
    other.devicePairingData.eRegid = '000000dd';
    other.devicePairingData.eIdent = 'cd'.repeat(32);
    assert.deepEqual(C.comparePayloads('register', base, other, decodeDeviceProps), []);
    other.devicePairingData.deviceProps = Buffer.from(proto.DeviceProps.encode(
        { os: 'Mac OS', platformType: 7 }).finish()).toString('hex');
    delete other.passive;
    assert.deepEqual(C.comparePayloads('register', base, other, decodeDeviceProps).map(d => d.id).sort(), [
        'payload devicePairingData.deviceProps.platformType: libwa="CHROME" baileys="DESKTOP"',
        'payload devicePairingData.deviceProps.requireFullSync: libwa=false baileys=absent',
        'payload passive: libwa=true baileys=absent',
    ]);
    const k = Buffer.alloc(32, 1).toString('base64');
    assert.deepEqual(C.compareQr(`https://x#2@a,${k},${k},${k},1`, `https://x#2@b,${k},${k},${k},7`)
        .map(d => d.id), ['qr platform: libwa=1 baileys=7']);
});

test('comparer: rules explain differences; malformed rules are refused', () => {
    const md = '```fidelity\n# comment\norder login: a < b\n' +
        '* | attr * @to: libwa="s.whatsapp.net" baileys="@s.whatsapp.net" | to fix: the server JID is written as a plain token\n' +
        'login | only-baileys iq[xmlns=abt,type=get]/props | not yet: AB props are not fetched (issue 4)\n```\n' +
        '```fidelity\nlogin | x | because\nfoo | y | deliberate: unknown phase name here\n```\n';
    const r = C.parseRules(md);
    assert.deepEqual(r.order, { login: ['a', 'b'] });
    assert.equal(r.rules.length, 4);
    assert.equal(r.errors.length, 2);
    const diffs = [{ phase: 'register', id: 'attr iq[] @to: libwa="s.whatsapp.net" baileys="@s.whatsapp.net"' },
        { phase: 'login', id: 'only-baileys iq[xmlns=abt,type=get]/props' },
        { phase: 'first-login', id: 'only-baileys iq[xmlns=abt,type=get]/props' }];
    const a = C.applyRules(diffs, r.rules.slice(0, 2));
    assert.equal(a.explained.length, 2);
    assert.deepEqual(a.unexplained.map(d => d.phase), ['first-login']);
    assert.equal(a.stale.length, 0);
});

test('comparer: a phase window keeps the stanzas sent on its trace lines; enc lengths are not compared', () => {
    const tr = C.parseTrace([
        '1 in <iq id="a" xmlns="abt" type="get" to="@s.whatsapp.net"><props/></iq>',
        '1 out <message from="15550001111@s.whatsapp.net" id="M1" type="text"><enc>[9 bytes]</enc></message>',
        '1 in <message id="X" to="15550001111@s.whatsapp.net" type="text"><enc v="2" type="msg">[113 bytes]</enc></message>',
        '1 in <receipt id="M1" to="15550001111@s.whatsapp.net"/>',
        '1 in <iq id="b" xmlns="blocklist" type="get" to="@s.whatsapp.net"/>',
    ].join('\n'));
    const r = C.clientStanzas(tr, [1], { from: 2, to: 4 });
    assert.deepEqual(r.stanzas.map(x => x.key), ['message[type=text]/enc', 'receipt[]']);
    assert.match(r.stanzas[0].canon, /\[~ bytes\]/);
    const other = C.clientStanzas(C.parseTrace(
        '1 in <message id="Y" to="15550002222@s.whatsapp.net" type="text"><enc v="2" type="msg">[129 bytes]</enc></message>'),
    [1]).stanzas;
    assert.deepEqual(C.compareStanzas('send', r.stanzas.slice(0, 1), other), []);
});

test('comparer: decrypted Messages are compared field by field, normalized', () => {
    const M = proto.Message;
    const hex = o => Buffer.from(M.encode(o).finish()).toString('hex');
    const dec = h => M.toObject(M.decode(Buffer.from(h, 'hex')), { enums: String, longs: String, defaults: false });
    const secret = n => ({ messageSecret: Buffer.alloc(32, n) });
    const a = [{ enc: 'pkmsg', hex: hex({ conversation: 'hi', messageContextInfo: secret(1) }) }];
    const b = [{ enc: 'pkmsg', hex: hex({ conversation: 'hi', messageContextInfo: secret(2) }) }];
    assert.deepEqual(C.compareMessages('send', 'peer', a, b, dec), []);
    const c = [{ enc: 'msg', hex: hex({ extendedTextMessage: { text: 'hi' } }) },
        { enc: 'skmsg', hex: hex({ conversation: 'x' }) }];
    assert.deepEqual(C.compareMessages('send', 'peer', a, c, dec).map(d => d.id).sort(), [
        'message peer encs: libwa=pkmsg baileys=msg,skmsg',
        'message peer pkmsg/msg conversation: libwa="hi" baileys=absent',
        'message peer pkmsg/msg extendedTextMessage.text: libwa=absent baileys="hi"',
        'message peer pkmsg/msg messageContextInfo.messageSecret: libwa="{32 bytes}" baileys=absent',
    ]);
    assert.deepEqual(C.compareMessages('send', 'own-phone', null, a, dec).map(d => d.id),
        ['message own-phone: libwa=none baileys=received']);
    const rules = C.parseRules('```fidelity\ngroup-first,group-later | message * | deliberate: a rule for two phases\n```\n');
    assert.deepEqual(rules.errors, []);
    assert.equal(C.applyRules([{ phase: 'group-later', id: 'message x' }, { phase: 'send', id: 'message x' }],
        rules.rules).unexplained.length, 1);
});

// ---- the rules ---------------------------------------------------------------------------------

let RULES = null;
test('docs/fidelity.md: the rules parse, each with a reason', () => {
    RULES = C.parseRules(fs.readFileSync(DOC, 'utf8'));
    assert.deepEqual(RULES.errors, [], RULES.errors.join('\n'));
    assert.ok(RULES.rules.length > 0);
});

// ---- the run -----------------------------------------------------------------------------------

let RUN = null; // {dir, trace (file), qr: {libwa, baileys}, phones, windows, messages}

/** Number of complete lines in the trace: the line index where what happens next starts. */
const traceLines = file => fs.readFileSync(file, 'utf8').split('\n').length - 1;

/** A wa-cli listen process with commands on stdin and its JSON events. */
function startCli(args) {
    const proc = spawn(cliBin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const events = [];
    const waiters = [];
    const out = [];
    let ended = false;
    const flush = () => {
        for (const w of [...waiters]) {
            const i = events.findIndex(w.pred);
            if (i >= 0 || ended) {
                waiters.splice(waiters.indexOf(w), 1);
                clearTimeout(w.timer);
                if (i >= 0) w.resolve(events.splice(i, 1)[0]);
                else w.reject(new Error(`wa-cli exited while waiting for ${w.what}\n${out.slice(-30).join('\n')}`));
            }
        }
    };
    const exited = new Promise(resolve => proc.on('exit', code => {
        ended = true;
        flush();
        resolve(code);
    }));
    CHILDREN.add(proc);
    readline.createInterface({ input: proc.stdout }).on('line', line => {
        out.push(line);
        try {
            events.push(JSON.parse(line));
        } catch {
            return;
        }
        flush();
    });
    readline.createInterface({ input: proc.stderr }).on('line', line => out.push(`stderr: ${line}`));
    proc.stdin.on('error', () => {});
    const cli = {
        next(pred, what, ms = STEP_MS) {
            return new Promise((resolve, reject) => {
                const w = { pred, resolve, reject, what };
                w.timer = setTimeout(() => {
                    waiters.splice(waiters.indexOf(w), 1);
                    reject(new Error(`wa-cli: no ${what} within ${ms} ms\n${out.slice(-30).join('\n')}`));
                }, ms);
                waiters.push(w);
                flush();
            });
        },
        cmd: line => proc.stdin.write(`${line}\n`),
        /** A send command: the message id once the server acknowledged it. */
        async send(line) {
            cli.cmd(line);
            const q = await cli.next(e => e.event === 'queued' || e.event === 'error', `queued for ${line}`);
            assert.equal(q.event, 'queued', `${line} -> ${JSON.stringify(q)}`);
            const r = await cli.next(e => (e.event === 'sent' || e.event === 'send_failed') && e.id === q.id,
                `sent ${q.id}`);
            assert.equal(r.event, 'sent', JSON.stringify(r));
            return q.id;
        },
        async stop() {
            if (!ended) {
                cli.cmd('quit');
                const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
                await exited;
                clearTimeout(t);
            }
            CHILDREN.delete(proc);
        },
    };
    return cli;
}
const CHILDREN = new Set();
process.on('exit', () => {
    for (const p of CHILDREN) p.kill('SIGKILL');
});

/** Polls until fn() returns a truthy value (every 100 ms, at most ms). */
async function until(fn, what, ms = STEP_MS) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
        await sleep(100);
    }
}

/** The retry phase did make the receiving phone ask for a re-send. */
function assertRetried(file, w, who) {
    const lines = fs.readFileSync(file, 'utf8').split('\n').slice(w.from, w.to);
    assert.ok(lines.some(l => /^\d+ out <receipt [^>]*type="retry"/.test(l)),
        `${who}: no retry receipt reached the client in the retry phase`);
}

async function scenario() {
    const dir = tmpDir('wa-fidelity-');
    const traceFile = path.join(dir, 'trace.txt');
    const sim = await startProcess(wasimBin, ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0',
        '--trace', traceFile], { name: 'wasim', readyRegex: /wasim ready ws=(\S+) control=(\S+)/ });
    const [, WS, CTL] = sim.match;
    const rootKey = (await (await fetch(`${CTL}/root-key`)).text()).trim();
    const cli = (cmd, extra = []) => [
        '--store', path.join(dir, 'libwa.db'), '--url', WS, '--root-key', rootKey, '--log-level', 'warn',
        cmd, ...extra];
    const scan = (phone, qr) => httpOk('POST', `${CTL}/phones/${phone}/scan`, { qr });
    const qr = {};
    const windows = { libwa: {}, baileys: {} };
    const messages = {};

    // libwa: pair (exits once logged in after the 515)
    const pair = await startProcess(cliBin, cli('pair'), { name: 'wa-cli pair', readyRegex: /^QR (\S+)/,
        timeoutMs: STEP_MS });
    qr.libwa = pair.match[1];
    await scan(PHONE_LIBWA, qr.libwa);
    await pair.waitLine(/^PAIRED /, STEP_MS);
    const { code } = await Promise.race([pair.exited, sleep(STEP_MS).then(() => ({ code: 'timeout' }))]);
    assert.equal(code, 0, `wa-cli pair: exit ${code}\n${pair.lines.join('\n')}`);

    // Baileys 7: pair, stay until quiet
    const auth = path.join(dir, 'baileys-auth');
    let b = await startPeer({ version: 7, url: WS, auth, name: 'b7', reconnect: [515] });
    const q = await b.next('qr', STEP_MS);
    qr.baileys = q.qr;
    await scan(PHONE_BAILEYS, qr.baileys);
    await b.next({ ev: 'connection', connection: 'open' }, STEP_MS);
    await settle(traceFile);
    await b.close();

    // a text waits offline for each; the receiving phone exists
    for (const to of [PHONE_LIBWA, PHONE_BAILEYS]) {
        const r = await httpOk('POST', `${CTL}/phones/${PHONE_SENDER}/send`, { to, text: 'fidelity' });
        assert.equal(r.devices, 1, `send to ${to}: ${JSON.stringify(r)}`);
    }
    await httpOk('GET', `${CTL}/phones/${PHONE_PEER}`);

    /** Runs one phase of `who`: its trace lines, settled, are the phase's window. */
    const phase = async (who, name, fn) => {
        const from = traceLines(traceFile);
        const r = await fn();
        await settle(traceFile);
        windows[who][name] = { from, to: traceLines(traceFile) };
        return r;
    };
    /** What the receiving phone and the sender's own phone decrypted of message id. */
    const inbox = async (phone, id) => {
        const r = await httpOk('GET', `${CTL}/phones/${phone}/messages?id=${encodeURIComponent(id)}`);
        const m = r.messages.find(x => x.plain && !x.error);
        return m ? m.plain : null;
    };
    const keep = async (who, name, id, own) => {
        // the receiving phone decrypted it (a retry: once the resend arrived)
        const peer = await until(() => inbox(PHONE_PEER, id), `${name}: ${PHONE_PEER} decrypting ${id}`);
        messages[name] = messages[name] || {};
        messages[name][who] = { peer, own: await inbox(own, id) };
    };

    // libwa: log in from the store, then the message phases
    const L = startCli(cli('listen'));
    await L.next(e => e.event === 'connected', 'connected');
    await settle(traceFile);
    windows.libwa.login = { from: 0, to: traceLines(traceFile) };
    let id = await phase('libwa', 'send', () => L.send(`send ${PHONE_PEER} ${TEXT.send}`));
    await keep('libwa', 'send', id, PHONE_LIBWA);
    const lg = await phase('libwa', 'group-create', async () => {
        L.cmd(`group-create ${PHONE_PEER} ${SUBJECT}`);
        return L.next(e => e.event === 'group' || e.event === 'error', 'group created');
    });
    assert.ok(lg.event === 'group' && lg.jid, JSON.stringify(lg));
    for (const name of ['group-first', 'group-later']) {
        id = await phase('libwa', name, () => L.send(`send ${lg.jid} ${TEXT[name]}`));
        await keep('libwa', name, id, PHONE_LIBWA);
    }
    await phase('libwa', 'receipts', async () => {
        const s = await httpOk('POST', `${CTL}/phones/${PHONE_SENDER}/send`, { to: PHONE_LIBWA, text: TEXT.receipts });
        const m = await L.next(e => e.event === 'message' && e.id === s.id, `message ${s.id}`);
        L.cmd(`read ${m.chat} ${m.id}`);
        await L.next(e => e.event === 'read_sent' || e.event === 'error', 'read_sent');
    });
    await httpOk('POST', `${CTL}/phones/${PHONE_PEER}/forget-sessions`);
    id = await phase('libwa', 'retry', async () => {
        const mid = await L.send(`send ${PHONE_PEER} ${TEXT.retry}`);
        await until(() => inbox(PHONE_PEER, mid), `retry: ${PHONE_PEER} decrypting the resend`);
        return mid;
    });
    await keep('libwa', 'retry', id, PHONE_LIBWA);
    assertRetried(traceFile, windows.libwa.retry, 'libwa');
    await L.stop();

    // Baileys 7: log in from the saved credentials, then the same phases
    b = await startPeer({ version: 7, url: WS, auth, name: 'b7', reconnect: 'none' });
    await b.next({ ev: 'connection', connection: 'open' }, STEP_MS);
    await settle(traceFile);
    windows.baileys.login = { from: 0, to: traceLines(traceFile) };
    id = (await phase('baileys', 'send', () => b.ok({ cmd: 'send', to: PHONE_PEER, text: TEXT.send }))).id;
    await keep('baileys', 'send', id, PHONE_BAILEYS);
    const bg = await phase('baileys', 'group-create', () =>
        b.ok({ cmd: 'group_create', subject: SUBJECT, participants: [PHONE_PEER] }));
    for (const name of ['group-first', 'group-later']) {
        id = (await phase('baileys', name, () => b.ok({ cmd: 'send', to: bg.id, text: TEXT[name] }))).id;
        await keep('baileys', name, id, PHONE_BAILEYS);
    }
    await phase('baileys', 'receipts', async () => {
        const s = await httpOk('POST', `${CTL}/phones/${PHONE_SENDER}/send`, { to: PHONE_BAILEYS, text: TEXT.receipts });
        const m = await b.next(e => e.ev === 'message' && e.id === s.id, STEP_MS);
        await b.ok({ cmd: 'read', keys: [m.key] });
    });
    await httpOk('POST', `${CTL}/phones/${PHONE_PEER}/forget-sessions`);
    id = await phase('baileys', 'retry', async () => {
        const r = await b.ok({ cmd: 'send', to: PHONE_PEER, text: TEXT.retry });
        await until(() => inbox(PHONE_PEER, r.id), `retry: ${PHONE_PEER} decrypting the resend`);
        return r.id;
    });
    await keep('baileys', 'retry', id, PHONE_BAILEYS);
    assertRetried(traceFile, windows.baileys.retry, 'baileys');
    await b.close();
    await sim.stop();

    RUN = { dir, trace: traceFile, qr, phones: { libwa: PHONE_LIBWA, baileys: PHONE_BAILEYS }, windows, messages };
    fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(RUN, null, 1));
}

if (replay) {
    test('replay: the kept run loads', () => {
        RUN = JSON.parse(fs.readFileSync(path.join(replay, 'meta.json'), 'utf8'));
        RUN.trace = path.join(replay, 'trace.txt');
    });
} else {
    test('run: libwa (wa-cli) and Baileys 7 pair by QR, log in twice, send 1:1 and group texts, ' +
        'receipts and a retry against one wasim', scenario, { timeoutMs: 240000 });
}

// ---- the phases --------------------------------------------------------------------------------

/** The connections of one client: {register, logins: [first, later...]}. */
function connsOf(trace, phone) {
    let register = null;
    const logins = [];
    for (const [id, c] of trace) {
        if (c.payload && String(c.payload.username) === phone) logins.push(id);
        const ps = c.events.find(e => e.dir === 'out' && e.node.tag === 'iq' &&
            e.node.children.some(x => x.tag === 'pair-success'));
        const dev = ps && ps.node.children.find(x => x.tag === 'pair-success').children
            .find(x => x.tag === 'device');
        if (dev && (C.attr(dev, 'jid') || '').startsWith(`${phone}:`)) register = id;
    }
    return { register, logins: logins.sort((x, y) => x - y) };
}

let PH = null;
function phases() {
    if (PH) return PH;
    assert.ok(RUN, 'the run did not complete');
    const trace = C.parseTrace(fs.readFileSync(RUN.trace, 'utf8'));
    const l = connsOf(trace, RUN.phones.libwa);
    const b = connsOf(trace, RUN.phones.baileys);
    for (const [who, c] of [['libwa', l], ['baileys', b]]) {
        assert.ok(c.register && c.logins.length >= 2,
            `${who}: registration connection ${c.register}, logins ${c.logins.join(',')}: expected 1 and 2`);
    }
    const conns = (c, who) => {
        const ph = {
            register: { conns: [c.register], earlier: [], skipAnswers: false },
            'first-login': { conns: [c.logins[0]], earlier: [c.register], skipAnswers: true },
        };
        // the later login and the message phases: parts (trace line windows) of one connection
        for (const name of ['login', ...MSG_PHASES]) {
            const w = RUN.windows && RUN.windows[who][name];
            assert.ok(w, `${who}: phase ${name} did not run`);
            ph[name] = { conns: [c.logins[1]], earlier: [c.register, c.logins[0]], skipAnswers: false,
                from: w.from, to: w.to };
        }
        return ph;
    };
    PH = { trace, libwa: conns(l, 'libwa'), baileys: conns(b, 'baileys') };
    return PH;
}

const ALL = [];
const SHOWN = new Set(); // rules whose reason was printed

function report(title, diffs, extra = '') {
    const { explained, unexplained } = C.applyRules(diffs, RULES ? RULES.rules : []);
    ALL.push(...diffs);
    console.log(`\n== ${title}: ${diffs.length} difference(s), ${unexplained.length} not in docs/fidelity.md${extra}`);
    for (const d of explained) {
        const first = !SHOWN.has(d.rule.pattern + d.rule.phase);
        SHOWN.add(d.rule.pattern + d.rule.phase);
        const why = first || VERBOSE ? d.rule.reason : `${d.rule.reason.split(':')[0]}: (reason above)`;
        console.log(`   listed  ${d.id}${d.times > 1 ? ` (×${d.times})` : ''}\n           -> ${why}`);
        if (VERBOSE && d.detail) console.log(d.detail.replace(/^/gm, '           '));
    }
    for (const d of unexplained) {
        console.log(`   NEW     ${d.id}${d.times > 1 ? ` (×${d.times})` : ''}`);
        if (d.detail) console.log(d.detail.replace(/^/gm, '           '));
    }
    if (unexplained.length) {
        throw new Error(`${unexplained.length} difference(s) not listed in docs/fidelity.md:\n  ` +
            unexplained.map(d => `${d.phase} | ${d.id}`).join('\n  '));
    }
}

test('qr: the QR text', () => {
    assert.ok(RUN, 'the run did not complete');
    report('qr', C.compareQr(RUN.qr.libwa, RUN.qr.baileys));
});

const MSG_PHASES = ['send', 'group-create', 'group-first', 'group-later', 'receipts', 'retry'];

for (const phase of ['register', 'first-login', 'login', ...MSG_PHASES]) {
    if (!MSG_PHASES.includes(phase)) {
        test(`${phase}: ClientPayload`, () => {
            const p = phases();
            const pl = p.trace.get(p.libwa[phase].conns[0]).payload;
            const pb = p.trace.get(p.baileys[phase].conns[0]).payload;
            report(`${phase}: ClientPayload`, C.comparePayloads(phase, pl, pb, decodeDeviceProps));
        });
    }
    test(`${phase}: stanzas the clients send`, () => {
        const p = phases();
        const get = who => C.clientStanzas(p.trace, p[who][phase].conns,
            { earlierConns: p[who][phase].earlier, skipAnswers: p[who][phase].skipAnswers,
                from: p[who][phase].from, to: p[who][phase].to });
        const l = get('libwa');
        const b = get('baileys');
        const counts = new Map();
        for (const [who, r] of [['libwa', l], ['baileys', b]]) {
            for (const s of r.skipped) {
                const k = `${who} ${s.key}: ${s.why}`;
                counts.set(k, (counts.get(k) || 0) + 1);
            }
        }
        const skipped = [...counts].map(([k, n]) => `\n     not compared: ${k}${n > 1 ? ` (×${n})` : ''}`);
        const extra = `; compared libwa ${l.stanzas.length}, Baileys ${b.stanzas.length} stanzas${skipped.join('')}`;
        assert.ok(l.stanzas.length && b.stanzas.length, `${phase}: a client sent nothing${extra}`);
        report(`${phase}: stanzas`, C.compareStanzas(phase, l.stanzas, b.stanzas,
            (RULES && RULES.order[phase]) || []), extra);
    });
}

const decodeMessage = hex => proto.Message.toObject(proto.Message.decode(Buffer.from(hex, 'hex')),
    { enums: String, longs: String, defaults: false });

for (const phase of ['send', 'group-first', 'group-later', 'retry']) {
    test(`${phase}: the Message protobufs the receivers decrypted`, () => {
        assert.ok(RUN && RUN.messages && RUN.messages[phase], `${phase}: no messages kept`);
        const m = RUN.messages[phase];
        assert.ok(m.libwa && m.baileys && m.libwa.peer && m.baileys.peer, `${phase}: ${JSON.stringify(m)}`);
        report(`${phase}: Message protobufs`, [
            ...C.compareMessages(phase, 'peer', m.libwa.peer, m.baileys.peer, decodeMessage),
            ...C.compareMessages(phase, 'own-phone', m.libwa.own, m.baileys.own, decodeMessage)]);
    });
}

test('docs/fidelity.md: rules that matched nothing (notes, not failures)', () => {
    if (!RULES || !RUN) return;
    const { stale } = C.applyRules(ALL, RULES.rules.map(r => ({ ...r, used: 0 })));
    for (const r of stale) console.log(`   note: no difference matched "${r.phase} | ${r.pattern}"`);
});

await run();
