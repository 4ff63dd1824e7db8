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
# BENCH_CLIENTS_N=1000 for a quicker run.
echo "== clients: N idle clients on one loop, libwa vs Baileys (issue 4) =="
node bench/clients/run.mjs --build "$build" --n "${BENCH_CLIENTS_N:-1000,10000}" \
    --baileys "${BENCH_CLIENTS_BAILEYS:-7,6}" --baileys-n "${BENCH_CLIENTS_BAILEYS_N:-100}"
