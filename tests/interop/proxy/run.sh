#!/usr/bin/env bash
# run.sh - libwa's proxy tunnels against real proxies on loopback.
#
#   run.sh path/to/proxy_client
#
# Starts, in a temporary directory and on free loopback ports, in the foreground (children of
# this script, each in its own process group):
#   - Dante (danted, Debian package dante-server): SOCKS5 with RFC 1929 username/password
#     ("socksmethod: username"), which Dante checks against the system user database
#     (getpwnam + getspnam + crypt). The test user lives only in copies of /etc/passwd and
#     /etc/shadow that are bind-mounted over the real ones in a private mount namespace
#     (unshare -m) that only danted sees: nothing on the machine changes. Where mount
#     namespaces are not allowed (a container without CAP_SYS_ADMIN), a throw-away system user
#     is created with useradd instead and removed with userdel on exit (WA_PROXY_TEST_USERADD=1
#     forces this path).
#   - tinyproxy: HTTP CONNECT with "BasicAuth" and "ConnectPort" for the echo port only.
# Then runs proxy_client (a wa_listener TLS echo server + a wa_stream through the proxy) for
# each case, and stops the daemons on every exit path (trap): TERM, a grace period, then KILL
# for the whole process group.
#
# Needs root (Dante reads /etc/shadow; mount namespaces), dante-server, tinyproxy, openssl,
# python3 (free ports). Fails, never skips, when something is missing.
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

CLIENT=${1:?usage: run.sh path/to/proxy_client}
fail() {
  echo "interop_proxy: $*" >&2
  exit 1
}

for cmd in danted tinyproxy openssl python3 unshare; do
  command -v "$cmd" >/dev/null 2>&1 ||
    fail "$cmd not found: install dante-server and tinyproxy (scripts/deps.sh)"
done
[ "$(id -u)" -eq 0 ] || fail "must run as root: danted checks SOCKS5 passwords against /etc/shadow"

TMP=$(mktemp -d /tmp/wagate-proxy.XXXXXX)
chmod 755 "$TMP"
PIDS=()
ADDED_USER=""

alive() { # pid: running and not a zombie
  [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

stop_daemons() {
  local pid i
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 50); do
      alive "$pid" || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true # anything of its process group left behind
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_daemons
  if [ -n "$ADDED_USER" ]; then
    userdel "$ADDED_USER" >/dev/null 2>&1 || echo "interop_proxy: userdel $ADDED_USER failed" >&2
  fi
  if [ "$rc" -ne 0 ]; then
    for f in "$TMP"/danted.log "$TMP"/danted.out "$TMP"/tinyproxy.log "$TMP"/tinyproxy.out; do
      [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Four free loopback ports: SOCKS5, HTTP, the echo server, and one where nothing listens.
read -r SOCKS_PORT HTTP_PORT ECHO_PORT CLOSED_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(4)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])
')

# ---- Dante (dante.sh: the test user, the config, danted in the background) ----
# shellcheck source=dante.sh
. "$(dirname "$0")/dante.sh"
dante_start

# ---- tinyproxy (BasicAuth takes [-a-z0-9._] only) ----
TP_USER=wagate
TP_PASS=pass.w0rd-X
cat >"$TMP/tinyproxy.conf" <<EOF
Port $HTTP_PORT
Listen 127.0.0.1
Timeout 30
LogFile "$TMP/tinyproxy.log"
LogLevel Info
PidFile "$TMP/tinyproxy.pid"
MaxClients 16
Allow 127.0.0.1
BasicAuth $TP_USER $TP_PASS
ConnectPort $ECHO_PORT
DisableViaHeader Yes
EOF
setsid tinyproxy -d -c "$TMP/tinyproxy.conf" >"$TMP/tinyproxy.out" 2>&1 &
PIDS+=($!)
TINYPROXY_PID=$!

wait_port() { # pid port name
  local i
  for i in $(seq 100); do
    alive "$1" || fail "$3 exited at start"
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  fail "$3 does not listen on 127.0.0.1:$2"
}
wait_port "$DANTED_PID" "$SOCKS_PORT" danted
wait_port "$TINYPROXY_PID" "$HTTP_PORT" tinyproxy
echo "interop_proxy: $(danted -v 2>&1 | awk 'NR == 1 {print $1, $2}') on $SOCKS_PORT," \
  "$(tinyproxy -v 2>&1 | head -n1) on $HTTP_PORT, echo server on $ECHO_PORT"

# ---- the cases ----
PASSED=0
FAILED=()
case_() { # name, proxy_client arguments...
  local name=$1
  shift
  if "$CLIENT" --echo-port "$ECHO_PORT" "$@"; then
    PASSED=$((PASSED + 1))
  else
    FAILED+=("$name")
  fi
}

SOCKS="$PX_USER:$PX_PASS_URL@127.0.0.1:$SOCKS_PORT"
case_ socks5h_ok --host localhost --proxy "socks5h://$SOCKS" --expect-ok
case_ socks5_local_ok --host localhost --proxy "socks5://$SOCKS" --expect-ok
case_ socks5h_wrong_password --host localhost \
  --proxy "socks5h://$PX_USER:wrong@127.0.0.1:$SOCKS_PORT" \
  --expect WA_EPROXYAUTH --text "proxy authentication failed"
case_ socks5h_no_credentials --host localhost --proxy "socks5h://127.0.0.1:$SOCKS_PORT" \
  --expect WA_EPROXYAUTH --text "SOCKS5 proxy requires authentication"
case_ socks5h_target_refused --host localhost --target-port "$CLOSED_PORT" \
  --proxy "socks5h://$SOCKS" --expect WA_EPROXY --text "proxy refused connection: SOCKS5 reply"

HTTP="$TP_USER:$TP_PASS@127.0.0.1:$HTTP_PORT"
case_ http_ok --host localhost --proxy "http://$HTTP" --expect-ok
case_ http_ip_target_ok --host 127.0.0.1 --proxy "http://$HTTP/" --expect-ok
case_ http_wrong_password --host localhost --proxy "http://$TP_USER:wrong@127.0.0.1:$HTTP_PORT" \
  --expect WA_EPROXYAUTH --text "HTTP proxy answered 401"
case_ http_no_credentials --host localhost --proxy "http://127.0.0.1:$HTTP_PORT" \
  --expect WA_EPROXYAUTH --text "HTTP proxy answered 407"
case_ http_port_not_allowed --host localhost --target-port "$CLOSED_PORT" \
  --proxy "http://$HTTP" --expect WA_EPROXY --text "HTTP proxy answered 403"

# both daemons must still be up (none crashed under us)
alive "$DANTED_PID" || FAILED+=(danted_died)
alive "$TINYPROXY_PID" || FAILED+=(tinyproxy_died)

echo "interop_proxy: $PASSED passed, ${#FAILED[@]} failed${FAILED[*]:+: ${FAILED[*]}}"
[ ${#FAILED[@]} -eq 0 ]
