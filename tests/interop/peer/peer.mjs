// peer.mjs - one real Baileys client (6.17.16 or 7.0.0-rc14) driven over JSON lines, for the
// interop tests against wasim. The protocol (events on stdout, commands on stdin) is documented
// in tests/interop/peer/README.md.
//
//   node peer.mjs --version 6|7 --url ws://127.0.0.1:PORT/ws/chat --auth DIR [--name NAME]
//        [--pair-phone NUMBER] [--log-level silent|debug|...] [--reconnect 515,408,428,503|none]
//        [--keepalive MS]
//
// Behaves like a real app: saves credentials on every creds.update (useMultiFileAuthState),
// reconnects with them after a close whose status is in the --reconnect list (515 restart
// required at once, others with a 0.5-5 s backoff), stays closed after loggedOut (401),
// connectionReplaced (440) and everything else, and after an `end` command. Exits only on
// `quit` or when stdin closes. stdout carries nothing but the JSON lines: console output of
// Baileys and libsignal goes to stderr.
// SPDX-License-Identifier: GPL-3.0-or-later
import readline from 'readline';
import util from 'util';

import {
    buildSend,
    compact,
    compactKey,
    formatMessage,
    groupInfo,
    loadBaileys,
    participantJid,
    requireNodeModules,
    statusName,
    toJid,
    userReceiptType,
} from './shim.mjs';

// libsignal prints session changes with console.info/log: keep stdout for the protocol.
for (const f of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
    console[f] = (...a) => process.stderr.write(util.format(...a) + '\n');
}

function emit(obj) {
    let line;
    try {
        line = JSON.stringify(compact(obj));
    } catch (err) {
        line = JSON.stringify({ ev: 'error', message: `cannot encode ${obj.ev}: ${err.message}` });
    }
    process.stdout.write(line + '\n');
}

function usage(msg) {
    process.stderr.write(`peer: ${msg}\nusage: node peer.mjs --version 6|7 --url URL --auth DIR ` +
        '[--name NAME] [--pair-phone NUMBER] [--log-level LEVEL] [--reconnect CODES|none] ' +
        '[--keepalive MS]\n');
    process.exit(2);
}

function parseArgs(argv) {
    const o = { logLevel: 'silent', reconnect: [515, 408, 428, 503] };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === '--version') o.version = Number(val());
        else if (a === '--url') o.url = val();
        else if (a === '--auth') o.auth = val();
        else if (a === '--name') o.name = val();
        else if (a === '--pair-phone') o.pairPhone = val().replace(/[^0-9]/g, '');
        else if (a === '--log-level') o.logLevel = val();
        else if (a === '--keepalive') {
            o.keepAlive = Number(val());
            if (!Number.isInteger(o.keepAlive) || o.keepAlive < 100) usage('--keepalive wants MS >= 100');
        }
        else if (a === '--reconnect') {
            const v = val();
            o.reconnect = v === 'none' ? [] : v.split(',').map(Number).filter(n => n > 0);
        } else usage(`unknown argument ${a}`);
    }
    if (o.version !== 6 && o.version !== 7) usage('--version must be 6 or 7');
    if (!o.url) usage('--url is required');
    if (!o.auth) usage('--auth is required');
    if (o.pairPhone === '') usage('--pair-phone needs digits');
    o.name = o.name || `baileys${o.version}`;
    return o;
}

const opts = parseArgs(process.argv.slice(2));
requireNodeModules('peer');
const { default: pino } = await import('pino');
const B = await loadBaileys(opts.version);
const logger = pino({ level: opts.logLevel, base: { peer: opts.name } },
    pino.destination({ dest: 2, sync: true }));
const { state, saveCreds } = await B.useMultiFileAuthState(opts.auth);

// Messages seen or sent, by id: for quoting, keys of reactions/edits/reads, and getMessage
// (Baileys resends from it when a retry receipt arrives).
const STORE_MAX = 10000;
const store = new Map();
function remember(m) {
    if (!m || !m.key || !m.key.id) return;
    store.delete(m.key.id);
    store.set(m.key.id, m);
    if (store.size > STORE_MAX) store.delete(store.keys().next().value);
}

let sock = null;
let gen = 0;
let conn = 'close';
let manualEnd = false;
let quitting = false;
let attempts = 0;
let reconnectTimer = null;

