#!/usr/bin/env node
/*
 * gen_tokens.js - generates lib/bnode/tokens_v2.c and lib/bnode/tokens_v3.c, the token
 * dictionaries of WhatsApp's binary node encoding, from the Baileys packages installed in
 * tests/interop/node_modules (scripts/deps.sh installs them):
 *
 *   v2: npm baileys@6.17.16    lib/WABinary/constants.js  (SINGLE_BYTE_TOKENS, DOUBLE_BYTE_TOKENS)
 *   v3: npm baileys@7.0.0-rc14 lib/WABinary/constants.js  (same names)
 *
 * With --whatsmeow <path to binary/token/token.go> [--whatsmeow-rev <commit>] the v3 lists are
 * also compared with whatsmeow's (DictVersion = 3) and generation fails on any difference.
 *
 * Besides the decoding tables (index -> string) each file holds an open-addressing hash table
 * (string -> token) computed here, so that the encoder's lookup allocates nothing and costs one
 * FNV-1a hash plus ~1 probe. The table reproduces Baileys' TOKEN_MAP exactly: entries are
 * inserted single-byte first, then double-byte dictionaries 0..3, a later entry replacing an
 * earlier one with the same string (there are none in v2/v3 today), and the empty string at
 * single-byte index 0 is left out (the encoder handles "" itself, per dictionary version).
 *
 * Usage (from the repository root):
 *   node tools/gen_tokens.js [--whatsmeow path/to/token.go --whatsmeow-rev COMMIT]
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const interop = path.join(root, 'tests', 'interop');
const nm = path.join(interop, 'node_modules');

const HASH_SLOTS = 4096; /* power of two; load factor ~0.31 */
const SINGLE_COUNT = 236;
const DICT_COUNT = 4;
const DICT_SIZE = 256;

