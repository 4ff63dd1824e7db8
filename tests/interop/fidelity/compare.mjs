// compare.mjs - the wire-fidelity comparison (issue 4): parse a wasim trace (docs/wasim.md,
// "Trace file"), normalize the stanzas and ClientPayloads that two clients sent, compare them,
// and check every difference against the rules of docs/fidelity.md.
//
// Pure functions, no I/O except decodeDeviceProps (Baileys 7's WAProto, loaded by the caller):
//   parseTrace(text)                      -> Map conn -> {conn, payload, events[]}
//   parseXml(s)                           -> node {tag, attrs [[k, v]], kind, bytes, text, children}
//   clientStanzas(trace, conns, opts)     -> [{key, node, canon, conn}] of one phase
//   compareStanzas(phase, L, B, order)    -> [diff]   (L = libwa, B = Baileys)
//   comparePayloads(phase, pl, pb, dec)   -> [diff]
//   compareQr(ql, qb)                     -> [diff]
//   compareMessages(phase, who, L, B, dec) -> [diff]  (decrypted Message protobufs)
//   parseRules(markdown)                  -> {rules, order, errors}
//   applyRules(diffs, rules)              -> {explained, unexplained, stale}
// A diff is {phase, id, detail}: `id` is a stable one-line description (values normalized) that
// a rule's pattern matches; `detail` is extra context for people (the two stanzas).
// SPDX-License-Identifier: GPL-3.0-or-later

// ---- trace -------------------------------------------------------------------------------------

/** Splits a trace into connections: conn -> {conn, payload (object or null), events}. */
export function parseTrace(text) {
    const conns = new Map();
    const get = id => {
        if (!conns.has(id)) conns.set(id, { conn: id, payload: null, events: [] });
        return conns.get(id);
    };
    const lines = text.split('\n');
    for (let no = 0; no < lines.length; no++) {
        const m = /^(\d+) (in|out|payload) (.*)$/.exec(lines[no]);
        if (!m) continue;
        const c = get(Number(m[1]));
        if (m[2] === 'payload') {
            c.payload = JSON.parse(m[3]);
        } else {
            c.events.push({ dir: m[2], node: parseXml(m[3]), line: m[3], no });
        }
    }
    return conns;
}

const ENTITIES = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"' };
const unescape = s => s.replace(/&(amp|lt|gt|quot);/g, e => ENTITIES[e]);

/**
 * Parses one node as lib/bnode/xml.c renders it: <tag k="v">content</tag> or <tag/>, content
 * being children, "[N bytes]" or text. kind: none (<x/>), empty (<x></x>), bytes, text, list.
 */
export function parseXml(s) {
    let i = 0;
    const fail = what => {
        throw new Error(`trace: ${what} at ${i} in ${s.slice(0, 200)}`);
    };
    const node = () => {
        if (s[i] !== '<') fail('expected <');
        i++;
        const t = /^[^\s/>]+/.exec(s.slice(i, i + 200));
        if (!t) fail('expected a tag');
        const n = { tag: unescape(t[0]), attrs: [], kind: 'none', bytes: 0, text: '', children: [] };
        i += t[0].length;
        for (;;) {
            if (s.startsWith('/>', i)) {
                i += 2;
                return n;
            }
            if (s[i] === '>') {
                i++;
                break;
            }
            if (s[i] !== ' ') fail('expected an attribute');
            i++;
            const eq = s.indexOf('="', i);
            const end = eq < 0 ? -1 : s.indexOf('"', eq + 2);
            if (eq < 0 || end < 0) fail('bad attribute');
            n.attrs.push([unescape(s.slice(i, eq)), unescape(s.slice(eq + 2, end))]);
            i = end + 1;
        }
        if (s.startsWith('</', i)) {
            n.kind = 'empty';
        } else if (s[i] === '<') {
            n.kind = 'list';
            while (s[i] === '<' && !s.startsWith('</', i)) n.children.push(node());
        } else {
            const lt = s.indexOf('<', i);
            if (lt < 0) fail('unterminated content');
            const raw = s.slice(i, lt);
            const b = /^\[(\d+) bytes\]$/.exec(raw);
            if (b) {
                n.kind = 'bytes';
                n.bytes = Number(b[1]);
            } else {
                n.kind = 'text';
                n.text = unescape(raw);
            }
            i = lt;
        }
        const close = `</${t[0]}>`;
        if (!s.startsWith(close, i)) fail(`expected ${close}`);
        i += close.length;
        return n;
    };
    const n = node();
    if (i !== s.length) fail('trailing text');
    return n;
}

