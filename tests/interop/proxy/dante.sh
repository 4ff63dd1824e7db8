# dante.sh - start Debian's danted as a SOCKS5 proxy with RFC 1929 username/password on
# loopback, for tests. Sourced by run.sh (interop_proxy) and ../client/client.test.sh.
#
#   dante_start  (needs: TMP a private directory, SOCKS_PORT a free port, the array PIDS)
#
# Sets PX_USER, PX_PASS (plain), PX_PASS_URL (percent-encoded for URLs), DANTED_PID and, on the
# useradd path, ADDED_USER (the caller runs `userdel "$ADDED_USER"` on exit); appends danted's
# pid to PIDS. Dante checks the password against the system user database (getpwnam +
# getspnam + crypt): the test user lives only in copies of /etc/passwd and /etc/shadow that are
# bind-mounted over the real ones in a private mount namespace (unshare -m) that only danted
# sees. Where mount namespaces are not allowed (a container without CAP_SYS_ADMIN), a
# throw-away system user is created with useradd instead (WA_PROXY_TEST_USERADD=1 forces this).
# Needs root, danted, openssl, unshare. Returns non-zero when the user exists already.
# SPDX-License-Identifier: GPL-3.0-or-later

dante_start() {
  PX_PASS='s3cr@t:pw' # in URLs percent-encoded: '@' and ':' must be
  PX_PASS_URL='s3cr%40t%3Apw'
  local hash
  hash=$(openssl passwd -6 "$PX_PASS")

  cat >"$TMP/danted.conf" <<EOC
logoutput: $TMP/danted.log
internal: 127.0.0.1 port = $SOCKS_PORT
external: 127.0.0.1
socksmethod: username
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
  command: connect
  log: connect
}
EOC

  touch "$TMP/probe"
  if [ -z "${WA_PROXY_TEST_USERADD:-}" ] &&
    unshare -m sh -c "mount --bind /etc/hostname '$TMP/probe'" 2>/dev/null; then
    PX_USER=wagateproxy
    cp /etc/passwd "$TMP/passwd"
    cp /etc/shadow "$TMP/shadow"
    chmod 640 "$TMP/shadow"
    if grep -q "^$PX_USER:" "$TMP/passwd"; then
      echo "dante_start: user $PX_USER exists already" >&2
      return 1
    fi
    echo "$PX_USER:x:64999:65534:wagate proxy test:/nonexistent:/usr/sbin/nologin" >>"$TMP/passwd"
    echo "$PX_USER:$hash:19000:0:99999:7:::" >>"$TMP/shadow"
    setsid unshare -m sh -c "mount --bind '$TMP/passwd' /etc/passwd &&
      mount --bind '$TMP/shadow' /etc/shadow &&
      exec danted -f '$TMP/danted.conf' -p '$TMP/danted.pid' -N 1" >"$TMP/danted.out" 2>&1 &
    PIDS+=($!)
    echo "dante: user $PX_USER in a private mount namespace"
  else
    PX_USER="wagatepx$$"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PX_USER"
    ADDED_USER=$PX_USER
    echo "$PX_USER:$hash" | chpasswd -e
    setsid danted -f "$TMP/danted.conf" -p "$TMP/danted.pid" -N 1 >"$TMP/danted.out" 2>&1 &
    PIDS+=($!)
    echo "dante: no mount namespaces here: throw-away system user $PX_USER (removed on exit)"
  fi
  DANTED_PID=${PIDS[-1]}
}
