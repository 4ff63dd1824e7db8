#!/usr/bin/env bash
# Acceptance test of libwa's client through wa-cli against wasim (issue 4):
#   pair by QR (QR lines POSTed to /scan) -> PAIRED; listen logs in; a restart logs in again
#   from the store; stream:error 515 -> reconnect at once; drop -> reconnect with backoff;
#   stall -> dead link detected (short keep-alive) -> reconnect; a second client with the same
#   store -> the first is replaced and stops; logout -> logged_out, credentials wiped; the real
#   root key refuses wasim; pairing by phone code (a wrong code first), then login; login
#   through an HTTP CONNECT proxy with credentials (tinyproxy; a wrong password stops);
#   pairing over wss:// with wasim's CA (and refusal without it); a signed prekey rotation;
#   --version auto from a local HTTP server (the version in wasim's trace; a bad answer falls
#   back to the default with a warning); login through a SOCKS5 proxy with credentials (danted, ../proxy/dante.sh) and a
#   wrong password stops (reason proxy_auth, no retry); an unreachable proxy is retried.
# Usage: client.test.sh WASIM WA_CLI
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

WASIM=$1
CLI=$2
DIR=$(mktemp -d /tmp/wa_client_interop.XXXXXX)
PIDS=()
ADDED_USER=""
PASS=0
FAIL=0

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$ADDED_USER" ]; then userdel "$ADDED_USER" >/dev/null 2>&1 || true; fi
    if [ "$FAIL" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then rm -rf "$DIR"; else echo "logs kept in $DIR"; fi
}
trap cleanup EXIT

ok() {
    PASS=$((PASS + 1))
    echo "ok   - $*"
}
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL - $*"
}
die() {
    bad "$*"
    echo "$PASS passed, $FAIL failed"
    exit 1
}

# wait_for FILE REGEX [COUNT] [SECONDS]: until FILE has COUNT lines matching REGEX.
wait_for() {
    local file=$1 re=$2 count=${3:-1} secs=${4:-10} i n
    for ((i = 0; i < secs * 20; i++)); do
        n=$(grep -cE -- "$re" "$file" 2>/dev/null || true)
        [ "${n:-0}" -ge "$count" ] && return 0
        sleep 0.05
    done
    return 1
}

# wait_exit PID SECONDS: the exit code of a background process (124 on timeout).
wait_exit() {
    local pid=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" && return 0 || return $?
        fi
        sleep 0.05
    done
    return 124
}

start_wasim() { # NAME [ARGS...] -> sets WS, CTL
    local name=$1
    shift
    "$WASIM" --listen 127.0.0.1:0 --control 127.0.0.1:0 --trace "$DIR/$name.trace" "$@" \
        >"$DIR/$name.out" 2>"$DIR/$name.err" &
    PIDS+=($!)
    wait_for "$DIR/$name.out" "wasim ready" 1 10 || die "$name did not start"
    WS=$(sed -n 's/.*ws=\([^ ]*\).*/\1/p' "$DIR/$name.out")
    CTL=$(sed -n 's/.*control=\([^ ]*\).*/\1/p' "$DIR/$name.out")
}

post() { curl -s -X POST "$CTL$1" -H 'Content-Type: application/json' -d "$2"; }

PHONE=15550001234
start_wasim sim
ROOT=$(curl -s "$CTL/root-key")
COMMON=(--url "$WS" --root-key "$ROOT" --log-level info)
LISTEN=("${COMMON[@]}" --keepalive 1000 --reconnect-base 200 --reconnect-max 1000)

# --- pair by QR ------------------------------------------------------------------------------
"$CLI" --store "$DIR/a.db" "${COMMON[@]}" pair >"$DIR/pair.out" 2>"$DIR/pair.err" &
P=$!
PIDS+=($P)
wait_for "$DIR/pair.out" '^QR ' 1 10 || die "no QR line"
QR=$(sed -n 's/^QR //p' "$DIR/pair.out" | head -1)
case "$QR" in *,*,*,*) ok "QR text printed" ;; *) bad "malformed QR: $QR" ;; esac
RES=$(post "/phones/$PHONE/scan" "{\"qr\":\"$QR\"}")
JID=$(echo "$RES" | sed -n 's/.*"device":"\([^"]*\)".*/\1/p')
[ -n "$JID" ] || die "scan refused: $RES"
wait_for "$DIR/pair.out" "^PAIRED $JID\$" 1 10 && ok "PAIRED $JID" || bad "no PAIRED line"
wait_exit $P 10 && ok "pair exits 0 after the first login" || bad "pair did not exit cleanly"

