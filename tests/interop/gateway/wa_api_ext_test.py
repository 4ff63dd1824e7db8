#!/usr/bin/env python3
# wa_api_ext_test.py - the rest of wagate's REST API (issue 6) against the simulator wasim and an
# unmodified Baileys 7 peer (tests/interop/peer/peer.mjs):
#   WA_VERSION=auto read from a local page (client_revision) at start-up (a refused fetch: a
#   warning and libwa's default);
#   bad input on every new route -> 400 naming the field, nothing sent or stored;
#   POST .../contacts/check: a registered and an unregistered number;
#   location and contact out (the peer checks the protobuf fields) and in (webhook payloads);
#   presence out (the subscribed peer sees available), chat state out (composing) and in
#   (presence.update);
#   groups: create with the peer, info, remove and add it back;
#   GET .../chats and .../chats/{jid}/messages (limit, before, statuses) after the exchange, and
#   MESSAGE_STORE_MAX=6 pruning the oldest at the health interval;
#   a reaction sent while DISCONNECTED is queued (202) and reaches the peer after the
#   reconnect, with its message.ack; the peer's phone reinstalled -> contact.identity_changed.
#   wa_api_ext_test.py <wagate> <wasim>
# SPDX-License-Identifier: GPL-3.0-or-later
import http.server
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wa_session_test as t  # noqa: E402  (helpers; reads the same argv)
from wa_messaging_test import Peer  # noqa: E402

ME_PHONE = "15550004101"
PEER_PHONE = "15550004702"
UNREGISTERED = "19990000088"
STORE_MAX = 6
REVISION = "1029384756"
check, request, wait_for, err_code = t.check, t.request, t.wait_for, t.err_code
VCARD = ("BEGIN:VCARD\nVERSION:3.0\nFN:Ann Example\n"
         "TEL;type=CELL;type=VOICE;waid=4915550001:+49 1555 0001\nEND:VCARD")


def version_page():
    """A local stand-in for web.whatsapp.com: the page carries "client_revision":N,."""
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = ('<html><script>{"server_revision":1,"client_revision":%s,"x":1}</script>'
                    % REVISION).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def bad(base, method, path, body, field, what):
    st, j, _ = request(base, method, path, body)
    check(f"{what} -> 400 naming {field}", st == 400 and err_code(j) == "invalid_field"
          and (j["error"].get("field") == field), (st, j))


def events(rx, name, pred=lambda p: True):
    return [e for e in rx.events() if e["event"] == name and pred(e["payload"])]


