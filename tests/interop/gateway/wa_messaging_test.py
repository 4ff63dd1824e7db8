#!/usr/bin/env python3
# wa_messaging_test.py - wagate's message routes and message events against the simulator wasim
# and an unmodified Baileys 7 peer (tests/interop/peer/peer.mjs), end to end through the REST
# API (issue 6 acceptance, the messaging part):
#   a session paired by QR reaches WORKING; POST .../messages to the Baileys peer -> 201 {id}
#   once the server acked, and the peer receives it (same id, same text); the peer replies
#   (quoting it) -> the webhook receiver gets a correctly signed `message` event (from PN/LID,
#   push name, quoted, id), and so do the WebSocket and SSE streams (same envelope id); the
#   send is acked (message.ack sent); a send to an unregistered number -> 422 not_on_whatsapp
#   (again from the cache); reaction, edit, revoke through the API reach the peer; the peer's
#   reaction, edit and revoke become message.reaction / message.edited / message.revoked;
#   POST .../read answers 200; while the session reconnects a text is queued (202) and goes out
#   with the same id once WORKING (message.ack sent follows), also across a wagate restart; a
#   queued send to an unregistered number ends as message.ack failed; a revoke is queued too
#   (read receipts are not: 503);
#   a stopped session refuses sends with 409; bad bodies 400.
#   wa_messaging_test.py <wagate> <wasim>
# SPDX-License-Identifier: GPL-3.0-or-later
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wa_session_test as t  # noqa: E402  (helpers; reads the same argv)

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "..", "peer", "peer.mjs")
NODE = shutil.which("node") or "node"
ME_PHONE = "15550003101"
PEER_PHONE = "15550003702"
UNREGISTERED = "19990000077"
check, request, wait_for, err_code = t.check, t.request, t.wait_for, t.err_code