export const attr = (n, k) => {
    const a = n.attrs.find(x => x[0] === k);
    return a ? a[1] : undefined;
};

// ---- normalization -----------------------------------------------------------------------------

/**
 * Normalizes an attribute value: `id`/`sid`/`key` (a group create's random key) -> {ID}, `t` -> {T}, the user part of a JID ->
 * {PN} (s.whatsapp.net, c.us) or {LID} (lid), keeping agent, device and server; then any run of
 * 6 or more digits left (push names made of phone numbers, unified_session ids) -> {N}.
 */
export function normValue(k, v) {
    if (k === 'id' || k === 'sid' || k === 'key') return '{ID}';
    if (k === 't') return '{T}';
    v = v.replace(/^(\d+)(\.\d+)?(:\d+)?@(s\.whatsapp\.net|c\.us|lid)$/,
        (m, u, agent, dev, srv) => `${srv === 'lid' ? '{LID}' : '{PN}'}${agent || ''}${dev || ''}@${srv}`);
    return v.replace(/\d{6,}/g, '{N}');
}

/** Binary content of a <message> whose length varies from run to run, written `[~ bytes]`: the ciphertext of
 * an <enc> (random padding of 1 to 16 bytes, CBC blocks, ratchet counters; what it carries is
 * compared as the decrypted Message, compareMessages), and the account's signed device identity
 * a message with a pkmsg carries (its length follows the raw id the server chose at pairing: the
 * register phase compares it relative to the server's). */
const VARIABLE_BYTES = new Set(['enc', 'device-identity']);

export function normalizeNode(n, inMessage = n.tag === 'message') {
    return {
        tag: n.tag,
        attrs: n.attrs.map(([k, v]) => [k, normValue(k, v)]),
        kind: n.kind,
        bytes: inMessage && n.kind === 'bytes' && VARIABLE_BYTES.has(n.tag) ? '~' : n.bytes,
        text: n.kind === 'text' ? normValue('', n.text) : '',
        children: n.children.map(c => normalizeNode(c, inMessage)),
    };
}

/** Consecutive identical children as runs [{node, canon, count}]. */
export function runs(children) {
    const out = [];
    for (const c of children) {
        const canon = render(c);
        const last = out[out.length - 1];
        if (last && last.canon === canon) last.count++;
        else out.push({ node: c, canon, count: 1 });
    }
    return out;
}

const escape = s => s.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/** Canonical one-line rendering of a normalized node, identical child runs as "<x/>×N". */
export function render(n) {
    const a = n.attrs.map(([k, v]) => ` ${k}="${escape(v)}"`).join('');
    switch (n.kind) {
    case 'none':
        return `<${n.tag}${a}/>`;
    case 'empty':
        return `<${n.tag}${a}></${n.tag}>`;
    case 'bytes':
        return `<${n.tag}${a}>[${n.bytes} bytes]</${n.tag}>`;
    case 'text':
        return `<${n.tag}${a}>${escape(n.text)}</${n.tag}>`;
    default:
        return `<${n.tag}${a}>${runs(n.children).map(r => r.canon + (r.count > 1 ? `×${r.count}` : ''))
            .join('')}</${n.tag}>`;
    }
}

const KEY_ATTRS = ['xmlns', 'type', 'class'];