def main():
    tmp = tempfile.mkdtemp(prefix="wagate_ext_")
    data = os.path.join(tmp, "data")
    procs, peer, page = [], None, None
    try:
        sim, ws, ctl = t.start_wasim(tmp)
        procs.append(sim)
        root = request(ctl, "GET", "/root-key", key=None)[2].decode().strip()
        rx = t.Receiver(t.free_port(), t.WEBHOOK_SECRET)
        rx.start()
        page = version_page()
        env = {"WEBHOOK_URL": f"http://127.0.0.1:{rx.port}/hook",
               "WEBHOOK_SECRET": t.WEBHOOK_SECRET, "MAX_RECONNECT_FAILURES": "20",
               "MESSAGE_STORE_MAX": str(STORE_MAX), "MESSAGE_RETENTION_DAYS": "7",
               "WA_VERSION": "auto",
               "WA_VERSION_URL": f"http://127.0.0.1:{page.server_address[1]}/"}
        gw, base = t.start_wagate(tmp, data, t.free_port(), ws, root, env)
        procs.append(gw)
        check("WA_VERSION=auto: the version is read from the page at start-up",
              f"2.3000.{REVISION}" in gw.text(), gw.text()[-2000:])

        # --- the session and the Baileys peer ------------------------------------------------
        st, j, _ = request(base, "POST", "/api/sessions", {"name": "alice"})
        check("create alice 201", st == 201, j)
        qr = t.get_qr(base, "alice")
        st, j, _ = t.post_ctl(ctl, f"/phones/{ME_PHONE}/scan", {"qr": qr})
        check("the phone scans alice's QR", st == 200, j)
        check("alice WORKING (logged in with the fetched version)",
              t.wait_status(base, "alice", "WORKING", 20), t.session(base, "alice"))
        peer = Peer(tmp, ws, "bob7")
        q = peer.next(lambda e: e.get("ev") == "qr", 30)
        check("Baileys peer shows a QR", q, peer.events)
        st, j, _ = t.post_ctl(ctl, f"/phones/{PEER_PHONE}/scan", {"qr": (q or {}).get("qr")})
        check("... its phone scans it", st == 200, j)
        check("... the peer is connected", peer.next(
            lambda e: e.get("ev") == "connection" and e.get("connection") == "open", 30))
        peer_jid = f"{PEER_PHONE}@s.whatsapp.net"

        # --- bad input: 400 naming the field, nothing changes -------------------------------
        s = "/api/sessions/alice"
        loc = s + "/messages/location"
        bad(base, "POST", loc, {"to": PEER_PHONE, "latitude": "52", "longitude": 13},
            "latitude", "location: latitude a string")
        bad(base, "POST", loc, {"to": PEER_PHONE, "latitude": 52}, "longitude",
            "location: longitude missing")
        bad(base, "POST", loc, {"to": PEER_PHONE, "latitude": 91, "longitude": 13}, "latitude",
            "location: latitude 91")
        bad(base, "POST", loc, {"to": PEER_PHONE, "latitude": 1, "longitude": 2, "name": 5},
            "name", "location: name a number")
        bad(base, "POST", loc, {"latitude": 1, "longitude": 2}, "to", "location: to missing")
        bad(base, "POST", s + "/messages/contact", {"to": PEER_PHONE, "name": "A"}, "vcard",
            "contact: vcard missing")
        bad(base, "POST", s + "/messages/contact", {"to": PEER_PHONE, "name": ["A"],
                                                    "vcard": VCARD}, "name", "contact: name a list")
        bad(base, "POST", s + "/contacts/check", {"phones": "+" + PEER_PHONE}, "phones",
            "contacts/check: phones a string")
        bad(base, "POST", s + "/contacts/check", {"phones": []}, "phones",
            "contacts/check: phones empty")
        bad(base, "POST", s + "/contacts/check", {"phones": [15550004702]}, "phones",
            "contacts/check: a number, not a string")
        bad(base, "POST", s + "/contacts/check", {"phones": ["x"], "y": 1}, "y",
            "contacts/check: an unknown field")
        bad(base, "POST", s + "/presence", {"presence": "busy"}, "presence",
            "presence: an unknown value")
        bad(base, "POST", s + "/presence", {"to": PEER_PHONE, "state": "dancing"}, "state",
            "chat state: an unknown state")
        bad(base, "POST", s + "/presence", {"state": "composing"}, "to",
            "chat state: to missing")
        bad(base, "POST", s + "/groups", {"participants": [PEER_PHONE]}, "subject",
            "groups: subject missing")
        bad(base, "POST", s + "/groups", {"subject": "g", "participants": "x"}, "participants",
            "groups: participants a string")
        bad(base, "POST", s + "/groups", {"subject": "g", "participants": ["1@g.us"]},
            "participants", "groups: a group as a participant")
        bad(base, "GET", s + "/groups/not-a-group", None, "jid", "group info: a bad JID")
        bad(base, "POST", s + "/groups/120363000000000009@g.us/participants/add",
            {"participants": 7}, "participants", "participants/add: not a list")
        bad(base, "GET", s + "/chats?limit=abc", None, "limit", "chats: limit not a number")
        bad(base, "GET", s + f"/chats/{peer_jid}/messages?limit=0", None, "limit",
            "messages: limit 0")
        st, j, _ = request(base, "POST", loc, b'{"to": ')
        check("location: malformed JSON -> 400 invalid_json", st == 400
              and err_code(j) == "invalid_json", (st, j))
        check("... none of them reached the peer", not peer.next(
            lambda e: e.get("ev") == "message" and not e.get("fromMe"), 1), peer.events[-3:])
        st, j, _ = request(base, "GET", s + "/chats")
        check("... nor the message store (GET chats: empty)", st == 200 and j == {"chats": []},
              (st, j))

        # --- contacts/check -------------------------------------------------------------------
        st, j, _ = request(base, "POST", s + "/contacts/check",
                           {"phones": ["+" + PEER_PHONE, UNREGISTERED]})
        got = {c.get("phone"): c for c in (j or {}).get("contacts", [])}
        check("contacts/check -> 200, one entry per phone", st == 200 and len(got) == 2, (st, j))
        check("... the registered one exists, with its JID",
              got.get(PEER_PHONE, {}).get("exists") is True
              and got[PEER_PHONE].get("jid") == peer_jid, got)
        check("... the unregistered one does not", got.get(UNREGISTERED, {}).get("exists") is False
              and got[UNREGISTERED].get("jid") is None, got)

        # --- location and contact out -----------------------------------------------------------
        st, j, _ = request(base, "POST", loc, {"to": "+" + PEER_PHONE, "latitude": 52.5163,
                                               "longitude": 13.3777, "name": "Brandenburger Tor",
                                               "address": "Pariser Platz, Berlin"})
        loc_id = (j or {}).get("id")
        check("POST location -> 201 {id}", st == 201 and loc_id, (st, j))
        m = peer.next(lambda e: e.get("ev") == "message" and (e.get("key") or {}).get("id")
                      == loc_id, 20)
        lm = ((m or {}).get("raw") or {}).get("locationMessage") or {}
        check("... the peer gets a locationMessage: latitude, longitude, name, address",
              m and abs(lm.get("degreesLatitude", 0) - 52.5163) < 1e-6
              and abs(lm.get("degreesLongitude", 0) - 13.3777) < 1e-6
              and lm.get("name") == "Brandenburger Tor"
              and lm.get("address") == "Pariser Platz, Berlin", m)
        st, j, _ = request(base, "POST", s + "/messages/contact",
                           {"to": PEER_PHONE, "name": "Ann Example", "vcard": VCARD})
        card_id = (j or {}).get("id")
        check("POST contact -> 201 {id}", st == 201 and card_id, (st, j))
        m = peer.next(lambda e: e.get("ev") == "message" and (e.get("key") or {}).get("id")
                      == card_id, 20)
        cm = ((m or {}).get("raw") or {}).get("contactMessage") or {}
        check("... the peer gets a contactMessage: displayName, vcard",
              cm.get("displayName") == "Ann Example" and cm.get("vcard") == VCARD, m)

        # --- location and contact in ------------------------------------------------------------
        r = peer.cmd({"cmd": "send", "to": ME_PHONE, "location": {
            "lat": -33.8568, "lng": 151.2153, "name": "Opera House", "address": "Sydney"}})
        check("the peer sends a location", r and r.get("ok"), r)
        ev = wait_for(lambda: events(rx, "message", lambda p: p.get("id") == (r or {}).get("id")),
                      20)
        p = ev[0]["payload"] if ev else {}
        check("webhook: message type location with latitude, longitude, name, address",
              ev and p.get("type") == "location" and abs(p.get("latitude", 0) + 33.8568) < 1e-6
              and abs(p.get("longitude", 0) - 151.2153) < 1e-6 and p.get("name") == "Opera House"
              and p.get("address") == "Sydney" and ev[0]["sig_ok"], ev)
        in_loc = (r or {}).get("id")
        r = peer.cmd({"cmd": "send", "to": ME_PHONE, "contact": {"name": "Carl",
                                                                 "phone": "+44 20 7946 0000"}})
        check("the peer sends a contact card", r and r.get("ok"), r)
        ev = wait_for(lambda: events(rx, "message", lambda p: p.get("id") == (r or {}).get("id")),
                      20)
        p = ev[0]["payload"] if ev else {}
        check("webhook: message type contact with name and vcard", ev
              and p.get("type") == "contact" and p.get("name") == "Carl"
              and "waid=442079460000" in (p.get("vcard") or ""), ev)

        # --- presence and chat states -----------------------------------------------------------
        r = peer.cmd({"cmd": "presence_subscribe", "jid": ME_PHONE})
        check("the peer subscribes to alice's presence", r and r.get("ok"), r)
        st, j, _ = request(base, "POST", s + "/presence", {"presence": "available"})
        check("POST presence available -> 200", st == 200 and j == {"presence": "available"},
              (st, j))
        pr = peer.next(lambda e: e.get("ev") == "presence" and any(
            (v or {}).get("lastKnownPresence") == "available"
            for v in ((e.get("presences") or {}).values())), 15)
        check("... the peer sees alice available", pr, peer.events[-5:])
        st, j, _ = request(base, "POST", s + "/presence", {"to": PEER_PHONE, "state": "composing"})
        check("POST presence {to, state composing} -> 200", st == 200, (st, j))
        pr = peer.next(lambda e: e.get("ev") == "presence" and any(
            (v or {}).get("lastKnownPresence") == "composing"
            for v in ((e.get("presences") or {}).values())), 15)
        check("... the peer sees alice typing", pr, peer.events[-5:])
        r = peer.cmd({"cmd": "presence", "type": "composing", "to": ME_PHONE})
        check("the peer types in alice's chat", r and r.get("ok"), r)
        ev = wait_for(lambda: events(rx, "presence.update",
                                     lambda p: p.get("presence") == "composing"), 15)
        check("webhook: presence.update composing (chat, from)", ev
              and ev[0]["payload"].get("chat", "").split("@")[0].split(":")[0]
              in (PEER_PHONE, ev[0]["payload"].get("from", "").split("@")[0].split(":")[0]), ev)
        st, j, _ = request(base, "POST", s + "/presence", {"subscribe": "+" + PEER_PHONE})
        check("POST presence {subscribe} -> 200", st == 200, (st, j))

        # --- groups -------------------------------------------------------------------------------
        st, g, _ = request(base, "POST", s + "/groups", {"subject": "wagate group",
                                                         "participants": ["+" + PEER_PHONE]})
        gjid = (g or {}).get("jid", "")
        check("POST groups -> 201 {jid, subject, participants}", st == 201
              and gjid.endswith("@g.us") and g.get("subject") == "wagate group", (st, g))
        st, info, _ = request(base, "GET", s + f"/groups/{gjid}")
        roles = sorted(x.get("role") for x in (info or {}).get("participants", []))
        check("GET groups/{jid} -> subject, two members, alice superadmin", st == 200
              and info.get("subject") == "wagate group" and len(roles) == 2
              and "superadmin" in roles, (st, info))
        up = peer.next(lambda e: e.get("ev") == "group" and e.get("id") == gjid, 15)
        check("... the peer learns of the group", up, peer.events[-5:])
        st, j, _ = request(base, "POST", s + f"/groups/{gjid}/participants/remove",
                           {"participants": [PEER_PHONE]})
        check("participants/remove the peer -> 200 ok", st == 200
              and [x.get("ok") for x in j.get("participants", [])] == [True], (st, j))
        st, info, _ = request(base, "GET", s + f"/groups/{gjid.split('@')[0]}")
        check("... info (bare group id): one member left", st == 200
              and len(info.get("participants", [])) == 1, (st, info))
        st, j, _ = request(base, "POST", s + f"/groups/{gjid}/participants/add",
                           {"participants": [peer_jid]})
        check("participants/add it back -> 200 ok", st == 200
              and [x.get("ok") for x in j.get("participants", [])] == [True], (st, j))
        st, info, _ = request(base, "GET", s + f"/groups/{gjid}")
        check("... two members again", st == 200 and len(info.get("participants", [])) == 2,
              (st, info))
        st, j, _ = request(base, "GET", s + "/groups/120363999999999999@g.us")
        check("info of a group that does not exist -> 502 whatsapp_error", st == 502
              and err_code(j) == "whatsapp_error", (st, j))

        # --- the message store ------------------------------------------------------------------
        def chat_messages(q=""):
            st_, j_, _ = request(base, "GET", s + f"/chats/{peer_jid}/messages{q}")
            return j_.get("messages", []) if st_ == 200 else None
        st, j, _ = request(base, "GET", s + "/chats")
        chats = {c["jid"]: c for c in (j or {}).get("chats", [])}
        c = chats.get(peer_jid, {})
        check("GET chats: the peer's chat, 4 messages, 2 unread", st == 200
              and c.get("messages") == 4 and c.get("unread") == 2
              and abs(c.get("last_timestamp", 0) - time.time()) < 120, (st, j))
        msgs = chat_messages()
        check("GET chats/{jid}/messages: newest first, in and out, kinds",
              msgs and [m_["type"] for m_ in msgs] == ["contact", "location", "contact",
                                                       "location"]
              and [m_["from_me"] for m_ in msgs] == [False, False, True, True], msgs)
        ours = wait_for(lambda: [m_ for m_ in chat_messages() if m_["id"] == loc_id
                                 and m_["status"] in ("sent", "delivered", "read")], 10)
        check("... our location's status moved on with the acks (sent/delivered)", ours,
              chat_messages())
        two = chat_messages("?limit=2")
        check("limit=2 -> the newest two", two and [m_["id"] for m_ in two]
              == [m_["id"] for m_ in msgs[:2]], two)
        older = chat_messages(f"?limit=10&before={two[-1]['id']}" if two else "")
        check("before=<oldest of the page> -> the rest", older is not None
              and [m_["id"] for m_ in older] == [m_["id"] for m_ in msgs[2:]], older)
        st, j, _ = request(base, "POST", s + "/read", {"chat": PEER_PHONE, "ids": [in_loc]})
        check("POST read of the incoming location -> 200", st == 200, (st, j))
        st, j, _ = request(base, "GET", s + "/chats")
        check("... unread 1", st == 200 and j["chats"][0].get("unread") == 1, j)
        texts = []
        for i in range(4):
            st, j, _ = request(base, "POST", s + "/messages", {"to": PEER_PHONE,
                                                               "text": f"fill {i}"})
            texts.append((j or {}).get("id"))
            check(f"text {i} -> 201", st == 201, (st, j))
        pruned = wait_for(lambda: (lambda ms: ms if ms is not None and len(ms) == STORE_MAX
                                   else None)(chat_messages("?limit=100")), 10)
        check(f"MESSAGE_STORE_MAX={STORE_MAX}: 8 stored, pruned to the newest {STORE_MAX} at the "
              "health interval", pruned and [m_["id"] for m_ in pruned[:4]] == texts[::-1]
              and loc_id not in [m_["id"] for m_ in pruned], pruned)

        # --- a reaction while reconnecting: queued, sent after the reconnect --------------------
        me = t.session(base, "alice")["me"]["jid"]
        t.post_ctl(ctl, "/faults/refuse", {"seconds": 2})
        st, j, _ = t.post_ctl(ctl, f"/devices/{me}/drop", {})
        check("wasim drops alice's connection", st == 200, (st, j))
        check("alice DISCONNECTED", t.wait_status(base, "alice", "DISCONNECTED", 5),
              t.session(base, "alice"))
        st, j, _ = request(base, "POST", s + "/messages/reaction",
                           {"to": PEER_PHONE, "message_id": in_loc, "emoji": "🎉"})
        qid = (j or {}).get("id")
        check("reaction while DISCONNECTED -> 202 queued", st == 202 and qid
              and j.get("status") == "queued", (st, j))
        bad(base, "POST", s + "/messages/reaction", {"to": PEER_PHONE, "emoji": "x"},
            "message_id", "a bad reaction while DISCONNECTED is still refused")
        check("alice WORKING again", t.wait_status(base, "alice", "WORKING", 20),
              t.session(base, "alice"))
        m = peer.next(lambda e: e.get("ev") in ("reaction", "message")
                      and (e.get("reaction") or {}).get("text") == "🎉", 20)
        check("... the queued reaction reaches the peer", m
              and (m.get("reaction") or {}).get("key", {}).get("id") == in_loc, m)
        ack = wait_for(lambda: events(rx, "message.ack", lambda p: p.get("id") == qid), 10)
        check("... message.ack sent for the queued id (with the id it went out as)", ack
              and ack[0]["payload"]["status"] == "sent" and ack[0]["payload"].get("message_id"),
              ack)

        # --- a contact's identity changes (its phone reinstalled) ---------------------------------
        st, j, _ = t.post_ctl(ctl, f"/phones/{PEER_PHONE}/send", {"to": ME_PHONE,
                                                                   "text": "from the phone"})
        check("the peer's phone itself writes to alice", st == 200, (st, j))
        check("... message event", wait_for(lambda: events(
            rx, "message", lambda p: p.get("text") == "from the phone"), 20), rx.events()[-3:])
        st, j, _ = t.post_ctl(ctl, f"/phones/{PEER_PHONE}/reinstall", {"notify": True})
        check("wasim: the peer's phone reinstalled (new identity key)", st == 200, (st, j))
        ev = wait_for(lambda: events(rx, "contact.identity_changed"), 20)
        check("webhook: contact.identity_changed {jid} once", ev and len(ev) == 1
              and ev[0]["payload"].get("jid") == peer_jid, ev)

        rc, took = gw.stop()
        check("SIGTERM: exit 0", rc == 0, (rc, took))
        rx.stop()
        # --- WA_VERSION=auto with nothing to read: a warning, libwa's default ------------------
        dead = t.free_port()
        gw2, base2 = t.start_wagate(tmp, os.path.join(tmp, "data2"), t.free_port(), ws, root,
                                    {"WA_VERSION": "auto",
                                     "WA_VERSION_URL": f"http://127.0.0.1:{dead}/"})
        procs.append(gw2)
        check("WA_VERSION=auto, fetch refused: wagate starts anyway with a warning",
              "could not be fetched" in gw2.text() and request(base2, "GET", "/health",
                                                               key=None)[0] == 200,
              gw2.text()[-1500:])
        rc, took = gw2.stop()
        check("... SIGTERM: exit 0", rc == 0, (rc, took))
    finally:
        if page:
            page.shutdown()
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
