// bench.mjs - binary node codec benchmark: libwa (bench_codec) vs Baileys 7 (dictionary v3),
// same stanza bytes, same run. Prints nodes/s and MB/s for decode and encode, and the ratios.
//
//   node bench/codec/bench.mjs <build>/bench/codec/bench_codec [seconds per measurement]
//
// The corpus (corpus.mjs) is encoded by Baileys 7; those bytes are what both sides decode, and
// both sides encode the same tree (libwa's encoding is checked byte-identical). Baileys is timed
// on its synchronous core (decodeDecompressedBinaryNode / encodeBinaryNode) after a warm-up;
// libwa decodes into a fresh arena per stanza (malloc and free included) and copies binary
// content (Baileys returns views of the input). Both sides report the median ns/op over
// batches of >= 200 us, which a busy shared machine disturbs far less than the mean (also
// printed, for the mix). Node needs tests/interop/node_modules (scripts/deps.sh).
//
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { fileURLToPath, pathToFileURL } from 'url';
import { countNodes, stanzas } from './corpus.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const nm = path.resolve(here, '..', '..', 'tests', 'interop', 'node_modules');
const tool = process.argv[2];
const seconds = +(process.argv[3] || 0.5);
if (!tool || !fs.existsSync(tool)) {
    console.error('usage: node bench/codec/bench.mjs <path to bench_codec> [seconds]');
    process.exit(2);
}
if (!fs.existsSync(path.join(nm, 'baileys7'))) {
    console.error(`bench: ${nm} lacks baileys7: run scripts/deps.sh`);
    process.exit(2);
}
const wab = await import(pathToFileURL(path.join(nm, 'baileys7', 'lib', 'WABinary', 'index.js')));
const constants = await import(pathToFileURL(path.join(nm, 'baileys7', 'lib', 'WABinary', 'constants.js')));
const pkg = JSON.parse(fs.readFileSync(path.join(nm, 'baileys7', 'package.json'), 'utf8'));

const entries = Object.entries(stanzas).map(([name, make]) => {
    const tree = make();
    return { name, tree, frame: wab.encodeBinaryNode(tree), nodes: countNodes(tree) };
});

// libwa
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-bench-codec-'));
const corpus = path.join(tmp, 'corpus.bin');
fs.writeFileSync(corpus, Buffer.concat(entries.flatMap(e => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(e.frame.length);
    return [Buffer.from([e.name.length]), Buffer.from(e.name), len, e.frame];
})));
const r = spawnSync(tool, [corpus, String(seconds)], { encoding: 'utf8' });
fs.rmSync(tmp, { recursive: true, force: true });
if (r.status !== 0) {
    process.stderr.write(r.stderr || '');
    console.error(`bench: ${tool} failed (status ${r.status})`);
    process.exit(1);
}
const c = Object.fromEntries(r.stdout.trim().split('\n').map(l => JSON.parse(l)).map(x => [x.name, x]));

// Baileys, timed like bench_codec: after a JIT warm-up, the batch size is doubled until a batch
// lasts 200 us, then batches run until the budget is spent. Returns ns per op: the median over
// batches (robust to a shared machine's load; batches still include V8's frequent minor GCs)
// and the mean.
function timeIt(fn) {
    for (let i = 0; i < 200; i++) fn(); // warm-up (JIT)
    let batch = 1;
    for (;;) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < batch; i++) fn();
        if (Number(process.hrtime.bigint() - t0) >= 200e3) break;
        batch *= 2;
    }
    const per = [];
    let total = 0;
    let iters = 0;
    while (total < seconds * 1e9) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < batch; i++) fn();
        const dt = Number(process.hrtime.bigint() - t0);
        per.push(dt / batch);
        total += dt;
        iters += batch;
    }
    per.sort((a, b) => a - b);
    return { median: per[per.length >> 1], mean: total / iters };
}
let sink = 0;
for (const e of entries) {
    const body = e.frame.subarray(1); // Baileys strips the flag byte before decoding
    const d = timeIt(() => {
        sink += wab.decodeDecompressedBinaryNode(body, constants, { index: 0 }).tag.length;
    });
    const n = timeIt(() => {
        sink += wab.encodeBinaryNode(e.tree).length;
    });
    e.b_dec = d.median;
    e.b_dec_mean = d.mean;
    e.b_enc = n.median;
    e.b_enc_mean = n.mean;
}

