// oracle.mjs - binary node codec oracle: libwa (wa_bnode) against Baileys' encodeBinaryNode /
// decodeBinaryNode, dictionary v2 (Baileys 6.17.16) and v3 (Baileys 7.0.0-rc14).
//
//   node oracle.mjs <path to codec_oracle tool> [cases]
//
// 1. Generates random trees (seeded; WA_ORACLE_SEED overrides) covering every value kind:
//    single/double-byte tokens, nibble- and hex-packed strings (1..128 chars), JIDs (JID_PAIR,
//    AD_JID with s.whatsapp.net / lid / hosted devices, server addresses), raw ASCII and UTF-8
//    strings around the 255/256 and 2^20 boundaries, byte content, nested and empty lists,
//    LIST_16 lists, string content. Adds hand-made v3 frames (FB_JID, INTEROP_JID, hosted
//    AD_JIDs) and zlib-compressed frames, which only the decoders are asked about.
// 2. Encodes each tree with Baileys and decodes the bytes with Baileys (the reference tree).
// 3. Runs the C tool: it builds the same tree with libwa's builders, checks that libwa's encoding
//    is byte-identical to Baileys', that libwa decodes Baileys' bytes to the reference tree,
//    and writes libwa's encodings.
// 4. Decodes libwa's encodings with Baileys and checks they give the reference tree.
//
// Trees avoid what Baileys itself cannot round-trip (documented in lib/bnode/encode.c):
// integer-like attribute keys (JS puts them first), Object.prototype names, non-canonical
// strings containing '@', empty or raw string content (Baileys decodes raw content as bytes).
//
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawnSync } from 'child_process';
import fs from 'fs';
import { createRequire } from 'module';
import os from 'os';
import path from 'path';
import { fileURLToPath } from 'url';
import zlib from 'zlib';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const nm = path.resolve(here, '..', 'node_modules');
if (!fs.existsSync(path.join(nm, 'baileys6')) || !fs.existsSync(path.join(nm, 'baileys7'))) {
    console.error(`oracle: ${nm} lacks baileys6/baileys7: run scripts/deps.sh first`);
    process.exit(1);
}

const tool = process.argv[2];
const PER_DICT = +(process.argv[3] || 10000);
if (!tool || !fs.existsSync(tool)) {
    console.error('usage: node oracle.mjs <codec_oracle> [cases per dictionary]');
    process.exit(2);
}

const B = {
    2: { ...require('baileys6/lib/WABinary'), C: require('baileys6/lib/WABinary/constants') },
    3: await import('baileys7/lib/WABinary/index.js'),
};
B[3] = { ...B[3], C: await import('baileys7/lib/WABinary/constants.js') };

// ---- seeded PRNG (mulberry32) ----
const seed = +(process.env.WA_ORACLE_SEED || 20240611);
let st = seed >>> 0;
function rnd() {
    st = (st + 0x6d2b79f5) >>> 0;
    let t = st;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1)); // inclusive
const pick = a => a[Math.floor(rnd() * a.length)];
const chance = p => rnd() < p;

// ---- value generators ----
const protoNames = new Set(Object.getOwnPropertyNames(Object.prototype));
const isIndexLike = s => /^(0|[1-9]\d*)$/.test(s);
function tokens(v) {
    const C = B[v].C;
    return { single: C.SINGLE_BYTE_TOKENS.slice(1), dbl: C.DOUBLE_BYTE_TOKENS.flat() };
}
const TOK = { 2: tokens(2), 3: tokens(3) };
const isToken = (v, s) => Object.prototype.hasOwnProperty.call(B[v].C.TOKEN_MAP, s);