function meOf() {
    const me = state.creds.me;
    return me ? { id: me.id, name: me.name, lid: me.lid } : null;
}

function reasonOf(code) {
    if (code === undefined || code === null) return null;
    return B.DisconnectReason[code] || null;
}

function scheduleReconnect(code) {
    const delay = code === 515 ? 0 : Math.min(500 * 2 ** attempts, 5000);
    attempts++;
    reconnectTimer = setTimeout(() => {
        reconnectTimer = null;
        if (!quitting && !manualEnd) startSocket();
    }, delay);
}

// 6.17: "ref,noise,identity,adv"; 7: "https://wa.me/settings/linked_devices#ref,noise,identity,
// adv,clientType" (keys base64). The fields are what a simulated phone needs to scan it.
function parseQr(qr) {
    const f = qr.replace(/^.*#/, '').split(',');
    const out = { ref: f[0], noiseKey: f[1], identityKey: f[2], advSecret: f[3] };
    if (f.length > 4) out.clientType = f[4];
    return out;
}

function startSocket() {
    const my = ++gen;
    manualEnd = false;
    let pairingRequested = false;
    const s = B.makeWASocket({
        waWebSocketUrl: opts.url,
        auth: state,
        logger,
        browser: B.Browsers.macOS('Desktop'),
        markOnlineOnConnect: false,
        syncFullHistory: false,
        getMessage: async key => store.get(key.id)?.message || undefined,
        ...(opts.keepAlive ? { keepAliveIntervalMs: opts.keepAlive } : {}),
    });
    sock = s;
    conn = 'connecting';
    const live = () => my === gen;

    s.ev.on('creds.update', async update => {
        try {
            await saveCreds();
        } catch (err) {
            emit({ ev: 'error', message: `saveCreds: ${err.message}` });
        }
        if (update.me) emit({ ev: 'creds', me: meOf(), paired: !!state.creds.account });
    });

    s.ev.on('connection.update', u => {
        if (!live()) return;
        if (u.qr) {
            emit({ ev: 'qr', qr: u.qr, ...parseQr(u.qr) });
            // The pair-device iq (which makes the qr) means the noise session is up and the
            // server waits for a registration: the moment Baileys' docs ask for the code.
            if (opts.pairPhone && !pairingRequested) {
                pairingRequested = true;
                s.requestPairingCode(opts.pairPhone)
                    .then(code => emit({ ev: 'pairing_code', code }))
                    .catch(err => emit({ ev: 'error', message: `requestPairingCode: ${err.message}` }));
            }
        }
        if (u.isNewLogin) emit({ ev: 'paired', me: meOf() });
        if (u.connection === 'connecting') {
            conn = 'connecting';
            emit({ ev: 'connection', connection: 'connecting' });
        } else if (u.connection === 'open') {
            conn = 'open';
            attempts = 0;
            emit({ ev: 'connection', connection: 'open', me: meOf() });
        } else if (u.connection === 'close') {
            conn = 'close';
            const err = u.lastDisconnect && u.lastDisconnect.error;
            const code = err && err.output ? err.output.statusCode : undefined;
            const willReconnect =
                !quitting && !manualEnd && code !== undefined && opts.reconnect.includes(code);
            emit({
                ev: 'connection',
                connection: 'close',
                statusCode: code ?? null,
                reason: reasonOf(code),
                message: err ? err.message : null,
                willReconnect,
            });
            if (willReconnect) scheduleReconnect(code);
        }
        if (u.receivedPendingNotifications === true) emit({ ev: 'received_pending' });
    });

    s.ev.on('messages.upsert', ({ messages, type }) => {
        for (const m of messages) {
            remember(m);
            try {
                emit(formatMessage(B, m, type));
            } catch (err) {
                emit({ ev: 'error', message: `format message ${m.key?.id}: ${err.message}` });
            }
        }
    });

    s.ev.on('messages.update', updates => {
        for (const { key, update } of updates) {
            if (update.status !== undefined && update.status !== null) {
                emit({
                    ev: 'receipt',
                    id: key.id,
                    from: key.remoteJid,
                    participant: key.participant || undefined,
                    fromMe: !!key.fromMe,
                    type: statusName(update.status),
                    source: 'messages.update',
                });
            }
            const rest = { ...update };
            delete rest.status;
            if (Object.keys(rest).length) {
                emit({ ev: 'message_update', id: key.id, from: key.remoteJid, key: compactKey(key),
                    update: rest });
            }
        }
    });

    s.ev.on('message-receipt.update', updates => {
        for (const { key, receipt } of updates) {
            emit({
                ev: 'receipt',
                id: key.id,
                from: key.remoteJid,
                participant: receipt.userJid || undefined,
                fromMe: !!key.fromMe,
                type: userReceiptType(receipt),
                source: 'message-receipt.update',
            });
        }
    });

    s.ev.on('messages.reaction', items => {
        for (const { key, reaction } of items) {
            emit({ ev: 'reaction', id: key.id, from: key.remoteJid, key: compactKey(key),
                text: reaction.text ?? '', sender: compactKey(reaction.key) });
        }
    });

    s.ev.on('groups.upsert', groups => {
        for (const g of groups) emit({ ev: 'group', action: 'upsert', ...groupInfo(g) });
    });

    s.ev.on('groups.update', groups => {
        for (const g of groups) emit({ ev: 'group', action: 'update', id: g.id, subject: g.subject });
    });

    s.ev.on('group-participants.update', u => {
        emit({
            ev: 'group',
            action: u.action,
            id: u.id,
            author: u.author || undefined,
            participants: (u.participants || []).map(participantJid),
        });
    });

    s.ev.on('presence.update', u => emit({ ev: 'presence', id: u.id, presences: u.presences }));
}

// ---- commands ----

function needSock() {
    if (!sock) throw new Error('no socket');
    return sock;
}

function jids(list, what) {
    if (!Array.isArray(list)) throw new Error(`${what} must be a list`);
    return list.map(toJid);
}

async function endSocket() {
    manualEnd = true;
    if (reconnectTimer) {
        clearTimeout(reconnectTimer);
        reconnectTimer = null;
    }
    if (sock && conn !== 'close') await sock.end(undefined);
}

const handlers = {
    async send(c) {
        const s = needSock();
        const { jid, content, options } = buildSend(c, store);
        const msg = await s.sendMessage(jid, content, options);
        remember(msg);
        return { id: msg.key.id, key: compactKey(msg.key) };
    },
    async read(c) {
        const keys = (c.keys || []).map(k => {
            const o = typeof k === 'string' ? { id: k } : k;
            const stored = store.get(o.id);
            const key = { ...(stored ? stored.key : {}), ...o };
            if (key.jid && !key.remoteJid) key.remoteJid = key.jid;
            delete key.jid;
            if (!key.remoteJid) throw new Error(`cannot tell the chat of message ${o.id}`);
            return key;
        });
        await needSock().readMessages(keys);
        return { count: keys.length };
    },
    async group_create(c) {
        const g = await needSock().groupCreate(String(c.subject), jids(c.participants, 'participants'));
        return groupInfo(g);
    },
    async group_add(c) {
        return participantsUpdate(c, 'add');
    },
    async group_remove(c) {
        return participantsUpdate(c, 'remove');
    },
    async group_promote(c) {
        return participantsUpdate(c, 'promote');
    },
    async group_demote(c) {
        return participantsUpdate(c, 'demote');
    },
    async group_metadata(c) {
        return groupInfo(await needSock().groupMetadata(toJid(c.jid)));
    },
    async group_leave(c) {
        await needSock().groupLeave(toJid(c.jid));
        return {};
    },
    async group_subject(c) {
        await needSock().groupUpdateSubject(toJid(c.jid), String(c.subject));
        return {};
    },
    async on_whatsapp(c) {
        if (!Array.isArray(c.phones)) throw new Error('phones must be a list');
        const r = (await needSock().onWhatsApp(...c.phones.map(String))) || [];
        return { results: r.map(x => ({ jid: x.jid, exists: !!x.exists })) };
    },
    async presence(c) {
        await needSock().sendPresenceUpdate(c.type || 'available', c.to ? toJid(c.to) : undefined);
        return {};
    },
    async presence_subscribe(c) {
        await needSock().presenceSubscribe(toJid(c.jid || c.to));
        return {};
    },
    async iq(c) {
        return rawIq(c);
    },
    async ping(c) {
        const r = await rawIq({ ...c, xmlns: 'w:p', type: 'get', children: [{ tag: 'ping' }] });
        return { ms: r.ms };
    },
    async blocklist() {
        return { jids: await needSock().fetchBlocklist() };
    },
    async logout() {
        await needSock().logout(); // closes with 401, which never reconnects
        return {};
    },
    async end() {
        await endSocket();
        return {};
    },
    async connect() {
        if (sock && conn !== 'close') throw new Error(`socket is ${conn}`);
        if (reconnectTimer) {
            clearTimeout(reconnectTimer);
            reconnectTimer = null;
        }
        attempts = 0;
        startSocket();
        return {};
    },
    async state() {
        return { connection: conn, me: meOf(), paired: !!state.creds.account, generation: gen };
    },
    async quit() {
        quit(0);
        return {};
    },
};

// One iq through Baileys' own query(): the round trip in ms and the reply's outline. An error
// reply throws (Baileys' assertNodeErrorFree: the code is in the Boom's data).
async function rawIq(c) {
    if (typeof c.xmlns !== 'string' || !c.xmlns) throw new Error('xmlns must be a string');
    const children = Array.isArray(c.children) ? c.children : [];
    const node = {
        tag: 'iq',
        attrs: { to: 's.whatsapp.net', type: c.type === 'set' ? 'set' : 'get', xmlns: c.xmlns },
        content: children.map(ch => ({ tag: String(ch.tag), attrs: { ...(ch.attrs || {}) } })),
    };
    const t0 = Date.now();
    const r = await needSock().query(node, c.timeoutMs);
    const kids = Array.isArray(r && r.content) ? r.content.map(k => k.tag) : [];
    return { ms: Date.now() - t0, reply: { tag: r && r.tag, attrs: r && r.attrs, children: kids } };
}

async function participantsUpdate(c, action) {
    const r = await needSock().groupParticipantsUpdate(toJid(c.jid), jids(c.participants, 'participants'),
        action);
    return { participants: (r || []).map(x => ({ jid: x.jid, status: x.status })) };
}

async function runCommand(c) {
    const req = c.req ?? null;
    const h = typeof c.cmd === 'string' && Object.hasOwn(handlers, c.cmd) ? handlers[c.cmd] : null;
    if (!h) {
        emit({ ev: 'result', req, cmd: c.cmd, ok: false, error: `unknown command ${c.cmd}` });
        return;
    }
    try {
        const r = await h(c);
        emit({ ev: 'result', req, cmd: c.cmd, ok: true, ...r });
    } catch (err) {
        const status = err && err.output ? err.output.statusCode : undefined;
        const data = err && (typeof err.data === 'number' || typeof err.data === 'string') ? err.data
            : undefined;
        emit({ ev: 'result', req, cmd: c.cmd, ok: false, error: String(err && err.message || err),
            statusCode: status, data });
    }
}

let exiting = false;
function quit(code) {
    if (exiting) return;
    exiting = true;
    quitting = true;
    // Answer first, then close politely, then leave once stdout is flushed.
    setImmediate(async () => {
        const hard = setTimeout(() => process.exit(code), 3000);
        try {
            await endSocket();
        } catch {
            // closing anyway
        }
        clearTimeout(hard);
        process.stdout.write('', () => process.exit(code));
    });
}

process.on('unhandledRejection', err => {
    emit({ ev: 'error', message: `unhandled rejection: ${err && err.stack || err}` });
});
process.on('uncaughtException', err => {
    emit({ ev: 'error', message: `uncaught exception: ${err && err.stack || err}` });
});
process.stdout.on('error', () => process.exit(1));

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', line => {
    if (!line.trim()) return;
    let c;
    try {
        c = JSON.parse(line);
    } catch (err) {
        emit({ ev: 'error', message: `bad command line: ${err.message}` });
        return;
    }
    if (!c || typeof c !== 'object') {
        emit({ ev: 'error', message: 'a command is a JSON object' });
        return;
    }
    runCommand(c);
});
rl.on('close', () => quit(0));

emit({
    ev: 'start',
    name: opts.name,
    version: opts.version,
    baileys: B.pkgVersion,
    pid: process.pid,
    me: meOf(),
    paired: !!state.creds.account,
});
startSocket();
