// shim.mjs - what differs between Baileys 6.17.16 (CommonJS, npm alias baileys6) and
// 7.0.0-rc14 (ESM, alias baileys7), kept in one place for peer.mjs and selftest.mjs:
//   loadBaileys(version)          -> one API object for either version
//   buildSend(B, cmd, store)      -> { jid, content, options } for sock.sendMessage
//   formatMessage(B, m, upsert)   -> the `message` event of peer.mjs for one WAMessage
//   compact(value)                -> JSON-safe copy (bytes base64, Long/BigInt as strings)
//   openRawSocket(url, dir, ms)   -> a Baileys 7 socket for hand-built stanzas (tests)
// Event and content shapes follow Baileys' lib/Types/{Events,Message}.d.ts and
// lib/Utils/messages.js (generateWAMessageContent) in both versions.
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from 'fs';
import { createRequire } from 'module';
import path from 'path';
import { fileURLToPath } from 'url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
export const NODE_MODULES = path.resolve(here, '..', 'node_modules');

/** Exits 1 with a clear message when the Node test peers are not installed. */
export function requireNodeModules(who) {
    for (const p of ['baileys6', 'baileys7', 'ws', 'pino']) {
        if (!fs.existsSync(path.join(NODE_MODULES, p, 'package.json'))) {
            process.stderr.write(`${who}: ${NODE_MODULES} lacks ${p}: run scripts/deps.sh first\n`);
            process.exit(1);
        }
    }
}

/** Loads Baileys 6 or 7 and returns the parts the peer uses under one set of names. */
export async function loadBaileys(version) {
    const v = Number(version);
    let m;
    if (v === 6) m = require('baileys6');
    else if (v === 7) m = await import('baileys7');
    else throw new Error(`unknown Baileys version ${version} (want 6 or 7)`);
    const pkg = JSON.parse(
        fs.readFileSync(path.join(NODE_MODULES, `baileys${v}`, 'package.json'), 'utf8'));
    const makeWASocket = typeof m.default === 'function' ? m.default : m.makeWASocket;
    return {
        v,
        pkgVersion: pkg.version,
        makeWASocket,
        useMultiFileAuthState: m.useMultiFileAuthState,
        Browsers: m.Browsers,
        DisconnectReason: m.DisconnectReason,
        WAMessageStatus: m.WAMessageStatus,
        proto: m.proto,
        getContentType: m.getContentType,
        normalizeMessageContent: m.normalizeMessageContent,
        generateWAMessage: m.generateWAMessage,
    };
}

/**
 * The credentials in authDir in a raw Baileys 7 socket to url (sendNode / query: stanzas built
 * by hand go out as they are), for tests of what a server or client does with bad input.
 * Resolves { B, sock } once it is open (rejects after waitMs); the caller ends it.
 */
export async function openRawSocket(url, authDir, waitMs) {
    const B = await loadBaileys(7);
    const { default: pino } = await import('pino');
    const sock = B.makeWASocket({
        waWebSocketUrl: url, auth: (await B.useMultiFileAuthState(authDir)).state,
        logger: pino({ level: 'silent' }), markOnlineOnConnect: false, syncFullHistory: false,
        browser: B.Browsers.macOS('Desktop'),
    });
    try {
        await new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error('raw socket not open')), waitMs);
            sock.ev.on('connection.update', u => {
                if (u.connection === 'open') { clearTimeout(t); resolve(); }
                if (u.connection === 'close') { clearTimeout(t); reject(new Error('raw socket closed')); }
            });
        });
    } catch (e) {
        await sock.end(undefined);
        throw e;
    }
    return { B, sock };
}

// ---- JSON ----

function isLong(v) {
    return v && typeof v === 'object' && typeof v.low === 'number' && typeof v.high === 'number' &&
        typeof v.unsigned === 'boolean';
}

function replacer(_k, v) {
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
    if (v && v.type === 'Buffer' && Array.isArray(v.data)) return Buffer.from(v.data).toString('base64');
    if (isLong(v)) return v.toString();
    return v;
}

/** JSON-safe deep copy: bytes as base64, Long and BigInt as decimal strings, undefined dropped. */
export function compact(value) {
    if (value === undefined) return undefined;
    return JSON.parse(JSON.stringify(value, replacer));
}

/** proto.Message (instance or plain object) as protobuf JSON: enum names, base64 bytes. */
export function messageJson(B, msg) {
    if (!msg) return null;
    try {
        const inst = B.proto.Message.fromObject(msg);
        return compact(B.proto.Message.toObject(inst, { longs: String, enums: String, bytes: String }));
    } catch {
        return compact(msg);
    }
}

// ---- JIDs and keys ----

/** "+49 123" / "49123" -> "49123@s.whatsapp.net"; anything with '@' is kept. */
export function toJid(x) {
    if (typeof x !== 'string' && typeof x !== 'number') throw new Error(`bad jid ${JSON.stringify(x)}`);
    const s = String(x);
    if (s.includes('@')) return s;
    if (/^\d+-\d+$/.test(s)) return `${s}@g.us`;
    const digits = s.replace(/[^0-9]/g, '');
    if (!digits) throw new Error(`bad jid ${JSON.stringify(x)}`);
    return `${digits}@s.whatsapp.net`;
}

