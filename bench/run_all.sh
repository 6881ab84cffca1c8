#!/usr/bin/env bash
# Every benchmark, each printing its table and writing JSON under bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 bench/relay_bench.py --build build "$@"
