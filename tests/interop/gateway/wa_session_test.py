#!/usr/bin/env python3
# wa_session_test.py - wagate's sessions against the simulator wasim, end to end through the
# REST API (issue 6 acceptance, the parts that need no messaging):
#   create a session, fetch its QR (raw and JSON), scan it with the simulated phone, WORKING
#   with `me` (JID and LID); restart wagate (SIGTERM, start): WORKING again without re-pairing;
#   pair a second session by phone code (POST pair-code, the code typed on wasim's phone);
#   logout through the API (the device is unlinked on the phone, credentials wiped: a start
#   shows a new QR); logout from the phone; FAILED after MAX_RECONNECT_FAILURES failed attempts
#   in a row when the server goes away; delete purges the account from the store; bad input
#   changes nothing; the metrics count the connections.
#   wa_session_test.py <wagate> <wasim>
# SPDX-License-Identifier: GPL-3.0-or-later
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

WAGATE, WASIM = sys.argv[1], sys.argv[2]
KEY = "interop-key-0123456789abcdef"
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
                "HEALTH_CHECK_INTERVAL": "500", "MAX_RECONNECT_FAILURES": "2"})
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

        gw, base = start_wagate(tmp, data, port, ws, root)
        procs.append(gw)
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
        st, j, _ = request(base, "GET", "/api/sessions/alice/qr?format=png")
        check("GET qr?format=png: 501 until QR images are built in",
              st == 501 and err_code(j) == "not_implemented", j)
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

        # --- restart: WORKING again from the store ---------------------------------------
        rc, took = gw.stop()
        check("SIGTERM: exit 0 within 8 s", rc == 0 and took < 8, (rc, took))
        logs1 = gw.text()
        gw, base = start_wagate(tmp, data, port, ws, root)
        procs.append(gw)
        s = wait_status(base, "alice", "WORKING")
        check("after a restart alice is WORKING again", s, session(base, "alice"))
        check("... as the same device", s and s.get("me", {}).get("jid") == device, s)
        check("... without re-pairing (no QR shown)", "SCAN_QR" not in gw.text(), gw.text()[-2000:])
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

        rc, took = gw.stop()
        check("final SIGTERM: exit 0 within 8 s", rc == 0 and took < 8, (rc, took))
        logs = logs1 + gw.text()
        check("the API key never reaches the logs", KEY not in logs)
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
