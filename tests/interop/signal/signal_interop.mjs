// signal_interop.mjs - libwa's Signal layer (C, through signal_peer) against npm libsignal
// 6.0.0 (1:1 sessions, the library Baileys uses) and Baileys 7's group cipher
// (lib/Signal/Group: GroupSessionBuilder, GroupCipher, SenderKeyDistributionMessage), with
// Baileys 7's padding (writeRandomPadMax16 / unpadRandomMax16) on the Node side.
//
//   node signal_interop.mjs <path to signal_peer>
//
// 1. Node (Alice) starts a session from the C party's bundle (a LID address on the C side):
//    pkmsgs delivered out of order, replay -> WA_EEXIST, prekey consumed; C answers; msgs both
//    ways out of order; duplicates and tampering refused by C.
// 2. C starts sessions from Node bundles (with and without a one-time prekey): C's pkmsgs
//    decrypted by libsignal out of order, answers decrypted by C.
// 3. Sender keys both ways: C's SKDM processed by Baileys, C's group messages decrypted by
//    Baileys out of order; Baileys' SKDM processed by C, Baileys' messages (iterations 0, 2,
//    4, ...) decrypted by C out of order, duplicates and tampering refused.
// Fails (exit 1) when node_modules or the tool is missing: never skips.
//
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn } from 'child_process';
import fs from 'fs';
import { createRequire } from 'module';
import path from 'path';
import readline from 'readline';
import { pathToFileURL } from 'url';

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const nm = path.resolve(here, '..', 'node_modules');
for (const dep of ['libsignal', 'baileys7']) {
    if (!fs.existsSync(path.join(nm, dep))) {
        console.error(`signal interop: ${nm} lacks ${dep}: run scripts/deps.sh first`);
        process.exit(1);
    }
}
const tool = process.argv[2];
if (!tool || !fs.existsSync(tool)) {
    console.error('usage: node signal_interop.mjs <signal_peer>');
    process.exit(2);
}

const libsignal = require(path.join(nm, 'libsignal'));
const libsignalVersion = require(path.join(nm, 'libsignal', 'package.json')).version;
const G = await import(pathToFileURL(path.join(nm, 'baileys7/lib/Signal/Group/index.js')));
const U = await import(pathToFileURL(path.join(nm, 'baileys7/lib/Utils/generics.js')));
const { GroupCipher, GroupSessionBuilder, SenderKeyDistributionMessage, SenderKeyName,
        SenderKeyRecord } = G;

let checks = 0;
function fail(msg) {
    console.error(`signal interop: FAIL: ${msg}`);
    process.exit(1);
}
function ok(cond, msg) {
    if (!cond)
        fail(msg);
    checks++;
}
ok(libsignalVersion === '6.0.0', `libsignal is ${libsignalVersion}, expected 6.0.0`);

const hex = b => Buffer.from(b).toString('hex');
const unhex = h => Buffer.from(h, 'hex');
const k32 = k => hex(Buffer.from(k).subarray(1)); // strip 0x05
const k33 = h => Buffer.concat([Buffer.from([5]), unhex(h)]); // add 0x05

// ---- the C party ----
const child = spawn(tool, [], { stdio: ['pipe', 'pipe', 'inherit'] });
child.on('exit', code => {
    if (code !== 0 && code !== null)
        fail(`signal_peer exited with ${code}`);
});
const lines = readline.createInterface({ input: child.stdout });
const waiting = [];
lines.on('line', l => waiting.shift()(JSON.parse(l)));
function c(req) {
    return new Promise(resolve => {
        waiting.push(resolve);
        child.stdin.write(JSON.stringify(req) + '\n');
    });
}
async function cOk(req) {
    const r = await c(req);
    if (r.err)
        fail(`C ${req.op}: ${r.err} (${r.reason})`);
    return r;
}

