// gcsfake.mjs - stand-ins for Google Cloud: the metadata server's token endpoint (Metadata-Flavor
// checked, tokens counted, lifetime settable) and the Cloud Storage XML API subset wagate uses
// (bearer tokens from the given sets, or SigV4 HMAC with region "auto"; listings 2 keys a
// page). Shared by backup.test.mjs (the engine) and gcsstack.mjs (the daemon's test).
// SPDX-License-Identifier: GPL-3.0-or-later
import crypto from 'node:crypto';
import http from 'node:http';

import { readBody, verifySigV4, xmlError } from './s3check.mjs';

function startMetadata() {
  const st = { fetches: 0, badFlavor: 0, expiresIn: 3600, issued: new Set() };
  const server = http.createServer((req, res) => {
    if (req.url !== '/computeMetadata/v1/instance/service-accounts/default/token') {
      res.writeHead(404).end();
      return;
    }
    if (req.headers['metadata-flavor'] !== 'Google') {
      st.badFlavor++;
      res.writeHead(403).end('Missing Metadata-Flavor:Google header');
      return;
    }
    st.fetches++;
    const token = 'ya29.meta-' + crypto.randomBytes(12).toString('hex');
    st.issued.add(token);
    res.writeHead(200, { 'content-type': 'application/json', 'metadata-flavor': 'Google' });
    res.end(JSON.stringify({ access_token: token, expires_in: st.expiresIn, token_type: 'Bearer' }));
  });
  return { server, st };
}

function xmlEsc(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// The Cloud Storage XML API, the subset we use: PUT/GET/DELETE /BUCKET/OBJECT and
// GET /BUCKET?prefix=&marker= (ListBucketResult, 2 keys a page).
function startFakeGcs(bucket, tokenSets, hmacSecrets) {
  const st = { objects: new Map(), requests: 0, unauthorized: 0, revoked: new Set(),
               reasons: [], pages: 0 };
  const server = http.createServer(async (req, res) => {
    const body = await readBody(req);
    st.requests++;
    const auth = req.headers.authorization || '';
    if (auth.startsWith('Bearer ')) {
      const tok = auth.slice(7);
      const known = tokenSets.some((s) => s.has(tok));
      if (!known || st.revoked.has(tok)) {
        st.unauthorized++;
        return xmlError(res, 401, 'AuthenticationRequired', 'Invalid Credentials');
      }
    } else {
      const why = verifySigV4(req, body, hmacSecrets, 'auto');
      if (why) {
        st.unauthorized++;
        st.reasons.push(why);
        return xmlError(res, 403, 'SignatureDoesNotMatch', why);
      }
    }
    const [rawPath, rawQuery] = req.url.split('?');
    const parts = rawPath.split('/');
    if (parts[1] !== bucket) return xmlError(res, 404, 'NoSuchBucket', 'no such bucket');
    const key = decodeURIComponent(parts.slice(2).join('/'));
    if (!key) {
      if (req.method !== 'GET') return xmlError(res, 405, 'MethodNotAllowed', req.method);
      const q = new URLSearchParams(rawQuery || '');
      const prefix = q.get('prefix') || '', marker = q.get('marker') || '';
      const keys = [...st.objects.keys()].filter((k) => k.startsWith(prefix) && k > marker).sort();
      const page = keys.slice(0, 2);
      st.pages++;
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01">' +
              `<Name>${bucket}</Name><Prefix>${xmlEsc(prefix)}</Prefix><Marker>${xmlEsc(marker)}</Marker>` +
              `<IsTruncated>${keys.length > 2}</IsTruncated>` +
              page.map((k) => `<Contents><Key>${xmlEsc(k)}</Key><Generation>1</Generation>` +
                              `<Size>${st.objects.get(k).length}</Size></Contents>`).join('') +
              '</ListBucketResult>');
      return;
    }
    if (req.method === 'PUT') {
      st.objects.set(key, body);
      res.writeHead(200).end();
    } else if (req.method === 'GET') {
      const o = st.objects.get(key);
      if (!o) return xmlError(res, 404, 'NoSuchKey', 'The specified key does not exist.');
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(o);
    } else if (req.method === 'DELETE') {
      if (!st.objects.delete(key)) return xmlError(res, 404, 'NoSuchKey', 'gone');
      res.writeHead(204).end();
    } else {
      xmlError(res, 405, 'MethodNotAllowed', req.method);
    }
  });
  return { server, st };
}

export { startMetadata, startFakeGcs };