/** The matching key of a stanza: tag[xmlns,type,class]/first child tag. */
export function nodeKey(n) {
    const sel = KEY_ATTRS.filter(k => attr(n, k) !== undefined).map(k => `${k}=${attr(n, k)}`);
    let key = `${n.tag}[${sel.join(',')}]`;
    if (n.kind === 'list' && n.children.length) key += `/${n.children[0].tag}`;
    return key;
}

const ANSWERED_TAGS = new Set(['message', 'notification', 'receipt', 'call']);

/**
 * The stanzas a client sent in the given connections (one phase), normalized, in order.
 * opts.earlierConns: connections of the same client before this phase (for redeliveries);
 * opts.skipAnswers: drop receipts/acks answering server messages, notifications, receipts and
 * calls; opts.from, opts.to: only the stanzas the client sent on trace lines [from, to) (a phase
 * that is a part of a connection). Always dropped: keep-alive pings, and what follows the
 * server's <stream:error> or <failure> (the server is closing; whether it reads more is a race).
 * Returns {stanzas, skipped} (skipped: [{key, why}]).
 */
export function clientStanzas(trace, conns, opts = {}) {
    const stanzas = [];
    const skipped = [];
    const earlierIds = new Set();
    for (const id of opts.earlierConns || []) {
        for (const e of trace.get(id)?.events || []) {
            if (e.dir === 'out' && ANSWERED_TAGS.has(e.node.tag) && attr(e.node, 'id')) {
                earlierIds.add(attr(e.node, 'id'));
            }
        }
    }
    for (const id of conns) {
        const c = trace.get(id);
        if (!c) continue;
        const serverIqs = new Map();
        const serverStanzas = new Set();
        let closing = false;
        for (const e of c.events) {
            const n = e.node;
            if (e.dir === 'out') {
                if (n.tag === 'iq' && attr(n, 'id')) serverIqs.set(attr(n, 'id'), n);
                if (ANSWERED_TAGS.has(n.tag) && attr(n, 'id')) serverStanzas.add(attr(n, 'id'));
                if (n.tag === 'stream:error' || n.tag === 'failure') closing = true;
                continue;
            }
            if (opts.from !== undefined && (e.no < opts.from || e.no >= opts.to)) continue;
            let key = nodeKey(n);
            const type = attr(n, 'type');
            if (n.tag === 'iq' && (type === 'result' || type === 'error') && serverIqs.has(attr(n, 'id'))) {
                key += ` ← ${nodeKey(serverIqs.get(attr(n, 'id')))}`;
            }
            const answers = (n.tag === 'receipt' || n.tag === 'ack') &&
                (serverStanzas.has(attr(n, 'id')) || earlierIds.has(attr(n, 'id')));
            let why = null;
            if (closing) why = 'sent after the server closed the stream';
            else if (n.tag === 'iq' && attr(n, 'xmlns') === 'w:p') why = 'keep-alive ping';
            else if (answers && earlierIds.has(attr(n, 'id'))) why = 'answers a redelivered stanza';
            else if (answers && opts.skipAnswers) why = 'answers a server message (not compared in this phase)';
            if (why) {
                skipped.push({ key, why, conn: id });
                continue;
            }
            const norm = normalizeNode(n);
            if (key.includes(' ← ')) relativeBytes(norm, serverIqs.get(attr(n, 'id')));
            stanzas.push({ key, node: norm, canon: render(norm), conn: id });
        }
    }
    return { stanzas, skipped };
}

function byteNodes(n, out = new Map()) {
    if (n.kind === 'bytes' && !out.has(n.tag)) out.set(n.tag, n);
    for (const c of n.children) byteNodes(c, out);
    return out;
}

/**
 * In a client's answer to a server iq, binary content under a tag that the server's iq also
 * carries (<pair-device-sign><device-identity> answering <pair-success><device-identity>) has a
 * length set by the server's (a varint the server chose at random): it is written relative to it, "S-4".
 */