// ---- Node parties: an in-memory store shaped like Baileys 7's signalStorage ----
class Store {
    constructor() {
        this.identity = libsignal.curve.generateKeyPair(); // pubKey is 33 bytes
        this.regId = libsignal.keyhelper.generateRegistrationId() || 1;
        this.sessions = new Map();
        this.prekeys = new Map();
        this.signed = new Map();
        this.senderKeys = new Map();
    }
    async isTrustedIdentity() { return true; }
    async loadSession(id) {
        const s = this.sessions.get(id);
        return s ? libsignal.SessionRecord.deserialize(s) : undefined;
    }
    async storeSession(id, rec) { this.sessions.set(id, rec.serialize()); }
    async loadPreKey(id) { return this.prekeys.get(Number(id)); }
    async removePreKey(id) { this.prekeys.delete(Number(id)); }
    async loadSignedPreKey(id) { return this.signed.get(Number(id)); }
    async getOurRegistrationId() { return this.regId; }
    async getOurIdentity() { return this.identity; }
    async loadSenderKey(name) {
        const v = this.senderKeys.get(name.toString());
        return v ? SenderKeyRecord.deserialize(v) : new SenderKeyRecord();
    }
    async storeSenderKey(name, rec) {
        // Baileys 7 rc14 (lib/Signal/libsignal.js) stores JSON.stringify(record) without
        // BufferJSON.replacer: a skipped message key's seed then comes back as
        // {type:'Buffer', data:[...]}, and decrypting that out-of-order message throws
        // "Expected Buffer" in SenderMessageKey. The replacer keeps the Buffers intact.
        const json = JSON.stringify(rec.serialize(), U.BufferJSON.replacer);
        this.senderKeys.set(name.toString(), Buffer.from(json, 'utf-8'));
    }
}

// Baileys 7 jidToSignalProtocolAddress: "user" for PN, "user_<domain>" otherwise.
const signalName = a => (a.server ? `${a.user}_${a.server}` : a.user);
const protoAddr = a => new libsignal.ProtocolAddress(signalName(a), a.device);
const pad = s => U.writeRandomPadMax16(Buffer.from(s));
const unpad = b => Buffer.from(U.unpadRandomMax16(b)).toString();
const order5 = [2, 0, 4, 1, 3];

const C_ADDR = { user: '200000000000001', server: 1, device: 0 }; // a LID party
const ALICE = { user: '15550000001', server: 0, device: 0 };
const CAROL = { user: '15550000003', server: 0, device: 2 };
const DAVE = { user: '300000000000002', server: 1, device: 5 };
const GROUP = '120363000000000042@g.us';

await cOk({ op: 'init', addr: C_ADDR });

