#!/usr/bin/env bash
# Every benchmark, each printing its table and writing JSON under bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
build/bench/srtp_bench --out bench/out/srtp.json
build/bench/ring_bench --out bench/out/ring.json
build/bench/dtls_bench --out bench/out/dtls.json
python3 bench/relay_bench.py --build build "$@"
python3 bench/ws_bench.py --build build --runs 3 --out bench/out/ws.json
python3 bench/sfu_bench.py --build build --out bench/out/sfu.json
# The shaped-browser timings against the adaptive-quality targets (77: no Chromium here).
python3 bench/adaptive_bench.py --build build --runs 3 --out bench/out/adaptive.json || [ $? -eq 77 ]
