// gen_noise.js - writes noise_xx.txt: a complete WhatsApp Noise_XX handshake and transport
// transcript with fixed keys, produced by Baileys 6.17's own noise handler
// (lib/Utils/noise-handler.js) and protobuf encoders, for libwa's known-answer test in
// tests/unit/noise.
//
// - client side: Baileys' makeNoiseHandler exactly as socket.js drives it (processHandshake,
//   encrypt(ClientPayload), finishInit, encodeFrame);
// - server side: a second makeNoiseHandler instance seeded with the client's ephemeral key
//   (its transcript starts the same way) driven through the responder steps with Baileys'
//   authenticate/mixIntoKey/encrypt/decrypt;
// - server -> client transport frames: encrypted here with the responder's split key computed
//   from Baileys' hkdf, then checked by feeding them to Baileys' client decodeFrame.
// - certificate chain: libsignal-node XEdDSA signatures (deterministic) over Baileys-encoded
//   CertChain.NoiseCertificate.Details.
//
// Run: node tests/vectors/gen_noise.js > tests/vectors/noise_xx.txt
// SPDX-License-Identifier: GPL-3.0-or-later
'use strict';
const path = require('path');
const crypto = require('crypto');
const nm = path.join(__dirname, '../interop/node_modules');
const curve = require(path.join(nm, 'libsignal/src/curve'));
const B = path.join(nm, 'baileys6/lib');
const { makeNoiseHandler } = require(path.join(B, 'Utils/noise-handler'));
const { Curve, hkdf, aesEncryptGCM } = require(path.join(B, 'Utils/crypto'));
const { generateLoginNode } = require(path.join(B, 'Utils/validate-connection'));
const { encodeBinaryNode } = require(path.join(B, 'WABinary'));
const Defaults = require(path.join(B, 'Defaults'));
const { proto } = require(path.join(B, '../WAProto'));