function randChars(alpha, n) {
    let s = '';
    for (let i = 0; i < n; i++) s += alpha[Math.floor(rnd() * alpha.length)];
    return s;
}
const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-:. /+=';
const UTF8 = ['é', 'ü', '中', '文', '😀', 'ß', 'Ω', '\u00a0', 'ĳ'];
function lengthNear() {
    const r = rnd();
    if (r < 0.5) return ri(1, 40);
    if (r < 0.8) return pick([254, 255, 256, 257, 300, 127, 128]);
    return ri(41, 600);
}
function rawString(n) {
    // No '@' (that would be a JID question), never all-nibble/hex (checked by the caller).
    let s = randChars(LETTERS, n);
    if (chance(0.3)) {
        const arr = [...s];
        for (let k = 0; k < 3 && arr.length; k++) arr[ri(0, arr.length - 1)] = pick(UTF8);
        s = arr.join('');
    }
    if (/^[0-9.\-]*$/.test(s) || /^[0-9A-F]*$/.test(s)) s = 'r' + s;
    return s;
}
const nibbleString = n => randChars('0123456789.-', n);
const hexString = n => randChars('0123456789ABCDEF', n);
function jidUser(v) {
    switch (ri(0, 5)) {
    case 0: return randChars('0123456789', ri(8, 20)); // phone / lid (nibble)
    case 1: return randChars('0123456789', ri(1, 3));
    case 2: return pick(TOK[v].single).replace(/[@:_]/g, '') || 'x';
    case 3: return hexString(ri(2, 12));
    case 4: return randChars('abcdefghijklmnopqrstuvwxyz-', ri(1, 20));
    default: return randChars('0123456789', 12) + '-' + randChars('0123456789', 10); // old group
    }
}
function jid(v) {
    const user = jidUser(v);
    const dev = ri(1, 255);
    const forms = [
        () => `${user}@s.whatsapp.net`,
        () => `${user}:${dev}@s.whatsapp.net`,
        () => `${user}:${dev}@lid`,
        () => `${user}@lid`,
        () => `@s.whatsapp.net`,
        () => `@g.us`,
        () => `${user}@g.us`,
        () => `status@broadcast`,
        () => `${user}@broadcast`,
        () => `${user}@newsletter`,
        () => `${user}@c.us`,
        () => `${user}@call`,
        () => `:${dev}@s.whatsapp.net`,
        () => `${user}@${randChars('abcdefghij', ri(1, 8))}.${randChars('abcdefghij', 2)}`,
    ];
    if (v === 3) {
        forms.push(() => `${user}:${dev}@hosted`, () => `${user}:${dev}@hosted.lid`,
            () => `${user}@hosted`, () => `${user}@hosted.lid`);
    }
    return pick(forms)();
}

// kinds: 'tok1', 'tok2', 'nib', 'hex', 'jid', 'raw', 'empty'
function stringOf(v, kind) {
    switch (kind) {
    case 'tok1': return pick(TOK[v].single);
    case 'tok2': return pick(TOK[v].dbl);
    case 'nib': {
        const n = chance(0.2) ? pick([1, 2, 126, 127, 128, 129]) : ri(1, 30);
        return nibbleString(n);
    }
    case 'hex': {
        const n = chance(0.2) ? pick([1, 2, 126, 127, 128, 129]) : ri(1, 40);
        return hexString(n);
    }
    case 'jid': return jid(v);
    case 'raw': return rawString(lengthNear());
    case 'empty': return '';
    default: throw new Error(kind);
    }
}
const VALUE_KINDS = ['tok1', 'tok1', 'tok2', 'tok2', 'nib', 'hex', 'jid', 'jid', 'jid', 'raw', 'raw', 'empty'];

function attrKey(v, used) {
    for (;;) {
        const k = chance(0.6) ? pick(chance(0.5) ? TOK[v].single : TOK[v].dbl)
            : stringOf(v, pick(['nib', 'hex', 'raw', 'jid']));
        if (!k || used.has(k) || isIndexLike(k) || protoNames.has(k)) continue;
        used.add(k);
        return k;
    }
}
function tagName(v) {
    for (;;) {
        const t = stringOf(v, pick(['tok1', 'tok1', 'tok1', 'tok2', 'raw', 'nib', 'hex', 'jid']));
        if (t && !protoNames.has(t)) return t;
    }
}

function bytes(n) {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
    return b;
}

