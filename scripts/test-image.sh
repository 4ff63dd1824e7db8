#!/usr/bin/env bash
# test-image.sh - prove the runtime stage of deploy/Dockerfile without a Docker engine.
#
#   scripts/test-image.sh [BUILD_DIR]          (make test-image; BUILD_DIR defaults to build)
#   WA_TEST_IMAGE_OMIT=libuv1 scripts/...      leave one runtime package out: the run must fail
#                                              (exit 1 either way, saying which way)
#   WA_TEST_IMAGE_KEEP=1 scripts/...           keep the root filesystem folder for a look
#
# No Docker engine or registry is reachable where wagate is developed, so this builds the
# equivalent of the runtime image in a folder and runs the program there with chroot:
#   1. debootstrap a Debian 12 (bookworm) minbase, slimmed the way debian:12-slim is (docs, man
#      pages and locales excluded), with the image's apt sources;
#   2. run the runtime stage's own RUN instructions, taken verbatim from the Dockerfile (its one
#      `apt-get install` with exactly its package list, and the user/DATA_DIR set-up), with its
#      ENV; copy the binaries where the build stage puts them (/usr/local/bin);
#   3. as the image's USER: every shared library resolves (ldd), `wagate --version`, the daemon
#      started with the image's environment answers GET /health through the image's own
#      HEALTHCHECK command (wagate-healthcheck, bash /dev/tcp), and exits on SIGTERM within
#      Cloud Run's 10 s grace period.
#      Until src/ builds `wagate`, the same checks run with the simulator: `wasim --help`, and
#      GET /stats on its control port.
#   4. self-check: a runtime package removed from the folder (dpkg --force-depends) must make
#      the binary fail to start, so a missing library cannot go unnoticed;
#   5. print sizes: the folder (about the uncompressed image), the runtime packages' share, the
#      binaries.
# Needs root (debootstrap, chroot, mount) and debootstrap; the Debian mirror is the one apt uses
# (WA_DEBIAN_MIRROR overrides). Downloaded .debs are cached in BUILD_DIR/test-image-cache.
#
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${1:-build}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "test-image: build dir '${1:-build}' missing (make build first)" >&2; exit 1; }
dockerfile=$repo/deploy/Dockerfile
suite=bookworm
readonly START_TIMEOUT_S=20 STOP_GRACE_S=10

say() { printf 'test-image: %s\n' "$*"; }
die() { printf 'test-image: FAIL: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "needs root (debootstrap, chroot)"
  exec sudo -E "$0" "$@"
fi
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed (apt-get install debootstrap; scripts/deps.sh)"

# --- what to test -------------------------------------------------------------------------------
if [ -x "$build/src/wagate" ]; then
  mode=wagate
  bins=("$build/src/wagate")
else
  mode=wasim
  [ -x "$build/sim/wasim" ] || die "neither $build/src/wagate nor $build/sim/wasim is built"
  bins=("$build/sim/wasim")
  say "wagate is not built yet (no $build/src/wagate): checking the runtime image with wasim instead"
fi

# --- the Dockerfile's runtime stage --------------------------------------------------------------
# Instructions of the last stage, continuation lines joined, comments dropped; one per line.
runtime_stage() {
  awk '
    /^[[:space:]]*#/ { next }
    { line = $0; sub(/[[:space:]]+$/, "", line) }
    cont { cur = cur " " line } !cont { cur = line }
    { cont = (cur ~ /\\$/); if (cont) { sub(/\\$/, "", cur); next } }
    cur ~ /^[[:space:]]*$/ { next }
    toupper(cur) ~ /^FROM[[:space:]]/ { n = 0; delete out; stage = cur; next }
    { out[++n] = cur }
    END { print stage; for (i = 1; i <= n; i++) print out[i] }' "$dockerfile"
}
mapfile -t stage < <(runtime_stage)
[[ ${stage[0]} =~ ^FROM[[:space:]]+debian:12-slim ]] || die "runtime stage is '${stage[0]}', expected FROM debian:12-slim"

runs=() envs=() user="" hc_cmd="" apt_run=""
for ins in "${stage[@]:1}"; do
  kw=${ins%%[[:space:]]*}
  rest=${ins#"$kw"}
  rest=${rest#"${rest%%[![:space:]]*}"}
  case ${kw^^} in
  RUN) runs+=("$rest")
    [[ $rest == *"apt-get install"* ]] && { [ -z "$apt_run" ] || die "more than one apt-get install RUN"; apt_run=$rest; } ;;
  ENV) for kv in $rest; do envs+=("$kv"); done ;;
  USER) user=$rest ;;
  HEALTHCHECK) hc_cmd=$rest ;;
  ARG | COPY | VOLUME | EXPOSE | WORKDIR | ENTRYPOINT | CMD | LABEL) ;;
  *) die "runtime stage instruction '$kw' is not understood by this script" ;;
  esac