# --- listen, restart from the store ---------------------------------------------------------------
"$CLI" --store "$DIR/a.db" "${LISTEN[@]}" listen --rotate-signed-prekey >"$DIR/l1.out" \
    2>"$DIR/l1.err" &
L=$!
PIDS+=($L)
wait_for "$DIR/l1.out" '"event":"connected"' 1 10 && ok "listen logs in" || bad "listen: no connected"
wait_for "$DIR/l1.out" '"event":"signed_prekey_rotated","ok":true' 1 5 &&
    wait_for "$DIR/sim.trace" '<rotate><skey>' 1 5 && ok "signed prekey rotation sent" ||
    bad "no rotation"
kill -TERM $L
wait_for "$DIR/l1.out" '"event":"disconnected","reason":"stopped".*"will_retry":false' 1 5 &&
    ok "SIGTERM -> disconnected stopped" || bad "no stopped event"
wait_exit $L 5 && ok "listen exits 0 on SIGTERM" || bad "listen exit code"

"$CLI" --store "$DIR/a.db" "${LISTEN[@]}" listen >"$DIR/l2.out" 2>"$DIR/l2.err" &
L=$!
PIDS+=($L)
wait_for "$DIR/l2.out" '"event":"connected"' 1 10 && ok "restart logs in again from the store" ||
    die "restart: no connected"

# --- 515: reconnect at once -------------------------------------------------------------------------
post "/devices/$JID/stream-error" '{"code":"515"}' >/dev/null
wait_for "$DIR/l2.out" '"reason":"restart","code":515.*"will_retry":true,"retry_ms":0' 1 5 &&
    wait_for "$DIR/l2.out" '"event":"connected"' 2 5 && ok "515 -> reconnects at once" ||
    bad "515 not handled"

# --- drop: reconnect with backoff -----------------------------------------------------------------
post "/devices/$JID/drop" '{}' >/dev/null
wait_for "$DIR/l2.out" '"reason":"network".*"will_retry":true,"retry_ms":[1-9]' 1 5 &&
    wait_for "$DIR/l2.out" '"event":"connected"' 3 5 && ok "drop -> reconnects after a backoff" ||
    bad "drop not handled"

# --- stall: dead link --------------------------------------------------------------------------------
post "/devices/$JID/stall" '{}' >/dev/null
wait_for "$DIR/l2.out" '"reason":"dead_link","code":408.*"will_retry":true' 1 6 &&
    wait_for "$DIR/l2.out" '"event":"connected"' 4 5 && ok "stall -> dead link -> reconnects" ||
    bad "stall not detected"

# --- replaced: a second client with the same store --------------------------------------------------
"$CLI" --store "$DIR/a.db" "${LISTEN[@]}" listen >"$DIR/l3.out" 2>"$DIR/l3.err" &
L3=$!
PIDS+=($L3)
wait_for "$DIR/l3.out" '"event":"connected"' 1 10 || bad "second client: no connected"
wait_for "$DIR/l2.out" '"reason":"replaced","code":440.*"will_retry":false' 1 5 &&
    ok "replaced -> first client stops without retry" || bad "no replaced event"
wait_exit $L 5 || true
sleep 1.5
N=$(grep -c '"event":"connected"' "$DIR/l3.out" || true)
[ "$N" -eq 1 ] && ok "no fight: the second client stays connected" || bad "reconnect loop ($N)"

# --- logout: logged_out, credentials wiped ----------------------------------------------------------
post "/devices/$JID/logout" '{}' >/dev/null
wait_for "$DIR/l3.out" '"reason":"logged_out","code":401.*"will_retry":false' 1 5 &&
    wait_for "$DIR/l3.out" '"event":"logged_out"' 1 5 && ok "logout -> logged_out" ||
    bad "no logged_out"
set +e
wait_exit $L3 5
RC=$?
"$CLI" --store "$DIR/a.db" "${LISTEN[@]}" listen >"$DIR/l4.out" 2>"$DIR/l4.err"
RC4=$?
set -e
[ $RC -eq 1 ] && ok "listen exits 1 after logout" || bad "exit code after logout: $RC"
[ $RC4 -eq 1 ] && grep -q "not paired" "$DIR/l4.err" && ok "credentials wiped" ||
    bad "credentials still there"

