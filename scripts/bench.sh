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
