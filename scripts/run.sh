#!/usr/bin/env bash
# run.sh - start the service from a build directory.
# The wagate daemon (src/) is not built yet; until it exists this says so and exits non-zero
# rather than pretending. See docs/ for the plan.
set -euo pipefail
build=${1:-build}
if [ -x "$build/src/wagate" ]; then
  mkdir -p data
  exec "$build/src/wagate"
fi
if [ -x "$build/sim/wasim" ]; then
  echo "wagate is not built yet; starting the simulator wasim instead"
  exec "$build/sim/wasim" --listen 127.0.0.1:7070 --control 127.0.0.1:7071
fi
echo "run: neither wagate (src/) nor wasim (sim/) exists yet in this tree."
echo "run: built so far: libwa's wire layers (lib/) and their tests; see README.md."
exit 1
