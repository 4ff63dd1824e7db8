#!/bin/bash
# healthcheck.sh - installed as /usr/local/bin/wagate-healthcheck in the image.
#
#   wagate-healthcheck [PATH]      GET http://127.0.0.1:$PORT$PATH (default /health)
#
# Exit 0 when the status line is 200, 1 otherwise. Uses bash's /dev/tcp so the runtime image
# needs no curl. Docker's HEALTHCHECK --timeout bounds the connect; the read has its own bound.
# To be replaced by `wagate --healthcheck` once the daemon has that flag.
#
# SPDX-License-Identifier: GPL-3.0-or-later
set -u
path=${1:-/health}
port=${PORT:-8080}
case $path in
/*) ;;
*) echo "wagate-healthcheck: path must start with /" >&2; exit 2 ;;
esac
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$path" "$port" >&3
IFS= read -r -t 5 status <&3 || exit 1
case $status in
"HTTP/1."[01]" 200"*) exit 0 ;;
esac
echo "wagate-healthcheck: $path: ${status%$'\r'}" >&2
exit 1