done
[ -n "$apt_run" ] || die "no apt-get install in the runtime stage"
[[ $user =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "runtime USER '$user' is not a numeric non-root uid:gid"
[[ $hc_cmd =~ \"(/usr/local/bin/wagate-healthcheck)\" ]] || die "HEALTHCHECK does not run /usr/local/bin/wagate-healthcheck"
for kv in "${envs[@]}"; do [[ $kv == *=* ]] || die "ENV '$kv': only the KEY=VALUE form is supported"; done
pkgs=$(sed -e 's/.*apt-get install//' -e 's/&&.*//' <<<"$apt_run" | tr ' ' '\n' | grep -v '^-' | grep . | tr '\n' ' ')
say "runtime packages (from deploy/Dockerfile): $pkgs"

omit=${WA_TEST_IMAGE_OMIT:-}
if [ -n "$omit" ]; then
  grep -qw -- "$omit" <<<"$pkgs" || die "WA_TEST_IMAGE_OMIT=$omit is not a runtime package"
  say "leaving out $omit on purpose: this run must fail"
  runs=("${runs[@]//" $omit "/ }")
fi

# --- the root filesystem ------------------------------------------------------------------------
mirror=${WA_DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  mirror=$(grep -hoE '^(URIs:|deb)[[:space:]]+\S+/debian/?([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '{print $2}' | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
security=${WA_DEBIAN_SECURITY_MIRROR:-${mirror%/debian*}/debian-security}

cache=$build/test-image-cache
mkdir -p "$cache/debootstrap" "$cache/apt"
: >"$cache/run.log"
root=$(mktemp -d /tmp/wagate-rootfs.XXXXXX)
case $root in /tmp/wagate-rootfs.??????) ;; *) die "unexpected temporary folder '$root'" ;; esac
chmod 0755 "$root" # as an image's /: the USER must be able to enter it
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for m in "$root/var/cache/apt/archives" "$root/proc"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m"
  done
  if [ -n "${WA_TEST_IMAGE_KEEP:-}" ]; then
    say "kept $root (WA_TEST_IMAGE_KEEP)"
    return
  fi
  # --one-file-system: never follow into anything still mounted below the folder
  rm -rf --one-file-system "$root"
}
trap cleanup EXIT

t0=$(date +%s)
say "debootstrap --variant=minbase $suite from $mirror into $root"
debootstrap --variant=minbase --cache-dir="$cache/debootstrap" "$suite" "$root" "$mirror" \
  >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }

# What debian:12-slim has and minbase lacks: its apt sources and settings (no package caches,
# compressed indexes, no translations), no apt lists, and the slim dpkg excludes (debuerreotype's
# slimify) with the files already installed under those paths removed.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
printf 'Acquire::GzipIndexes "true";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{info,linda,locale,man,groff}/* "$root"/usr/share/lintian/overrides/*
cp /etc/resolv.conf "$root/etc/resolv.conf"
base_kb=$(du -sxk --apparent-size "$root" | cut -f1)
mount -t proc proc "$root/proc"
mount --bind "$cache/apt" "$root/var/cache/apt/archives"

# --- the Dockerfile's RUN instructions, verbatim ------------------------------------------------
for r in "${runs[@]}"; do
  say "RUN ${r:0:100}..."
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive /bin/sh -c "$r" >>"$cache/run.log" 2>&1 ||
    { tail -20 "$cache/run.log" >&2; die "RUN failed (log: $cache/run.log)"; }
done
umount "$root/var/cache/apt/archives"
install -D -m 0755 -s "${bins[@]}" -t "$root/usr/local/bin/"
install -D -m 0755 deploy/healthcheck.sh "$root/usr/local/bin/wagate-healthcheck"
image_kb=$(du -sxk --apparent-size "$root" | cut -f1)
t1=$(date +%s)
say "root filesystem ready in $((t1 - t0)) s"

# --- checks, as the image's USER with the image's ENV -------------------------------------------
in_image() {
  chroot --userspec="$user" "$root" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/data "${envs[@]}" "$@"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

check_libs() {
  local b out
  for b in "${bins[@]}"; do
    b=/usr/local/bin/$(basename "$b")
    out=$(in_image ldd "$b" 2>&1) || true
    if grep -q 'not found' <<<"$out"; then
      grep 'not found' <<<"$out" >&2
      return 1
    fi
    grep -q 'libc\.so\.6 =>' <<<"$out" || { echo "ldd $b did not run: $out" >&2; return 1; }
  done
}

# wait_health PORT PATH LOG: poll the image's HEALTHCHECK command until it succeeds
wait_health() {
  local port=$1 path=$2 log=$3 pid=$4 i
  for ((i = 0; i < START_TIMEOUT_S * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
    if in_image PORT="$port" /usr/local/bin/wagate-healthcheck "$path" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  cat "$log" >&2
  return 1
}

stop_within_grace() {
  local pid=$1 i
  kill -TERM "$pid"
  for ((i = 0; i < STOP_GRACE_S * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  return 1
}

run_checks() {
  local port cport log pid
  check_libs || { echo "missing shared libraries (above)" >&2; return 1; }
  log=$(mktemp)
  if [ "$mode" = wagate ]; then
    in_image /usr/local/bin/wagate --version || { echo "wagate --version failed" >&2; return 1; }
    port=$(free_port)
    in_image PORT="$port" DATA_DIR=/data SESSION_STORAGE_TYPE=local /usr/local/bin/wagate >"$log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_health "$port" /health "$log" "$pid" || { echo "no 200 on /health within ${START_TIMEOUT_S}s" >&2; return 1; }
    say "GET /health inside the image (wagate-healthcheck): 200; from the host: $(curl -fsS "http://127.0.0.1:$port/health" | head -c 200)"
  else
    in_image /usr/local/bin/wasim --help >/dev/null || { echo "wasim --help failed" >&2; return 1; }
    port=$(free_port)
    cport=$(free_port)
    in_image /usr/local/bin/wasim --listen "127.0.0.1:$port" --control "127.0.0.1:$cport" >"$log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_health "$cport" /stats "$log" "$pid" || { echo "no 200 on /stats within ${START_TIMEOUT_S}s" >&2; return 1; }
    say "GET /stats inside the image (wagate-healthcheck): 200; from the host: $(curl -fsS "http://127.0.0.1:$cport/stats" | head -c 120)..."
  fi
  stop_within_grace "$pid" || { echo "did not exit within ${STOP_GRACE_S}s of SIGTERM" >&2; return 1; }
  say "SIGTERM: exited within ${STOP_GRACE_S}s"
  rm -f "$log"
}

if ! run_checks; then
  [ -z "$omit" ] || die "the $mode binary does not run without $omit (as expected: WA_TEST_IMAGE_OMIT)"
  die "the $mode binary does not run in the runtime image"
fi
[ -z "$omit" ] || die "the image still works without $omit: not needed, or pulled in by another package"
say "PASS: $mode runs in debian:12-slim + the Dockerfile's runtime packages, as uid:gid $user"

# --- self-check: remove one package the binary needs; the same checks must now fail ------------
victim=libuv1
grep -qw "$victim" <<<"$pkgs" || die "self-check: $victim is not a runtime package any more: pick another"
chroot "$root" dpkg --remove --force-depends "$victim" >/dev/null 2>&1 || die "self-check: could not remove $victim"
if run_checks 2>"$cache/selfcheck.log"; then
  die "self-check: the checks still pass with $victim removed"
fi
say "self-check: with $victim removed the checks fail ($(grep -m1 -o 'libuv[^ ]* => not found' "$cache/selfcheck.log" || head -1 "$cache/selfcheck.log")): OK"

# --- sizes --------------------------------------------------------------------------------------
bin_kb=$(du -ck --apparent-size "$root"/usr/local/bin/* | tail -1 | cut -f1)
say "sizes (apparent, uncompressed, as in a layer tar): root filesystem $((image_kb / 1024)) MiB =" \
  "slimmed minbase $((base_kb / 1024)) MiB + runtime packages and user $(((image_kb - base_kb - bin_kb) / 1024)) MiB +" \
  "binaries $((bin_kb / 1024)) MiB ($bin_kb KiB)"
