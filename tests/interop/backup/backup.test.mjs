// backup.test.mjs - src/backup against real and stand-in object stores on loopback, driven by
// backup_driver (no daemon; see CMakeLists.txt).
// Usage: node backup.test.mjs path/to/backup_driver
//
// s3    s3rver (a real S3-compatible server, from npm) behind a proxy written here that
//       recomputes every request's SigV4 signature with the known secret and answers 403
//       SignatureDoesNotMatch on any mismatch (s3rver itself does not check V4 signatures),
//       checks x-amz-content-sha256 against the body received, and shrinks every listing to 2
//       keys a page so that the client must follow the pages. The prefix holds a space and a
//       '+' so that path and query encoding are exercised. Backup with encryption, unchanged
//       detection, generations pruned to N, DATA_DIR deleted and restored, the newest object
//       corrupted (fallback + a log line naming it), a wrong secret rejected (and counted).
// cloud a metadata-server stand-in (Metadata-Flavor checked, tokens counted, short lifetimes,
//       revocation) and a fake Cloud Storage XML API (bearer tokens or SigV4 HMAC with region
//       "auto", listings paged), plus an OAuth2 token endpoint that verifies the service
//       account's RS256 JWT with its public key.
// Prints "N passed, M failed".
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const DRIVER = process.argv[2];
const require = createRequire(import.meta.url);
const S3rver = require(process.env.S3RVER_MODULE || 's3rver');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'wg-backup-interop-'));
const KEY_HEX = crypto.randomBytes(32).toString('hex');
let passed = 0, failed = 0;

function check(cond, what) {
  if (cond) {
    passed++;
  } else {
    failed++;
    console.error('FAIL: ' + what);
  }
}

import { sleep, sha256hex, hmac, enc, canonicalQuery, verifySigV4, readBody, listen, xmlError, startProxy } from './s3check.mjs';
import { startMetadata, startFakeGcs } from './gcsfake.mjs';

// ---- cloud stand-ins (the metadata server and Cloud Storage: gcsfake.mjs) ----

function b64uJson(s) {
  return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}

function startTokenEndpoint(publicKey, email) {
  const st = { exchanges: 0, rejected: 0, reasons: [], issued: new Set(), port: 0 };
  const server = http.createServer(async (req, res) => {
    const body = (await readBody(req)).toString();
    const form = new URLSearchParams(body);
    const reject = (why) => {
      st.rejected++;
      st.reasons.push(why);
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid_grant', error_description: why }));
    };
    if (req.method !== 'POST' || req.url !== '/token') return reject('not POST /token');
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') return reject('content-type');
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return reject('grant_type');
    const jwt = form.get('assertion') || '';
    const [h, c, s] = jwt.split('.');
    if (!s) return reject('not a JWS');
    const ok = crypto.verify('RSA-SHA256', Buffer.from(h + '.' + c), publicKey, Buffer.from(s, 'base64url'));
    if (!ok) return reject('bad signature');
    const header = b64uJson(h), claims = b64uJson(c);
    const now = Math.floor(Date.now() / 1000);
    if (header.alg !== 'RS256' || header.typ !== 'JWT' || header.kid !== 'kid-interop') return reject('header');
    if (claims.iss !== email) return reject('iss');
    if (claims.aud !== `http://127.0.0.1:${st.port}/token`) return reject('aud ' + claims.aud);
    if (claims.scope !== 'https://www.googleapis.com/auth/devstorage.read_write') return reject('scope');
    if (Math.abs(claims.iat - now) > 60 || claims.exp - claims.iat !== 3600) return reject('iat/exp');
    st.exchanges++;
    const token = 'ya29.sa-' + crypto.randomBytes(12).toString('hex');
    st.issued.add(token);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: token, expires_in: 3599, token_type: 'Bearer' }));
  });
  return { server, st };
}

// ---- the driver ----

