#!/usr/bin/env bash
# run.sh - start the service from a build directory: wagate on :8080 (PORT) with its SQLite
# files in ./data (DATA_DIR); it prints the dashboard URL and, at the first start, the API key
# it generated (see docs/configuration.md). Falls back to the simulator if wagate is not built.
set -euo pipefail
build=${1:-build}
if [ -x "$build/src/wagate" ]; then
  # wagate creates DATA_DIR itself, mode 0700 (it holds the API key and session secrets)
  export DATA_DIR="${DATA_DIR:-./data}" PORT="${PORT:-8080}"
  exec "$build/src/wagate"
fi
if [ -x "$build/sim/wasim" ]; then
  echo "wagate is not built yet; starting the simulator wasim instead"
  exec "$build/sim/wasim" --listen 127.0.0.1:7070 --control 127.0.0.1:7071
fi
echo "run: neither wagate (src/) nor wasim (sim/) exists yet in this tree."
echo "run: built so far: libwa's wire layers (lib/) and their tests; see README.md."
exit 1
