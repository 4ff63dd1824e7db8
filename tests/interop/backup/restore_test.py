#!/usr/bin/env python3
# restore_test.py - issue 7 acceptance, the daemon's part: wagate with SESSION_STORAGE_TYPE=s3
# against s3rver behind the SigV4-checking proxy (s3stack.mjs), sessions from wasim: pair a
# session (QR scanned by wasim's phone), WORKING; SIGTERM (the final flush uploads); DATA_DIR
# deleted; start again: the session is restored from the store and WORKING without re-pairing
# (same `me`); every request correctly signed; backup metrics moved.
#   restore_test.py <wagate> <wasim>
# Reuses wa_session_test.py's helpers (processes, REST calls, waits).
# SPDX-License-Identifier: GPL-3.0-or-later
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "wa_session_test", os.path.join(HERE, "..", "gateway", "wa_session_test.py"))
wst = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wst)  # reads sys.argv[1:3]: <wagate> <wasim>
check, request, wait_for = wst.check, wst.request, wst.wait_for


def metric(base, name):
    st, _, m = request(base, "GET", "/metrics", key=None)
    r = re.search(r"^" + re.escape(name) + r" (\S+)$", m.decode(), re.M) if st == 200 else None
    return float(r.group(1)) if r else None


def main():
    tmp = tempfile.mkdtemp(prefix="wagate_restore_")
    data = os.path.join(tmp, "data")
    secret = "restore-" + secrets.token_hex(16)
    procs = []
    stack = subprocess.Popen(["node", os.path.join(HERE, "s3stack.mjs"), os.path.join(tmp, "s3"),
                              "wagate-test", "S3RVER", secret], stdout=subprocess.PIPE, text=True)
    try:
        line = stack.stdout.readline()
        m = re.match(r"s3stack ready proxy=(\d+) direct=(\d+)", line)
        if not check("s3rver behind the SigV4-checking proxy", m, line):
            return
        lines = []
        import threading
        threading.Thread(target=lambda: [lines.append(x) for x in stack.stdout], daemon=True).start()
        s3env = {"SESSION_STORAGE_TYPE": "s3", "S3_ENDPOINT": f"http://127.0.0.1:{m.group(1)}",
                 "S3_BUCKET": "wagate-test", "S3_PREFIX": "restore", "S3_ACCESS_KEY_ID": "S3RVER",
                 "S3_SECRET_ACCESS_KEY": secret, "SESSION_ENCRYPTION_KEY": secrets.token_hex(32),
                 "SESSION_BACKUP_INTERVAL": "60000"}
        sim, ws, ctl = wst.start_wasim(tmp)
        procs.append(sim)
        st, _, root = request(ctl, "GET", "/root-key", key=None)
        root = root.decode().strip()
        port = wst.free_port()
        gw, base = wst.start_wagate(tmp, data, port, ws, root, s3env)
        procs.append(gw)
        st, j, _ = request(base, "POST", "/api/sessions", {"name": "alice"})
        check("create alice 201", st == 201, j)
        qr = wst.get_qr(base, "alice")
        st, j, _ = wst.post_ctl(ctl, "/phones/15550001234/scan", {"qr": qr})
        check("the simulated phone scans the QR", st == 200, j)
        s = wst.wait_status(base, "alice", "WORKING")
        check("alice WORKING", s, wst.session(base, "alice"))
        me = (s or {}).get("me", {}).get("jid")
        ok = wait_for(lambda: (metric(base, 'wagate_backups_total{result="success"}') or 0) >= 1, 15)
        check("a backup uploaded right after pairing (metrics)", ok, wst.session(base, "alice"))
        check("backup bytes and last success moved",
              (metric(base, "wagate_backup_bytes_total") or 0) > 0
              and (metric(base, "wagate_backup_last_success_timestamp_seconds") or 0) > 0)
        rc, took = gw.stop()
        check("SIGTERM: exit 0 within 8 s", rc == 0 and took < 8, (rc, took, gw.text()[-3000:]))
        check("SIGTERM: the backups were flushed", "session backups flushed" in gw.text(),
              gw.text()[-3000:])

        shutil.rmtree(data)
        gw2, base = wst.start_wagate(tmp, data, port, ws, root, s3env)
        procs.append(gw2)
        s = wst.wait_status(base, "alice", "WORKING", 20)
        check("after DATA_DIR was deleted: alice restored and WORKING without pairing", s,
              (wst.session(base, "alice"), gw2.text()[-3000:]))
        check("same me", s and s.get("me", {}).get("jid") == me, (me, s))
        check("restore metric moved", (metric(base, "wagate_backup_restored_total") or 0) == 1)
        check("restore logged", "restored from backup" in gw2.text(), gw2.text()[-3000:])
        rejected = [x for x in lines if "rejected=" in x and not x.split("rejected=")[1].startswith("0")]
        check("every request to the store correctly signed", lines and not rejected,
              (len(lines), rejected[:3]))
        rc, took = gw2.stop()
        check("final SIGTERM: exit 0", rc == 0, (rc, took))
    finally:
        for p in procs:
            p.stop()
        stack.terminate()
        stack.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{wst.passed} passed, {wst.failed} failed")
    sys.exit(1 if wst.failed or not wst.passed else 0)


if __name__ == "__main__":
    main()