class Driver {
  constructor(env) {
    this.stderr = '';
    this.proc = spawn(DRIVER, [], { env: { ...process.env, LOG_LEVEL: 'info', ...env },
                                    stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr.on('data', (d) => {
      this.stderr += d.toString();
      if (process.env.VERBOSE) process.stderr.write(d);
    });
    this.waiters = [];
    this.lines = [];
    readline.createInterface({ input: this.proc.stdout }).on('line', (l) => {
      const msg = JSON.parse(l);
      const w = this.waiters.shift();
      if (w) w(msg); else this.lines.push(msg);
    });
    this.exited = new Promise((r) => this.proc.on('exit', (code, sig) => r({ code, sig })));
  }
  next() {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    return new Promise((r) => this.waiters.push(r));
  }
  async start() {
    this.ready = await this.next();
    return this;
  }
  cmd(line) {
    this.proc.stdin.write(line + '\n');
    return this.next();
  }
  // every driver must close cleanly (no handle left, and no sanitizer report in ASan builds)
  async quit() {
    this.proc.stdin.end('quit\n');
    const r = await this.exited;
    check(r.code === 0, `driver exit code ${r.code}` + (r.code ? ': ' + this.stderr.slice(-3000) : ''));
    return r;
  }
}

function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}

const figures = [];

// ---- s3 ----

async function testS3() {
  const s3dir = path.join(TMP, 's3rver');
  const s3 = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: s3dir,
                          configureBuckets: [{ name: 'wagate-test' }] });
  const { port: s3Port } = await s3.run();
  const SECRET = 'interop-' + crypto.randomBytes(16).toString('hex');
  const proxy = startProxy(s3Port, { S3RVER: SECRET });
  const pport = await listen(proxy.server);
  const data = path.join(TMP, 's3-data');
  const env = { DATA_DIR: data, SESSION_STORAGE_TYPE: 's3', S3_ENDPOINT: `http://127.0.0.1:${pport}`,
                S3_BUCKET: 'wagate-test', S3_PREFIX: 'it/wa gate+1', S3_ACCESS_KEY_ID: 'S3RVER',
                S3_SECRET_ACCESS_KEY: SECRET, SESSION_ENCRYPTION_KEY: KEY_HEX,
                SESSION_BACKUP_GENERATIONS: '3' };
  // s3rver itself, unauthenticated (it allows that), to look at what was stored
  const s3req = (method, key, body) => new Promise((resolve, reject) => {
    const q = method === 'LIST' ? '?prefix=' + encodeURIComponent(key) : '';
    const p = '/wagate-test' + (method === 'LIST' ? '' : '/' + key.split('/').map(encodeURIComponent).join('/'));
    const rq = http.request({ host: '127.0.0.1', port: s3Port, method: method === 'LIST' ? 'GET' : method,
                              path: p + q }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(parts) }));
    });
    rq.on('error', reject);
    rq.end(body);
  });
  const PFX = 'it/wa gate+1/';
  const objectsOf = async (s) => {
    const r = await s3req('LIST', PFX + s + '/');
    const keys = [...r.body.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1]);
    return keys.filter((k) => k.endsWith('.wgb')).sort();
  };

  let d = await new Driver(env).start();
  check(d.ready.store === 's3' && d.ready.where === 's3://wagate-test/it/wa gate+1', 's3: store ' + JSON.stringify(d.ready));
  check((await d.cmd('make s1 11 812')).rc === 0, 's3: make s1');
  check((await d.cmd('make s2 22 50')).rc === 0, 's3: make s2');
  let r = await d.cmd('request s1');
  check(r.stats.backups_ok === 1 && r.stats.backups_failed === 0, 's3: s1 backed up ' + JSON.stringify(r.stats));
  figures.push(`s3: one session (812 prekeys, 3 Signal sessions): ${r.stats.last_bytes} bytes uploaded ` +
               `(${r.stats.last_plain_bytes} before compression), ${(r.stats.last_duration_s * 1000).toFixed(1)} ms snapshot to upload done`);
  r = await d.cmd('request s2');
  check(r.stats.backups_ok === 2, 's3: s2 backed up');
  figures.push(`s3: small session (50 prekeys): ${r.stats.last_bytes} bytes, ${(r.stats.last_duration_s * 1000).toFixed(1)} ms`);
  check((await objectsOf('s1')).length === 1 && (await objectsOf('s2')).length === 1, 's3: one object each in s3rver');
  const raw = (await s3req('GET', (await objectsOf('s1'))[0])).body;
  check(raw.subarray(0, 4).toString() === 'WGBK' && raw[5] === 3, 's3: object is WGBK, compressed and encrypted');
  check(!raw.includes(Buffer.from('Tester 11')), 's3: no plaintext in the object');
  r = await d.cmd('request s1');
  check(r.stats.backups_ok === 2 && r.stats.unchanged === 1, 's3: unchanged session not uploaded');
  for (let i = 0; i < 4; i++) {
    await d.cmd('touch s1');
    r = await d.cmd('request s1');
  }
  check(r.stats.backups_ok === 6 && r.stats.deleted === 2, 's3: 4 more generations, 2 pruned ' + JSON.stringify(r.stats));
  figures.push(`s3: a later backup of the same session (one PUT, one DELETE of the oldest): ` +
               `${r.stats.last_bytes} bytes, ${(r.stats.last_duration_s * 1000).toFixed(1)} ms; ` +
               `mean over ${r.stats.backups_ok} backups ${(r.stats.duration_sum_s / r.stats.backups_ok * 1000).toFixed(1)} ms`);
  const gens = (await objectsOf('s1')).map((k) => k.slice((PFX + 's1/').length, (PFX + 's1/').length + 12));
  check(JSON.stringify(gens) === JSON.stringify(['000000000003', '000000000004', '000000000005']),
        's3: generations 3..5 kept: ' + gens);
  check(proxy.stats.rejected === 0 && proxy.stats.checked >= 10, `s3: every request signed right (${proxy.stats.checked} checked, reasons ${proxy.stats.reasons})`);
  r = await d.cmd('flush');
  check(r.ok === 1 && r.stats.backups_ok === 6, 's3: flush with nothing changed');
  await d.quit();

  // DATA_DIR lost: restore (the listing is paged by the proxy: 2 keys a page)
  rmrf(data);
  const listsBefore = proxy.stats.lists;
  d = await new Driver(env).start();
  r = await d.cmd('restore');
  check(r.report.sessions === 2 && r.report.restored === 2 && r.report.failed === 0 && r.report.fallbacks === 0,
        's3: restore of 2 sessions ' + JSON.stringify(r.report));
  figures.push(`s3: restore of 2 sessions into an empty DATA_DIR: ${(r.report.seconds * 1000).toFixed(1)} ms`);
  check(proxy.stats.lists - listsBefore === 2, `s3: the restore followed the listing over 2 pages (${proxy.stats.lists - listsBefore})`);
  const s1r = r.restored.find((x) => x.session === 's1');
  check(s1r && s1r.meta.name === 's1' && s1r.meta.config.note === 'x' && /s1\/000000000005-/.test(s1r.object),
        's3: s1 restored from generation 5 with its metadata ' + JSON.stringify(s1r));
  r = await d.cmd('check s1 11');
  check(r.found === 1 && r.paired === 1 && r.creds_ok === 1 && r.prekeys === 808, 's3: s1 rows back ' + JSON.stringify(r));
  r = await d.cmd('check s2 22');
  check(r.paired === 1 && r.creds_ok === 1 && r.prekeys === 50, 's3: s2 rows back');
  r = await d.cmd('stats');
  check(r.stats.restored === 2, 's3: restored counter');
  await d.quit();

  // the newest object corrupted: fallback to generation 4, with a log line naming the object
  const newest = (await objectsOf('s1'))[2];
  const buf = (await s3req('GET', newest)).body;
  buf[buf.length - 30] ^= 0x40;
  check((await s3req('PUT', newest, buf)).status === 200, 's3: corrupt object written back');
  rmrf(data);
  d = await new Driver(env).start();
  r = await d.cmd('restore s1');
  check(r.report.restored === 1 && r.report.fallbacks === 1 && /s1\/000000000004-/.test(r.restored[0].object),
        's3: corrupt newest -> generation 4 ' + JSON.stringify(r));
  const line = d.stderr.split('\n').find((l) => l.includes('is unusable'));
  check(line && line.includes(`s3://wagate-test/${newest}`) &&
        line.includes('authentication failed') && line.includes('falling back to the previous generation'),
        's3: log line names the corrupt object: ' + line);
  r = await d.cmd('check s1 11');
  check(r.prekeys === 809, 's3: generation 4 has one more prekey');
  r = await d.cmd('stats');
  check(r.stats.restore_fallbacks === 1 && r.stats.restored === 1, 's3: fallback counted');
  // purge (after a logout): every object of s2 deleted
  await d.cmd('make s2 22 50');
  r = await d.cmd('purge s2');
  check(r.rc === 0 && (await objectsOf('s2')).length === 0, 's3: purge deleted s2\'s objects');
  await d.quit();

  // a wrong secret: the proxy refuses, the backup fails and says why, the counter moves
  rmrf(data);
  const rejectedBefore = proxy.stats.rejected;
  d = await new Driver({ ...env, S3_SECRET_ACCESS_KEY: 'wrong-secret' }).start();
  await d.cmd('make s9 99 5');
  r = await d.cmd('request s9');
  check(r.stats.backups_failed === 1 && r.stats.backups_ok === 0, 's3: wrong secret -> failure counted');
  check(proxy.stats.rejected > rejectedBefore, 's3: the proxy rejected the bad signature');
  check(/backup failed: .*HTTP 403 SignatureDoesNotMatch/.test(d.stderr), 's3: the log says SignatureDoesNotMatch');
  await d.quit();
  check((await objectsOf('s9')).length === 0, 's3: nothing stored with the wrong secret');

  proxy.server.close();
  await s3.close();
}