function node(v, depth) {
    const n = { tag: tagName(v), attrs: {} };
    const used = new Set();
    const na = chance(0.1) ? 0 : ri(0, 6);
    for (let i = 0; i < na; i++) {
        const k = attrKey(v, used);
        let val = stringOf(v, pick(VALUE_KINDS));
        if (protoNames.has(val)) val = 'x' + val;
        n.attrs[k] = val;
    }
    const r = rnd();
    if (r < 0.25) {
        // no content
    } else if (r < 0.45) {
        n.content = bytes(chance(0.15) ? pick([0, 255, 256, 257, 1000]) : ri(0, 64));
    } else if (r < 0.6) {
        let s;
        // packed strings over 127 chars would be raw, and raw content decodes as bytes
        do s = stringOf(v, pick(['tok1', 'tok2', 'nib', 'hex', 'jid']));
        while (!s || protoNames.has(s) || s.length > 127);
        n.content = s;
    } else if (depth < 4) {
        const cnt = chance(0.1) ? 0 : ri(1, depth < 1 ? 5 : 3);
        n.content = [];
        for (let i = 0; i < cnt; i++) n.content.push(node(v, depth + 1));
    }
    return n;
}

function specialNodes(v) {
    const out = [];
    // LIST_16 children and attribute lists
    for (const cnt of [255, 256, 300]) {
        const n = { tag: 'list', attrs: {}, content: [] };
        for (let i = 0; i < cnt; i++) n.content.push({ tag: 'item', attrs: { id: String(i + 1000) } });
        out.push(n);
    }
    const many = { tag: 'x', attrs: {} };
    for (let i = 0; i < 140; i++) many.attrs['k' + i] = 'v' + i;
    out.push(many);
    // 2^20 boundaries (BINARY_20 / BINARY_32): a raw attribute string and byte content, split
    // between the dictionaries to keep the run short
    for (const len of v === 2 ? [(1 << 20) - 1, 1 << 20] : [1 << 20, (1 << 20) + 1]) {
        out.push(v === 2 ? { tag: 'big', attrs: { s: 'a'.repeat(len - 1) + 'z' } }
            : { tag: 'big', attrs: {}, content: bytes(len) });
    }
    // UTF-8 raw strings whose byte length straddles 255/256
    out.push({ tag: 'u', attrs: { s: 'é'.repeat(127) + 'a' } }); // 255 bytes
    out.push({ tag: 'u', attrs: { s: 'é'.repeat(128) } }); // 256 bytes
    // every token of the dictionary as a value, once
    const all = { tag: 'tokens', attrs: {}, content: [] };
    for (const t of TOK[v].single.concat(TOK[v].dbl)) all.content.push({ tag: 't', attrs: { v: t } });
    out.push(all);
    // deep nesting
    let deep = { tag: 'leaf', attrs: {} };
    for (let i = 0; i < 40; i++) deep = { tag: 'd', attrs: {}, content: [deep] };
    out.push(deep);
    return out;
}

// ---- JSON forms shared with the C tool ----
function toJ(n) {
    const j = { tag: n.tag, attrs: Object.keys(n.attrs || {}).map(k => [k, n.attrs[k]]) };
    if (n.content === undefined) j.content = null;
    else if (Buffer.isBuffer(n.content) || n.content instanceof Uint8Array) j.content = { bytes: Buffer.from(n.content).toString('hex') };
    else if (typeof n.content === 'string') j.content = { string: n.content };
    else j.content = n.content.map(toJ);
    return j;
}

async function decodeFrame(v, frame) {
    if (v === 2) return B[2].decodeBinaryNode(frame);
    return B[3].decodeBinaryNode(frame);
}