class Peer:
    """One Baileys peer: JSON lines on stdout (events), commands on stdin."""

    def __init__(self, tmp, ws, name):
        self.auth = tempfile.mkdtemp(prefix="peer_", dir=tmp)
        self.err = open(os.path.join(tmp, f"peer-{name}.err"), "w+")
        self.proc = subprocess.Popen([NODE, PEER, "--version", "7", "--url", ws, "--auth",
                                      self.auth, "--name", name], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.events, self.lock, self.req = [], threading.Lock(), 0
        self.results = {}
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if ev.get("ev") == "result":
                    self.results[ev.get("req")] = ev
                else:
                    self.events.append(ev)

    def next(self, pred, secs=20):
        def find():
            with self.lock:
                for i, e in enumerate(self.events):
                    if pred(e):
                        return self.events.pop(i)
            return None
        return wait_for(find, secs)

    def cmd(self, c, secs=20):
        self.req += 1
        c = dict(c, req=self.req)
        self.proc.stdin.write(json.dumps(c) + "\n")
        self.proc.stdin.flush()
        return wait_for(lambda: self.results.get(self.req), secs)

    def stop(self):
        try:
            self.cmd({"cmd": "quit"}, 5)
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()


def main():
    tmp = tempfile.mkdtemp(prefix="wagate_msg_")
    data = os.path.join(tmp, "data")
    procs, peer = [], None
    try:
        sim, ws, ctl = t.start_wasim(tmp)
        procs.append(sim)
        root = request(ctl, "GET", "/root-key", key=None)[2].decode().strip()
        rx = t.Receiver(t.free_port(), t.WEBHOOK_SECRET)
        rx.start()
        gw, base = t.start_wagate(tmp, data, t.free_port(), ws, root,
                                  {"WEBHOOK_URL": f"http://127.0.0.1:{rx.port}/hook",
                                   "WEBHOOK_SECRET": t.WEBHOOK_SECRET,
                                   "MAX_RECONNECT_FAILURES": "20"})
        procs.append(gw)
        wsc = t.WsStream(base, "/api/events?events=message,message.*", {"X-Api-Key": t.KEY})
        wsc.start()
        sse = t.SseStream(base, "/api/events?api_key=" + urllib.parse.quote(t.KEY, safe=""))
        sse.start()
        check("streams opened", wsc.ok and sse.status == 200, (wsc.head, sse.status))

        # --- the session, paired by QR -----------------------------------------------------
        st, j, _ = request(base, "POST", "/api/sessions", {"name": "alice"})
        check("create alice 201", st == 201, j)
        qr = t.get_qr(base, "alice")
        st, j, _ = t.post_ctl(ctl, f"/phones/{ME_PHONE}/scan", {"qr": qr})
        check("the phone scans alice's QR", st == 200, j)
        check("alice WORKING", t.wait_status(base, "alice", "WORKING", 15),
              t.session(base, "alice"))

        # --- the Baileys peer ---------------------------------------------------------------
        peer = Peer(tmp, ws, "bob7")
        q = peer.next(lambda e: e.get("ev") == "qr", 30)
        check("Baileys peer shows a QR", q, peer.events)
        st, j, _ = t.post_ctl(ctl, f"/phones/{PEER_PHONE}/scan", {"qr": (q or {}).get("qr")})
        check("... its phone scans it", st == 200, j)
        check("... the peer is connected", peer.next(
            lambda e: e.get("ev") == "connection" and e.get("connection") == "open", 30))
        peer_lid = request(ctl, "GET", f"/phones/{PEER_PHONE}", key=None)[1].get("lid")

        # --- bad bodies and states ----------------------------------------------------------
        for body, field in [({"text": "x"}, "to"), ({"to": "nobody", "text": "x"}, "to"),
                            ({"to": PEER_PHONE}, "text"), ({"to": PEER_PHONE, "text": ""}, "text"),
                            ({"to": PEER_PHONE, "text": "x", "mentions": "a"}, "mentions"),
                            ({"to": PEER_PHONE, "text": "x", "x": 1}, "x")]:
            st, j, _ = request(base, "POST", "/api/sessions/alice/messages", body)
            check(f"bad send {body} -> 400 naming {field}", st == 400
                  and err_code(j) == "invalid_field" and j["error"].get("field") == field, (st, j))
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages", b'{"to": ')
        check("malformed JSON -> 400", st == 400 and err_code(j) == "invalid_json", j)

        # --- wagate -> Baileys ----------------------------------------------------------------
        text = "hello from wagate"
        t0 = time.time()
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                           {"to": "+" + PEER_PHONE, "text": text})
        sent_id = (j or {}).get("id")
        check("POST messages -> 201 {id} once the server acked", st == 201 and sent_id
              and j.get("status") == "sent", (st, j, time.time() - t0))
        m = peer.next(lambda e: e.get("ev") == "message" and e.get("text") == text, 20)
        check("the Baileys peer receives it, same id", m and m["key"]["id"] == sent_id, m)
        ack = wait_for(lambda: [e for _, e in sse.events if e["event"] == "message.ack"
                                and e["payload"].get("id") == sent_id], 5)
        check("message.ack sent for it", ack and ack[0]["payload"]["status"] == "sent", ack)

        st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                           {"to": f"{PEER_PHONE}@s.whatsapp.net", "text": "by JID, @" + PEER_PHONE,
                            "mentions": ["+" + PEER_PHONE], "reply_to": sent_id})
        id2 = (j or {}).get("id")
        check("send by JID with reply_to and mentions -> 201", st == 201 and id2, (st, j))
        m = peer.next(lambda e: e.get("ev") == "message" and (e.get("key") or {}).get("id") == id2)
        check("... the peer sees the quote and the mention", m
              and (m.get("quoted") or {}).get("id") == sent_id
              and f"{PEER_PHONE}@s.whatsapp.net" in (m.get("mentions") or []), m)

        # --- Baileys -> wagate: the `message` event on every channel -----------------------
        reply = "hi wagate, from Baileys"
        r = peer.cmd({"cmd": "send", "to": ME_PHONE, "text": reply, "quoted": sent_id})
        check("the peer replies", r and r.get("ok"), r)
        hook = wait_for(lambda: [e for e in rx.events() if e["event"] == "message"
                                 and e["payload"].get("text") == reply], 20)
        h = hook[0] if hook else {}
        p = h.get("payload", {})
        check("webhook: the message event arrives, once", hook and len(hook) == 1, rx.events())
        check("... correctly signed and labelled", h.get("sig_ok") and h.get("headers_ok"), h)
        check("... session, id, chat, timestamp", h.get("session") == "alice"
              and p.get("id") == (r or {}).get("id") and p.get("chat", "").startswith(PEER_PHONE)
              and abs(p.get("timestamp", 0) - time.time()) < 120, p)
        check("... from PN and LID", p.get("from_pn") == f"{PEER_PHONE}@s.whatsapp.net"
              and (not peer_lid or p.get("from_lid") == f"{peer_lid}@lid"), (p, peer_lid))
        # wasim relays the push name its phone account has ("Phone NUMBER")
        check("... push name", isinstance(p.get("push_name"), str) and p["push_name"], p)
        check("... quoted (the message it answers: id, our JID, its text)",
              p.get("quoted") == {"id": sent_id, "sender": f"{ME_PHONE}@s.whatsapp.net",
                                  "text": text}, p)
        check("... type text, mentions []", p.get("type") == "text" and p.get("mentions") == [], p)
        check("... no key material in the payload", not any(
            k in json.dumps(p).lower() for k in ("privkey", "priv_key", "secret", "noise")), p)
        got = wait_for(lambda: [e for e in wsc.events if e["id"] == h.get("id")], 5)
        check("WebSocket stream (?events=message,message.*): the same event", got, wsc.events)
        got = wait_for(lambda: [e for _, e in sse.events if e["id"] == h.get("id")], 5)
        check("SSE stream: the same event", got, [e for _, e in sse.events][-5:])
        check("WebSocket filter: only message events",
              all(e["event"].startswith("message") for e in wsc.events), wsc.events)
        peer_msg = p.get("id")

        # --- unregistered numbers ----------------------------------------------------------
        for round_ in ("checked", "cached"):
            st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                               {"to": "+" + UNREGISTERED, "text": "anyone?"})
            check(f"send to an unregistered number -> 422 not_on_whatsapp ({round_})",
                  st == 422 and err_code(j) == "not_on_whatsapp"
                  and "not on WhatsApp" in j["error"]["message"], (st, j))

        # --- reaction, edit, revoke, read through the API ----------------------------------
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages/reaction",
                           {"to": PEER_PHONE, "message_id": peer_msg, "emoji": "👍"})
        check("POST reaction -> 201", st == 201 and j.get("id"), (st, j))
        m = peer.next(lambda e: e.get("ev") in ("reaction", "message") and (
            (e.get("reaction") or {}).get("text") == "👍" or e.get("text") == "👍"))
        check("... the peer sees the reaction", m, peer.events[-5:])
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages/edit",
                           {"to": PEER_PHONE, "message_id": sent_id, "text": "hello, edited"})
        check("POST edit -> 201", st == 201, (st, j))
        m = peer.next(lambda e: "hello, edited" in json.dumps(e) and e.get("ev") in (
            "message", "message_update"))
        check("... the peer sees the edit", m, peer.events[-5:])
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages/revoke",
                           {"to": PEER_PHONE, "message_id": id2})
        check("POST revoke -> 201", st == 201, (st, j))
        m = peer.next(lambda e: e.get("ev") in ("message", "message_update") and (
            (e.get("revoke") or {}).get("key", {}).get("id") == id2 or e.get("protocol") == "REVOKE"))
        check("... the peer sees the revoke", m, peer.events[-5:])
        st, j, _ = request(base, "POST", "/api/sessions/alice/read",
                           {"chat": PEER_PHONE, "ids": [peer_msg]})
        check("POST read -> 200 {read: 1}", st == 200 and j == {"read": 1}, (st, j))
        rd = peer.next(lambda e: e.get("ev") == "receipt" and e.get("id") == peer_msg
                       and e.get("type") == "read", 10)
        check("... the peer gets the read receipt", rd, peer.events[-5:])

        # --- the peer's reaction, edit, revoke as events ---------------------------------------
        peer.cmd({"cmd": "send", "to": ME_PHONE, "reaction": {"key": sent_id, "text": "❤️"}})
        ev = wait_for(lambda: [e for _, e in sse.events if e["event"] == "message.reaction"], 15)
        check("message.reaction event (emoji, target)", ev and ev[0]["payload"]["emoji"] == "❤️"
              and ev[0]["payload"]["target"]["id"] == sent_id, ev)
        peer.cmd({"cmd": "send", "to": ME_PHONE, "edit": {"key": peer_msg, "text": "edited by b"}})
        ev = wait_for(lambda: [e for _, e in sse.events if e["event"] == "message.edited"], 15)
        check("message.edited event (text, target)", ev and ev[0]["payload"]["text"]
              == "edited by b" and ev[0]["payload"]["target"]["id"] == peer_msg, ev)
        peer.cmd({"cmd": "send", "to": ME_PHONE, "delete": {"key": peer_msg}})
        ev = wait_for(lambda: [e for _, e in sse.events if e["event"] == "message.revoked"], 15)
        check("message.revoked event (target)", ev
              and ev[0]["payload"]["target"]["id"] == peer_msg, ev)
        acks = {e["payload"]["status"] for _, e in sse.events if e["event"] == "message.ack"}
        print(f"note: message.ack statuses seen: {sorted(acks)}")
        check("message.ack events for the peer's receipts (delivered or read)",
              acks & {"delivered", "read"}, acks)

        # --- reconnecting: text sends are queued durably (202), sent on reconnect -------------
        me = t.session(base, "alice")["me"]["jid"]
        t.post_ctl(ctl, "/faults/refuse", {"seconds": 2})
        st, j, _ = t.post_ctl(ctl, f"/devices/{me}/drop", {})
        check("wasim drops alice's connection", st == 200, (st, j))
        check("alice DISCONNECTED", t.wait_status(base, "alice", "DISCONNECTED", 5),
              t.session(base, "alice"))
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                           {"to": PEER_PHONE, "text": "while away"})
        qid = (j or {}).get("id")
        check("send while DISCONNECTED -> 202 {id, status queued}", st == 202 and qid
              and j.get("status") == "queued", (st, j))
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages/revoke",
                           {"to": PEER_PHONE, "message_id": sent_id})
        rq = (j or {}).get("id")
        check("a revoke while DISCONNECTED -> 202 queued too", st == 202 and rq
              and j.get("status") == "queued", (st, j))
        st, j, _ = request(base, "POST", "/api/sessions/alice/read",
                           {"chat": PEER_PHONE, "ids": [peer_msg]})
        check("a read receipt while DISCONNECTED -> 503 session_unavailable (not queued)",
              st == 503 and err_code(j) == "session_unavailable", (st, j))
        check("alice WORKING again", t.wait_status(base, "alice", "WORKING", 20),
              t.session(base, "alice"))
        m = peer.next(lambda e: e.get("ev") == "message" and e.get("text") == "while away", 20)
        check("... the queued message reaches the peer with its id", m and m["key"]["id"] == qid, m)
        m = peer.next(lambda e: e.get("ev") in ("message", "message_update") and (
            (e.get("revoke") or {}).get("key", {}).get("id") == sent_id), 20)
        check("... and the queued revoke after it", m, peer.events[-5:])
        ack = wait_for(lambda: [e for e in rx.events() if e["event"] == "message.ack"
                                and e["payload"].get("id") == rq], 10)
        check("... with its message.ack (sent, the id it went out as)", ack
              and ack[0]["payload"]["status"] == "sent" and ack[0]["payload"].get("message_id"),
              ack)
        ack = wait_for(lambda: [e for e in rx.events() if e["event"] == "message.ack"
                                and e["payload"].get("id") == qid], 10)
        check("... followed by its message.ack sent (webhook)", ack
              and ack[0]["payload"]["status"] == "sent", ack)
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                           {"to": PEER_PHONE, "text": "back again"})
        check("send after the reconnect -> 201", st == 201, (st, j))
        m = peer.next(lambda e: e.get("ev") == "message" and e.get("text") == "back again", 20)
        check("... the peer receives it", m and m["key"]["id"] == (j or {}).get("id"), m)

        # --- durable: queued, wagate restarted, sent after the restart -------------------------
        t.post_ctl(ctl, "/faults/refuse", {"seconds": 60})
        t.post_ctl(ctl, f"/devices/{me}/drop", {})
        check("alice DISCONNECTED again", t.wait_status(base, "alice", "DISCONNECTED", 5),
              t.session(base, "alice"))
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                           {"to": PEER_PHONE, "text": "queued across a restart"})
        qid = (j or {}).get("id")
        check("queued (202)", st == 202 and qid, (st, j))
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                           {"to": "+" + UNREGISTERED, "text": "queued to nobody"})
        bad_qid = (j or {}).get("id")
        check("a queued send to an unregistered number is accepted (checked when it goes out)",
              st == 202 and bad_qid, (st, j))
        rc, took = gw.stop()
        check("SIGTERM while queued: exit 0", rc == 0, (rc, took))
        wsc.close()
        sse.close()
        t.post_ctl(ctl, "/faults/refuse", {"seconds": 0})
        gw, base = t.start_wagate(tmp, data, t.free_port(), ws, root,
                                  {"WEBHOOK_URL": f"http://127.0.0.1:{rx.port}/hook",
                                   "WEBHOOK_SECRET": t.WEBHOOK_SECRET})
        procs.append(gw)
        check("after the restart alice WORKING", t.wait_status(base, "alice", "WORKING", 20),
              t.session(base, "alice"))
        m = peer.next(lambda e: e.get("ev") == "message"
                      and e.get("text") == "queued across a restart", 20)
        check("... the message queued before the restart reaches the peer, same id",
              m and m["key"]["id"] == qid, m)
        ack = wait_for(lambda: [e for e in rx.events() if e["event"] == "message.ack"
                                and e["payload"].get("id") == bad_qid], 10)
        check("... the one to an unregistered number: message.ack failed not_on_whatsapp",
              ack and ack[0]["payload"]["status"] == "failed"
              and ack[0]["payload"]["error"] == "not_on_whatsapp", ack)
        check("... not sent", not peer.next(lambda e: e.get("text") == "queued to nobody", 1))
        db = os.path.join(data, "wagate.db")
        if os.path.exists(db):
            import sqlite3
            c = sqlite3.connect(db)
            left = c.execute("SELECT count(*) FROM send_queue").fetchone()[0]
            c.close()
            check("the queue is empty afterwards", left == 0, left)

        # --- a stopped session refuses sends ------------------------------------------------
        request(base, "POST", "/api/sessions/alice/stop")
        st, j, _ = request(base, "POST", "/api/sessions/alice/messages",
                           {"to": PEER_PHONE, "text": "nope"})
        check("stopped session: send -> 409 invalid_state", st == 409
              and err_code(j) == "invalid_state", (st, j))
        rc, took = gw.stop()
        check("SIGTERM: exit 0", rc == 0, (rc, took))
        rx.stop()
    finally:
        if peer:
            peer.stop()
        for p in procs:
            p.stop(signal.SIGKILL)
        if t.failed and not os.environ.get("KEEP_LOGS"):
            for p in procs:
                print("----", p.err_path)
                print(p.text()[-4000:])
            if peer:
                peer.err.flush()
                print("---- peer stderr")
                print(open(peer.err.name).read()[-2000:])
        if os.environ.get("KEEP_LOGS"):
            print("logs kept in", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{t.passed} passed, {t.failed} failed")
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