// ---- cloud: metadata server ----

async function testCloudMetadata() {
  const meta = startMetadata();
  const mport = await listen(meta.server);
  const gcs = startFakeGcs('gcs-bucket', [meta.st.issued], {});
  const gport = await listen(gcs.server);
  const data = path.join(TMP, 'gcs-data');
  const env = { DATA_DIR: data, SESSION_STORAGE_TYPE: 'cloud', GCS_BUCKET: 'gcs-bucket',
                GCS_ENDPOINT: `http://127.0.0.1:${gport}`, GCE_METADATA_HOST: `127.0.0.1:${mport}`,
                SESSION_BACKUP_GENERATIONS: '2' };
  let d = await new Driver(env).start();
  check(d.ready.store === 'cloud' && d.ready.where === 'gs://gcs-bucket/wagate', 'cloud: store ' + JSON.stringify(d.ready));
  await d.cmd('make c1 31 812');
  await d.cmd('make c2 32 60');
  await d.cmd('make c3 33 60');
  let r = await d.cmd('request c1');
  check(r.stats.backups_ok === 1, 'cloud: c1 backed up ' + JSON.stringify(r.stats));
  figures.push(`cloud (bearer token, not encrypted): one session (812 prekeys): ${r.stats.last_bytes} bytes, ` +
               `${(r.stats.last_duration_s * 1000).toFixed(1)} ms including the token fetch`);
  r = await d.cmd('request c2');
  r = await d.cmd('request c3');
  check(r.stats.backups_ok === 3 && meta.st.fetches === 1 && r.stats.token_fetches === 1,
        `cloud: one token for three uploads (fetches ${meta.st.fetches})`);
  check(meta.st.badFlavor === 0, 'cloud: Metadata-Flavor header sent');
  check(gcs.st.objects.size === 3 && [...gcs.st.objects.keys()].every((k) => k.startsWith('wagate/c')),
        'cloud: three objects under the prefix');
  // revoked token: 401, a fresh token, the upload succeeds
  for (const t of meta.st.issued) gcs.st.revoked.add(t);
  await d.cmd('touch c1');
  r = await d.cmd('request c1');
  check(r.stats.backups_ok === 4 && r.stats.backups_failed === 0 && meta.st.fetches === 2 && gcs.st.unauthorized === 1,
        `cloud: 401 -> token refreshed -> upload ok (fetches ${meta.st.fetches}, 401s ${gcs.st.unauthorized})`);
  // short-lived tokens are refreshed before they expire, without a 401
  meta.st.expiresIn = 2;
  for (const t of meta.st.issued) gcs.st.revoked.add(t);
  await d.cmd('touch c1');
  r = await d.cmd('request c1'); // 401, new 2 s token
  const fetches = meta.st.fetches, unauth = gcs.st.unauthorized;
  await d.cmd('sleep 1200');
  await d.cmd('touch c1');
  r = await d.cmd('request c1');
  check(r.stats.backups_ok === 6 && meta.st.fetches === fetches + 1 && gcs.st.unauthorized === unauth,
        `cloud: token refreshed ahead of expiry (fetches ${meta.st.fetches}, 401s ${gcs.st.unauthorized})`);
  check([...gcs.st.objects.keys()].filter((k) => k.startsWith('wagate/c1/')).length === 2, 'cloud: 2 generations kept');
  meta.st.expiresIn = 3600;
  await d.quit();

  // restore everything (paged listing, 2 keys a page) into an empty DATA_DIR
  rmrf(data);
  const pagesBefore = gcs.st.pages;
  d = await new Driver(env).start();
  r = await d.cmd('restore');
  check(r.report.sessions === 3 && r.report.restored === 3 && r.report.failed === 0, 'cloud: 3 sessions restored ' + JSON.stringify(r.report));
  check(gcs.st.pages - pagesBefore === 2, `cloud: the listing was followed over its pages (${gcs.st.pages - pagesBefore})`);
  r = await d.cmd('check c1 31');
  check(r.paired === 1 && r.creds_ok === 1 && r.prekeys === 809, 'cloud: c1 rows back ' + JSON.stringify(r));
  await d.quit();

  // corrupt the newest c1 object (truncated): fallback to the previous one
  const c1keys = [...gcs.st.objects.keys()].filter((k) => k.startsWith('wagate/c1/')).sort();
  const newest = c1keys[c1keys.length - 1];
  gcs.st.objects.set(newest, gcs.st.objects.get(newest).subarray(0, 100));
  rmrf(data);
  d = await new Driver(env).start();
  r = await d.cmd('restore c1');
  check(r.report.restored === 1 && r.report.fallbacks === 1 && r.restored[0].object === c1keys[0].slice('wagate/'.length),
        'cloud: truncated newest -> previous generation ' + JSON.stringify(r));
  const line = d.stderr.split('\n').find((l) => l.includes('is unusable'));
  check(line && line.includes(`gs://gcs-bucket/${newest}`) && line.includes('truncated'), 'cloud: log line names it: ' + line);
  r = await d.cmd('check c1 31');
  check(r.prekeys === 810, 'cloud: previous generation has one more prekey');
  await d.quit();
  meta.server.close();
  gcs.server.close();
}