export function relativeBytes(answer, serverIq) {
    if (!serverIq) return;
    const theirs = byteNodes(serverIq);
    const walk = n => {
        const t = n.kind === 'bytes' && theirs.get(n.tag);
        if (t) {
            const d = n.bytes - t.bytes;
            n.bytes = `S${d < 0 ? '-' : '+'}${Math.abs(d)}`;
        }
        n.children.forEach(walk);
    };
    walk(answer);
}

// ---- stanza comparison -------------------------------------------------------------------------

const show = v => (v === undefined ? 'absent' : `"${v}"`);

function contentOf(n) {
    switch (n.kind) {
    case 'none':
        return 'none';
    case 'empty':
        return 'empty';
    case 'bytes':
        return `[${n.bytes} bytes]`;
    case 'text':
        return `"${n.text}"`;
    default:
        return `[${runs(n.children).map(r => r.node.tag + (r.count > 1 ? `×${r.count}` : '')).join(',')}]`;
    }
}

/** Differences between two normalized nodes (a = libwa, b = Baileys) under `key`, at `path`. */
export function diffNodes(key, a, b, path = '') {
    const out = [];
    const at = path ? ` ${path}` : '';
    if (a.tag !== b.tag) {
        out.push(`content ${key}${at}: libwa=<${a.tag}> baileys=<${b.tag}>`);
        return out;
    }
    const names = [...new Set([...a.attrs.map(x => x[0]), ...b.attrs.map(x => x[0])])];
    for (const k of names) {
        const va = attr(a, k);
        const vb = attr(b, k);
        if (va !== vb) out.push(`attr ${key}${at} @${k}: libwa=${show(va)} baileys=${show(vb)}`);
    }
    const common = names.filter(k => attr(a, k) !== undefined && attr(b, k) !== undefined);
    const oa = a.attrs.map(x => x[0]).filter(k => common.includes(k));
    const ob = b.attrs.map(x => x[0]).filter(k => common.includes(k));
    if (oa.join() !== ob.join()) {
        out.push(`attr-order ${key}${at}: libwa=${oa.join(',')} baileys=${ob.join(',')}`);
    }
    if (a.kind !== b.kind || a.kind === 'bytes' || a.kind === 'text') {
        const ca = contentOf(a);
        const cb = contentOf(b);
        if (ca !== cb) out.push(`content ${key}${at}: libwa=${ca} baileys=${cb}`);
        return out;
    }
    if (a.kind !== 'list') return out;
    const ra = runs(a.children);
    const rb = runs(b.children);
    if (ra.map(r => r.node.tag).join() !== rb.map(r => r.node.tag).join()) {
        out.push(`content ${key}${at}: libwa=${contentOf(a)} baileys=${contentOf(b)}`);
        return out;
    }
    for (let i = 0; i < ra.length; i++) {
        const sub = `${path}/${ra[i].node.tag}`;
        if (ra[i].count !== rb[i].count) {
            out.push(`count ${key} ${sub}: libwa=${ra[i].count} baileys=${rb[i].count}`);
        }
        out.push(...diffNodes(key, ra[i].node, rb[i].node, sub));
    }
    return out;
}

/**
 * Compares one phase. L and B are the stanza lists of libwa and Baileys. Stanzas are matched by
 * key, the n-th of a key in one with the n-th in the other (a multiset: where both clients fire
 * requests in parallel their order may vary); `order` lists the keys whose relative order is
 * protocol-relevant: their sequences (first occurrence of each key present in both) must agree.
 */
