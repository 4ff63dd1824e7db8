#!/usr/bin/env python3
# wa_session_test.py - wagate's sessions against the simulator wasim, end to end through the
# REST API (issue 6 acceptance, the parts that need no messaging):
#   create a session, fetch its QR (raw and JSON), scan it with the simulated phone, WORKING
#   with `me` (JID and LID); restart wagate (SIGTERM, start): WORKING again without re-pairing;
#   pair a second session by phone code (POST pair-code, the code typed on wasim's phone);
#   logout through the API (the device is unlinked on the phone, credentials wiped: a start
#   shows a new QR); logout from the phone; FAILED after MAX_RECONNECT_FAILURES failed attempts
#   in a row when the server goes away; delete purges the account from the store; bad input
#   changes nothing; the metrics count the connections and the keep-alive round trips (libwa's
#   keepalive callback, WS_KEEPALIVE_INTERVAL=2000).
# Events (src/events through the daemon): a webhook receiver (http.server on loopback, WEBHOOK_URL
#   with WEBHOOK_SECRET) gets a correctly signed session.status event when a session reaches
#   WORKING, and so do a WebSocket client (X-Api-Key header) and an SSE client (?api_key=, as a
#   browser sends it; after the restart it resumes with Last-Event-ID, no gap, no repeat); the
#   receiver is taken down while statuses change, once without and once across a restart of
#   wagate: every event arrives after it returns, none twice; at the end the receiver has every
#   event the stream saw, each once, each signed.
#   wa_session_test.py <wagate> <wasim>
# SPDX-License-Identifier: GPL-3.0-or-later
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

WAGATE, WASIM = sys.argv[1], sys.argv[2]
# with characters that must be percent-encoded in ?api_key= (generated keys are base64)
KEY = "interop+key/0123456789abcdef=="
WEBHOOK_SECRET = "whsec-interop-0123456789"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {str(detail)[:2000]}")
    return cond


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(base, method, path, body=None, key=KEY, timeout=40):
    host, port = base.replace("http://", "").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    h = {"Content-Type": "application/json"}
    if key is not None:
        h["X-Api-Key"] = key
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        j = json.loads(data)
    except ValueError:
        j = None
    return r.status, j, data


def err_code(j):
    try:
        return j["error"]["code"]
    except (TypeError, KeyError):
        return None


def wait_for(fn, secs=10, step=0.05):
    deadline = time.time() + secs
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    return last


class Proc:
    def __init__(self, tmp, name, argv, env):
        self.out_path = os.path.join(tmp, f"{name}-{time.time():.3f}.out")
        self.err_path = os.path.join(tmp, f"{name}-{time.time():.3f}.err")
        self.out = open(self.out_path, "w+")
        self.err = open(self.err_path, "w+")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.out, stderr=self.err)

    def text(self):
        self.out.flush()
        self.err.flush()
        return open(self.out_path).read() + open(self.err_path).read()

    def stop(self, sig=signal.SIGTERM):
        t0 = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        return rc, time.time() - t0


