// events.test.mjs - src/events end to end with Node clients on loopback (see CMakeLists.txt).
// Usage: node events.test.mjs path/to/events_driver
//
// 1. Driver A (webhook receiver down) publishes 30 events while a WebSocket client (session s1)
//    and an SSE client (events=message) listen: each gets exactly its filtered events, in order.
// 2. Driver A is killed (SIGKILL) with all 30 deliveries pending. Driver B opens the same outbox,
//    the clients reconnect with their last ids (since= / Last-Event-ID) and 30 more events are
//    published; a third SSE client replays from an old id.
// 3. The receiver comes up (first 3 answers 503): every one of the 60 events arrives with a valid
//    HMAC, none twice; the flush then reports nothing pending.
// 4. Driver C with a 256 KiB stream queue: a WebSocket client that stops reading is dropped while
//    an SSE client that reads gets every event.
// SPDX-License-Identifier: GPL-3.0-or-later
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import WebSocket from 'ws';

const DRIVER = process.argv[2];
const SECRET = 'interop-secret-' + crypto.randomBytes(4).toString('hex');
let passed = 0, failed = 0;

function check(cond, what) {
  if (cond) {
    passed++;
  } else {
    failed++;
    console.error('FAIL: ' + what);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(50);
  }
  console.error('timeout: ' + what);
  return false;
}

class Driver {
  constructor(db, env = {}) {
    this.proc = spawn(DRIVER, [db], { env: { ...process.env, ...env },
                                      stdio: ['pipe', 'pipe', 'inherit'] });
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
    const m = await this.next();
    this.port = m.port;
    return this;
  }
  cmd(line) {
    this.proc.stdin.write(line + '\n');
    return this.next();
  }
  async stats() {
    return (await this.cmd('stats')).stats;
  }
}

function wsClient(port, query) {
  const c = { msgs: [], closed: null };
  c.ws = new WebSocket(`ws://127.0.0.1:${port}/api/events${query}`);
  c.ws.on('message', (d) => c.msgs.push(JSON.parse(d.toString())));
  c.ws.on('close', (code) => { c.closed = code; });
  c.ws.on('error', () => {});
  c.open = new Promise((r, j) => { c.ws.on('open', r); c.ws.on('error', j); });
  return c;
}