export function compactKey(k) {
    if (!k) return undefined;
    const out = { remoteJid: k.remoteJid, id: k.id, fromMe: !!k.fromMe };
    for (const f of ['participant', 'remoteJidAlt', 'participantAlt', 'addressingMode']) {
        if (k[f]) out[f] = k[f];
    }
    return out;
}

/**
 * Message key from a command: an id string, or {id, remoteJid|jid, fromMe, participant}.
 * Missing fields come from the stored message with that id, then from the defaults.
 */
export function resolveKey(k, store, defJid, defFromMe) {
    if (k === undefined || k === null) throw new Error('missing message key');
    const o = typeof k === 'string' ? { id: k } : k;
    if (!o.id) throw new Error('message key without id');
    const stored = store && store.get(o.id);
    const sk = (stored && stored.key) || {};
    const key = {
        remoteJid: o.remoteJid || o.jid ? toJid(o.remoteJid || o.jid) : sk.remoteJid || defJid,
        id: o.id,
        fromMe: o.fromMe !== undefined ? !!o.fromMe : sk.fromMe !== undefined ? !!sk.fromMe : defFromMe,
    };
    const participant = o.participant || sk.participant;
    if (participant) key.participant = toJid(participant);
    if (!key.remoteJid) throw new Error(`cannot tell the chat of message ${o.id}`);
    return key;
}

// ---- send ----

function vcardFor(c) {
    if (c.vcard) return c.vcard;
    const phone = String(c.phone || '').replace(/[^0-9]/g, '');
    return `BEGIN:VCARD\nVERSION:3.0\nFN:${c.name || phone}\n` +
        `TEL;type=CELL;type=VOICE;waid=${phone}:+${phone}\nEND:VCARD`;
}

/**
 * Translates a `send` command into sendMessage arguments. Exactly one of text, content (raw
 * Baileys content), reaction {key,text}, edit {key,text}, delete {key}, location
 * {lat,lng,name?,address?}, contact {name, phone | vcard} (or contacts: [...]); modifiers:
 * mentions [jid], quoted {id, jid?, participant?, fromMe?, text?}, id (message id to use).
 */
export function buildSend(cmd, store) {
    if (!cmd.to) throw new Error('send needs "to"');
    const jid = toJid(cmd.to);
    let content;
    if (cmd.content) {
        content = cmd.content;
    } else if (cmd.reaction) {
        content = {
            react: {
                text: cmd.reaction.text ?? '',
                key: resolveKey(cmd.reaction.key, store, jid, false),
            },
        };
    } else if (cmd.edit) {
        const text = cmd.edit.text ?? cmd.text;
        if (typeof text !== 'string') throw new Error('edit needs text');
        content = { text, edit: resolveKey(cmd.edit.key, store, jid, true), linkPreview: null };
    } else if (cmd.delete) {
        content = { delete: resolveKey(cmd.delete.key, store, jid, true) };
    } else if (cmd.location) {
        const l = cmd.location;
        const loc = {
            degreesLatitude: Number(l.lat ?? l.degreesLatitude),
            degreesLongitude: Number(l.lng ?? l.lon ?? l.degreesLongitude),
        };
        if (Number.isNaN(loc.degreesLatitude) || Number.isNaN(loc.degreesLongitude)) {
            throw new Error('location needs lat and lng');
        }
        if (l.name) loc.name = l.name;
        if (l.address) loc.address = l.address;
        content = { location: loc };
    } else if (cmd.contact || cmd.contacts) {
        const list = cmd.contacts || [cmd.contact];
        const contacts = list.map(c => ({ displayName: c.name || c.phone, vcard: vcardFor(c) }));
        content = { contacts: { displayName: cmd.displayName || contacts[0].displayName, contacts } };
    } else {
        if (typeof cmd.text !== 'string') throw new Error('send needs text (or another kind)');
        content = { text: cmd.text };
        // Baileys fetches link previews over the network when text holds a URL: not here.
        if (!cmd.linkPreview) content.linkPreview = null;
    }
    if (Array.isArray(cmd.mentions) && cmd.mentions.length) {
        content = { ...content, mentions: cmd.mentions.map(toJid) };
    }
    const options = {};
    if (cmd.quoted) {
        const q = typeof cmd.quoted === 'string' ? { id: cmd.quoted } : cmd.quoted;
        const stored = store && store.get(q.id);
        if (stored && stored.message) {
            options.quoted = stored;
        } else {
            options.quoted = {
                key: resolveKey(q, store, jid, false),
                message: { conversation: q.text ?? '' },
            };
        }
    }
    if (cmd.id) options.messageId = String(cmd.id);
    return { jid, content, options };
}

// ---- receive ----