function fnv1a(buf) {
    let h = 0x811c9dc5;
    for (const b of buf) {
        h ^= b;
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h >>> 0;
}

function cString(s) {
    let out = '"';
    for (const b of Buffer.from(s, 'utf8')) {
        if (b === 0x22 || b === 0x5c) {
            out += '\\' + String.fromCharCode(b);
        } else if (b >= 0x20 && b < 0x7f && b !== 0x3f) {
            out += String.fromCharCode(b);
        } else {
            out += '\\' + b.toString(8).padStart(3, '0');
        }
    }
    return out + '"';
}

function check(lists, name) {
    const { single, dbl } = lists;
    if (single.length !== SINGLE_COUNT) {
        throw new Error(`${name}: ${single.length} single-byte tokens, expected ${SINGLE_COUNT}`);
    }
    if (single[0] !== '') {
        throw new Error(`${name}: single-byte token 0 is not the empty string`);
    }
    if (dbl.length !== DICT_COUNT || dbl.some(d => d.length > DICT_SIZE)) {
        throw new Error(`${name}: unexpected double-byte dictionary shape`);
    }
    const all = single.slice(1).concat(...dbl);
    for (const s of all) {
        if (typeof s !== 'string' || s === '' || s.includes('\0') || Buffer.byteLength(s) > 255) {
            throw new Error(`${name}: bad token ${JSON.stringify(s)}`);
        }
    }
}

function generate(lists, meta) {
    const { single, dbl } = lists;
    /* Baileys' TOKEN_MAP semantics: insertion order single, then dict 0..3; last wins. */
    const map = new Map();
    single.forEach((s, i) => {
        if (s !== '') map.set(s, i);
    });
    dbl.forEach((d, di) => d.forEach((s, i) => map.set(s, ((di + 1) << 8) | i)));

    const slots = new Array(HASH_SLOTS).fill(0);
    let maxProbe = 0;
    let maxLen = 0;
    for (const [s, v] of map) {
        const b = Buffer.from(s, 'utf8');
        maxLen = Math.max(maxLen, b.length);
        let i = fnv1a(b) & (HASH_SLOTS - 1);
        let probe = 1;
        while (slots[i] !== 0) {
            i = (i + 1) & (HASH_SLOTS - 1);
            probe++;
        }
        slots[i] = v;
        maxProbe = Math.max(maxProbe, probe);
    }

    const v = meta.version;
    const L = [];
    L.push('/*');
    L.push(` * tokens_v${v}.c - WhatsApp binary node dictionary v${v}. GENERATED FILE, do not edit.`);
    L.push(' *');
    L.push(` * Source: npm ${meta.pkg}, ${meta.file}`);
    L.push(' *         (SINGLE_BYTE_TOKENS and DOUBLE_BYTE_TOKENS).');
    if (meta.crossCheck) L.push(` * Cross-checked: ${meta.crossCheck}`);
    L.push(' * Regenerate from the repository root with:'); L.push(' *   node tools/gen_tokens.js [--whatsmeow token.go --whatsmeow-rev COMMIT]');
    L.push(' *');
    L.push(` * ${map.size} encodable tokens; hash table ${HASH_SLOTS} slots (FNV-1a, linear probing),`);
    L.push(` * longest probe ${maxProbe}, longest token ${maxLen} bytes.`);
    L.push(' *');
    L.push(' * SPDX-License-Identifier: GPL-3.0-or-later');
    L.push(' */');
    L.push('/* clang-format off */ /* generated tables: one item per line, as the generator writes them */');
    L.push('#include "bnode/tokens.h"');
    L.push('');
    L.push(`static const char *const single[${SINGLE_COUNT}] = {`);
    for (const s of single) L.push(`    ${cString(s)},`);
    L.push('};');
    L.push('');
    L.push(`static const uint8_t single_len[${SINGLE_COUNT}] = {`);
    for (let i = 0; i < single.length; i += 16) {
        L.push('    ' + single.slice(i, i + 16).map(s => Buffer.byteLength(s)).join(', ') + ',');
    }
    L.push('};');
    L.push('');
    L.push(`static const char *const dbl[${DICT_COUNT}][${DICT_SIZE}] = {`);
    for (let d = 0; d < DICT_COUNT; d++) {
        L.push('    {');
        for (const s of dbl[d]) L.push(`        ${cString(s)},`);
        L.push('    },');
    }
    L.push('};');
    L.push('');
    L.push(`static const uint8_t dbl_len[${DICT_COUNT}][${DICT_SIZE}] = {`);
    for (let d = 0; d < DICT_COUNT; d++) {
        L.push('    {');
        const lens = dbl[d].map(s => Buffer.byteLength(s));
        for (let i = 0; i < lens.length; i += 16) L.push('        ' + lens.slice(i, i + 16).join(', ') + ',');
        L.push('    },');
    }
    L.push('};');
    L.push('');
    L.push('/* 0 = empty; < 256: single-byte token index; else ((dict + 1) << 8) | index. */');
    L.push(`static const uint16_t slots[${HASH_SLOTS}] = {`);
    for (let i = 0; i < HASH_SLOTS; i += 12) {
        L.push('    ' + slots.slice(i, i + 12).join(', ') + ',');
    }
    L.push('};');
    L.push('');
    L.push(`const wa_bnode_dict wa_bnode_dict_v${v} = {`);
    L.push(`    .version = ${v},`);
    L.push('    .single = single,');
    L.push('    .single_len = single_len,');
    L.push(`    .single_count = ${SINGLE_COUNT},`);
    L.push('    .dbl = dbl,');
    L.push('    .dbl_len = dbl_len,');
    L.push(`    .dbl_count = {${dbl.map(d => d.length).join(', ')}},`);
    L.push('    .slots = slots,');
    L.push(`    .slot_mask = ${HASH_SLOTS - 1},`);
    L.push(`    .max_token_len = ${maxLen},`);
    L.push('};');
    L.push('/* clang-format on */');
    return L.join('\n') + '\n';
}

function parseGoTokens(file) {
    const src = fs.readFileSync(file, 'utf8');
    const m = src.match(/SingleByteTokens = \[\.\.\.\]string\{(.*)\}\n/);
    if (!m) throw new Error(`${file}: SingleByteTokens not found`);
    const single = JSON.parse('[' + m[1] + ']');
    const dbl = [...src.matchAll(/^\t\t\{(.*)\},$/gm)].map(x => JSON.parse('[' + x[1] + ']'));
    const dv = src.match(/const DictVersion = (\d+)/);
    return { single, dbl, dictVersion: dv ? +dv[1] : undefined };
}

async function main() {
    const args = process.argv.slice(2);
    let goFile;
    let goRev;
    for (let i = 0; i < args.length; i++) {
        if (args[i] === '--whatsmeow') goFile = args[++i];
        else if (args[i] === '--whatsmeow-rev') goRev = args[++i];
        else throw new Error(`unknown argument ${args[i]}`);
    }
    if (!fs.existsSync(path.join(nm, 'baileys6')) || !fs.existsSync(path.join(nm, 'baileys7'))) {
        throw new Error('tests/interop/node_modules lacks baileys6/baileys7: run scripts/deps.sh');
    }
    const pkgVersion = p => JSON.parse(fs.readFileSync(path.join(nm, p, 'package.json'))).version;

    const c2 = require(path.join(nm, 'baileys6', 'lib', 'WABinary', 'constants.js'));
    const c3 = await import(path.join(nm, 'baileys7', 'lib', 'WABinary', 'constants.js'));
    const v2 = { single: c2.SINGLE_BYTE_TOKENS, dbl: c2.DOUBLE_BYTE_TOKENS };
    const v3 = { single: c3.SINGLE_BYTE_TOKENS, dbl: c3.DOUBLE_BYTE_TOKENS };
    check(v2, 'v2');
    check(v3, 'v3');

    let crossCheck;
    if (goFile) {
        const go = parseGoTokens(goFile);
        if (go.dictVersion !== 3) throw new Error(`${goFile}: DictVersion ${go.dictVersion}, expected 3`);
        if (JSON.stringify(go.single) !== JSON.stringify(v3.single) ||
            JSON.stringify(go.dbl) !== JSON.stringify(v3.dbl)) {
            throw new Error(`${goFile}: v3 token lists differ from Baileys 7`);
        }
        crossCheck = 'identical to whatsmeow binary/token/token.go (DictVersion = 3)' +
            (goRev ? `\n *   (whatsmeow commit ${goRev})` : '');
    }

    const out = path.join(root, 'lib', 'bnode');
    fs.writeFileSync(path.join(out, 'tokens_v2.c'), generate(v2, {
        version: 2, pkg: `baileys@${pkgVersion('baileys6')}`, file: 'lib/WABinary/constants.js',
    }));
    fs.writeFileSync(path.join(out, 'tokens_v3.c'), generate(v3, {
        version: 3, pkg: `baileys@${pkgVersion('baileys7')}`, file: 'lib/WABinary/constants.js',
        crossCheck,
    }));
    console.log('gen_tokens: wrote lib/bnode/tokens_v2.c and lib/bnode/tokens_v3.c' +
        (crossCheck ? ' (v3 cross-checked with whatsmeow)' : ''));
}

main().catch(e => {
    console.error('gen_tokens: ' + e.message);
    process.exit(1);
});
