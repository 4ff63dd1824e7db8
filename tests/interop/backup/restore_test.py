#!/usr/bin/env python3
# restore_test.py - issue 7 acceptance, the daemon's part: wagate with SESSION_STORAGE_TYPE=s3
# against s3rver behind the SigV4-checking proxy (s3stack.mjs), sessions from wasim, messages
# with an unmodified Baileys 7 peer (tests/interop/peer/peer.mjs), events through a webhook:
#   1. pair a session (QR scanned by wasim's phone): WORKING, a backup right after pairing;
#      messages both ways; SIGTERM (the final flush uploads); DATA_DIR deleted; start again:
#      restored from the store, WORKING without re-pairing (same `me`), and messages flow both
#      ways (wagate -> the peer receives it; the peer -> a `message` webhook event).
#   2. a backup right after a prekey upload: the server's one-time prekeys of the session are
#      drained (the phone starts fresh sessions with it), the connection dropped; at the next
#      login libwa uploads new ones (keys_uploaded) and wagate backs the session up at once.
#   3. stale restore: more messages both ways after the last backup (both Signal ratchets move
#      on), the store's writes refused while prekeys are drained and refilled again (the backup
#      after that upload fails: the server now hands out prekeys the newest snapshot does not
#      hold), SIGKILL (no final backup), the peer sends while wagate is down, DATA_DIR deleted,
#      start: the older snapshot is restored; every message the peer sends afterwards (and the
#      one sent while down) arrives, each once (retry receipts and the fresh prekey in them heal
#      the rolled-back sessions; at login libwa compares the server's key bundle digest with the
#      store and replaces the prekeys it lacks under the same ids), a sender with no session (the
#      peer's phone) gets through, and wagate's sends reach the peer.
#   4. the newest object corrupted: the restore falls back to the previous generation and says
#      so; the fallback metric moves.
#   5. the `cloud` path (gcsstack.mjs: a metadata-server stand-in and a Cloud Storage XML API
#      accepting only its bearer tokens): another session paired, messages both ways, SIGTERM,
#      DATA_DIR deleted, restored, WORKING without pairing, messages both ways.
# Every request to the store is checked for a correct SigV4 signature. Figures (object size,
# upload time, boot to WORKING after a restore) are printed as "figure:" lines.
#   restore_test.py <wagate> <wasim>
# SPDX-License-Identifier: GPL-3.0-or-later
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gateway"))
import wa_session_test as wst  # noqa: E402  (helpers; reads sys.argv[1:3]: <wagate> <wasim>)
import wa_messaging_test as wmt  # noqa: E402  (the Baileys peer driver)

check, request, wait_for = wst.check, wst.request, wst.wait_for
ME_PHONE = "15550004101"
PEER_PHONE = "15550004702"
LONELY_PHONE = "15550004903"  # a phone with no companion: the drain's recipient
STRANGER = "15550004905"
CAROL_PHONE = "15550004106"  # the `cloud` part's session  # a phone that never wrote to alice: a session from the server's bundle
BACKED_UP = re.compile(r"session alice: backed up to (\S+) \((\d+) bytes, (\d+) before "
                       r"compression(?:, encrypted)?, ([0-9.]+) s\)")
BACKUP_DONE = re.compile(r"session alice: (backed up to|unchanged since the last backup|"
                         r"backup failed)")


def metric(base, name):
    st, _, m = request(base, "GET", "/metrics", key=None)
    r = re.search(r"^" + re.escape(name) + r" (\S+)$", m.decode(), re.M) if st == 200 else None
    return float(r.group(1)) if r else None