export function compareStanzas(phase, L, B, order = []) {
    const diffs = [];
    const keys = [...new Set([...B.map(s => s.key), ...L.map(s => s.key)])];
    for (const key of keys) {
        const l = L.filter(s => s.key === key);
        const b = B.filter(s => s.key === key);
        for (let i = 0; i < Math.min(l.length, b.length); i++) {
            for (const id of diffNodes(key, l[i].node, b[i].node)) {
                diffs.push({ phase, id, detail: `libwa:   ${l[i].canon}\nbaileys: ${b[i].canon}` });
            }
        }
        for (const s of b.slice(l.length)) diffs.push({ phase, id: `only-baileys ${key}`, detail: s.canon });
        for (const s of l.slice(b.length)) diffs.push({ phase, id: `only-libwa ${key}`, detail: s.canon });
    }
    const both = order.filter(k => L.some(s => s.key === k) && B.some(s => s.key === k));
    const seq = list => both.slice().sort((x, y) => list.findIndex(s => s.key === x) -
        list.findIndex(s => s.key === y));
    const sl = seq(L);
    const sb = seq(B);
    if (sl.join('\n') !== sb.join('\n')) {
        diffs.push({ phase, id: `order: libwa=${sl.join(' < ')} baileys=${sb.join(' < ')}`, detail: '' });
    }
    return dedupe(diffs);
}

/** The same id twice (e.g. two receipts with the same difference) is reported once, with
 * `times` and every distinct detail. */
function dedupe(diffs) {
    const seen = new Map();
    for (const d of diffs) {
        const k = `${d.phase}\n${d.id}`;
        if (!seen.has(k)) seen.set(k, { ...d, times: 0, details: new Set() });
        const s = seen.get(k);
        s.times++;
        if (d.detail) s.details.add(d.detail);
    }
    return [...seen.values()].map(({ details, ...d }) => ({ ...d, detail: [...details].join('\n') }));
}

// ---- ClientPayload -----------------------------------------------------------------------------

function flatten(obj, prefix = '', out = {}) {
    for (const [k, v] of Object.entries(obj)) {
        const p = prefix ? `${prefix}.${k}` : k;
        if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, p, out);
        else out[p] = Array.isArray(v) ? JSON.stringify(v) : v;
    }
    return out;
}

const hexBytes = (v, what) => (typeof v === 'string' && /^([0-9a-f]{2})*$/.test(v) ?
    `{${what}:${v.length / 2}B}` : v);

/**
 * A ClientPayload (wasim's JSON: enums by name, bytes as hex) normalized and flattened to
 * path -> value: username -> {PHONE}, registration id, identity, signed prekey and signature ->
 * {REGID|KEY|SIG:nB}; deviceProps decoded with decodeDeviceProps(hex) into its fields.
 */
export function normalizePayload(p, decodeDeviceProps) {
    const c = JSON.parse(JSON.stringify(p));
    if (c.username !== undefined) c.username = '{PHONE}';
    const d = c.devicePairingData;
    if (d) {
        d.eRegid = hexBytes(d.eRegid, 'REGID');
        d.eIdent = hexBytes(d.eIdent, 'KEY');
        d.eSkeyVal = hexBytes(d.eSkeyVal, 'KEY');
        d.eSkeySig = hexBytes(d.eSkeySig, 'SIG');
        if (typeof d.deviceProps === 'string' && decodeDeviceProps) {
            try {
                d.deviceProps = decodeDeviceProps(d.deviceProps);
            } catch (err) {
                d.deviceProps = `<undecodable: ${err.message}>`;
            }
        }
    }
    return flatten(c);
}

export function comparePayloads(phase, pl, pb, decodeDeviceProps) {
    if (!pl || !pb) {
        return [{ phase, id: `payload: libwa=${pl ? 'sent' : 'none'} baileys=${pb ? 'sent' : 'none'}`, detail: '' }];
    }
    const a = normalizePayload(pl, decodeDeviceProps);
    const b = normalizePayload(pb, decodeDeviceProps);
    const diffs = [];
    for (const k of [...new Set([...Object.keys(b), ...Object.keys(a)])]) {
        const va = a[k] === undefined ? 'absent' : JSON.stringify(a[k]);
        const vb = b[k] === undefined ? 'absent' : JSON.stringify(b[k]);
        if (va !== vb) diffs.push({ phase, id: `payload ${k}: libwa=${va} baileys=${vb}`, detail: '' });
    }
    return diffs;
}

// ---- decrypted Message protobufs -------------------------------------------------------------