function sseClient(port, query, lastId) {
  const c = { events: [], ended: false, ac: new AbortController() };
  const headers = { Accept: 'text/event-stream' };
  if (lastId) headers['Last-Event-ID'] = lastId;
  c.done = (async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/events${query}`,
                              { headers, signal: c.ac.signal });
      c.status = res.status;
      c.type = res.headers.get('content-type');
      const dec = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = null, data = null;
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (data !== null) c.events.push({ id, env: JSON.parse(data) });
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError') c.error = e;
    }
    c.ended = true;
  })();
  c.close = () => c.ac.abort();
  return c;
}

function receiver(port) {
  const r = { got: new Map(), badSig: 0, requests: 0, fail503: 3 };
  r.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      r.requests++;
      const body = Buffer.concat(chunks);
      const ts = req.headers['x-wagate-timestamp'] || '';
      const sig = req.headers['x-wagate-signature'] || '';
      const want = 'sha256=' + crypto.createHmac('sha256', SECRET)
        .update(ts + '.').update(body).digest('hex');
      const ok = sig.length === want.length &&
        crypto.timingSafeEqual(Buffer.from(sig), Buffer.from(want)) &&
        Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      const env = JSON.parse(body.toString());
      if (!ok || env.id !== req.headers['x-wagate-event-id'] ||
          env.event !== req.headers['x-wagate-event']) {
        r.badSig++;
        res.writeHead(401).end();
        return;
      }
      if (r.fail503 > 0) {
        r.fail503--;
        res.writeHead(503).end();
        return;
      }
      r.got.set(env.id, (r.got.get(env.id) || 0) + 1);
      res.writeHead(204).end();
    });
  });
  r.listen = () => new Promise((ok) => r.server.listen(port, '127.0.0.1', ok));
  r.close = () => new Promise((ok) => r.server.close(ok));
  return r;
}

async function freePort() {
  const s = http.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

const sorted = (ids) => ids.every((v, i) => i === 0 || ids[i - 1] < v);

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wg-events-'));
  const db = path.join(dir, 'events.db');
  const rport = await freePort();
  // short keep-alives: an SSE client that went away is noticed at the next write
  const env = { WEBHOOK_URL: `http://127.0.0.1:${rport}/hook`, WEBHOOK_SECRET: SECRET,
                RETRY_BASE_MS: '200', RETRY_CAP_MS: '1000', SSE_KEEPALIVE_MS: '300' };

  // ---- 1: driver A, receiver down ----
  const a = await new Driver(db, env).start();
  const ws1 = wsClient(a.port, '?session=s1');
  await ws1.open;
  const sse1 = sseClient(a.port, '?events=message');
  check(await waitFor(async () => { const s = await a.stats();
                                    return s.ws_clients === 1 && s.sse_clients === 1; },
                      5000, 'clients registered'), 'A: WS and SSE clients registered');
  check(sse1.status === 200 && /text\/event-stream/.test(sse1.type), 'A: SSE content type');
  const burst1 = (await a.cmd('burst 30 * * 10')).burst;
  check(burst1.length === 30 && burst1.every((x) => /^[0-9A-HJKMNP-TV-Z]{26}$/.test(x)),
        'A: 30 ids');
  check(sorted(burst1), 'A: ids sort in publish order');
  // burst '*': even i -> s1, odd -> s2; (i/2)%2 -> message / message.ack
  const want1ws = burst1.filter((_, i) => i % 2 === 0);
  const want1sse = burst1.filter((_, i) => Math.floor(i / 2) % 2 === 0);
  await waitFor(() => ws1.msgs.length >= want1ws.length && sse1.events.length >= want1sse.length,
                5000, 'A: stream deliveries');
  check(JSON.stringify(ws1.msgs.map((m) => m.id)) === JSON.stringify(want1ws),
        'A: WS got exactly the s1 events in order');
  check(ws1.msgs.every((m) => m.session === 's1' && typeof m.timestamp === 'number' &&
                       m.payload && 'i' in m.payload), 'A: WS envelopes well-formed');
  check(JSON.stringify(sse1.events.map((e) => e.id)) === JSON.stringify(want1sse),
        'A: SSE got exactly the message events in order');
  check(sse1.events.every((e) => e.id === e.env.id && e.env.event === 'message'),
        'A: SSE id lines match the envelopes');
  let s = await a.stats();
  check(s.pending === 30, `A: 30 deliveries pending while the receiver is down (${s.pending})`);

  // ---- 2: crash, driver B on the same outbox ----
  a.proc.kill('SIGKILL');
  await a.exited;
  await waitFor(() => ws1.closed !== null && sse1.ended, 5000, 'A: clients see the crash');
  const b = await new Driver(db, env).start();
  s = await b.stats();
  check(s.pending === 30, `B: the 30 deliveries survived the crash (${s.pending})`);
  const lastWs = ws1.msgs[ws1.msgs.length - 1].id;
  const lastSse = sse1.events[sse1.events.length - 1].id;
  const ws2 = wsClient(b.port, `?session=s1&since=${lastWs}`);
  await ws2.open;
  const sse2 = sseClient(b.port, '?events=message', lastSse);
  // a late client replays from the 5th event of the first burst
  const sse3 = sseClient(b.port, '?events=message', burst1[4]);
  check(await waitFor(async () => { const st = await b.stats();
                                    return st.ws_clients === 1 && st.sse_clients === 2; },
                      5000, 'B clients'), 'B: clients registered');
  const burst2 = (await b.cmd('burst 30 * * 10')).burst;
  check(burst2[0] > burst1[29], 'B: ids after the crash sort after the stored ones');
  const want2ws = burst2.filter((_, i) => i % 2 === 0);
  const want2sse = burst2.filter((_, i) => Math.floor(i / 2) % 2 === 0);
  const want3 = [...burst1.slice(5), ...burst2].filter((id) => {
    const i = burst1.includes(id) ? burst1.indexOf(id) : burst2.indexOf(id);
    return Math.floor(i / 2) % 2 === 0;
  });
  await waitFor(() => ws2.msgs.length >= want2ws.length && sse2.events.length >= want2sse.length &&
                      sse3.events.length >= want3.length, 5000, 'B: stream deliveries');
  check(JSON.stringify(ws2.msgs.map((m) => m.id)) === JSON.stringify(want2ws),
        'B: resumed WS got the new s1 events only, in order');
  check(JSON.stringify(sse2.events.map((e) => e.id)) === JSON.stringify(want2sse),
        'B: resumed SSE (Last-Event-ID) got the new message events only');
  check(JSON.stringify(sse3.events.map((e) => e.id)) === JSON.stringify(want3),
        `B: replaying SSE got old then new events, no gap, no repeat (${sse3.events.length}/${want3.length})`);

  // ---- 3: the receiver comes back ----
  await sleep(1500); // down for a while longer: retries keep failing
  s = await b.stats();
  check(s.delivered === 0 && s.retried > 0, 'B: retries while the receiver is down');
  const rx = receiver(rport);
  await rx.listen();
  const all = [...burst1, ...burst2];
  check(await waitFor(() => all.every((id) => rx.got.has(id)), 20000, 'webhooks'),
        `every event arrived by webhook (${rx.got.size}/60)`);
  await sleep(500);
  check([...rx.got.values()].every((n) => n === 1), 'no event arrived twice');
  check(rx.got.size === 60, 'no unexpected event');
  check(rx.badSig === 0, 'every signature valid');
  check(rx.fail503 === 0, 'the 503 answers were retried');
  const fl = await b.cmd('flush 2000');
  check(fl.flushed === true && fl.pending === 0, 'flush: nothing pending');
  s = await b.stats();
  check(s.delivered === 60 && s.failed === 0, `B: stats delivered=${s.delivered}`);
  ws2.ws.close();
  sse2.close();
  sse3.close();
  check(await waitFor(async () => { const st = await b.stats();
                                    return st.ws_clients === 0 && st.sse_clients === 0; },
                      10000, 'clients gone'),
        `B: clients that left are released (${JSON.stringify(await b.stats())})`);
  const bye = await b.cmd('quit');
  check(bye.bye === true && (await b.exited).code === 0, 'B: clean exit');
  await rx.close();

  // ---- 4: slow consumer ----
  const db2 = path.join(dir, 'slow.db');
  const c = await new Driver(db2, { QUEUE_MAX: String(256 << 10) }).start();
  const slow = wsClient(c.port, '');
  await slow.open;
  slow.ws._socket.pause(); // stops reading: kernel buffers fill, then the server queue
  const fast = sseClient(c.port, '');
  await waitFor(async () => (await c.stats()).sse_clients === 1, 5000, 'fast client');
  let ids = [];
  // small bursts (well under the queue) with a round trip between them, so that a reading
  // client keeps up; the paused one fills its kernel buffers, then its queue
  for (let k = 0; k < 1000 && !(await c.stats()).stream_dropped; k++)
    ids = ids.concat((await c.cmd('burst 4 s1 message 30000')).burst);
  s = await c.stats();
  check(s.stream_dropped >= 1, `C: the slow WebSocket client was dropped (${ids.length} events)`);
  check(await waitFor(async () => (await c.stats()).ws_clients === 0, 5000, 'slow released'),
        'C: the slow client was released');
  check(await waitFor(() => fast.events.length >= ids.length, 20000, 'fast client events'),
        `C: the reading SSE client got every event (${fast.events.length}/${ids.length})`);
  check(JSON.stringify(fast.events.map((e) => e.id)) === JSON.stringify(ids),
        'C: in order');
  slow.ws._socket.resume();
  check(await waitFor(() => slow.closed !== null, 5000, 'slow closed'),
        `C: the slow client sees its connection closed (${slow.closed})`);
  fast.close();
  // quit while an SSE client is still attached: the hub ends its stream first
  const late = sseClient(c.port, '');
  await waitFor(async () => (await c.stats()).sse_clients >= 1, 5000, 'late client');
  const bye2 = await c.cmd('quit');
  check(bye2.bye === true && (await c.exited).code === 0, 'C: clean exit with a client attached');
  await waitFor(() => late.ended, 5000, 'late ended');
  check(late.ended, 'C: the attached SSE client saw its stream end');

  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