// ---- 1. Node starts, C answers ----
{
    const alice = new Store();
    const b = await cOk({ op: 'bundle', prekey: 3 });
    const addr = protoAddr(C_ADDR);
    await new libsignal.SessionBuilder(alice, addr).initOutgoing({
        registrationId: b.reg,
        identityKey: k33(b.identity),
        signedPreKey: { keyId: b.spk_id, publicKey: k33(b.spk_pub), signature: unhex(b.spk_sig) },
        preKey: { keyId: b.prekey_id, publicKey: k33(b.prekey_pub) },
    });
    const cipher = new libsignal.SessionCipher(alice, addr);
    const pk = [];
    for (let i = 0; i < 5; i++) {
        const m = await cipher.encrypt(pad(`pkmsg ${i}`));
        ok(m.type === 3, 'node: first messages are pkmsgs');
        pk.push(Buffer.from(m.body));
    }
    for (const i of order5) {
        const r = await cOk({ op: 'decrypt', peer: ALICE, type: 'pkmsg', ct: hex(pk[i]), unpad: true });
        ok(unhex(r.plain).toString() === `pkmsg ${i}`, `C decrypts node pkmsg ${i}`);
    }
    ok((await cOk({ op: 'prekeys' })).count === 19, 'C consumed exactly one prekey');
    let r = await c({ op: 'decrypt', peer: ALICE, type: 'pkmsg', ct: hex(pk[1]) });
    ok(r.err === 'WA_EEXIST', `replayed pkmsg -> WA_EEXIST (got ${r.err})`);

    // C answers: a msg; Node decrypts, then Node's messages are msgs
    for (let round = 0; round < 3; round++) {
        const e = await cOk({ op: 'encrypt', peer: ALICE, plain: hex(Buffer.from(`c round ${round}`)), pad: true });
        ok(e.type === 'msg', 'C answers with msg');
        const plain = await cipher.decryptWhisperMessage(unhex(e.ct));
        ok(unpad(plain) === `c round ${round}`, `node decrypts C msg ${round}`);
        const m = await cipher.encrypt(pad(`n round ${round}`));
        ok(m.type === 1, 'node switches to msg');
        r = await cOk({ op: 'decrypt', peer: ALICE, type: 'msg', ct: hex(m.body), unpad: true });
        ok(unhex(r.plain).toString() === `n round ${round}`, `C decrypts node msg ${round}`);
    }
    // out of order, duplicates, tampering (C side)
    const ms = [];
    for (let i = 0; i < 5; i++)
        ms.push(Buffer.from((await cipher.encrypt(pad(`msg ${i}`))).body));
    const bad = Buffer.from(ms[0]);
    bad[bad.length - 3] ^= 1;
    r = await c({ op: 'decrypt', peer: ALICE, type: 'msg', ct: hex(bad) });
    ok(r.err === 'WA_ECRYPTO', `tampered msg -> WA_ECRYPTO (got ${r.err})`);
    for (const i of order5) {
        r = await cOk({ op: 'decrypt', peer: ALICE, type: 'msg', ct: hex(ms[i]), unpad: true });
        ok(unhex(r.plain).toString() === `msg ${i}`, `C decrypts node msg ${i} out of order`);
    }
    r = await c({ op: 'decrypt', peer: ALICE, type: 'msg', ct: hex(ms[4]) });
    ok(r.err === 'WA_EEXIST', `duplicate msg -> WA_EEXIST (got ${r.err})`);
    // C's messages out of order at Node
    const cs = [];
    for (let i = 0; i < 4; i++)
        cs.push(await cOk({ op: 'encrypt', peer: ALICE, plain: hex(Buffer.from(`burst ${i}`)), pad: true }));
    for (const i of [3, 1, 0, 2])
        ok(unpad(await cipher.decryptWhisperMessage(unhex(cs[i].ct))) === `burst ${i}`,
           `node decrypts C msg ${i} out of order`);
}

// ---- 2. C starts from Node bundles ----
async function nodeBundle(store, withPrekey) {
    const spk = libsignal.keyhelper.generateSignedPreKey(store.identity, 7);
    store.signed.set(7, spk.keyPair);
    const b = {
        reg: store.regId, identity: k32(store.identity.pubKey), spk_id: 7,
        spk_pub: k32(spk.keyPair.pubKey), spk_sig: hex(spk.signature),
    };
    if (withPrekey) {
        const pre = libsignal.keyhelper.generatePreKey(42);
        store.prekeys.set(42, pre.keyPair);
        b.prekey_id = 42;
        b.prekey_pub = k32(pre.keyPair.pubKey);
    }
    return b;
}
for (const [who, peer, withPrekey] of [['carol', CAROL, true], ['dave', DAVE, false]]) {
    const store = new Store();
    await cOk({ op: 'process_bundle', peer, bundle: await nodeBundle(store, withPrekey) });
    const cipher = new libsignal.SessionCipher(store, protoAddr(C_ADDR));
    const pk = [];
    for (let i = 0; i < 3; i++) {
        const e = await cOk({ op: 'encrypt', peer, plain: hex(Buffer.from(`${who} ${i}`)), pad: true });
        ok(e.type === 'pkmsg', `C starts with pkmsg (${who})`);
        pk.push(unhex(e.ct));
    }
    for (const i of [2, 0, 1]) {
        const plain = await cipher.decryptPreKeyWhisperMessage(pk[i]);
        ok(unpad(plain) === `${who} ${i}`, `node decrypts C pkmsg ${i} (${who})`);
    }
    if (withPrekey)
        ok(!store.prekeys.has(42), 'node consumed its prekey');
    const m = await cipher.encrypt(pad(`${who} answers`));
    ok(m.type === 1, 'node answers with msg');
    let r = await cOk({ op: 'decrypt', peer, type: 'msg', ct: hex(m.body), unpad: true });
    ok(unhex(r.plain).toString() === `${who} answers`, `C decrypts node answer (${who})`);
    const e = await cOk({ op: 'encrypt', peer, plain: hex(Buffer.from('after')), pad: true });
    ok(e.type === 'msg', 'C switches to msg');
    ok(unpad(await cipher.decryptWhisperMessage(unhex(e.ct))) === 'after', `node decrypts C msg (${who})`);
    // a bundle with a bad signature is refused by C
    const bb = await nodeBundle(new Store(), withPrekey);
    bb.spk_sig = bb.spk_sig.slice(0, -2) + (bb.spk_sig.slice(-2) === '00' ? '01' : '00');
    r = await c({ op: 'process_bundle', peer: { ...peer, device: peer.device + 1 }, bundle: bb });
    ok(r.err === 'WA_ECRYPTO', `bad bundle signature -> WA_ECRYPTO (got ${r.err})`);
}