// By content type: decoded protobufjs instances of 6.17 carry "" defaults on the prototype.
const TEXT_FIELD = {
    conversation: null,
    extendedTextMessage: 'text',
    imageMessage: 'caption',
    videoMessage: 'caption',
    documentMessage: 'caption',
};

function textOf(B, c) {
    const type = c ? B.getContentType(c) : undefined;
    if (!type || !(type in TEXT_FIELD)) return null;
    const field = TEXT_FIELD[type];
    const t = field ? c[type] && c[type][field] : c[type];
    return typeof t === 'string' ? t : null;
}

function enumName(e, v) {
    if (v === undefined || v === null) return undefined;
    return (e && e[v]) || v;
}

/** The `message` event for one WAMessage from messages.upsert (upsert = 'notify' | 'append'). */
export function formatMessage(B, m, upsert) {
    const k = m.key || {};
    const content = m.message ? B.normalizeMessageContent(m.message) : undefined;
    const type = content ? B.getContentType(content) : undefined;
    const ev = {
        ev: 'message',
        id: k.id,
        from: k.remoteJid,
        participant: k.participant || m.participant || undefined,
        fromMe: !!k.fromMe,
        type: type || null,
        text: textOf(B, content),
        upsert,
    };
    if (k.remoteJidAlt) ev.fromAlt = k.remoteJidAlt;
    if (k.participantAlt) ev.participantAlt = k.participantAlt;
    if (m.pushName) ev.pushName = m.pushName;
    if (m.messageTimestamp !== undefined && m.messageTimestamp !== null) {
        ev.ts = Number(m.messageTimestamp.toString());
    }
    const inner = content && type ? content[type] : undefined;
    const ctx = inner && typeof inner === 'object' ? inner.contextInfo : undefined;
    if (ctx && ctx.stanzaId) {
        ev.quoted = { id: ctx.stanzaId, participant: ctx.participant || undefined };
        if (ctx.remoteJid) ev.quoted.remoteJid = ctx.remoteJid;
        const qc = ctx.quotedMessage ? B.normalizeMessageContent(ctx.quotedMessage) : undefined;
        if (textOf(B, qc) !== null) ev.quoted.text = textOf(B, qc);
    }
    if (ctx && ctx.mentionedJid && ctx.mentionedJid.length) ev.mentions = [...ctx.mentionedJid];
    if (content && content.reactionMessage) {
        const r = content.reactionMessage;
        ev.reaction = { key: compactKey(r.key), text: r.text ?? '' };
    }
    if (content && content.protocolMessage) {
        const p = content.protocolMessage;
        const name = enumName(B.proto.Message.ProtocolMessage.Type, p.type);
        ev.protocol = name;
        if (name === 'REVOKE') ev.revoke = { key: compactKey(p.key) };
        if (name === 'MESSAGE_EDIT') {
            const em = p.editedMessage ? B.normalizeMessageContent(p.editedMessage) : undefined;
            ev.edit = { key: compactKey(p.key), text: textOf(B, em) };
        }
    }
    if (content && content.locationMessage) {
        const l = content.locationMessage;
        ev.location = { lat: l.degreesLatitude, lng: l.degreesLongitude, name: l.name || undefined };
    }
    if (m.messageStubType) {
        ev.stub = enumName(B.proto.WebMessageInfo.StubType, m.messageStubType);
        if (m.messageStubParameters && m.messageStubParameters.length) {
            ev.stubParams = [...m.messageStubParameters];
        }
    }
    ev.key = compactKey(k);
    ev.raw = messageJson(B, m.message);
    return ev;
}

const STATUS_NAMES = ['error', 'pending', 'server_ack', 'delivery', 'read', 'played'];

/** WAMessageStatus number -> receipt type name. */
export function statusName(s) {
    return STATUS_NAMES[Number(s)] || String(s);
}

/** message-receipt.update's UserReceipt -> receipt type name. */
export function userReceiptType(r) {
    if (r.playedTimestamp) return 'played';
    if (r.readTimestamp) return 'read';
    if (r.receiptTimestamp) return 'delivery';
    if (r.pendingDeviceJid && r.pendingDeviceJid.length) return 'pending';
    return 'delivery';
}

/** GroupParticipant (7: object) or jid (6: string) -> jid. */
export function participantJid(p) {
    return typeof p === 'string' ? p : p && p.id;
}

/** GroupMetadata -> the plain fields the peer reports. */
export function groupInfo(g) {
    const parts = (g.participants || []).map(p => participantJid(p)).filter(Boolean);
    const out = { id: g.id, subject: g.subject, participants: parts };
    if (g.owner) out.owner = g.owner;
    const admins = (g.participants || []).filter(p => p && typeof p === 'object' && p.admin)
        .map(p => p.id);
    if (admins.length) out.admins = admins;
    const pns = (g.participants || []).filter(p => p && typeof p === 'object' && p.phoneNumber);
    if (pns.length) out.participantsPn = (g.participants || []).map(p => p.phoneNumber || p.id);
    if (g.addressingMode) out.addressingMode = g.addressingMode;
    return out;
}