def start_wasim(tmp):
    p = Proc(tmp, "wasim", [WASIM, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"],
             dict(os.environ))
    line = wait_for(lambda: re.search(r"wasim ready ws=(\S+) control=(\S+)", p.text()), 10)
    if not line:
        raise RuntimeError("wasim did not start: " + p.text())
    return p, line.group(1), line.group(2)


def start_wagate(tmp, data, port, ws, root, extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("K_SERVICE", "WEBHOOK_URL")}
    env.update({"PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": data, "API_KEY": KEY,
                "WA_WS_URL": ws, "WA_ROOT_KEY": root, "LOG_FORMAT": "json", "LOG_LEVEL": "info",
                "HEALTH_CHECK_INTERVAL": "500", "MAX_RECONNECT_FAILURES": "2",
                "WS_KEEPALIVE_INTERVAL": "2000"})
    env.update(extra or {})
    p = Proc(tmp, "wagate", [WAGATE], env)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return request(base, "GET", "/health", key=None, timeout=2)[0] == 200
        except OSError:
            return p.proc.poll() is not None and "exited"
    if wait_for(up, 10) is not True:
        raise RuntimeError("wagate did not come up: " + p.text())
    return p, base


def session(base, name):
    st, j, _ = request(base, "GET", f"/api/sessions/{name}")
    return j if st == 200 else None


def wait_status(base, name, statuses, secs=10):
    if isinstance(statuses, str):
        statuses = (statuses,)
    return wait_for(lambda: (lambda s: s if s and s["status"] in statuses else None)(
        session(base, name)), secs)


def get_qr(base, name, secs=10):
    def once():
        st, _, data = request(base, "GET", f"/api/sessions/{name}/qr?format=raw")
        return data.decode() if st == 200 else None
    return wait_for(once, secs)


def post_ctl(ctl, path, body):
    return request(ctl, "POST", path, body, key=None)


def store_accounts(data):
    db = sqlite3.connect(os.path.join(data, "libwa.db"))
    try:
        return sorted(r[0] for r in db.execute("SELECT name FROM account"))
    finally:
        db.close()


# ---- events: webhook receiver, WebSocket and SSE clients ---------------------------------------

class Receiver:
    """Webhook receiver on loopback; can be taken down (connection refused) and brought back on
    the same port. Records every POST with its signature checked."""

    def __init__(self, port, secret):
        self.port, self.secret = port, secret.encode()
        self.got = []  # dicts: id, event, session, status, sig_ok, headers_ok, body
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ts = self.headers.get("X-Wagate-Timestamp", "")
                sig = self.headers.get("X-Wagate-Signature", "")
                want = "sha256=" + hmac.new(rx.secret, ts.encode() + b"." + body,
                                            hashlib.sha256).hexdigest()
                try:
                    env = json.loads(body)
                except ValueError:
                    env = {}
                rec = {"id": env.get("id"), "event": env.get("event"),
                       "session": env.get("session"), "payload": env.get("payload") or {},
                       "sig_ok": hmac.compare_digest(sig, want)
                       and abs(time.time() - int(ts or 0)) < 300,
                       "headers_ok": self.headers.get("X-Wagate-Event-Id") == env.get("id")
                       and self.headers.get("X-Wagate-Event") == env.get("event")
                       and self.path == "/hook"
                       and self.headers.get("Content-Type", "").startswith("application/json")}
                with rx.lock:
                    rx.got.append(rec)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def events(self):
        with self.lock:
            return list(self.got)

    def find(self, session, status):
        return [e for e in self.events() if e["event"] == "session.status"
                and e["session"] == session and e["payload"].get("status") == status]


class WsStream(threading.Thread):
    """GET /api/events as a WebSocket (RFC 6455 by hand: handshake, unmasked server frames,
    ping -> pong, close)."""

    def __init__(self, base, path, headers):
        super().__init__(daemon=True)
        host, port = base.replace("http://", "").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n")
        for k, v in headers.items():
            req += f"{k}: {v}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        self.head = head.decode("latin-1")
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        hdrs = {k.strip().lower(): v.strip() for k, _, v in
                (line.partition(":") for line in self.head.split("\r\n")[1:] if line)}
        self.ok = self.head.startswith("HTTP/1.1 101") and \
            hdrs.get("sec-websocket-accept") == accept
        self.events, self.close_code, self.ended = [], None, False
        self.sock.settimeout(None)

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            c = self.sock.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        hdr = bytes([0x80 | opcode, 0x80 | len(payload)]) + mask  # control frames: < 126
        self.sock.sendall(hdr + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def run(self):
        buf = b""
        try:
            while True:
                b0, b1 = self.recv_exact(2)
                op, n = b0 & 0x0F, b1 & 0x7F
                if b1 & 0x80:  # a server never masks
                    self.close_code = -1
                    break
                if n == 126:
                    n = struct.unpack(">H", self.recv_exact(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self.recv_exact(8))[0]
                data = self.recv_exact(n)
                if op in (0, 1):
                    buf += data
                    if b0 & 0x80:
                        self.events.append(json.loads(buf))
                        buf = b""
                elif op == 9:
                    self.send_frame(10, data)
                elif op == 8:
                    self.close_code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 0
                    self.send_frame(8, data[:2])
                    break
        except (EOFError, OSError):
            pass
        self.ended = True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class SseStream(threading.Thread):
    """GET /api/events with Accept: text/event-stream; records (id, envelope) pairs."""

    def __init__(self, base, path, last_id=None):
        super().__init__(daemon=True)
        host, port = base.replace("http://", "").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)
        h = {"Accept": "text/event-stream"}
        if last_id:
            h["Last-Event-ID"] = last_id
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.ctype = self.resp.getheader("Content-Type", "")
        self.conn.sock.settimeout(None)
        self.events, self.ended = [], False

    def run(self):
        ev_id, data = None, []
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                line = line.decode().rstrip("\n")
                if line.startswith("id:"):
                    ev_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif line == "" and data:
                    env = json.loads("\n".join(data))
                    self.events.append((ev_id, env))
                    ev_id, data = None, []
        except (OSError, ValueError, http.client.HTTPException):
            pass
        self.ended = True

    def last_id(self):
        return self.events[-1][0] if self.events else None

    def close(self):
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.conn.close()


def statuses(envs, session):
    return [e["payload"]["status"] for e in envs
            if e["event"] == "session.status" and e["session"] == session]


def open_streams(base):
    ws = WsStream(base, "/api/events?events=session.status", {"X-Api-Key": KEY})
    ws.start()
    sse = SseStream(base, "/api/events?api_key=" + urllib.parse.quote(KEY, safe=""))
    sse.start()
    return ws, sse


def main():
    tmp = tempfile.mkdtemp(prefix="wagate_wa_")
    data = os.path.join(tmp, "data")
    port = free_port()
    procs = []
    try:
        sim, ws, ctl = start_wasim(tmp)
        procs.append(sim)
        st, _, root = request(ctl, "GET", "/root-key", key=None)
        root = root.decode().strip()
        check("wasim root key", st == 200 and len(root) == 64, root)

        rx = Receiver(free_port(), WEBHOOK_SECRET)
        rx.start()
        hook_env = {"WEBHOOK_URL": f"http://127.0.0.1:{rx.port}/hook",
                    "WEBHOOK_SECRET": WEBHOOK_SECRET}
        gw, base = start_wagate(tmp, data, port, ws, root, hook_env)
        procs.append(gw)
        wsc, sse = open_streams(base)
        check("WebSocket stream opened with X-Api-Key", wsc.ok, wsc.head)
        check("SSE stream opened with ?api_key=", sse.status == 200
              and sse.ctype.startswith("text/event-stream"), (sse.status, sse.ctype))
        st, ready, _ = request(base, "GET", "/ready", key=None)
        check("/ready: libwa backend, connected to WhatsApp",
              ready and ready["backend"] == "libwa" and ready["connected_to_whatsapp"] is True,
              ready)

        # --- QR pairing ---------------------------------------------------------------------
        st, j, _ = request(base, "POST", "/api/sessions", {"name": "alice"})
        check("create alice 201", st == 201, j)
        qr = get_qr(base, "alice")
        check("GET qr?format=raw gives the QR text",
              qr and qr.startswith("https://wa.me/settings/linked_devices#") and qr.count(",") == 4,
              qr)
        st, j, _ = request(base, "GET", "/api/sessions/alice/qr?format=json")
        check("GET qr?format=json", st == 200 and j["qr"] == qr and j["status"] == "SCAN_QR", j)
        check("... with the PNG in base64", j and base64.b64decode(j.get("png_base64", ""))
              .startswith(b"\x89PNG\r\n\x1a\n"), j)
        st, _, png = request(base, "GET", "/api/sessions/alice/qr?format=png")
        check("GET qr?format=png: the same PNG", st == 200 and png == base64.b64decode(j["png_base64"]),
              (st, png[:16]))
        st, _, term = request(base, "GET", "/api/sessions/alice/qr?format=terminal")
        check("GET qr?format=terminal: UTF-8 blocks", st == 200 and "\u2588" in term.decode(), st)
        check("status SCAN_QR", session(base, "alice")["status"] == "SCAN_QR")
        st, j, _ = post_ctl(ctl, "/phones/15550001234/scan", {"qr": qr})
        device = (j or {}).get("device", "")
        check("the simulated phone scans the QR", st == 200 and device.startswith("15550001234:"),
              j)
        s = wait_status(base, "alice", "WORKING")
        check("alice reaches WORKING", s, session(base, "alice"))
        me = (s or {}).get("me", {})
        check("me: the device JID and its LID",
              me.get("jid") == device and me.get("lid", "").endswith("@lid"), s)
        st, j, _ = request(base, "GET", "/api/sessions/alice/qr?format=raw")
        check("no QR once paired (409)", st == 409 and err_code(j) == "already_paired", j)
        st, j, _ = request(base, "POST", "/api/sessions/alice/pair-code", {"phone": "15550001234"})
        check("pair-code on a paired session 409", st == 409 and err_code(j) == "already_paired", j)
        check("store account created for the session", "alice" in store_accounts(data))

        # --- keep-alive round trips (WS_KEEPALIVE_INTERVAL=2000) fill the histogram -------------
        def rtt_count():
            mt = request(base, "GET", "/metrics", key=None)[2].decode()
            c = re.search(r"^wagate_whatsapp_keepalive_rtt_seconds_count (\d+)", mt, re.M)
            return c and int(c.group(1)) > 0 and mt
        mt = wait_for(rtt_count, 10)
        check("metrics: keep-alive round trips observed (WS_KEEPALIVE_INTERVAL=2000)", mt,
              "no keep-alive round trip in 10 s")
        inf = mt and re.search(r'^wagate_whatsapp_keepalive_rtt_seconds_bucket\{le="\+Inf"\} (\d+)',
                              mt, re.M)
        cnt = mt and re.search(r"^wagate_whatsapp_keepalive_rtt_seconds_count (\d+)", mt, re.M)
        check("... histogram buckets add up to the count",
              inf and cnt and inf.group(1) == cnt.group(1), (inf, cnt))

        # --- events: the WORKING status by webhook, WebSocket and SSE -------------------------
        hooks = wait_for(lambda: rx.find("alice", "WORKING"), 10)
        check("webhook: one session.status WORKING event for alice", hooks and len(hooks) == 1,
              rx.events())
        h = hooks[0] if hooks else {}
        check("... correctly signed (HMAC-SHA256 of timestamp.body, recent timestamp)",
              h.get("sig_ok"), h)
        check("... with the X-Wagate-Event-Id and X-Wagate-Event headers", h.get("headers_ok"), h)
        check("... payload {status, me}", h.get("payload", {}).get("me", {}).get("jid") == device
              and h["payload"]["me"].get("lid", "").endswith("@lid"), h)
        got = wait_for(lambda: [e for e in wsc.events if e["session"] == "alice"
                                and e["payload"].get("status") == "WORKING"], 5)
        check("WebSocket stream: the same event", got and got[0]["id"] == h.get("id"), wsc.events)
        got = wait_for(lambda: [e for _, e in sse.events if e["session"] == "alice"
                                and e["payload"].get("status") == "WORKING"], 5)
        check("SSE stream: the same event", got and got[0]["id"] == h.get("id"), sse.events)
        check("SSE: id: lines carry the envelope ids", sse.events
              and all(i == e["id"] for i, e in sse.events), sse.events)
        check("alice's statuses in order: STARTING, SCAN_QR, STARTING (515), WORKING",
              statuses([e for _, e in sse.events], "alice")
              == ["STARTING", "SCAN_QR", "STARTING", "WORKING"], sse.events)
        check("WebSocket filter ?events=session.status", wsc.events and
              all(e["event"] == "session.status" for e in wsc.events), wsc.events)

        # --- the webhook receiver down while statuses change ----------------------------------
        rx.stop()
        st, j, _ = request(base, "POST", "/api/sessions", {"name": "dora"})
        check("receiver down: create dora", st == 201 and get_qr(base, "dora"), j)
        dora = wait_for(lambda: [e["id"] for _, e in sse.events if e["session"] == "dora"]
                        if statuses([e for _, e in sse.events], "dora") == ["STARTING", "SCAN_QR"]
                        else None, 5)
        check("... its events (STARTING, SCAN_QR) published", dora, sse.events)
        m = wait_for(lambda: (lambda v: v if v and float(v.group(1)) >= 1 else None)(re.search(
            r'^wagate_webhook_deliveries_total\{result="failure"\} (\S+)',
            request(base, "GET", "/metrics", key=None)[2].decode(), re.M)), 5)
        check("... delivery attempts failed (metrics)", m, m)
        time.sleep(1.0)
        check("... nothing delivered meanwhile", not [e for e in rx.events()
                                                      if e["session"] == "dora"], rx.events())
        rx.start()
        got = wait_for(lambda: (lambda ids: ids if set(dora or []) <= set(ids) else None)(
            [e["id"] for e in rx.events() if e["session"] == "dora"]), 15)
        check("receiver back: dora's events arrive", got, rx.events())
        check("... each once", got and sorted(got) == sorted(dora), got)

        # --- down again, across a restart: the outbox keeps the event ------------------------
        rx.stop()
        st, j, _ = request(base, "POST", "/api/sessions/dora/stop")
        check("receiver down: stop dora", st == 200, j)
        stopped = wait_for(lambda: [e["id"] for _, e in sse.events if e["session"] == "dora"
                                    and e["payload"]["status"] == "STOPPED"], 5)
        check("... STOPPED published", stopped, sse.events)

        # --- restart: WORKING again from the store ---------------------------------------
        rc, took = gw.stop()
        check("SIGTERM: exit 0 within 8 s", rc == 0 and took < 8, (rc, took))
        check("SIGTERM: the WebSocket stream closed with 1001 (going away)",
              wait_for(lambda: wsc.ended, 3) and wsc.close_code == 1001, wsc.close_code)
        check("SIGTERM: the SSE stream ended", wait_for(lambda: sse.ended, 3))
        wsc.close()
        sse.close()
        logs1 = gw.text()
        gw, base = start_wagate(tmp, data, port, ws, root, hook_env)
        procs.append(gw)
        # resume where the stream stopped, as a browser's EventSource does
        sse2 = SseStream(base, "/api/events?api_key=" + urllib.parse.quote(KEY, safe=""),
                         last_id=sse.last_id())
        sse2.start()
        rx.start()
        got = wait_for(lambda: [e for e in rx.events() if e["id"] in (stopped or [])], 15)
        check("receiver back after the restart: dora's STOPPED arrives, once",
              got and len(got) == 1 and got[0]["sig_ok"], rx.events())
        s = wait_status(base, "alice", "WORKING")
        check("after a restart alice is WORKING again", s, session(base, "alice"))
        check("... as the same device", s and s.get("me", {}).get("jid") == device, s)
        check("... without re-pairing (no QR shown)", "SCAN_QR" not in gw.text(), gw.text()[-2000:])
        got = wait_for(lambda: statuses([e for _, e in sse2.events], "alice")[:2]
                       == ["STARTING", "WORKING"], 5)
        check("SSE resumed with Last-Event-ID: alice's STARTING, WORKING at boot", got,
              sse2.events)
        check("... nothing seen before repeated", not {e["id"] for _, e in sse2.events}
              & {e["id"] for _, e in sse.events}, sse2.events)
        st, j, _ = request(ctl, "GET", "/phones/15550001234", key=None)
        check("the phone still has one linked device",
              st == 200 and [d["id"] for d in j["devices"]] == [0, 1], j)

        # --- pairing by phone code -----------------------------------------------------------
        st, j, _ = request(base, "POST", "/api/sessions", {"name": "bob", "start": False})
        check("create bob (stopped) 201", st == 201 and j["status"] == "STOPPED", j)
        t0 = time.time()
        st, j, _ = request(base, "POST", "/api/sessions/bob/pair-code", {"phone": "+15550005678"})
        code = (j or {}).get("code", "")
        check("POST pair-code answers the code", st == 200 and re.fullmatch(r"[0-9A-Z]{8}", code),
              (st, j, time.time() - t0))
        s = session(base, "bob")
        check("bob PAIRING_CODE and running, the code in the session",
              s["status"] == "PAIRING_CODE" and s["running"] and s.get("pair_code") == code, s)
        st, j, _ = post_ctl(ctl, "/phones/15550005678/link-code", {"code": code})
        check("the code is typed on the phone", st == 202, j)
        s = wait_status(base, "bob", "WORKING")
        check("bob reaches WORKING", s, session(base, "bob"))
        check("bob's me", s and s["me"]["jid"].startswith("15550005678:")
              and s["me"].get("lid", "").endswith("@lid"), s)

        # --- bad input: each a 4xx, nothing changed ----------------------------------------
        st, before, _ = request(base, "GET", "/api/sessions")
        accounts_before = store_accounts(data)
        bad = [
            ("POST", "/api/sessions/alice/pair-code", '{"phone": ', 400, "invalid_json"),
            ("POST", "/api/sessions/alice/pair-code", {"phone": 15550001234}, 400, "invalid_field"),
            ("POST", "/api/sessions/alice/pair-code", {"phone": "call me"}, 400, "invalid_field"),
            ("POST", "/api/sessions/alice/pair-code", {"phone": "1555", "x": 1}, 400,
             "invalid_field"),
            ("POST", "/api/sessions/nobody/pair-code", {"phone": "15550001111"}, 404,
             "session_not_found"),
            ("GET", "/api/sessions/alice/qr?format=gif", None, 400, "invalid_field"),
            ("GET", "/api/sessions/..%2Falice/qr?format=raw", None, 404, "not_found"),
            ("GET", "/api/sessions/../qr", None, 400, "invalid_field"),
            ("POST", "/api/sessions", {"name": "../../etc"}, 400, "invalid_field"),
            ("POST", "/api/sessions", b"{" + b" " * (300 * 1024) + b"}", 413, "body_too_large"),
        ]
        for method, path, body, want, code_ in bad:
            st, j, _ = request(base, method, path, body)
            check(f"bad input {method} {path} {str(body)[:40]!r} -> {want}",
                  st == want and err_code(j) == code_, (st, j))
        st, j, _ = request(base, "POST", "/api/sessions/alice/pair-code", {"phone": "1"}, key=None)
        check("no key 401", st == 401, j)
        st, j, _ = request(base, "GET", "/api/sessions/alice/qr", key="wrong-key-0123456789")
        check("wrong key 403", st == 403, j)
        st, after, _ = request(base, "GET", "/api/sessions")
        strip = lambda l: [{k: v for k, v in s.items() if k != "memory_bytes"} for s in l["sessions"]]
        check("nothing changed by bad input", strip(before) == strip(after) and
              store_accounts(data) == accounts_before, (before, after))

        # --- logout through the API -------------------------------------------------------------
        st, j, _ = request(base, "POST", "/api/sessions/alice/logout")
        check("logout 200 LOGGED_OUT", st == 200 and j["status"] == "LOGGED_OUT"
              and j["running"] is False and "me" not in j, j)
        check("... the device was unlinked", "unlinked" in j.get("reason", ""), j)
        st, j, _ = request(ctl, "GET", "/phones/15550001234", key=None)
        check("the phone no longer lists the device",
              st == 200 and [d["id"] for d in j["devices"]] == [0], j)
        st, j, _ = request(base, "POST", "/api/sessions/alice/start")
        check("start after logout", st == 200, j)
        qr2 = get_qr(base, "alice")
        check("... needs a new pairing (a new QR)", qr2 and qr2 != qr, qr2)
        st, j, _ = request(base, "POST", "/api/sessions/alice/stop")
        check("stop 200", st == 200 and j["status"] == "STOPPED", j)

        # --- logout from the phone ------------------------------------------------------------
        bob_jid = session(base, "bob")["me"]["jid"]
        st, j, _ = post_ctl(ctl, f"/devices/{bob_jid}/logout", {})
        check("the phone unlinks bob", st == 200, j)
        s = wait_status(base, "bob", "LOGGED_OUT", 5)
        check("bob LOGGED_OUT, not running, reason given",
              s and s["running"] is False and "phone" in s.get("reason", ""), session(base, "bob"))

        # --- metrics ---------------------------------------------------------------------------
        st, _, m = request(base, "GET", "/metrics", key=None)
        m = m.decode()
        connects = re.search(r"^wagate_whatsapp_connects_total (\d+)", m, re.M)
        check("metrics: connects counted", connects and int(connects.group(1)) >= 2, connects)
        check("metrics: logged_out disconnect counted",
              re.search(r'^wagate_whatsapp_disconnects_total\{reason="logged_out"\} [1-9]', m, re.M))
        check("metrics: restart disconnect counted (515 after pairing)",
              re.search(r'^wagate_whatsapp_disconnects_total\{reason="restart"\} [1-9]', m, re.M))

        # --- FAILED after N failed reconnects --------------------------------------------------
        st, j, _ = request(base, "POST", "/api/sessions", {"name": "carol"})
        qr = get_qr(base, "carol")
        st, j, _ = post_ctl(ctl, "/phones/15550009999/scan", {"qr": qr})
        check("carol paired", st == 200 and wait_status(base, "carol", "WORKING"), j)
        sim.stop()
        s = wait_status(base, "carol", "DISCONNECTED", 5)
        check("server gone: carol DISCONNECTED with the reason", s and "retrying" in s["reason"], s)
        s = wait_status(base, "carol", "FAILED", 15)
        check("after MAX_RECONNECT_FAILURES=2 failed attempts: FAILED with the reason",
              s and "gave up after 2 failed" in s["reason"], session(base, "carol"))
        st, _, m = request(base, "GET", "/metrics", key=None)
        check("metrics: reconnect attempts counted",
              re.search(r"^wagate_whatsapp_reconnects_total [2-9]", m.decode(), re.M))

        # --- delete purges the account ----------------------------------------------------------
        check("carol in the store before delete", "carol" in store_accounts(data))
        st, j, _ = request(base, "DELETE", "/api/sessions/carol")
        check("delete 200", st == 200, j)
        check("delete purged carol's account from the store", "carol" not in store_accounts(data),
              store_accounts(data))

        # --- every event reached the webhook, once ------------------------------------------------
        # both sides settle (the stream's reader thread and the webhook pump run on their own),
        # the last event first: carol's STOPPED, published by the delete
        wait_for(lambda: "STOPPED" in statuses([e for _, e in sse2.events], "carol"), 5)
        ok = wait_for(lambda: {e["id"] for _, e in sse.events + sse2.events}
                      == {e["id"] for e in rx.events()}, 20)
        seen = [e["id"] for _, e in sse.events + sse2.events]
        check("SSE: no event twice across the resume", len(seen) == len(set(seen)), seen)
        delivered = [e["id"] for e in rx.events()]
        check(f"webhook: every event the stream saw arrived ({len(seen)})",
              set(seen) <= set(delivered), set(seen) - set(delivered))
        check("webhook: none twice", len(delivered) == len(set(delivered)),
              [i for i in set(delivered) if delivered.count(i) > 1])
        check("webhook: nothing the stream did not see", set(delivered) <= set(seen),
              set(delivered) - set(seen))
        check("webhook: every delivery signed and labelled",
              all(e["sig_ok"] and e["headers_ok"] for e in rx.events()), rx.events())
        check("carol's FAILED and STOPPED (deleted) reached the webhook",
              ok and rx.find("carol", "FAILED") and rx.find("carol", "STOPPED"),
              (ok, [e for e in rx.events() if e["session"] == "carol"],
               [e for _, e in sse2.events if e["session"] == "carol"]))

        rc, took = gw.stop()
        check("final SIGTERM: exit 0 within 8 s", rc == 0 and took < 8, (rc, took))
        sse2.close()
        rx.stop()
        logs = logs1 + gw.text()
        check("the API key never reaches the logs", KEY not in logs
              and urllib.parse.quote(KEY, safe="") not in logs)
        check("the webhook secret never reaches the logs", WEBHOOK_SECRET not in logs)
    finally:
        for p in procs:
            p.stop(signal.SIGKILL)
        if failed and not os.environ.get("KEEP_LOGS"):
            for p in procs:
                print("----", p.err_path)
                print(p.text()[-4000:])
        if os.environ.get("KEEP_LOGS"):
            print("logs kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
