// Interop: the Noise XX handshake between libwa's responder (inside wasim) and an unmodified
// Baileys 6.17 client, checked from both ends; and libwa's initiator (noise_probe) against a live
// wasim over ws:// and wss://: it accepts the simulator's root key and refuses WhatsApp's real
// root (the simulator's chain is not signed by it) and an untrusted TLS certificate.
// Usage: node noise.test.mjs WASIM_BIN PROBE_BIN
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const [wasimBin, probeBin] = process.argv.slice(2);
let passed = 0, failed = 0;
const check = (name, ok, detail = '') => {
  if (ok) { passed++; console.log(`ok - ${name}`); }
  else { failed++; console.log(`not ok - ${name} ${detail}`); }
};

let baileys, pino;
try {
  baileys = require('baileys6');
  pino = require('pino');
} catch (e) {
  console.error('node_modules missing in tests/interop: run scripts/deps.sh');
  process.exit(1);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wa-noise-'));
const children = [];
process.on('exit', () => { for (const c of children) try { c.kill('SIGKILL'); } catch {} });

function startWasim(extra) {
  return new Promise((resolve, reject) => {
    const trace = path.join(tmp, `trace-${children.length}.txt`);
    const p = spawn(wasimBin, ['--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--trace', trace, ...extra],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(p);
    let buf = '';
    const timer = setTimeout(() => reject(new Error('wasim did not start')), 10000);
    p.stdout.on('data', (d) => {
      buf += d;
      const m = buf.match(/wasim ready ws=(\S+) control=(\S+)/);
      if (m) { clearTimeout(timer); resolve({ proc: p, ws: m[1], control: m[2], trace }); }
    });
    p.on('exit', (code) => reject(new Error(`wasim exited ${code}`)));
  });
}

const probe = (url, root, ca) =>
  execFileSync(probeBin, ca ? [url, root, ca] : [url, root], { encoding: 'utf8', timeout: 20000 }).trim();

const sim = await startWasim([]);
const rootKey = (await (await fetch(`${sim.control}/root-key`)).text()).trim();
check('control API serves a 32-byte root key', /^[0-9a-f]{64}$/.test(rootKey), rootKey);

// --- Baileys 6.17 against libwa's responder ---
const { state } = await baileys.useMultiFileAuthState(path.join(tmp, 'auth6'));
const creds = state.creds;
const sock = baileys.default({
  waWebSocketUrl: sim.ws, auth: state, logger: pino({ level: 'silent' }),
  printQRInTerminal: false, markOnlineOnConnect: false,
});
const qr = await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('no QR from Baileys within 20 s')), 20000);
  sock.ev.on('connection.update', (u) => { if (u.qr) { clearTimeout(t); resolve(u.qr); } });
}).catch((e) => { check('Baileys shows a QR', false, e.message); return null; });
sock.end(undefined);
check('Baileys 6.17 completes the handshake and decrypts the server pair-device iq (shows a QR)', !!qr);

await new Promise((r) => setTimeout(r, 300));
const lines = fs.readFileSync(sim.trace, 'utf8').split('\n');
const payloadLine = lines.find((l) => / payload /.test(l));
check('libwa decoded the ClientPayload Baileys sent', !!payloadLine);
if (payloadLine && qr) {
  const p = JSON.parse(payloadLine.slice(payloadLine.indexOf('{')));
  const [ref, noiseB64, identB64, advB64] = qr.split(',');
  const hex = (b) => Buffer.from(b).toString('hex');
  const d = p.devicePairingData || {};
  check('ClientPayload is a registration (passive false, no username)', p.passive === false && p.username === undefined);
  check('userAgent.platform WEB', p.userAgent?.platform === 'WEB');
  const v = p.userAgent?.appVersion || {};
  const verStr = `${v.primary}.${v.secondary}.${v.tertiary}`;
  check('appVersion is Baileys 6.17\'s 2.3000.x', v.primary === 2 && v.secondary === 3000, verStr);
  check('webInfo.webSubPlatform WEB_BROWSER', p.webInfo?.webSubPlatform === 'WEB_BROWSER');
  check('eIdent = the identity key Baileys puts in its QR', d.eIdent === Buffer.from(identB64, 'base64').toString('hex'));
  check('eIdent = Baileys creds.signedIdentityKey.public', d.eIdent === hex(creds.signedIdentityKey.public));
  check('eRegid = creds.registrationId (4 bytes BE)', parseInt(d.eRegid, 16) === creds.registrationId);
  check('eKeytype = 05', d.eKeytype === '05');
  check('eSkeyId / eSkeyVal = creds.signedPreKey', parseInt(d.eSkeyId, 16) === creds.signedPreKey.keyId &&
        d.eSkeyVal === hex(creds.signedPreKey.keyPair.public));
  check('eSkeySig = creds.signedPreKey.signature', d.eSkeySig === hex(creds.signedPreKey.signature));
  check('buildHash = MD5 of the version string', d.buildHash === createHash('md5').update(verStr).digest('hex'));
  check('the QR carries Baileys\' noise key and a 32-byte adv secret',
        Buffer.from(noiseB64, 'base64').equals(Buffer.from(creds.noiseKey.public)) && Buffer.from(advB64, 'base64').length === 32);
  const pairOut = lines.find((l) => /^1 out <iq .*xmlns="md"><pair-device>/.test(l));
  const id = pairOut && pairOut.match(/ id="([^"]+)"/)[1];
  check('libwa decrypted Baileys\' answer to pair-device (transport both ways)',
        !!id && lines.some((l) => l.startsWith('1 in <iq') && l.includes(`id="${id}"`) && l.includes('type="result"')),
        `ref ${ref}`);
}

// --- libwa's initiator against wasim ---
check('libwa client with the simulator root completes the handshake (ws)',
      probe(sim.ws, rootKey).startsWith('OPEN failure'), probe(sim.ws, rootKey));
const refused = probe(sim.ws, 'default');
check('libwa client trusting only WhatsApp\'s real root refuses the chain (WA_ECERT)',
      refused.startsWith('REFUSED WA_ECERT'), refused);

const simTls = await startWasim(['--tls']);
const ca = path.join(tmp, 'ca.pem');
fs.writeFileSync(ca, await (await fetch(`${simTls.control}/ca.pem`)).text());
const rootTls = (await (await fetch(`${simTls.control}/root-key`)).text()).trim();
const wssOk = probe(simTls.ws, rootTls, ca);
check('libwa client over wss:// trusting the simulator CA completes the handshake', wssOk.startsWith('OPEN'), wssOk);
const wssBad = probe(simTls.ws, rootTls);
check('libwa client over wss:// without that CA refuses the TLS certificate', wssBad.startsWith('REFUSED WA_ECERT'), wssBad);

for (const c of children) c.kill('SIGTERM');
fs.rmSync(tmp, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
