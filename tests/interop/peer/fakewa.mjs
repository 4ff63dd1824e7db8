// fakewa.mjs - a minimal stand-in for a WhatsApp server, only for the peer driver's self-test:
// a `ws` server on 127.0.0.1:0 that records each connection (path, Origin, first message) and,
// when asked, completes the Noise_XX handshake as responder (PROTOCOL.md §1-2), decodes the
// ClientPayload and exchanges binary nodes with the dictionary the client announced in its intro
// (2: Baileys 6.17's codec, 3: Baileys 7's). Crypto primitives come from Node and from Baileys'
// own Curve helpers; the codec is Baileys'. It knows nothing of Signal, pairing or messaging:
// the tests script those stanzas by hand.
// SPDX-License-Identifier: GPL-3.0-or-later
import crypto from 'crypto';
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const { WebSocketServer } = require('ws');
const b6 = require('baileys6');
const { proto, Curve } = b6;
const CODEC = {
    2: require('baileys6/lib/WABinary'),
    3: await import('baileys7/lib/WABinary/index.js'),
};

const NOISE_NAME = Buffer.from('Noise_XX_25519_AESGCM_SHA256\0\0\0\0');
const INTRO_LEN = 4;
const FRAME_HDR = 3;
const WAIT_MS = 15000;
// Baileys 6.17 does not await its key split: the first transport frame must not come too soon.
const FIRST_FRAME_DELAY_MS = 50;

const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
const hkdf64 = (salt, ikm) => Buffer.from(crypto.hkdfSync('sha256', ikm, salt, Buffer.alloc(0), 64));

function iv(n) {
    const b = Buffer.alloc(12);
    b.writeUInt32BE(n, 8);
    return b;
}

function seal(key, n, aad, pt) {
    const c = crypto.createCipheriv('aes-256-gcm', key, iv(n));
    c.setAAD(aad);
    return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
}

function open(key, n, aad, ct) {
    const d = crypto.createDecipheriv('aes-256-gcm', key, iv(n));
    d.setAAD(aad);
    d.setAuthTag(ct.subarray(ct.length - 16));
    return Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]);
}

/** Server certificate chain: details/signatures are well-formed (64-byte XEdDSA signatures). */
function certChain(serverStaticPub) {
    const inter = Curve.generateKeyPair();
    const root = Curve.generateKeyPair(); // not WhatsApp's root: Baileys does not check it
    const interDetails = proto.CertChain.NoiseCertificate.Details.encode({
        serial: 1, issuerSerial: 0, key: inter.public, notBefore: 0, notAfter: 4102444800,
    }).finish();
    const leafDetails = proto.CertChain.NoiseCertificate.Details.encode({
        serial: 2, issuerSerial: 1, key: serverStaticPub, notBefore: 0, notAfter: 4102444800,
    }).finish();
    return proto.CertChain.encode({
        leaf: { details: leafDetails, signature: Curve.sign(inter.private, leafDetails) },
        intermediate: { details: interDetails, signature: Curve.sign(root.private, interDetails) },
    }).finish();
}

class Queue {
    constructor(label) {
        this.label = label;
        this.items = [];
        this.waiters = [];
    }

    push(x) {
        const i = this.waiters.findIndex(w => w.fn(x));
        if (i >= 0) {
            const [w] = this.waiters.splice(i, 1);
            clearTimeout(w.timer);
            w.resolve(x);
            return;
        }
        this.items.push(x);
    }

    next(fn = () => true, ms = WAIT_MS) {
        const i = this.items.findIndex(fn);
        if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]);
        return new Promise((resolve, reject) => {
            const w = { fn, resolve };
            w.timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                const what = fn.toString().slice(0, 120);
                reject(new Error(`${this.label}: nothing matching ${what} within ${ms} ms`));
            }, ms);
            this.waiters.push(w);
        });
    }
}

class Conn {
    constructor(ws, req, handshake) {
        this.ws = ws;
        this.path = req.url;
        this.origin = req.headers.origin;
        this.closed = false;
        this.dict = null;
        this.payload = null; // decoded ClientPayload
        this.nodes = new Queue('fakewa nodes');
        this.autoIq = true;
        this.iqContent = {}; // xmlns -> (node) => content of the result
        this.inBuf = Buffer.alloc(0);
        this.sawIntro = false;
        this.hs = handshake ? { h: NOISE_NAME, ck: NOISE_NAME, k: null, n: 0 } : null;
        this.first = new Promise(r => (this.resolveFirst = r));
        this.ready = new Promise((res, rej) => {
            this.resolveReady = res;
            this.rejectReady = rej;
        });
        this.ready.catch(() => {});
        this.gone = new Promise(r => ws.on('close', () => {
            this.closed = true;
            this.rejectReady(new Error('closed before the handshake ended'));
            r();
        }));
        ws.on('error', () => {});
        ws.on('message', (data, isBinary) => {
            const b = Buffer.from(data);
            this.resolveFirst({ data: b, isBinary });
            if (this.hs || this.tx) {
                this.onBytes(b).catch(err => {
                    this.error = err;
                    this.rejectReady(err);
                    ws.terminate();
                });
            }
        });
    }

    mixHash(d) {
        this.hs.h = sha256(this.hs.h, d);
    }

    mixKey(dh) {
        const out = hkdf64(this.hs.ck, Buffer.from(dh));
        this.hs.ck = out.subarray(0, 32);
        this.hs.k = out.subarray(32);
        this.hs.n = 0;
    }

