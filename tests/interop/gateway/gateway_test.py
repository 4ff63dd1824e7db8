#!/usr/bin/env python3
# gateway_test.py - wagate as a process: start it on a free port with a temporary DATA_DIR and
# JSON logs, then check /health, /ready, /metrics (through `promtool check metrics`), API key
# errors, bad JSON, a huge body (413), path-traversal names, unknown routes, that the generated
# API key never reaches the logs, that sessions survive a restart, that SIGTERM exits cleanly
# within the deadline, and that a bad variable stops start-up naming it.
#   gateway_test.py <wagate> <promtool>
# SPDX-License-Identifier: GPL-3.0-or-later
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

WAGATE, PROMTOOL = sys.argv[1], sys.argv[2]
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CLOSED_PORT = free_port()


def request(port, method, path, key=None, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = dict(headers or {})
    if key is not None:
        h["X-Api-Key"] = key
    if body is not None and not isinstance(body, bytes):
        body = body.encode()
    c.request(method, path, body=body, headers=h)  # the path is sent as is (no normalisation)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def error_code(data):
    try:
        return json.loads(data)["error"]["code"]
    except Exception:
        return None


class Wagate:
    def __init__(self, data_dir, port, extra=None):
        self.port = port
        self.out = open(os.path.join(os.path.dirname(data_dir), f"stdout-{time.time()}.log"), "w+")
        self.err = open(os.path.join(os.path.dirname(data_dir), f"stderr-{time.time()}.log"), "w+")
        env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "K_SERVICE")}
        # never the real WhatsApp from a test: a closed local port (sessions stay DISCONNECTED;
        # wa_session_test.py runs them against the simulator)
        env.update({"PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": data_dir,
                    "LOG_FORMAT": "json", "HEALTH_CHECK_INTERVAL": "500",
                    "WA_WS_URL": f"ws://127.0.0.1:{CLOSED_PORT}/ws/chat"})
        env.update(extra or {})
        self.proc = subprocess.Popen([WAGATE], env=env, stdout=self.out, stderr=self.err)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if request(port, "GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("wagate did not come up: " + self.logs())

    def logs(self):
        self.out.flush()
        self.err.flush()
        self.out.seek(0)
        self.err.seek(0)
        return self.out.read() + self.err.read()

    def stop(self):
        t0 = time.time()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = None
        return rc, time.time() - t0


def main():
    tmp = tempfile.mkdtemp(prefix="wagate_interop_")
    data = os.path.join(tmp, "data")
    port = free_port()
    try:
        gw = Wagate(data, port)
        key = open(os.path.join(data, "api_key")).read().strip()
        check("api key generated into DATA_DIR/api_key", len(key) >= 16)
        check("api key file mode 0600", (os.stat(os.path.join(data, "api_key")).st_mode & 0o777) == 0o600)

        st, _, body = request(port, "GET", "/health")
        check("GET /health 200", st == 200 and json.loads(body)["status"] == "ok", body)

        time.sleep(0.7)  # one health interval
        st, _, body = request(port, "GET", "/ready")
        ready = json.loads(body)
        check("GET /ready 200", st == 200, body)
        check("/ready has the checks", {"event_loop", "store", "memory", "sessions"} <= set(ready["checks"]), body)
        check("/ready store writable", ready["checks"]["store"]["ok"] is True, body)
        check("/ready reports the backend honestly", "connected_to_whatsapp" in ready, body)

        # auth
        check("401 without key", error_code(request(port, "GET", "/api/sessions")[2]) == "unauthorized")
        st, _, body = request(port, "GET", "/api/sessions", key="x" * 20)
        check("403 wrong key", st == 403 and error_code(body) == "forbidden", body)
        st, _, body = request(port, "GET", "/api/sessions", key=key)
        check("200 right key", st == 200 and json.loads(body) == {"sessions": []}, body)

        # bad input: each a clear 4xx, nothing created
        st, _, body = request(port, "POST", "/api/sessions", key, '{"name": ')
        check("malformed JSON 400", st == 400 and error_code(body) == "invalid_json", body)
        st, _, body = request(port, "POST", "/api/sessions", key, '{"name": 42}')
        check("wrong type 400 names the field", st == 400 and json.loads(body)["error"].get("field") == "name", body)
        st, _, body = request(port, "POST", "/api/sessions", key, b"{" + b" " * (2 * 1024 * 1024) + b"}")
        check("huge body 413", st == 413 and error_code(body) == "body_too_large", body)
        for name in ["../../etc/passwd", "..", "a/b", ".", "x\\y"]:
            st, _, body = request(port, "POST", "/api/sessions", key, json.dumps({"name": name}))
            check(f"traversal name {name!r} in body 400", st == 400, body)
        for path in ["/api/sessions/..", "/api/sessions/../api/sessions", "/api/sessions/%2e%2e",
                     "/api/sessions/..%2f..%2fetc"]:
            st, _, body = request(port, "GET", path, key)
            check(f"traversal path {path} 4xx", st in (400, 404), f"{st} {body}")
        st, _, body = request(port, "GET", "/api/sessions", key=key)
        check("nothing created by bad input", json.loads(body) == {"sessions": []}, body)
        check("no stray files in DATA_DIR", sorted(os.listdir(data)) ==
              sorted(f for f in os.listdir(data) if f.startswith(("wagate.db", "libwa.db", "events.db")) or f == "api_key"),
              os.listdir(data))

        # unknown routes
        st, _, body = request(port, "GET", "/nope")
        check("unknown route 404", st == 404 and error_code(body) == "not_found", body)
        st, _, body = request(port, "GET", "/api/nope", key)
        check("unknown api route 404", st == 404, body)
        st, hdr, body = request(port, "DELETE", "/health")
        check("wrong method 405 with Allow", st == 405 and hdr.get("Allow") == "GET", body)

        # sessions
        st, hdr, body = request(port, "POST", "/api/sessions", key, '{"name": "interop-1"}')
        check("create 201", st == 201 and hdr.get("Location") == "/api/sessions/interop-1", body)
        st, _, body = request(port, "POST", "/api/sessions", key, '{"name": "interop-1"}')
        check("duplicate 409", st == 409 and error_code(body) == "session_exists", body)
        st, _, body = request(port, "POST", "/api/sessions", key, '{"name": "interop-2", "start": false}')
        check("create stopped 201", st == 201 and json.loads(body)["status"] == "STOPPED", body)

        # metrics through promtool
        st, hdr, metrics = request(port, "GET", "/metrics")
        check("GET /metrics 200 text", st == 200 and hdr.get("Content-Type", "").startswith("text/plain"))
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=metrics, capture_output=True)
        check("promtool check metrics", p.returncode == 0, (p.stdout + p.stderr).decode())
        text = metrics.decode()
        for name in ["wagate_memory_used_bytes", "wagate_memory_limit_bytes", "wagate_sessions{status=\"STOPPED\"} 1",
                     "wagate_http_request_duration_seconds_bucket", "wagate_event_loop_lag_seconds",
                     "process_start_time_seconds", "wagate_whatsapp_connects_total 0",
                     "wagate_messages_total{direction=\"in\"} 0", "wagate_webhook_deliveries_total",
                     "wagate_backups_total"]:
            check(f"metric {name}", name in text)

        # dashboard
        st, hdr, body = request(port, "GET", "/")
        check("dashboard at /", st == 200 and b"wagate" in body and hdr.get("Content-Type", "").startswith("text/html"))

        # restart: sessions come back
        rc, took = gw.stop()
        check("SIGTERM: exit 0", rc == 0, rc)
        check("SIGTERM: within 8 s", took < 8, took)
        logs1 = gw.logs()
        gw = Wagate(data, port)
        st, _, body = request(port, "GET", "/api/sessions/interop-1", key)
        check("session back after restart, running", st == 200 and json.loads(body)["running"] is True, body)
        st, _, body = request(port, "GET", "/api/sessions/interop-2", key)
        check("stopped session back, stopped", st == 200 and json.loads(body)["status"] == "STOPPED", body)
        rc, took = gw.stop()
        check("second SIGTERM exit 0", rc == 0, rc)
        logs = logs1 + gw.logs()

        # logs: JSON lines with severity, the key never written
        lines = [l for l in logs.splitlines() if l.strip()]
        parsed = []
        for l in lines:
            try:
                parsed.append(json.loads(l))
            except ValueError:
                parsed.append(None)
        check("every log line is a JSON object", lines and all(isinstance(p, dict) for p in parsed), lines[:3])
        check("log lines have severity/message/component/time",
              all(isinstance(p, dict) and {"severity", "message", "component", "time"} <= set(p) for p in parsed))
        check("API key never in the logs", key not in logs)
        check("JSON mode says where the key is", any(isinstance(p, dict) and "api_key" in p["message"] for p in parsed))

        # a bad variable stops start-up and names it
        for var, val in [("PORT", "0"), ("MEMORY_THRESHOLD", "1.5"), ("LOG_FORMAT", "xml"),
                         ("HEALTH_CHECK_INTERVAL", "10"), ("SESSION_STORAGE_TYPE", "ftp")]:
            env = dict(os.environ, DATA_DIR=data, **{var: val})
            p = subprocess.run([WAGATE], env=env, capture_output=True, timeout=10)
            check(f"bad {var} stops start-up naming it", p.returncode == 2 and var.encode() in p.stderr, p.stderr)
        p = subprocess.run([WAGATE, "--version"], capture_output=True, timeout=10)
        check("--version", p.returncode == 0 and p.stdout.startswith(b"wagate "), p.stdout)
        p = subprocess.run([WAGATE, "--help"], capture_output=True, timeout=10)
        check("--help", p.returncode == 0 and b"usage: wagate" in p.stdout, p.stdout)
        p = subprocess.run([WAGATE, "--bogus"], capture_output=True, timeout=10)
        check("unknown argument exit 2", p.returncode == 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
