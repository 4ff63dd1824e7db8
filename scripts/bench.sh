#!/usr/bin/env bash
# bench.sh - run the benchmarks in bench/ against a build directory and print their figures.
# Benchmarks print numbers and ratios against Baileys measured in the same run; they assert
# nothing (these machines are noisy: run them more than once).
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
seconds=${BENCH_SECONDS:-0.5}

echo "== codec: binary node encode/decode, libwa vs Baileys 7 (dictionary v3) =="
node bench/codec/bench.mjs "$build/bench/codec/bench_codec" "$seconds"

# N libwa clients on one loop against wasim (wss:// and ws://): pairing 100 at once, login from
# the store, RSS/heap/CPU per idle client, wasim's RSS at N connections; Baileys 7 and 6.17 (K
# sockets in one node process, ws://) beside libwa at the same K. Several minutes at N=10,000;
# BENCH_CLIENTS_N=1000 for a quicker run. Then (issue 5) the first BENCH_CLIENTS_SESSIONS_N
# accounts get BENCH_CLIENTS_SESSIONS Signal sessions each and log in again: RSS per idle client
# with a populated store (0 skips it; building 100,000 sessions takes a few minutes).
echo "== clients: N idle clients on one loop, libwa vs Baileys (issues 4, 5) =="
node bench/clients/run.mjs --build "$build" --n "${BENCH_CLIENTS_N:-1000,10000}" \
    --baileys "${BENCH_CLIENTS_BAILEYS:-7,6}" --baileys-n "${BENCH_CLIENTS_BAILEYS_N:-100}" \
    --sessions "${BENCH_CLIENTS_SESSIONS:-100}" --sessions-n "${BENCH_CLIENTS_SESSIONS_N:-1000}"

# 1:1 messages on one core (issue 5): encrypt+send and receive+decrypt, msgs/s and CPU per
# message, libwa and Baileys 7 / 6.17 against the same wasim (pinned: client CPU 0, wasim and
# the peer CPU 1), median of BENCH_MESSAGING_ROUNDS rounds. About 10 minutes at the defaults.
echo "== messaging: 1:1 encrypt+send / receive+decrypt on one core, libwa vs Baileys (issue 5) =="
node bench/messaging/run.mjs --build "$build" --n "${BENCH_MESSAGING_N:-5000}" \
    --baileys "${BENCH_MESSAGING_BAILEYS:-7,6}" --rounds "${BENCH_MESSAGING_ROUNDS:-3}"

# wagate with 1,000 sessions against wasim (issue 6): pairing through the API, boot (restart) to
# all WORKING, idle RSS total and per session, API send rate and p50/p99 latency under wrk.
echo "== gateway: wagate with N sessions (issue 6) =="
node bench/gateway/run.mjs --build "$build" --n "${BENCH_GATEWAY_N:-1000}"