# --- the real root key refuses wasim -------------------------------------------------------------------
set +e
"$CLI" --store "$DIR/b.db" --url "$WS" pair >"$DIR/root.out" 2>"$DIR/root.err"
RC=$?
set -e
[ $RC -eq 1 ] && grep -q '^FAILED certificate .*not signed by the trusted root' "$DIR/root.out" &&
    ok "real root key refuses wasim: $(head -1 "$DIR/root.out")" || bad "root key not enforced"

# --- pairing by phone code: a wrong code first, then the right one ------------------------------------
CODE_PHONE=15550009999
"$CLI" --store "$DIR/c.db" "${COMMON[@]}" pair --phone $CODE_PHONE >"$DIR/code.out" \
    2>"$DIR/code.err" &
P=$!
PIDS+=($P)
if wait_for "$DIR/code.out" '^(CODE |FAILED)' 1 10 && grep -q '^CODE ' "$DIR/code.out"; then
    CODE=$(sed -n 's/^CODE //p' "$DIR/code.out")
    WRONG=$(echo "$CODE" | tr '1-9A-Z' '2-9A-Z1')
    RES=$(post "/phones/$CODE_PHONE/link-code" "{\"code\":\"$WRONG\"}")
    echo "$RES" | grep -q 'code_sent' || bad "wrong code not sent: $RES"
    for i in $(seq 1 100); do
        curl -s "$CTL/phones/$CODE_PHONE/link-code" | grep -q 'wrong_code' && break
        sleep 0.05
    done
    curl -s "$CTL/phones/$CODE_PHONE/link-code" | grep -q 'wrong_code' &&
        ok "a wrong code is refused and the client keeps waiting" || bad "wrong code state"
    RES=$(post "/phones/$CODE_PHONE/link-code" "{\"code\":\"$CODE\"}")
    echo "$RES" | grep -q 'code_sent' || bad "code not sent: $RES"
    wait_for "$DIR/code.out" '^PAIRED ' 1 15 && wait_exit $P 10 &&
        ok "pairing by phone code ($CODE)" || bad "code pairing: $(cat "$DIR/code.out")"
    "$CLI" --store "$DIR/c.db" "${LISTEN[@]}" listen >"$DIR/l5.out" 2>"$DIR/l5.err" &
    L=$!
    PIDS+=($L)
    wait_for "$DIR/l5.out" '"event":"connected"' 1 10 && ok "the code-paired account logs in" ||
        bad "code-paired login"
    kill -TERM $L
    wait_exit $L 5 || bad "listen exit after code pairing"
else
    bad "phone code: $(cat "$DIR/code.out")"
fi

# --- through an HTTP CONNECT proxy with credentials (tinyproxy) ---------------------------------------
if command -v tinyproxy >/dev/null && grep -q '^PAIRED ' "$DIR/code.out"; then
    HP=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    WSPORT=$(echo "$WS" | sed -n 's#^ws://[^:]*:\([0-9]*\)/.*#\1#p')
    cat >"$DIR/tinyproxy.conf" <<EOF
Port $HP
Listen 127.0.0.1
Timeout 30
LogFile "$DIR/tinyproxy.log"
LogLevel Info
PidFile "$DIR/tinyproxy.pid"
MaxClients 16
Allow 127.0.0.1
BasicAuth wagate pass.w0rd-X
ConnectPort $WSPORT
DisableViaHeader Yes
EOF
    tinyproxy -d -c "$DIR/tinyproxy.conf" >"$DIR/tinyproxy.out" 2>&1 &
    PIDS+=($!)
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$HP") 2>/dev/null && break
        sleep 0.05
    done
    "$CLI" --store "$DIR/c.db" "${LISTEN[@]}" --proxy "http://wagate:pass.w0rd-X@127.0.0.1:$HP" \
        listen >"$DIR/l6.out" 2>"$DIR/l6.err" &
    L=$!
    PIDS+=($L)
    wait_for "$DIR/l6.out" '"event":"connected"' 1 10 &&
        grep -q "CONNECT" "$DIR/tinyproxy.log" && ok "logs in through an HTTP CONNECT proxy" ||
        bad "proxy login: $(cat "$DIR/l6.out")"
    kill -TERM $L
    wait_exit $L 5 || bad "listen exit after the proxy test"
    # a wrong password: tinyproxy answers 401, the client stops (proxy_auth, no retry)
    "$CLI" --store "$DIR/c.db" "${LISTEN[@]}" --reconnect-max 200 \
        --proxy "http://wagate:wrong@127.0.0.1:$HP" listen >"$DIR/l6b.out" 2>"$DIR/l6b.err" &
    L=$!
    PIDS+=($L)
    wait_for "$DIR/l6b.out" '"event":"disconnected","reason":"proxy_auth","code":407.*"will_retry":false' 1 10 &&
        { wait_exit $L 10 || [ $? -eq 1 ]; } && ! grep -q '"event":"connected"' "$DIR/l6b.out" &&
        [ "$(grep -c '"event":"disconnected"' "$DIR/l6b.out")" -eq 1 ] &&
        ok "HTTP CONNECT wrong password -> $(grep -m1 -o '"reason":"[^"]*","code":[0-9-]*,"text":"[^"]*"' "$DIR/l6b.out"), no retry" ||
        bad "HTTP CONNECT wrong password: $(cat "$DIR/l6b.out" "$DIR/l6b.err")"
    kill -TERM $L 2>/dev/null || true
    wait_exit $L 5 || true