const cases = [];
let kinds = 0;
for (const v of [2, 3]) {
    const trees = specialNodes(v);
    for (let i = 0; i < PER_DICT; i++) trees.push(node(v, 0));
    for (const t of trees) {
        const frame = B[v].encodeBinaryNode(t);
        const back = toJ(await decodeFrame(v, frame));
        const tj = toJ(t);
        if (JSON.stringify(back) !== JSON.stringify(tj)) {
            const diff = (a, b, p) => {
                if (JSON.stringify(a) === JSON.stringify(b)) return null;
                if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
                    for (let i = 0; i < a.length; i++) {
                        const d = diff(a[i], b[i], `${p}[${i}]`);
                        if (d) return d;
                    }
                }
                if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a)) {
                    for (const k of Object.keys(a)) {
                        const d = diff(a[k], b[k], `${p}.${k}`);
                        if (d) return d;
                    }
                }
                return `${p}: ${String(JSON.stringify(a)).slice(0, 200)} != ${String(JSON.stringify(b)).slice(0, 200)}`;
            };
            console.error(`oracle: generator bug, Baileys v${v} does not round-trip: ${diff(tj, back, 'tree')}`);
            process.exit(1);
        }
        cases.push({ v, tree: tj, frame: frame.toString('hex') }); // btree == tree
        kinds++;
    }
    // compressed frames of a few trees (decoder only)
    for (let i = 0; i < 50; i++) {
        const t = node(v, 0);
        const frame = B[v].encodeBinaryNode(t);
        const z = Buffer.concat([Buffer.from([2]), zlib.deflateSync(frame.subarray(1))]);
        cases.push({ v, frame: z.toString('hex'), btree: toJ(await decodeFrame(v, z)) });
    }
}
// Hand-made v3 frames: FB_JID, INTEROP_JID, AD_JID domains 0/1/128/129 (decoder only).
{
    const hand = [
        '00f803fc0178fc016af6ff84123456 7f0102fc046d736772', // "1234567:258@msgr"
        '00f803fc0178fc016af6fc0361626300ecfc046d736772', // "abc:236@msgr"
        '00f803fc0178fc016af5ff8312345f00030101fc07696e7465726f70', // "257-12345:3@interop"
        '00f803fc0178fc016af78002ff82123f', // "123:2@hosted"
        '00f803fc0178fc016af78100ff82123f', // "123@hosted.lid"
        '00f803fc0178fc016af70100ff82123f', // "123@lid"
        '00f802fc0178f6ff841234567f0000fc046d736772', // content "1234567:0@msgr"
        '00f802fc0178f5fc01610000002afc07696e7465726f70', // content "42-a:0@interop"
    ];
    for (let h of hand) {
        h = h.replace(/ /g, '');
        const frame = Buffer.from(h, 'hex');
        let bt;
        try {
            bt = toJ(await decodeFrame(3, frame));
        } catch (e) {
            console.error(`oracle: Baileys 7 refuses hand-made frame ${h}: ${e.message}`);
            process.exit(1);
        }
        cases.push({ v: 3, frame: h, btree: bt });
    }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-codec-oracle-'));
const inFile = path.join(tmp, 'cases.json');
const outFile = path.join(tmp, 'libwa.json');
fs.writeFileSync(inFile, JSON.stringify({ cases }));
const t0 = Date.now();
const r = spawnSync(tool, [inFile, outFile], { stdio: 'inherit' });
if (r.status !== 0) {
    console.error(`oracle: ${path.basename(tool)} failed (status ${r.status}${r.signal ? ', ' + r.signal : ''}); seed ${seed}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(1);
}
const t1 = Date.now();

// Direction 2: libwa's encodings decode in Baileys to the reference tree.
const encs = JSON.parse(fs.readFileSync(outFile, 'utf8')).frames;
if (!process.env.WA_ORACLE_KEEP) fs.rmSync(tmp, { recursive: true, force: true });
else console.log(`oracle: kept ${tmp}`);
let checked = 0, bad = 0;
for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    if (!c.tree) continue;
    if (typeof encs[i] !== 'string') {
        console.error(`oracle: case ${i}: no libwa encoding`);
        bad++;
        continue;
    }
    let got;
    try {
        got = toJ(await decodeFrame(c.v, Buffer.from(encs[i], 'hex')));
    } catch (e) {
        got = { error: e.message };
    }
    if (JSON.stringify(got) !== JSON.stringify(c.tree)) {
        if (bad < 5) console.error(`oracle: case ${i} (v${c.v}): Baileys decodes libwa's bytes differently:\n  want ${JSON.stringify(c.tree).slice(0, 300)}\n  got  ${JSON.stringify(got).slice(0, 300)}`);
        bad++;
    }
    checked++;
}
if (bad) {
    console.error(`oracle: ${bad} mismatches (seed ${seed})`);
    process.exit(1);
}
console.log(`oracle: ${cases.length} cases (${kinds} trees, v2+v3; seed ${seed}); C tool ${t1 - t0} ms; ` +
    `Baileys decoded ${checked} libwa encodings identically: OK`);