/** Bytes fields whose length varies from run to run (a sender key distribution message carries
 * a random 31-bit key id as a varint): only their presence is compared. */
const VARIABLE_PB_BYTES = new Set(['axolotlSenderKeyDistributionMessage']);

/**
 * A decoded Message (protobufjs toObject with longs and enums as strings, bytes as Uint8Array)
 * normalized and flattened to path -> value: bytes -> {N bytes} ({bytes} when their length
 * varies), fields named *Timestamp -> {T}, strings through normValue (JIDs, long numbers).
 */
export function normalizeMessage(obj) {
    const out = {};
    const walk = (v, p, k) => {
        if (v instanceof Uint8Array) {
            out[p] = VARIABLE_PB_BYTES.has(k) ? '{bytes}' : `{${v.length} bytes}`;
        } else if (Array.isArray(v)) {
            v.forEach((x, i) => walk(x, `${p}[${i}]`, k));
        } else if (v && typeof v === 'object') {
            for (const [ck, cv] of Object.entries(v)) walk(cv, p ? `${p}.${ck}` : ck, ck);
        } else if (/timestamp$/i.test(k)) {
            out[p] = '{T}';
        } else {
            out[p] = typeof v === 'string' ? normValue(k === 'stanzaId' ? 'id' : '', v) : v;
        }
    };
    walk(obj, '', '');
    return out;
}

/**
 * Compares what one receiver decrypted of a libwa message and of a Baileys message: L and B
 * are [{enc, hex}] (wasim's virtual phone, GET /phones/{p}/messages `plain`) or null (nothing
 * arrived); decode(hex) -> toObject'ed Message. Diff ids: `message WHO encs: ...`,
 * `message WHO ENC FIELD: libwa=V baileys=V` (ENC: the enc type, with #n from the second of a
 * type on).
 */
export function compareMessages(phase, who, L, B, decode) {
    const diffs = [];
    if (!L || !B) {
        if (L || B) {
            diffs.push({ phase, id: `message ${who}: libwa=${L ? 'received' : 'none'} baileys=${B ? 'received' : 'none'}`,
                detail: '' });
        }
        return diffs;
    }
    const encs = l => l.map(x => x.enc).join(',') || 'none';
    if (encs(L) !== encs(B)) {
        diffs.push({ phase, id: `message ${who} encs: libwa=${encs(L)} baileys=${encs(B)}`, detail: '' });
    }
    const label = (list, i) => {
        const n = list.slice(0, i).filter(x => x.enc === list[i].enc).length;
        return n ? `${list[i].enc}#${n + 1}` : list[i].enc;
    };
    const flat = x => {
        try {
            return normalizeMessage(decode(x.hex));
        } catch (err) {
            return { '': `<undecodable: ${err.message}>` };
        }
    };
    for (let i = 0; i < Math.min(L.length, B.length); i++) {
        const a = flat(L[i]);
        const b = flat(B[i]);
        const at = L[i].enc === B[i].enc ? label(L, i) : `${label(L, i)}/${label(B, i)}`;
        const detail = `libwa:   ${JSON.stringify(a)}\nbaileys: ${JSON.stringify(b)}`;
        for (const k of [...new Set([...Object.keys(b), ...Object.keys(a)])]) {
            const va = a[k] === undefined ? 'absent' : JSON.stringify(a[k]);
            const vb = b[k] === undefined ? 'absent' : JSON.stringify(b[k]);
            if (va !== vb) diffs.push({ phase, id: `message ${who} ${at} ${k}: libwa=${va} baileys=${vb}`, detail });
        }
    }
    return dedupe(diffs);
}

// ---- QR text -----------------------------------------------------------------------------------