else
    echo "skip - proxy: tinyproxy not installed"
fi

# --- --version auto: fetched at start from a local HTTP server ----------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mkdir -p "$DIR/www"
echo '{"isBroken":false,"isBelowSoft":false,"isBelowHard":false,"currentVersion":"2.3000.987654321"}' \
    >"$DIR/www/check-update"
printf '<html><script>{"server_revision":1,"client_revision":1122334455,"x":2}</script>' \
    >"$DIR/www/page.html"
echo '{"currentVersion":"not-a-version"}' >"$DIR/www/bad"
VP=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$DIR/www" "$VP" >"$DIR/http.out" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$VP") 2>/dev/null && break
    sleep 0.05
done
# version_case NAME URL EXPECTED_VERSION: a pair attempt reaches QR with EXPECTED in its payload.
version_case() {
    local name=$1 url=$2 want=$3 p tert
    tert=${want##*.}
    "$CLI" --store "$DIR/$name.db" "${COMMON[@]}" --version auto --version-url "$url" pair \
        >"$DIR/$name.out" 2>"$DIR/$name.err" &
    p=$!
    PIDS+=($p)
    wait_for "$DIR/$name.out" '^QR ' 1 10 || bad "$name: no QR"
    kill -TERM $p
    wait_exit $p 5 || true
    grep ' payload ' "$DIR/sim.trace" | tail -1 | grep -q "\"tertiary\":$tert}"
}
version_case vjson "http://127.0.0.1:$VP/check-update" 2.3000.987654321 &&
    grep -q 'version 2.3000.987654321' "$DIR/vjson.err" &&
    ok "--version auto: check-update JSON -> appVersion 2.3000.987654321 in the payload" ||
    bad "--version auto (JSON): $(cat "$DIR/vjson.err")"
version_case vpage "http://127.0.0.1:$VP/page.html" 2.3000.1122334455 &&
    ok "--version auto: client_revision in the page -> appVersion 2.3000.1122334455" ||
    bad "--version auto (page): $(cat "$DIR/vpage.err")"
DEFV=$(sed -n 's/.*WA_CLIENT_DEFAULT_VERSION *"\(.*\)".*/\1/p' "$(dirname "$0")/../../../include/wa/client.h")
version_case vbad "http://127.0.0.1:$VP/bad" "$DEFV" &&
    grep -q 'warning: version fetch .*no version in the answer' "$DIR/vbad.err" &&
    grep -q "warning: using the default version $DEFV" "$DIR/vbad.err" &&
    ok "--version auto: a bad answer -> warning, default $DEFV" ||
    bad "--version auto (bad): $(cat "$DIR/vbad.err")"
version_case vnone "http://127.0.0.1:$VP/missing" "$DEFV" &&
    grep -q 'HTTP status 404' "$DIR/vnone.err" && ok "--version auto: 404 -> warning, default" ||
    bad "--version auto (404): $(cat "$DIR/vnone.err")"

# --- through a SOCKS5 proxy with credentials (danted) ------------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin"
if [ "$(id -u)" -eq 0 ] && command -v danted >/dev/null && command -v unshare >/dev/null &&
    grep -q '^PAIRED ' "$DIR/code.out"; then
    TMP=$DIR
    SOCKS_PORT=$(free_port)
    WSPORT=$(echo "$WS" | sed -n 's#^ws://[^:]*:\([0-9]*\)/.*#\1#p')
    # shellcheck source=../proxy/dante.sh
    . "$(dirname "$0")/../proxy/dante.sh"
    dante_start >"$DIR/dante_start.out"
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$SOCKS_PORT") 2>/dev/null && break
        sleep 0.05
    done
    "$CLI" --store "$DIR/c.db" "${LISTEN[@]}" \
        --proxy "socks5://$PX_USER:$PX_PASS_URL@127.0.0.1:$SOCKS_PORT" listen \
        >"$DIR/l7.out" 2>"$DIR/l7.err" &
    L=$!
    PIDS+=($L)
    wait_for "$DIR/l7.out" '"event":"connected"' 1 10 &&
        grep -qE "tcp/connect .*username%$PX_USER@127\.0\.0\.1\..* -> .*127\.0\.0\.1\.$WSPORT\b" "$DIR/danted.log" &&
        ok "logs in through a SOCKS5 proxy with credentials (danted)" ||
        bad "socks5 login: $(cat "$DIR/l7.out" "$DIR/l7.err")"
    kill -TERM $L
    wait_exit $L 5 || bad "listen exit after the SOCKS5 test"
    set +e
    "$CLI" --store "$DIR/c.db" "${LISTEN[@]}" --reconnect-max 200 \
        --proxy "socks5://$PX_USER:wrong@127.0.0.1:$SOCKS_PORT" listen \
        >"$DIR/l8.out" 2>"$DIR/l8.err" &
    L=$!
    PIDS+=($L)
    set -e
    # a wrong password stops at once (reason proxy_auth, 407, no retry: wa-cli exits 1 by itself)
    wait_for "$DIR/l8.out" '"event":"disconnected","reason":"proxy_auth","code":407,"text":"[^"]*proxy authentication failed.*"will_retry":false' 1 10 &&
        { wait_exit $L 10 || [ $? -eq 1 ]; } && ! grep -q '"event":"connected"' "$DIR/l8.out" &&
        [ "$(grep -c '"event":"disconnected"' "$DIR/l8.out")" -eq 1 ] &&
        ok "SOCKS5 wrong password -> $(grep -m1 -o '"reason":"[^"]*","code":[0-9-]*,"text":"[^"]*"' "$DIR/l8.out"), no retry" ||
        bad "socks5 wrong password: $(cat "$DIR/l8.out" "$DIR/l8.err")"
    kill -TERM $L 2>/dev/null || true
    wait_exit $L 5 || true
    # an unreachable proxy stays a network error and is retried
    DEADP=$(free_port)
    "$CLI" --store "$DIR/c.db" "${LISTEN[@]}" --reconnect-max 200 \
        --proxy "socks5://$PX_USER:$PX_PASS_URL@127.0.0.1:$DEADP" listen \
        >"$DIR/l9.out" 2>"$DIR/l9.err" &
    L=$!
    PIDS+=($L)
    wait_for "$DIR/l9.out" '"event":"disconnected","reason":"network".*"will_retry":true' 2 10 &&
        ok "unreachable SOCKS5 proxy -> network, retried" ||
        bad "unreachable proxy: $(cat "$DIR/l9.out" "$DIR/l9.err")"
    kill -TERM $L
    wait_exit $L 5 || true
    kill -TERM "$DANTED_PID" 2>/dev/null || true
else
    echo "skip - socks5: needs root, danted and unshare"
fi

# --- wss:// with wasim's CA ----------------------------------------------------------------------------------
start_wasim tls --tls
curl -s "$CTL/ca.pem" >"$DIR/ca.pem"
TROOT=$(curl -s "$CTL/root-key")
TLSARGS=(--url "$WS" --root-key "$TROOT" --ca "$DIR/ca.pem" --log-level info)
"$CLI" --store "$DIR/t.db" "${TLSARGS[@]}" pair >"$DIR/tpair.out" 2>"$DIR/tpair.err" &
P=$!
PIDS+=($P)
if wait_for "$DIR/tpair.out" '^QR ' 1 10; then
    QR=$(sed -n 's/^QR //p' "$DIR/tpair.out" | head -1)
    post "/phones/$PHONE/scan" "{\"qr\":\"$QR\"}" >/dev/null
    wait_for "$DIR/tpair.out" '^PAIRED ' 1 10 && wait_exit $P 10 && ok "pairing over wss://" ||
        bad "wss pairing"
else
    bad "wss: no QR"
fi
set +e
"$CLI" --store "$DIR/t2.db" --url "$WS" --root-key "$TROOT" pair >"$DIR/tca.out" 2>&1
RC=$?
set -e
[ $RC -eq 1 ] && grep -q '^FAILED certificate TLS' "$DIR/tca.out" &&
    ok "wss:// without the CA is refused" || bad "TLS verification: $(cat "$DIR/tca.out")"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