// ---- 3. sender keys both ways ----
{
    const alice = new Store();
    // C -> Node
    const d = await cOk({ op: 'skdm', group: GROUP });
    const cName = new SenderKeyName(GROUP, protoAddr(C_ADDR));
    await new GroupSessionBuilder(alice).process(cName,
        new SenderKeyDistributionMessage(null, null, null, null, unhex(d.skdm)));
    const gs = [];
    for (let i = 0; i < 5; i++)
        gs.push(await cOk({ op: 'group_encrypt', group: GROUP, plain: hex(Buffer.from(`c group ${i}`)), pad: true }));
    const gc = new GroupCipher(alice, cName);
    for (const i of order5)
        ok(unpad(await gc.decrypt(unhex(gs[i].ct))) === `c group ${i}`, `Baileys decrypts C skmsg ${i}`);

    // Node -> C
    const aName = new SenderKeyName(GROUP, protoAddr(ALICE));
    const skdm = await new GroupSessionBuilder(alice).create(aName);
    await cOk({ op: 'process_skdm', group: GROUP, peer: ALICE, skdm: hex(skdm.serialize()) });
    const ac = new GroupCipher(alice, aName);
    const ns = [];
    for (let i = 0; i < 5; i++)
        ns.push(Buffer.from(await ac.encrypt(pad(`node group ${i}`))));
    const bad = Buffer.from(ns[2]);
    bad[bad.length - 70] ^= 1; // in the ciphertext: the signature no longer matches
    let r = await c({ op: 'group_decrypt', group: GROUP, peer: ALICE, ct: hex(bad) });
    ok(r.err === 'WA_ECRYPTO', `tampered skmsg -> WA_ECRYPTO (got ${r.err})`);
    for (const i of [4, 1, 3, 0, 2]) {
        r = await cOk({ op: 'group_decrypt', group: GROUP, peer: ALICE, ct: hex(ns[i]), unpad: true });
        ok(unhex(r.plain).toString() === `node group ${i}`, `C decrypts Baileys skmsg ${i} out of order`);
    }
    r = await c({ op: 'group_decrypt', group: GROUP, peer: ALICE, ct: hex(ns[3]) });
    ok(r.err === 'WA_EEXIST', `duplicate skmsg -> WA_EEXIST (got ${r.err})`);
    r = await c({ op: 'group_decrypt', group: GROUP, peer: CAROL, ct: hex(ns[0]) });
    ok(r.err === 'WA_ENOTFOUND', `skmsg from a sender without SKDM -> WA_ENOTFOUND (got ${r.err})`);
}

child.stdin.end();
await new Promise(resolve => child.on('close', resolve));
console.log(`signal interop: ${checks} checks passed (libsignal ${libsignalVersion}, Baileys 7 group cipher)`);