/** "prefix#ref,noise,identity,adv[,platform]" -> [prefix, {REF}, {KEY:32B}..., platform]. */
export function normalizeQr(qr) {
    const hash = qr.lastIndexOf('#');
    const prefix = hash >= 0 ? qr.slice(0, hash + 1) : '';
    const f = qr.slice(hash + 1).split(',');
    const key = v => {
        const n = Buffer.from(v, 'base64').length;
        return /^[A-Za-z0-9+/]+=*$/.test(v) ? `{KEY:${n}B}` : `{not base64: ${v}}`;
    };
    return [prefix || '(none)', f[0] ? '{REF}' : '(empty)', ...f.slice(1, 4).map(key), ...f.slice(4)];
}

export function compareQr(ql, qb) {
    const a = normalizeQr(ql);
    const b = normalizeQr(qb);
    const names = ['prefix', 'ref', 'noise key', 'identity key', 'adv secret'];
    const diffs = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const name = names[i] || (i === 5 ? 'platform' : `field ${i}`);
        if (a[i] !== b[i]) {
            diffs.push({ phase: 'qr', id: `qr ${name}: libwa=${a[i] ?? 'absent'} baileys=${b[i] ?? 'absent'}`,
                detail: `libwa:   ${a[0]}${a.slice(1).join(',')}\nbaileys: ${b[0]}${b.slice(1).join(',')}` });
        }
    }
    return diffs;
}

// ---- rules (docs/fidelity.md) ------------------------------------------------------------------

export const PHASES = ['qr', 'register', 'first-login', 'login', 'send', 'group-create', 'group-first',
    'group-later', 'receipts', 'retry'];
export const CATEGORIES = ['deliberate', 'not yet', 'to fix', 'harness'];

/**
 * Reads the ```fidelity blocks of docs/fidelity.md: lines `PHASE | PATTERN | REASON`
 * (PATTERN: `*` matches any text; PHASE may be `*` or a comma-separated list), and
 * `order PHASE: KEY < KEY < ...`.
 * '#' starts a comment line. A reason starts with a category (CATEGORIES) and a colon.
 */
export function parseRules(md) {
    const rules = [];
    const order = {};
    const errors = [];
    const blocks = [...md.matchAll(/^```fidelity[ \t]*\n([\s\S]*?)^```/gm)];
    if (!blocks.length) errors.push('no ```fidelity block');
    for (const blk of blocks) {
        for (const raw of blk[1].split('\n')) {
            const line = raw.trim();
            if (!line || line.startsWith('#')) continue;
            const om = /^order ([a-z-]+): (.+)$/.exec(line);
            if (om) {
                if (!PHASES.includes(om[1])) errors.push(`unknown phase in: ${line}`);
                order[om[1]] = om[2].split(' < ').map(s => s.trim());
                continue;
            }
            const parts = line.split(' | ');
            if (parts.length !== 3) {
                errors.push(`not "PHASE | PATTERN | REASON": ${line}`);
                continue;
            }
            const [phase, pattern, reason] = parts.map(s => s.trim());
            for (const ph of phase.split(',')) {
                if (phase !== '*' && !PHASES.includes(ph)) errors.push(`unknown phase "${ph}": ${line}`);
            }
            if (!CATEGORIES.some(c => reason.startsWith(`${c}:`)) || reason.length < 20) {
                errors.push(`reason must start with ${CATEGORIES.map(c => `"${c}:"`).join(', ')} and say why: ${line}`);
            }
            const re = new RegExp(`^${pattern.split('*').map(s => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
                .join('.*')}$`);
            rules.push({ phase, pattern, reason, re, used: 0 });
        }
    }
    return { rules, order, errors };
}

/** Splits diffs into explained (with their rule) and unexplained; stale = rules never used. */
export function applyRules(diffs, rules) {
    const explained = [];
    const unexplained = [];
    for (const d of diffs) {
        const r = rules.find(x => (x.phase === '*' || x.phase.split(',').includes(d.phase)) && x.re.test(d.id));
        if (r) {
            r.used++;
            explained.push({ ...d, rule: r });
        } else {
            unexplained.push(d);
        }
    }
    return { explained, unexplained, stale: rules.filter(r => !r.used) };
}