const fmt = (x, w) => String(x).padStart(w);
const mbs = (bytes, ns) => (bytes / ns * 1e3).toFixed(1); // bytes/ns * 1e9 / 1e6
const kn = (nodes, ns) => (nodes / ns * 1e6).toFixed(0); // nodes/ns * 1e9 / 1e3
console.log(`binary node codec, dictionary v3: libwa vs Baileys ${pkg.version} (node ${process.version}), ${seconds}s per figure`);
console.log('stanza   bytes nodes |      decode MB/s (knodes/s)       x |      encode MB/s (knodes/s)       x | same bytes');
console.log('                     |   libwa            Baileys          |   libwa            Baileys          |');
let tot = { bytes: 0, nodes: 0, cd: 0, ce: 0, bd: 0, be: 0 };
for (const e of entries) {
    const x = c[e.name];
    tot.bytes += e.frame.length; tot.nodes += e.nodes;
    tot.cd += x.decode_ns; tot.ce += x.encode_ns; tot.bd += e.b_dec; tot.be += e.b_enc;
    console.log(`${e.name.padEnd(8)} ${fmt(e.frame.length, 5)} ${fmt(e.nodes, 5)} | ` +
        `${fmt(mbs(e.frame.length, x.decode_ns), 7)} (${fmt(kn(e.nodes, x.decode_ns), 6)}) ` +
        `${fmt(mbs(e.frame.length, e.b_dec), 7)} (${fmt(kn(e.nodes, e.b_dec), 6)}) ${fmt((e.b_dec / x.decode_ns).toFixed(1), 5)} | ` +
        `${fmt(mbs(e.frame.length, x.encode_ns), 7)} (${fmt(kn(e.nodes, x.encode_ns), 6)}) ` +
        `${fmt(mbs(e.frame.length, e.b_enc), 7)} (${fmt(kn(e.nodes, e.b_enc), 6)}) ${fmt((e.b_enc / x.encode_ns).toFixed(1), 5)} | ` +
        `${x.identical ? 'yes' : 'NO'}`);
}
console.log(`${'mix'.padEnd(8)} ${fmt(tot.bytes, 5)} ${fmt(tot.nodes, 5)} | ` +
    `${fmt(mbs(tot.bytes, tot.cd), 7)} (${fmt(kn(tot.nodes, tot.cd), 6)}) ` +
    `${fmt(mbs(tot.bytes, tot.bd), 7)} (${fmt(kn(tot.nodes, tot.bd), 6)}) ${fmt((tot.bd / tot.cd).toFixed(1), 5)} | ` +
    `${fmt(mbs(tot.bytes, tot.ce), 7)} (${fmt(kn(tot.nodes, tot.ce), 6)}) ` +
    `${fmt(mbs(tot.bytes, tot.be), 7)} (${fmt(kn(tot.nodes, tot.be), 6)}) ${fmt((tot.be / tot.ce).toFixed(1), 5)} |`);
console.log('x = Baileys time / libwa time (higher: libwa faster), from the median ns/op over timed batches');
const m = { cd: 0, ce: 0, bd: 0, be: 0 };
for (const e of entries) {
    m.cd += c[e.name].decode_mean_ns; m.ce += c[e.name].encode_mean_ns; m.bd += e.b_dec_mean; m.be += e.b_enc_mean;
}
console.log(`from means instead (sensitive to load): mix decode ${(m.bd / m.cd).toFixed(1)}x, encode ${(m.be / m.ce).toFixed(1)}x`);
if (sink < 0) console.log(sink);
