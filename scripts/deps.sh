#!/usr/bin/env bash
# deps.sh - install everything the build and the tests need on a Debian 12 machine.
# Idempotent and quiet when everything is present. Called by `make run` and `make test`.
#   Debian packages with apt-get; the Node test peers (Baileys 6.17.16 and 7.0.0-rc14 side by side)
#   with npm into tests/interop/node_modules (git-ignored).
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev libfuzzer-14-dev
  libuv1-dev libssl-dev libsignal-protocol-c-dev libprotobuf-c-dev protobuf-c-compiler
  libcmocka-dev zlib1g-dev libsqlite3-dev libmicrohttpd-dev libcurl4-openssl-dev
  libjansson-dev libqrencode-dev libpng-dev sqlite3 curl ca-certificates openssl python3
  dante-server tinyproxy prometheus python3-yaml debootstrap zbar-tools
  chromium wrk
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  # Test daemons (dante, tinyproxy) must not start as system services on install: the tests
  # start their own on loopback. policy-rc.d 101 tells invoke-rc.d not to start anything.
  cleanup_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    cleanup_policy=1
  fi
  $SUDO apt-get update -qq
  rc=0
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  [ "$cleanup_policy" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { echo "deps: apt-get install failed ($rc)"; exit "$rc"; }
fi

# Node peers: reinstall only when package.json changed since the last install.
stamp=tests/interop/node_modules/.wagate-stamp
want=$(sha256sum tests/interop/package.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "deps: npm install in tests/interop"
  (cd tests/interop && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$stamp"
fi