class Stack:
    """s3stack.mjs: s3rver behind the SigV4 check; its output lines collected."""

    def __init__(self, tmp, secret):
        self.dir = os.path.join(tmp, "s3")
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "s3stack.mjs"), self.dir,
                                      "wagate-test", "S3RVER", secret], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.m = re.match(r"s3stack ready proxy=(\d+) direct=(\d+)", line)
        self.lines = []
        threading.Thread(target=lambda: [self.lines.append(x) for x in self.proc.stdout],
                         daemon=True).start()

    def refuse_puts(self, on):
        word = "on" if on else "off"
        n = len(self.lines)
        self.proc.stdin.write(f"refuse-puts {word}\n")
        self.proc.stdin.flush()
        return wait_for(lambda: any(f"refuse-puts {word}" in x for x in self.lines[n:]), 10)

    def objects(self):
        """alice's backup objects as stored by s3rver (names sort by generation)."""
        found = []
        for root, _, files in os.walk(self.dir):
            found += [m.group(1) for m in
                      (re.match(r"(\d{12}-\d{8}T\d{6}Z\.wgb)(\._S3rver_object)?$", f)
                       for f in files) if m]
        return sorted(set(found))

    def object_path(self, name):
        for root, _, files in os.walk(self.dir):
            for f in (name, name + "._S3rver_object"):
                if f in files:
                    return os.path.join(root, f)
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Run:
    """The test's state: processes, the webhook receiver, the peer."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="wagate_restore_")
        self.data = os.path.join(self.tmp, "data")
        self.procs, self.peer, self.gw, self.base = [], None, None, None
        self.n_sent = 0
        self.extra = []  # other helper processes (Popen)

    def start_gw(self, env):
        t0 = time.time()
        self.gw, self.base = wst.start_wagate(self.tmp, self.data, self.port, self.ws, self.root,
                                              env)
        self.procs.append(self.gw)
        return t0

    def hooks(self, text):
        return [e for e in self.rx.events() if e["event"] == "message"
                and e["payload"].get("text") == text]

    def gw_send(self, text, secs=40, session="alice"):
        """wagate -> the peer: 201 and the peer receives it (same id)."""
        st, j, _ = request(self.base, "POST", f"/api/sessions/{session}/messages",
                           {"to": "+" + PEER_PHONE, "text": text}, timeout=secs + 20)
        sid = (j or {}).get("id")
        ok = st == 201 and sid
        m = self.peer.next(lambda e: e.get("ev") == "message" and e.get("text") == text,
                           secs) if ok else None
        return ok and m and m["key"]["id"] == sid, (st, j, m)

    def peer_send(self, text, to=ME_PHONE):
        r = self.peer.cmd({"cmd": "send", "to": to, "text": text}, 30)
        return r and r.get("ok") and r.get("id")

    def backups_done(self):
        return len(BACKUP_DONE.findall(self.gw.text()))

    def settle(self, before, secs=30):
        """Wait until the backup engine answered at least once more than `before` times and
        then stayed quiet for 2 s (no request queued behind)."""
        if not wait_for(lambda: self.backups_done() > before, secs):
            return False
        last, since = self.backups_done(), time.time()
        while time.time() - since < 2:
            time.sleep(0.2)
            if self.backups_done() != last:
                last, since = self.backups_done(), time.time()
        return True

    def drain_prekeys(self, ctl, me_dev, floor):
        """The phone starts a fresh session with alice's device again and again (each one takes
        a one-time prekey from the server) until the server holds at most `floor`. Returns the
        count left, or None."""
        def left():
            st, j, _ = request(ctl, "GET", f"/phones/{ME_PHONE}", key=None)
            for d in (j or {}).get("devices", []):
                if d.get("jid", "").split("@")[0] == me_dev.split("@")[0]:
                    return d.get("prekeys")
            return None
        n = left()
        deadline = time.time() + 240
        while n is not None and n > floor and time.time() < deadline:
            wst.post_ctl(ctl, f"/phones/{ME_PHONE}/forget-sessions", {})
            self.n_sent += 1
            st, j, _ = wst.post_ctl(ctl, f"/phones/{ME_PHONE}/send",
                                    {"to": LONELY_PHONE, "text": f"drain {self.n_sent}"})
            if st != 200:
                return None
            n = left()
        return n


def me_device(base):
    s = wst.session(base, "alice") or {}
    return s.get("me", {}).get("jid", "")


def main():
    r = Run()
    secret = "restore-" + secrets.token_hex(16)
    stack = Stack(r.tmp, secret)
    try:
        if not check("s3rver behind the SigV4-checking proxy", stack.m):
            return
        s3env = {"SESSION_STORAGE_TYPE": "s3",
                 "S3_ENDPOINT": f"http://127.0.0.1:{stack.m.group(1)}",
                 "S3_BUCKET": "wagate-test", "S3_PREFIX": "restore", "S3_ACCESS_KEY_ID": "S3RVER",
                 "S3_SECRET_ACCESS_KEY": secret, "SESSION_ENCRYPTION_KEY": secrets.token_hex(32),
                 # no periodic pass during the test: backups come from pairing, prekey uploads
                 # and SIGTERM only, so the test knows what the newest snapshot holds
                 "SESSION_BACKUP_INTERVAL": "3600000", "SESSION_BACKUP_GENERATIONS": "5",
                 "LOG_LEVEL": "debug", "MAX_RECONNECT_FAILURES": "20"}
        sim, r.ws, ctl = wst.start_wasim(r.tmp)
        r.procs.append(sim)
        r.root = request(ctl, "GET", "/root-key", key=None)[2].decode().strip()
        r.rx = wst.Receiver(wst.free_port(), wst.WEBHOOK_SECRET)
        r.rx.start()
        s3env.update({"WEBHOOK_URL": f"http://127.0.0.1:{r.rx.port}/hook",
                      "WEBHOOK_SECRET": wst.WEBHOOK_SECRET})
        r.port = wst.free_port()
        for phone in (LONELY_PHONE, STRANGER):
            request(ctl, "GET", f"/phones/{phone}", key=None)  # the phone exists

        # ---- 1. pair, messages, SIGTERM, DATA_DIR deleted, restored, messages ------------------
        r.start_gw(s3env)
        st, j, _ = request(r.base, "POST", "/api/sessions", {"name": "alice"})
        check("create alice 201", st == 201, j)
        qr = wst.get_qr(r.base, "alice")
        st, j, _ = wst.post_ctl(ctl, f"/phones/{ME_PHONE}/scan", {"qr": qr})
        check("the simulated phone scans the QR", st == 200, j)
        s = wst.wait_status(r.base, "alice", "WORKING", 20)
        check("alice WORKING", s, wst.session(r.base, "alice"))
        me = (s or {}).get("me", {}).get("jid")
        ok = wait_for(lambda: (metric(r.base, 'wagate_backups_total{result="success"}') or 0) >= 1,
                      20)
        check("a backup uploaded right after pairing (metrics)", ok)
        check("backup bytes and last success moved",
              (metric(r.base, "wagate_backup_bytes_total") or 0) > 0
              and (metric(r.base, "wagate_backup_last_success_timestamp_seconds") or 0) > 0)

        popen = wmt.subprocess.Popen
        if os.environ.get("PEER_LOG_LEVEL"):  # debugging: Baileys' own log in peer-bob7.err
            wmt.subprocess.Popen = lambda argv, **kw: popen(
                argv + ["--log-level", os.environ["PEER_LOG_LEVEL"]], **kw)
        r.peer = wmt.Peer(r.tmp, r.ws, "bob7")
        wmt.subprocess.Popen = popen
        q = r.peer.next(lambda e: e.get("ev") == "qr", 40)
        check("Baileys peer shows a QR", q, r.peer.events)
        wst.post_ctl(ctl, f"/phones/{PEER_PHONE}/scan", {"qr": (q or {}).get("qr")})
        check("... the peer is connected", r.peer.next(
            lambda e: e.get("ev") == "connection" and e.get("connection") == "open", 40))

        ok, d = r.gw_send("before the restore, from wagate")
        check("wagate -> peer before the restore", ok, d)
        pid = r.peer_send("before the restore, from the peer")
        check("peer -> wagate before the restore (webhook)",
              pid and wait_for(lambda: r.hooks("before the restore, from the peer"), 30),
              r.rx.events()[-3:])

        rc, took = r.gw.stop()
        check("SIGTERM: exit 0 within 8 s", rc == 0 and took < 8, (rc, took, r.gw.text()[-3000:]))
        check("SIGTERM: the backups were flushed", "session backups flushed" in r.gw.text(),
              r.gw.text()[-3000:])
        sizes = BACKED_UP.findall(r.gw.text())
        for key, size, plain, secs in sizes:
            print(f"figure: backup object {size} bytes ({plain} before compression), "
                  f"snapshot to upload done {float(secs) * 1000:.0f} ms: {key}")

        shutil.rmtree(r.data)
        t0 = r.start_gw(s3env)
        s = wst.wait_status(r.base, "alice", "WORKING", 30)
        boot = time.time() - t0
        check("after DATA_DIR was deleted: alice restored and WORKING without pairing", s,
              (wst.session(r.base, "alice"), r.gw.text()[-3000:]))
        print(f"figure: boot to WORKING after a restore: {boot * 1000:.0f} ms "
              f"(process start to the status answering WORKING, polled every 50 ms)")
        rs = re.search(r"backup restore from s3: .*, ([0-9.]+) s", r.gw.text())
        print(f"figure: the restore itself (list, download, decrypt, import): "
              f"{float(rs.group(1)) * 1000 if rs else -1:.0f} ms")
        check("same me", s and s.get("me", {}).get("jid") == me, (me, s))
        check("restore metric moved", (metric(r.base, "wagate_backup_restored_total") or 0) == 1)
        check("restore logged", "restored from backup" in r.gw.text(), r.gw.text()[-3000:])
        ok, d = r.gw_send("after the restore, from wagate")
        check("after the restore: wagate -> the peer receives it", ok, d)
        pid = r.peer_send("after the restore, from the peer")
        check("after the restore: peer -> wagate arrives as a message webhook event",
              pid and wait_for(lambda: r.hooks("after the restore, from the peer"), 30),
              r.rx.events()[-3:])

        # ---- 2. a backup right after a prekey upload -------------------------------------------
        check("the backup after the restart's WORKING is done", r.settle(0),
              r.gw.text()[-2000:])
        me_dev = me_device(r.base)
        before = metric(r.base, 'wagate_backups_total{result="success"}') or 0
        objs_before = stack.objects()
        n_left = r.drain_prekeys(ctl, me_dev, 4)
        check("the server's one-time prekeys of alice drained", n_left is not None and n_left <= 4,
              n_left)
        check("... the drain's messages reached wagate", wait_for(
            lambda: any(e["payload"].get("text") == f"drain {r.n_sent}" for e in r.rx.events()
                        if e["event"] == "message"), 30), r.n_sent)
        done = r.backups_done()
        wst.post_ctl(ctl, f"/devices/{me_dev}/drop", {})
        ok = wait_for(lambda: "prekeys uploaded: backup requested" in r.gw.text(), 40)
        check("at the next login libwa uploads prekeys and wagate asks for a backup", ok,
              r.gw.text()[-3000:])
        check("... the backup follows (metric, a new object in the store)",
              r.settle(done) and (metric(r.base, 'wagate_backups_total{result="success"}') or 0)
              > before and stack.objects()[-1:] != objs_before[-1:],
              (before, objs_before, stack.objects()))
        check("alice WORKING again", wst.wait_status(r.base, "alice", "WORKING", 30))

        # ---- 3. stale restore ------------------------------------------------------------------
        snap = stack.objects()[-1]
        done = r.backups_done()
        for i in (1, 2, 3):
            ok, d = r.gw_send(f"after the last backup #{i}, from wagate")
            check(f"after the last backup: wagate -> peer #{i}", ok, d)
            pid = r.peer_send(f"after the last backup #{i}, from the peer")
            check(f"after the last backup: peer -> wagate #{i}", pid and wait_for(
                lambda: r.hooks(f"after the last backup #{i}, from the peer"), 30))
        check("the store refuses writes now", stack.refuse_puts(True))
        left1 = n_left = r.drain_prekeys(ctl, me_dev, 4)
        wst.post_ctl(ctl, f"/devices/{me_dev}/drop", {})
        ok = wait_for(lambda: r.gw.text().count("prekeys uploaded: backup requested") >= 2, 40)
        check("prekeys drained and uploaded again", ok and n_left is not None, n_left)
        check("... the backup after that upload fails (the store refuses it)", wait_for(
            lambda: (metric(r.base, 'wagate_backups_total{result="failure"}') or 0) >= 1, 30))
        check("alice WORKING again", wst.wait_status(r.base, "alice", "WORKING", 30))
        # use up the prekeys the newest snapshot knows: the server then hands out new ones only
        st, j, _ = request(ctl, "GET", f"/phones/{ME_PHONE}", key=None)
        total = [d.get("prekeys") for d in (j or {}).get("devices", [])
                 if d.get("jid", "").split("@")[0] == me_dev.split("@")[0]]
        check("the server holds new prekeys", total and total[0] > 4, total)
        if total and left1:
            n_left = r.drain_prekeys(ctl, me_dev, total[0] - left1)
            check("... and only those now", n_left == total[0] - left1, (n_left, total, left1))
        check("no backup was uploaded since the messages", r.backups_done() - done >= 1
              and stack.objects()[-1] == snap, (stack.objects(), snap))

        r.gw.stop(signal.SIGKILL)
        pid = r.peer_send("while wagate is down, from the peer")
        check("the peer sends while wagate is down", pid)
        stack.refuse_puts(False)
        shutil.rmtree(r.data)
        t0 = r.start_gw(s3env)
        s = wst.wait_status(r.base, "alice", "WORKING", 30)
        check("SIGKILL, DATA_DIR deleted: restored from the older snapshot, WORKING", s
              and f"{snap}" in r.gw.text(), (s, snap, r.gw.text()[-3000:]))
        check("libwa finds the server's prekeys the restored store lacks (key bundle digest) "
              "and replaces them before leaving passive mode", wait_for(
                  lambda: re.search(r"the server holds \d+ one-time prekey\(s\) this store does "
                                    r"not have", r.gw.text()), 20), r.gw.text()[-3000:])
        got = wait_for(lambda: r.hooks("while wagate is down, from the peer"), 60)
        check("the message sent while wagate was down arrives (retries allowed)", got,
              r.rx.events()[-5:])
        texts = [f"after the stale restore #{i}, from the peer" for i in range(1, 6)]
        for text in texts:
            check(f"the peer sends '{text}'", r.peer_send(text))
        got = wait_for(lambda: all(r.hooks(x) for x in texts), 90)
        check("every message the peer sends after the stale restore arrives",
              got, [x for x in texts if not r.hooks(x)])
        check("... each once", all(len(r.hooks(x)) == 1 for x in texts + [
            "while wagate is down, from the peer"]), [len(r.hooks(x)) for x in texts])
        fails = [e for e in r.rx.events() if e["event"] == "message.decrypt_failed"]
        retries = r.gw.text().count("retry receipt #")
        print(f"note: after the stale restore: {len(fails)} message.decrypt_failed event(s), "
              f"{retries} retry receipt(s) sent by libwa")
        for i in (1, 2):
            ok, d = r.gw_send(f"after the stale restore #{i}, from wagate", 60)
            check(f"after the stale restore: wagate -> peer #{i}", ok, d)
        pid = r.peer_send("last one, from the peer")
        check("... and the peer's answer arrives", pid and wait_for(
            lambda: r.hooks("last one, from the peer"), 60))
        st, j, _ = wst.post_ctl(ctl, f"/phones/{STRANGER}/send",
                                {"to": ME_PHONE, "text": "from a stranger's phone"})
        check("a sender with no session (a phone that never wrote to alice: a prekey from the "
              "server's bundle) gets through", st == 200 and wait_for(
                  lambda: r.hooks("from a stranger's phone"), 60), (st, j))
        check("... at the first attempt: the prekey the server handed out was replaced by one the "
              "store holds", not [e for e in r.rx.events() if e["event"] == "message.decrypt_failed"
                                  and e["payload"].get("id") == (j or {}).get("id")],
              r.gw.text()[-2000:])

        # ---- 4. the newest object corrupted: fallback ------------------------------------------
        rc, took = r.gw.stop()
        check("SIGTERM: exit 0", rc == 0, (rc, took))
        objs = stack.objects()
        path = stack.object_path(objs[-1]) if objs else None
        if path:
            with open(path, "r+b") as f:
                f.seek(100)
                b = f.read(1)
                f.seek(100)
                f.write(bytes([b[0] ^ 0x40]))
        shutil.rmtree(r.data)
        r.start_gw(s3env)
        s = wst.wait_status(r.base, "alice", "WORKING", 30)
        check("newest object corrupted: restored from the previous generation, WORKING", s
              and objs[-2] in r.gw.text(), (s, objs, r.gw.text()[-3000:]))
        check("... a clear log line names the unusable object",
              re.search(re.escape(objs[-1]) + r".*unusable", r.gw.text()), r.gw.text()[-3000:])
        check("... the fallback metric moved",
              (metric(r.base, "wagate_backup_restore_fallbacks_total") or 0) >= 1)
        ok, d = r.gw_send("after the fallback, from wagate", 60)
        check("after the fallback: wagate -> peer", ok, d)
        pid = r.peer_send("after the fallback, from the peer")
        check("after the fallback: peer -> wagate", pid and wait_for(
            lambda: r.hooks("after the fallback, from the peer"), 60))

        rejected = [x for x in stack.lines
                    if "rejected=" in x and not x.split("rejected=")[1].startswith("0")]
        check("every request to the store correctly signed", stack.lines and not rejected,
              (len(stack.lines), rejected[:3]))
        rc, took = r.gw.stop()
        check("SIGTERM: exit 0", rc == 0, (rc, took))

        # ---- 5. the `cloud` path: metadata-server token, Cloud Storage XML API ------------------
        gcs = subprocess.Popen(["node", os.path.join(HERE, "gcsstack.mjs"), "wagate-gcs"],
                               stdout=subprocess.PIPE, text=True)
        r.extra.append(gcs)
        gm = re.match(r"gcsstack ready gcs=(\d+) meta=(\d+)", gcs.stdout.readline())
        glines = []
        threading.Thread(target=lambda: [glines.append(x) for x in gcs.stdout],
                         daemon=True).start()
        check("metadata-server and Cloud Storage stand-ins", gm)
        genv = {k: v for k, v in s3env.items() if not k.startswith("S3_")}
        genv.update({"SESSION_STORAGE_TYPE": "cloud", "GCS_BUCKET": "wagate-gcs",
                     "GCS_ENDPOINT": f"http://127.0.0.1:{gm.group(1)}",
                     "GCE_METADATA_HOST": f"127.0.0.1:{gm.group(2)}"})
        r.data = os.path.join(r.tmp, "data-cloud")
        r.port = wst.free_port()
        r.start_gw(genv)
        st, j, _ = request(r.base, "POST", "/api/sessions", {"name": "carol"})
        qr = wst.get_qr(r.base, "carol")
        st, j, _ = wst.post_ctl(ctl, f"/phones/{CAROL_PHONE}/scan", {"qr": qr})
        s = wst.wait_status(r.base, "carol", "WORKING", 20)
        check("cloud: carol paired, WORKING", s, wst.session(r.base, "carol"))
        me = (s or {}).get("me", {}).get("jid")
        check("cloud: a backup right after pairing", wait_for(
            lambda: (metric(r.base, 'wagate_backups_total{result="success"}') or 0) >= 1, 20))
        ok, d = r.gw_send("cloud: before the restore, from wagate", session="carol")
        check("cloud: wagate -> peer", ok, d)
        check("cloud: peer -> wagate", r.peer_send("cloud: before, from the peer", CAROL_PHONE)
              and wait_for(lambda: r.hooks("cloud: before, from the peer"), 30))
        rc, took = r.gw.stop()
        check("cloud: SIGTERM, backups flushed", rc == 0 and "session backups flushed"
              in r.gw.text(), (rc, r.gw.text()[-2000:]))
        shutil.rmtree(r.data)
        t0 = r.start_gw(genv)
        s = wst.wait_status(r.base, "carol", "WORKING", 30)
        check("cloud: DATA_DIR deleted: carol restored, WORKING without pairing, same me", s
              and s.get("me", {}).get("jid") == me, (s, r.gw.text()[-3000:]))
        print(f"figure: cloud: boot to WORKING after a restore: {(time.time() - t0) * 1000:.0f} ms")
        check("cloud: restore metric moved",
              (metric(r.base, "wagate_backup_restored_total") or 0) == 1)
        ok, d = r.gw_send("cloud: after the restore, from wagate", session="carol")
        check("cloud: after the restore: wagate -> peer", ok, d)
        check("cloud: after the restore: peer -> wagate", r.peer_send(
            "cloud: after, from the peer", CAROL_PHONE) and wait_for(
                lambda: r.hooks("cloud: after, from the peer"), 30))
        last = glines[-1] if glines else ""
        check("cloud: every storage request carried a token from the metadata server",
              glines and "unauthorized=0 " in last and " badflavor=0 " in last
              and int(re.search(r"tokens=(\d+)", last).group(1)) >= 1, last)
        rc, took = r.gw.stop()
        check("final SIGTERM: exit 0", rc == 0, (rc, took))
    finally:
        if r.peer:
            r.peer.stop()
        for p in r.procs:
            p.stop(signal.SIGKILL)
        stack.stop()
        for p in r.extra:
            p.terminate()
            p.wait(10)
        if wst.failed:
            for p in r.procs[-2:]:
                print("----", p.err_path)
                print(p.text()[-6000:])
        if os.environ.get("KEEP_LOGS"):
            print("logs kept in", r.tmp)
        else:
            shutil.rmtree(r.tmp, ignore_errors=True)
    print(f"\n{wst.passed} passed, {wst.failed} failed")
    sys.exit(1 if wst.failed or not wst.passed else 0)


if __name__ == "__main__":
    main()