const logger = { child() { return logger; }, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

function keyPair(label) {
    const priv = crypto.createHash('sha256').update(label).digest();
    priv[0] &= 248; priv[31] &= 127; priv[31] |= 64;
    return { private: priv, public: curve.getPublicFromPrivateKey(priv).slice(1) };
}
const hex = (b) => Buffer.from(b).toString('hex');
function assertEq(a, b, what) {
    if (!Buffer.from(a).equals(Buffer.from(b))) throw new Error('mismatch: ' + what);
}

async function main() {
    const clientEph = keyPair('wagate noise kat client ephemeral');
    const clientStatic = keyPair('wagate noise kat client static');
    const serverEph = keyPair('wagate noise kat server ephemeral');
    const serverStatic = keyPair('wagate noise kat server static');
    const root = keyPair('wagate noise kat root');
    const inter = keyPair('wagate noise kat intermediate');
    const NOW = 1750000000, NOT_BEFORE = 1700000000, NOT_AFTER = 1900000000;
    const INTER_SERIAL = 7, LEAF_SERIAL = 42;

    // certificate chain
    const Details = proto.CertChain.NoiseCertificate.Details;
    const interDetails = Details.encode({ serial: INTER_SERIAL, issuerSerial: 0, key: inter.public,
        notBefore: NOT_BEFORE, notAfter: NOT_AFTER }).finish();
    const leafDetails = Details.encode({ serial: LEAF_SERIAL, issuerSerial: INTER_SERIAL,
        key: serverStatic.public, notBefore: NOT_BEFORE, notAfter: NOT_AFTER }).finish();
    const certChain = proto.CertChain.encode({
        leaf: { details: leafDetails, signature: curve.calculateSignature(inter.private, leafDetails) },
        intermediate: { details: interDetails, signature: curve.calculateSignature(root.private, interDetails) },
    }).finish();

    // ClientPayload as Baileys sends it for a login
    const clientPayload = proto.ClientPayload.encode(generateLoginNode('15551234567:3@s.whatsapp.net', {
        version: [2, 3000, 1019707846], browser: ['Ubuntu', 'Chrome', '22.04'], countryCode: 'US',
        syncFullHistory: false })).finish();

    const intro = Defaults.NOISE_WA_HEADER; // 57 41 06 02
    const client = makeNoiseHandler({ keyPair: clientEph, NOISE_HEADER: intro, logger });
    const server = makeNoiseHandler({ keyPair: { public: clientEph.public, private: null },
        NOISE_HEADER: intro, logger });

    // -> e
    const clientHello = proto.HandshakeMessage.encode({ clientHello: { ephemeral: clientEph.public } }).finish();
    const clientHelloWire = client.encodeFrame(clientHello); // intro + frame, as sent

    // <- e, ee, s, es (+ cert chain payload)
    server.authenticate(serverEph.public);
    const dh1 = Curve.sharedKey(serverEph.private, clientEph.public);
    await server.mixIntoKey(dh1);
    const staticCt = server.encrypt(serverStatic.public);
    const dh2 = Curve.sharedKey(serverStatic.private, clientEph.public);
    await server.mixIntoKey(dh2);
    const payloadCt = server.encrypt(certChain);
    const serverHello = proto.HandshakeMessage.encode({ serverHello: {
        ephemeral: serverEph.public, static: staticCt, payload: payloadCt } }).finish();

    // -> s, se (+ ClientPayload), exactly as socket.js validateConnection
    const handshake = proto.HandshakeMessage.decode(serverHello);
    const keyEnc = await client.processHandshake(handshake, clientStatic);
    const payloadEnc = client.encrypt(clientPayload);
    const clientFinish = proto.HandshakeMessage.encode({ clientFinish: { static: keyEnc, payload: payloadEnc } }).finish();
    client.finishInit();

    // responder consumes the client finish
    assertEq(server.decrypt(keyEnc), clientStatic.public, 'client static');
    const dh3 = Curve.sharedKey(serverEph.private, clientStatic.public);
    await server.mixIntoKey(dh3);
    assertEq(server.decrypt(payloadEnc), clientPayload, 'client payload');

    // split, computed independently from the chaining key
    let ck = Buffer.from(Defaults.NOISE_MODE);
    for (const dh of [dh1, dh2, dh3]) ck = (await hkdf(dh, 64, { salt: ck, info: '' })).slice(0, 32);
    const split = await hkdf(Buffer.alloc(0), 64, { salt: ck, info: '' });
    const serverWrite = split.slice(32, 64);

    const iv = (n) => { const b = Buffer.alloc(12); b.writeUInt32BE(n, 8); return b; };
    // client -> server frames (Baileys encodeFrame: 3-byte length + ciphertext)
    const c2s = [
        encodeBinaryNode({ tag: 'iq', attrs: { id: '1', type: 'get', xmlns: 'w:p', to: '@s.whatsapp.net' },
            content: [{ tag: 'ping', attrs: {} }] }),
        encodeBinaryNode({ tag: 'presence', attrs: { type: 'available', name: 'kat' } }),
    ];
    const c2sWire = c2s.map((pt) => client.encodeFrame(pt));
    // server -> client frames, checked by Baileys' client decoder
    const s2c = [
        encodeBinaryNode({ tag: 'success', attrs: { t: '1750000000' } }),
        encodeBinaryNode({ tag: 'iq', attrs: { id: '1', type: 'result', from: '@s.whatsapp.net' } }),
    ];
    const s2cCt = s2c.map((pt, i) => aesEncryptGCM(pt, serverWrite, iv(i), Buffer.alloc(0)));
    const seen = [];
    for (const ct of s2cCt) {
        const frame = Buffer.concat([Buffer.from([0, ct.length >> 8, ct.length & 255]), ct]);
        await client.decodeFrame(frame, (node) => seen.push(node.tag));
    }
    if (seen.join(',') !== 'success,iq') throw new Error('Baileys did not decode the server frames: ' + seen);

    const out = [];
    out.push('# WhatsApp Noise_XX_25519_AESGCM_SHA256 transcript with fixed keys, produced by Baileys');
    out.push('# 6.17.16 (noise-handler.js, WAProto, WABinary) and libsignal-node 6.0.0 (XEdDSA).');
    out.push('# Generated by tests/vectors/gen_noise.js (deterministic: a rerun gives the same file).');
    out.push('# *_priv: clamped X25519 private keys. c2s_N/s2c_N: transport plaintexts (flag byte +');
    out.push('# binary node) and ciphertexts (counter N, AAD empty). now: unix time inside the validity.');
    out.push('');
    const put = (k, v) => out.push(k + ' = ' + hex(v));
    const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };
    put('prologue', intro);
    put('client_eph_priv', clientEph.private);
    put('client_eph_pub', clientEph.public);
    put('client_static_priv', clientStatic.private);
    put('client_static_pub', clientStatic.public);
    put('server_eph_priv', serverEph.private);
    put('server_eph_pub', serverEph.public);
    put('server_static_priv', serverStatic.private);
    put('server_static_pub', serverStatic.public);
    put('root_priv', root.private);
    put('root_pub', root.public);
    put('inter_priv', inter.private);
    put('now', u64(NOW));
    put('cert_chain', certChain);
    put('client_payload', clientPayload);
    put('client_hello', clientHello);
    put('client_hello_wire', clientHelloWire);
    put('server_hello', serverHello);
    put('client_finish', clientFinish);
    out.push('');
    for (let i = 0; i < c2s.length; i++) {
        put('c2s_pt', c2s[i]);
        put('c2s_ct', c2sWire[i].slice(3));
        put('s2c_pt', s2c[i]);
        put('s2c_ct', s2cCt[i]);
        out.push('');
    }
    process.stdout.write(out.join('\n'));
}

main().catch((e) => { console.error(e); process.exit(1); });
