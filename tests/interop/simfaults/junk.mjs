// junk.mjs - misbehaving clients for wasim's bad-input tests, each on its own connection:
//   rawTcp(host, port, chunks)        plain TCP: writes the chunks, collects what comes back
//   wsJunk(url, frames)               a real WebSocket (the `ws` package): upgrade, then the frames
//   handshaken(url)                   a client that completes WhatsApp's Noise XX handshake
//                                     (Baileys 6.17's own noise handler and registration
//                                     payload) and then lets the test send anything
// Every helper resolves with how the server ended the connection ({ closed, ms, data, code })
// or rejects when the server keeps it open longer than the timeout.
// SPDX-License-Identifier: GPL-3.0-or-later
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'node_modules', 'x.js'));
const WebSocket = require('ws');
const B = require('baileys6');

export const CLOSE_MS = 5000; // the server must hang up on bad input within this

/** "ws://h:p/ws/chat" -> { host, port }. */
export function hostPort(url) {
    const u = new URL(url);
    return { host: u.hostname, port: Number(u.port) };
}

/**
 * Plain TCP: connects, writes each chunk (Buffer or string), and resolves when the server
 * closes: { closed: true, ms (from the last write), data (Buffer of everything received) }.
 * Rejects if the server keeps the connection open for ms after the last write.
 */
export function rawTcp(host, port, chunks, ms = CLOSE_MS) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ host, port });
        const got = [];
        let t0 = 0;
        let timer = null;
        const finish = (err, v) => {
            clearTimeout(timer);
            sock.destroy();
            if (err) reject(err);
            else resolve(v);
        };
        sock.on('connect', () => {
            for (const c of chunks) sock.write(c);
            t0 = Date.now();
            timer = setTimeout(() => finish(new Error(`server kept a bad connection open ${ms} ms ` +
                `(received ${Buffer.concat(got).length} bytes)`)), ms);
        });
        sock.on('data', d => got.push(d));
        sock.on('error', () => {}); // a reset is a close too
        sock.on('close', () => finish(null, { closed: true, ms: Date.now() - t0, data: Buffer.concat(got) }));
    });
}

/**
 * A TCP connection that sends nothing (or only `chunks`), for the handshake deadline. Returns
 * { closed: Promise<{ms}>, destroy() }; closed resolves when the server hangs up.
 */
export function idleTcp(host, port, chunks = []) {
    const sock = net.connect({ host, port });
    const t0 = Date.now();
    sock.on('connect', () => {
        for (const c of chunks) sock.write(c);
    });
    sock.on('error', () => {});
    sock.on('data', () => {});
    const closed = new Promise(resolve => sock.on('close', () => resolve({ ms: Date.now() - t0 })));
    return { closed, destroy: () => sock.destroy() };
}

/**
 * A WebSocket client: upgrades, sends each frame (Buffer: binary, string: text), resolves
 * { closed: true, ms, code } when the server closes. Rejects on an upgrade failure (with the
 * HTTP status in err.status) or when the server keeps it open ms after the last frame.
 */
export function wsJunk(url, frames, ms = CLOSE_MS) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { origin: 'https://web.whatsapp.com' });
        let t0 = 0;
        let timer = null;
        let opened = false;
        ws.on('unexpected-response', (req, res) => {
            const err = new Error(`upgrade refused: HTTP ${res.statusCode}`);
            err.status = res.statusCode;
            clearTimeout(timer);
            req.destroy();
            reject(err);
        });
        ws.on('open', () => {
            opened = true;
            for (const f of frames) ws.send(f, { binary: typeof f !== 'string' });
            t0 = Date.now();
            timer = setTimeout(() => {
                ws.terminate();
                reject(new Error(`server kept a bad WebSocket open ${ms} ms`));
            }, ms);
        });
        ws.on('error', () => {});
        ws.on('close', code => {
            clearTimeout(timer);
            if (opened) resolve({ closed: true, ms: Date.now() - t0, code });
            else reject(new Error(`closed before the upgrade (${code})`));
        });
    });
}

/** A valid WebSocket upgrade request for /ws/chat. */
export const UPGRADE = 'GET /ws/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
    'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Sec-WebSocket-Version: 13\r\nOrigin: https://web.whatsapp.com\r\n\r\n';

