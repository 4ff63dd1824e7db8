#!/usr/bin/env bash
# demo.sh - wagate end to end against the simulator, step by step: starts wasim (the simulated
# WhatsApp server and phones) and wagate, creates a session, shows its QR, has the simulated
# phone scan it, waits for WORKING, links a second session by phone-number code, restarts
# wagate to show the sessions come back without pairing again, sends a message to a simulated
# phone and receives its answer, and logs one out.
#   scripts/demo.sh [BUILD_DIR]      (make demo)
# DEMO_KEEP=1 leaves both running at the end (Ctrl-C stops them). Everything lives in a
# temporary directory that is removed on exit.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

build=${1:-build}
WAGATE=$build/src/wagate
WASIM=$build/sim/wasim
for b in "$WAGATE" "$WASIM"; do
    [ -x "$b" ] || { echo "demo: $b is not built (run make build)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "demo: curl is needed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "demo: python3 is needed" >&2; exit 1; }

DIR=$(mktemp -d /tmp/wagate-demo.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step=0
if [ -t 1 ]; then B=$'\033[1m' R=$'\033[31m' N=$'\033[0m'; else B='' R='' N=''; fi
say() {
    step=$((step + 1))
    printf '\n%s%d. %s%s\n' "$B" "$step" "$*" "$N"
}
info() { printf '   %s\n' "$*"; }
die() {
    printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2
    for f in "$DIR"/*.err; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
    exit 1
}
# json FIELD.PATH < json: print one field ("" when absent)
json() { python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v=v.get(k) if isinstance(v,dict) else None
print("" if v is None else v)' "$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_until SECONDS COMMAND...: retry a command until it succeeds
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 10; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

KEY=demo-$(python3 -c 'import secrets; print(secrets.token_hex(16))')
PORT=${DEMO_PORT:-$(free_port)}
API=http://127.0.0.1:$PORT
api() { # METHOD PATH [BODY]
    if [ $# -ge 3 ]; then
        curl -s -X "$1" -H "X-Api-Key: $KEY" -H 'Content-Type: application/json' -d "$3" "$API$2"
    else
        curl -s -X "$1" -H "X-Api-Key: $KEY" "$API$2"
    fi
}
status_is() { [ "$(api GET "/api/sessions/$1" | json status)" = "$2" ]; }
qr_ready() { curl -sf -H "X-Api-Key: $KEY" "$API/api/sessions/$1/qr?format=raw" >"$DIR/qr.txt"; }

say "Start wasim, the simulated WhatsApp server (with simulated phones)"
"$WASIM" --listen 127.0.0.1:0 --control 127.0.0.1:0 >"$DIR/wasim.out" 2>"$DIR/wasim.err" &
PIDS+=($!)
wait_until 10 grep -q 'wasim ready' "$DIR/wasim.out" || die "wasim did not start"
WS=$(sed -n 's/.*ws=\([^ ]*\).*/\1/p' "$DIR/wasim.out")
CTL=$(sed -n 's/.*control=\([^ ]*\).*/\1/p' "$DIR/wasim.out")
ROOT=$(curl -s "$CTL/root-key")
info "WhatsApp endpoint: $WS"
info "phone control API: $CTL"
info "its Noise root key (trusted by wagate instead of WhatsApp's): ${ROOT:0:16}..."

start_wagate() {
    PORT=$PORT HOST=127.0.0.1 DATA_DIR="$DIR/data" API_KEY="$KEY" WA_WS_URL="$WS" \
        WA_ROOT_KEY="$ROOT" LOG_LEVEL=info "$WAGATE" >>"$DIR/wagate.out" 2>>"$DIR/wagate.err" &
    WAGATE_PID=$!
    PIDS+=($WAGATE_PID)
    wait_until 10 curl -sf "$API/health" || die "wagate did not start"
}

say "Start wagate against it"
start_wagate
info "dashboard: http://127.0.0.1:$PORT/#key=$KEY"
info "API key:   $KEY   (header X-Api-Key)"
info "DATA_DIR:  $DIR/data (wagate.db: sessions; libwa.db: WhatsApp credentials)"

say "Create the session \"demo\" (POST /api/sessions)"
info "$(api POST /api/sessions '{"name":"demo"}')"

say "Fetch its QR code (GET /api/sessions/demo/qr?format=raw)"
wait_until 10 qr_ready demo || die "no QR code"
QR=$(cat "$DIR/qr.txt")
info "$QR"
if command -v qrencode >/dev/null; then
    qrencode -t ansiutf8 -m 1 "$QR" | sed 's/^/   /'
fi
info "status: $(api GET /api/sessions/demo | json status)"

say "The simulated phone +1 555 000 1234 scans it (POST $CTL/phones/15550001234/scan)"
RES=$(curl -s -X POST -H 'Content-Type: application/json' -d "{\"qr\":\"$QR\"}" \
    "$CTL/phones/15550001234/scan")
info "$RES"
wait_until 10 status_is demo WORKING || die "demo did not reach WORKING"
S=$(api GET /api/sessions/demo)
info "status: $(echo "$S" | json status), linked as $(echo "$S" | json me.jid) (LID $(echo "$S" | json me.lid))"

say "Link a second session by phone-number code (POST /api/sessions/by-code/pair-code)"
api POST /api/sessions '{"name":"by-code","start":false}' >/dev/null
CODE=$(api POST /api/sessions/by-code/pair-code '{"phone":"+15550005678"}' | json code)
[ -n "$CODE" ] || die "no pairing code"
info "code to type on the phone: $CODE (status $(api GET /api/sessions/by-code | json status))"
info "the simulated phone +1 555 000 5678 types it: $(curl -s -X POST \
    -H 'Content-Type: application/json' -d "{\"code\":\"$CODE\"}" "$CTL/phones/15550005678/link-code" | json state)"
wait_until 15 status_is by-code WORKING || die "by-code did not reach WORKING"
info "status: WORKING, linked as $(api GET /api/sessions/by-code | json me.jid)"

say "Restart wagate (SIGTERM, start again): the sessions come back without pairing"
kill -TERM "$WAGATE_PID"
rc=0
wait "$WAGATE_PID" 2>/dev/null || rc=$?
info "wagate stopped (exit $rc); starting it again"
start_wagate
wait_until 10 status_is demo WORKING || die "demo did not come back"
wait_until 10 status_is by-code WORKING || die "by-code did not come back"
info "demo: WORKING, by-code: WORKING (logged in from DATA_DIR/libwa.db, no new QR)"

say "Send a message from \"demo\" to +1 555 000 5678 (POST /api/sessions/demo/messages)"
S=$(api POST /api/sessions/demo/messages '{"to":"15550005678","text":"hello from the demo"}')
MID=$(echo "$S" | json id)
[ -n "$MID" ] || die "send refused: $S"
info "$S   (201: the server acknowledged it; end-to-end encrypted with Signal)"
phone_got() { curl -s "$CTL/phones/15550005678/messages?id=$MID" | grep -q 'hello from the demo'; }
wait_until 15 phone_got || die "the phone did not receive $MID"
info "the simulated phone +1 555 000 5678 decrypted it: $(curl -s "$CTL/phones/15550005678/messages?id=$MID" |
    python3 -c 'import json,sys; m=json.load(sys.stdin)["messages"][-1]; print(m["from"], "->", repr(m["text"]))')"
info "its other linked device, the session \"by-code\", has it too: $(api GET \
    '/api/sessions/by-code/chats?limit=1' | python3 -c 'import json,sys; c=json.load(sys.stdin)["chats"]; print(c[0]["jid"] if c else "nothing yet")')"

say "The phone answers (POST $CTL/phones/15550005678/send); \"demo\" receives it"
curl -s -X POST -H 'Content-Type: application/json' -d '{"to":"15550001234","text":"hi demo, got it"}' \
    "$CTL/phones/15550005678/send" >/dev/null
got_reply() { api GET '/api/sessions/demo/chats/15550005678@s.whatsapp.net/messages?limit=5' | grep -q 'got it'; }
wait_until 15 got_reply || die "demo did not receive the reply"
info "GET /api/sessions/demo/chats/15550005678@s.whatsapp.net/messages:"
api GET '/api/sessions/demo/chats/15550005678@s.whatsapp.net/messages?limit=5' | python3 -c '
import json,sys
for m in json.load(sys.stdin)["messages"]:
    print("   ", "me  " if m.get("from_me") else "them", repr(m.get("text")), m.get("status", ""))'
info "(webhooks, GET /api/events over WebSocket or SSE get the same as \"message\" events)"

say "Log \"by-code\" out (POST /api/sessions/by-code/logout)"
S=$(api POST /api/sessions/by-code/logout)
info "status: $(echo "$S" | json status): $(echo "$S" | json reason)"
info "the phone's linked devices now: $(curl -s "$CTL/phones/15550005678" | python3 -c \
    'import json,sys; print([d["jid"] for d in json.load(sys.stdin)["devices"] if d["id"]] or "none")')"

say "Metrics (GET /metrics)"
curl -s "$API/metrics" | grep -E '^wagate_(whatsapp_(connects|reconnects)_total|sessions\{status="(WORKING|LOGGED_OUT)"\})' |
    sed 's/^/   /'

if [ -n "${DEMO_KEEP:-}" ]; then
    say "Both keep running: dashboard http://127.0.0.1:$PORT/#key=$KEY (Ctrl-C stops)"
    wait "$WAGATE_PID" || true
else
    say "Done (DEMO_KEEP=1 keeps wasim and wagate running for the dashboard)"
fi
