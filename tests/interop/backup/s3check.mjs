// s3check.mjs - a SigV4-checking proxy for s3rver (s3rver does not verify V4 signatures),
// shared by backup.test.mjs (the backup engine alone) and restore_test.py through s3stack.mjs
// (the daemon). Written from AWS's documentation, independent of the C code.
// SPDX-License-Identifier: GPL-3.0-or-later
import crypto from 'node:crypto';
import http from 'node:http';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();

// ---- SigV4 verification (independent of the C code: written from AWS's documentation) ----

// RFC 3986 encoding of a decoded string, every byte but unreserved (and '/' in paths).
function enc(s, keepSlash) {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function canonicalQuery(rawQuery) {
  if (!rawQuery) return '';
  const pairs = rawQuery.split('&').filter((p) => p.length).map((p) => {
    const i = p.indexOf('=');
    const k = decodeURIComponent(i < 0 ? p : p.slice(0, i));
    const v = i < 0 ? '' : decodeURIComponent(p.slice(i + 1));
    return [enc(k, false), enc(v, false)];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => k + '=' + v).join('&');
}

// Returns null if the request is correctly signed, else the reason.
function verifySigV4(req, body, secrets, wantRegion) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return 'no or malformed SigV4 Authorization header';
  const [, ak, date8, region, service, signedHeaders, sig] = m;
  const secret = secrets[ak];
  if (secret === undefined) return 'unknown access key ' + ak;
  if (region !== wantRegion || service !== 's3') return 'wrong scope ' + region + '/' + service;
  const amzDate = req.headers['x-amz-date'] || '';
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date8) return 'bad x-amz-date';
  const t = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8),
                     +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(Date.now() - t) > 15 * 60 * 1000) return 'x-amz-date too far from now';
  const payloadHash = req.headers['x-amz-content-sha256'];
  if (payloadHash !== sha256hex(body)) return 'x-amz-content-sha256 does not match the body';
  const names = signedHeaders.split(';');
  for (const need of ['host', 'x-amz-date', 'x-amz-content-sha256'])
    if (!names.includes(need)) return need + ' not signed';
  const [rawPath, rawQuery] = req.url.split('?');
  const canonPath = enc(decodeURIComponent(rawPath), true);
  const headerLines = names.map((n) => {
    const v = req.headers[n];
    if (v === undefined) return null;
    return n + ':' + String(v).trim().replace(/\s+/g, ' ');
  });
  if (headerLines.includes(null)) return 'a signed header is missing';
  const creq = [req.method, canonPath, canonicalQuery(rawQuery), headerLines.join('\n') + '\n',
                signedHeaders, payloadHash].join('\n');
  const sts = ['AWS4-HMAC-SHA256', amzDate, `${date8}/${region}/s3/aws4_request`,
               sha256hex(creq)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac('AWS4' + secret, date8), region), 's3'), 'aws4_request');
  const want = crypto.createHmac('sha256', kSigning).update(sts).digest('hex');
  return want === sig ? null : 'signature mismatch';
}

function readBody(req) {
  return new Promise((resolve) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts)));
  });
}

function listen(server) {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));
}

function xmlError(res, status, code, message) {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
}

// ---- the SigV4-checking proxy in front of s3rver ----

function startProxy(s3Port, secrets) {
  const stats = { checked: 0, rejected: 0, lists: 0, reasons: [], refused: 0 };
  // faults.put: correctly signed PUTs are answered 503 (an outage of the store's writes)
  const faults = { put: false };
  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    const why = verifySigV4(req, body, secrets, 'us-east-1');
    stats.checked++;
    if (why) {
      stats.rejected++;
      stats.reasons.push(why);
      xmlError(res, 403, 'SignatureDoesNotMatch', 'proxy: ' + why);
      return;
    }
    if (faults.put && req.method === 'PUT') {
      stats.refused++;
      xmlError(res, 503, 'ServiceUnavailable', 'proxy: writes refused (test fault)');
      return;
    }
    let url = req.url;
    const [p, q] = url.split('?');
    if (req.method === 'GET' && q !== undefined && /(^|&)prefix=/.test(q) && p.split('/').length === 2) {
      stats.lists++;
      url = url + '&max-keys=2'; // after the check: force the client through the pages
    }
    const fwd = http.request({ host: '127.0.0.1', port: s3Port, method: req.method, path: url,
                               headers: req.headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    fwd.on('error', () => xmlError(res, 502, 'BadGateway', 'upstream'));
    fwd.end(body);
  });
  return { server, stats, faults };
}

export { sleep, sha256hex, hmac, enc, canonicalQuery, verifySigV4, readBody, listen, xmlError, startProxy };