// ---- cloud: service-account key and HMAC ----

async function testCloudKeyfileAndHmac() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = 'wagate-it@interop-project.iam.gserviceaccount.com';
  const tok = startTokenEndpoint(publicKey, email);
  tok.st.port = await listen(tok.server);
  const HMAC_ID = 'GOOG1EINTEROP', HMAC_SECRET = crypto.randomBytes(30).toString('base64');
  const gcs = startFakeGcs('gcs-sa', [tok.st.issued], { [HMAC_ID]: HMAC_SECRET });
  const gport = await listen(gcs.server);
  const keyFile = path.join(TMP, 'sa.json');
  fs.writeFileSync(keyFile, JSON.stringify({
    type: 'service_account', project_id: 'interop-project', private_key_id: 'kid-interop',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }), client_email: email,
    client_id: '1', token_uri: `http://127.0.0.1:${tok.st.port}/token` }), { mode: 0o600 });
  const data = path.join(TMP, 'sa-data');
  const env = { DATA_DIR: data, SESSION_STORAGE_TYPE: 'cloud', GCS_BUCKET: 'gcs-sa', GCS_PREFIX: 'sa',
                GCS_ENDPOINT: `http://127.0.0.1:${gport}`, GOOGLE_APPLICATION_CREDENTIALS: keyFile,
                SESSION_ENCRYPTION_KEY: Buffer.from(KEY_HEX, 'hex').toString('base64') };
  let d = await new Driver(env).start();
  await d.cmd('make k1 41 100');
  let r = await d.cmd('request k1');
  check(r.stats.backups_ok === 1 && tok.st.exchanges === 1 && tok.st.rejected === 0,
        `keyfile: JWT accepted, backup ok (${JSON.stringify(tok.st.reasons)})`);
  await d.quit();
  rmrf(data);
  d = await new Driver(env).start();
  r = await d.cmd('restore');
  check(r.report.restored === 1, 'keyfile: restore');
  r = await d.cmd('check k1 41');
  check(r.creds_ok === 1 && r.prekeys === 100, 'keyfile: rows back');
  await d.quit();

  // HMAC keys, SigV4 with region "auto" (GCS interoperability)
  rmrf(data);
  const henv = { DATA_DIR: data, SESSION_STORAGE_TYPE: 'cloud', GCS_BUCKET: 'gcs-sa', GCS_PREFIX: 'hmac',
                 GCS_ENDPOINT: `http://127.0.0.1:${gport}`, GCS_HMAC_ACCESS_ID: HMAC_ID,
                 GCS_HMAC_SECRET: HMAC_SECRET };
  d = await new Driver(henv).start();
  await d.cmd('make h1 51 30');
  r = await d.cmd('request h1');
  check(r.stats.backups_ok === 1 && gcs.st.unauthorized === 0, `hmac: SigV4 accepted (${gcs.st.reasons})`);
  check([...gcs.st.objects.keys()].some((k) => k.startsWith('hmac/h1/')), 'hmac: object stored');
  await d.quit();
  rmrf(data);
  d = await new Driver(henv).start();
  r = await d.cmd('restore h1');
  check(r.report.restored === 1, 'hmac: restore');
  await d.quit();
  d = await new Driver({ ...henv, GCS_HMAC_SECRET: 'not-it' }).start();
  await d.cmd('make h2 52 3');
  r = await d.cmd('request h2');
  check(r.stats.backups_failed === 1 && gcs.st.unauthorized === 1, 'hmac: a wrong secret is refused');
  await d.quit();
  tok.server.close();
  gcs.server.close();
}

try {
  await testS3();
  await testCloudMetadata();
  await testCloudKeyfileAndHmac();
} catch (e) {
  failed++;
  console.error('FAIL: exception: ' + (e.stack || e));
} finally {
  rmrf(TMP);
}
for (const f of figures) console.log('figure: ' + f);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
