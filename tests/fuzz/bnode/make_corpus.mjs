// make_corpus.mjs - writes the seed corpus of the bnode fuzz target (checked in; rerun only to
// change it):  node tests/fuzz/bnode/make_corpus.mjs
// Each file: selector byte (bit 0: v3, bit 1: transport frame) + data. Real stanzas are the
// benchmark's (bench/codec/corpus.mjs) as Baileys 6.17 (v2) and 7 (v3) encode them, plus the
// PROTOCOL.md §7 vectors, hand-made v3 JIDs (FB_JID, INTEROP_JID, hosted) and edge cases.
// SPDX-License-Identifier: GPL-3.0-or-later
import fs from 'fs';
import { createRequire } from 'module';
import path from 'path';
import zlib from 'zlib';
import { fileURLToPath, pathToFileURL } from 'url';
import { stanzas } from '../../../bench/codec/corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const nm = path.resolve(here, '..', '..', 'interop', 'node_modules');
const require = createRequire(path.join(nm, 'x.js'));
const b6 = require('baileys6/lib/WABinary');
const b7 = await import(pathToFileURL(path.join(nm, 'baileys7', 'lib', 'WABinary', 'index.js')));
const out = path.join(here, 'corpus');
fs.mkdirSync(out, { recursive: true });
const put = (name, sel, bytes) => fs.writeFileSync(path.join(out, name), Buffer.concat([Buffer.from([sel]), bytes]));
const hex = h => Buffer.from(h.replace(/ /g, ''), 'hex');

for (const [name, make] of Object.entries(stanzas)) {
    const t = make();
    put(`${name}_v2`, 0, b6.encodeBinaryNode(t).subarray(1));
    put(`${name}_v3`, 1, b7.encodeBinaryNode(t).subarray(1));
}
const msg = b7.encodeBinaryNode(stanzas.message());
put('message_v3_frame', 3, msg);
put('message_v3_zlib', 3, Buffer.concat([Buffer.from([2]), zlib.deflateSync(msg.subarray(1))]));
put('protocol_iq_v2', 0, hex('f8 07 1e 08 ff 83 1b 2a 3f 04 14 0e fa 00 03'));
put('protocol_ib_v2', 0, hex('f8 02 fc 02 69 62 f8 01 f8 03 12 39 4f'));
put('protocol_success_v2', 2, hex('00 f8 03 47 fc 03 6c 69 64 f7 01 01 ff 82 12 3f'));
put('fb_jid_v3', 1, hex('f8 03 fc 01 78 fc 01 6a f6 ff 84 12 34 56 7f 01 02 fc 04 6d736772'));
put('interop_jid_v3', 1, hex('f8 02 fc 01 78 f5 ff 83 12 34 5f 00 03 01 01 fc 07 696e7465726f70'));
put('ad_jid_domains_v3', 1, hex('f8 05 fc 01 78 fc 01 61 f7 80 02 ff 82 12 3f fc 01 62 f7 05 00 fc 00'));
put('nibble_nul_v3', 1, hex('f8 02 fc 01 78 ff 02 1f 23'));
put('hex_odd_v3', 1, hex('f8 03 fc 01 78 11 fb 82 ab cf'));
put('binary20_v2', 0, Buffer.concat([hex('f8 02 fc 01 78 fd 00 01 00'), Buffer.alloc(256, 0x41)]));
put('list16_v3', 1, Buffer.concat([hex('f8 02 fc 01 78 f9 01 00'), Buffer.alloc(256 * 3, 0).map((_, i) => [0xf8, 0x01, 0x13][i % 3])]));
put('empty_list_v3', 1, hex('f8 02 13 00'));
console.log(`make_corpus: wrote ${fs.readdirSync(out).length} files to ${out}`);