/** One masked binary WebSocket frame (payload < 126 bytes), as a client must send it. */
export function maskedFrame(payload) {
    const p = Buffer.from(payload);
    if (p.length > 125) throw new Error('maskedFrame: payload too long');
    const mask = crypto.randomBytes(4);
    const out = Buffer.alloc(6 + p.length);
    out[0] = 0x82;
    out[1] = 0x80 | p.length;
    mask.copy(out, 2);
    for (let i = 0; i < p.length; i++) out[6 + i] = p[i] ^ mask[i & 3];
    return out;
}

/** WA framing: 3-byte big-endian length, then the bytes. */
export function waFrame(bytes) {
    const b = Buffer.alloc(3 + bytes.length);
    b.writeUInt8(bytes.length >> 16, 0);
    b.writeUInt16BE(bytes.length & 0xffff, 1);
    Buffer.from(bytes).copy(b, 3);
    return b;
}

/** The intro a client sends before its first frame: "WA", 6, dictionary version. */
export function intro(dict = 3) {
    return Buffer.from([0x57, 0x41, 6, dict]);
}

/** A HandshakeMessage with a clientHello carrying `ephemeral`. */
export function clientHello(ephemeral) {
    return Buffer.from(B.proto.HandshakeMessage.encode({ clientHello: { ephemeral } }).finish());
}

const silentLogger = {
    level: 'silent',
    child() {
        return silentLogger;
    },
    trace() {},
    debug() {},
    info() {},
    warn() {},
    error() {},
};

/**
 * Completes the Noise XX handshake as an unpaired Baileys 6.17 would (registration payload),
 * waits for the server's first stanza (the pair-device iq, proof that the session is up) and
 * returns { first (decoded node), sendEncrypted(bytes), sendRaw(bytes), closed: Promise<{ms, code}> }.
 * opts.payload: ClientPayload bytes to send instead of the registration payload.
 */
export async function handshaken(url, opts = {}) {
    const ws = new WebSocket(url, { origin: 'https://web.whatsapp.com' });
    const eph = B.Curve.generateKeyPair();
    const creds = B.initAuthCreds();
    const noise = B.makeNoiseHandler({ keyPair: eph, NOISE_HEADER: B.NOISE_WA_HEADER, logger: silentLogger });
    let onFrame = null;
    let closedAt = 0;
    const closed = new Promise(resolve => ws.on('close', code => {
        closedAt = Date.now();
        resolve({ code, at: closedAt });
    }));
    ws.on('error', () => {});
    ws.on('message', data => {
        noise.decodeFrame(data, f => onFrame && onFrame(f)).catch(() => {});
    });
    const nextFrame = ms => new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('handshaken: no frame from the server')), ms);
        onFrame = f => {
            clearTimeout(t);
            onFrame = null;
            resolve(f);
        };
        closed.then(() => reject(new Error('handshaken: server closed during the handshake')));
    });
    await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('close', () => reject(new Error('handshaken: upgrade failed')));
    });
    const serverHelloP = nextFrame(CLOSE_MS);
    ws.send(noise.encodeFrame(clientHello(eph.public)));
    const hs = B.proto.HandshakeMessage.decode(await serverHelloP);
    const keyEnc = await noise.processHandshake(hs, creds.noiseKey);
    const payload = opts.payload || B.proto.ClientPayload.encode(
        B.generateRegistrationNode(creds, { ...B.DEFAULT_CONNECTION_CONFIG, browser: B.Browsers.macOS('Desktop') })).finish();
    const payloadEnc = noise.encrypt(payload);
    const firstP = opts.payload ? null : nextFrame(CLOSE_MS);
    ws.send(noise.encodeFrame(B.proto.HandshakeMessage.encode({
        clientFinish: { static: keyEnc, payload: payloadEnc } }).finish()));
    noise.finishInit();
    const first = firstP ? await firstP : null;
    return {
        first,
        closed,
        /** Encrypts bytes as the next transport frame and sends it. */
        sendEncrypted(bytes) {
            ws.send(noise.encodeFrame(Buffer.from(bytes)));
        },
        /** Sends bytes as one WebSocket message, as is. */
        sendRaw(bytes) {
            ws.send(Buffer.from(bytes));
        },
        /** An encoded binary node (dictionary 2, as Baileys 6.17 speaks). */
        encodeNode(node) {
            return B.encodeBinaryNode(node);
        },
        terminate() {
            ws.terminate();
        },
    };
}

export const randomBytes = n => crypto.randomBytes(n);