    hsEncrypt(pt) {
        const ct = seal(this.hs.k, this.hs.n++, this.hs.h, pt);
        this.mixHash(ct);
        return ct;
    }

    hsDecrypt(ct) {
        const pt = open(this.hs.k, this.hs.n++, this.hs.h, ct);
        this.mixHash(ct);
        return pt;
    }

    async onBytes(b) {
        this.inBuf = Buffer.concat([this.inBuf, b]);
        if (!this.sawIntro) {
            if (this.inBuf.length < INTRO_LEN) return;
            const intro = this.inBuf.subarray(0, INTRO_LEN);
            if (intro[0] !== 0x57 || intro[1] !== 0x41 || intro[2] !== 6) throw new Error('bad intro');
            this.dict = intro[3];
            if (!CODEC[this.dict]) throw new Error(`unknown dictionary ${this.dict}`);
            this.mixHash(intro);
            this.inBuf = this.inBuf.subarray(INTRO_LEN);
            this.sawIntro = true;
        }
        while (this.inBuf.length >= FRAME_HDR) {
            const len = this.inBuf.readUIntBE(0, FRAME_HDR);
            if (this.inBuf.length < FRAME_HDR + len) return;
            const frame = this.inBuf.subarray(FRAME_HDR, FRAME_HDR + len);
            this.inBuf = this.inBuf.subarray(FRAME_HDR + len);
            await this.onFrame(Buffer.from(frame));
        }
    }

    async onFrame(frame) {
        if (this.tx) {
            const pt = open(this.tx.rk, this.tx.rn++, Buffer.alloc(0), frame);
            const node = await CODEC[this.dict].decodeBinaryNode(pt);
            if (this.autoIq) this.answerIq(node);
            this.nodes.push(node);
            return;
        }
        const msg = proto.HandshakeMessage.decode(frame);
        if (msg.clientHello && !this.e) {
            const ce = Buffer.from(msg.clientHello.ephemeral);
            this.mixHash(ce);
            this.e = Curve.generateKeyPair();
            this.s = Curve.generateKeyPair();
            this.mixHash(this.e.public);
            this.mixKey(Curve.sharedKey(this.e.private, ce));
            const stat = this.hsEncrypt(this.s.public);
            this.mixKey(Curve.sharedKey(this.s.private, ce));
            const payload = this.hsEncrypt(certChain(this.s.public));
            this.sendFrame(proto.HandshakeMessage.encode({
                serverHello: { ephemeral: this.e.public, static: stat, payload },
            }).finish());
        } else if (msg.clientFinish && this.e) {
            const cs = this.hsDecrypt(Buffer.from(msg.clientFinish.static));
            this.clientStatic = cs;
            this.mixKey(Curve.sharedKey(this.e.private, cs));
            this.payload = proto.ClientPayload.decode(this.hsDecrypt(Buffer.from(msg.clientFinish.payload)));
            const out = hkdf64(this.hs.ck, Buffer.alloc(0));
            this.tx = { rk: out.subarray(0, 32), wk: out.subarray(32), rn: 0, wn: 0 };
            this.hs = null;
            setTimeout(() => this.resolveReady(this), FIRST_FRAME_DELAY_MS);
        } else {
            throw new Error('unexpected handshake message');
        }
    }

    sendFrame(body) {
        const hdr = Buffer.alloc(FRAME_HDR);
        hdr.writeUIntBE(body.length, 0, FRAME_HDR);
        this.ws.send(Buffer.concat([hdr, body]));
    }

    /** Sends one binary node ({tag, attrs, content}) over the transport. */
    send(node) {
        if (!this.tx) throw new Error('handshake not finished');
        const pt = CODEC[this.dict].encodeBinaryNode(node);
        this.sendFrame(seal(this.tx.wk, this.tx.wn++, Buffer.alloc(0), pt));
    }

    /** Answers get/set iqs with a result (content from iqContent[xmlns], if any). */
    answerIq(node) {
        if (node.tag !== 'iq' || !node.attrs.id) return;
        if (node.attrs.type !== 'get' && node.attrs.type !== 'set') return;
        const f = this.iqContent[node.attrs.xmlns];
        const content = f ? f(node) : undefined;
        this.send({ tag: 'iq', attrs: { id: node.attrs.id, type: 'result', from: '@s.whatsapp.net' },
            content });
    }

    /** The next node from the client that matches fn. */
    nextNode(fn, ms) {
        return this.nodes.next(fn, ms);
    }
}

/**
 * Starts the server. opts.handshake: complete the Noise handshake (default false: record only).
 * Returns { ready, url(), count(), next(ms) (the next new connection), close() }.
 */
export function fakeWa(opts = {}) {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    const conns = [];
    const q = new Queue('fakewa connections');
    wss.on('connection', (ws, req) => {
        const c = new Conn(ws, req, !!opts.handshake);
        conns.push(c);
        q.push(c);
    });
    return {
        ready: new Promise(resolve => wss.on('listening', resolve)),
        url: () => `ws://127.0.0.1:${wss.address().port}/ws/chat`,
        count: () => conns.length,
        next: ms => q.next(() => true, ms),
        close: () => new Promise(resolve => {
            for (const c of conns) c.ws.terminate();
            wss.close(resolve);
        }),
    };
}

export const S_WHATSAPP_NET = '@s.whatsapp.net';
