#!/usr/bin/env bash
# A bounded fuzzing session for every target: tests/fuzz/run_fuzz.sh BUILD_DIR SECONDS_EACH
# New inputs go to a scratch corpus; a crash is written to tests/fuzz/crashes/ to be committed
# as a reproducer once fixed.
set -euo pipefail
build=${1:?build dir}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/crashes"
for fuzzer in "$build"/tests/*_fuzz; do
  name=$(basename "$fuzzer" _fuzz)
  scratch=$(mktemp -d)
  echo "== $name for ${seconds}s"
  "$fuzzer" -max_total_time="$seconds" -artifact_prefix="$here/crashes/$name-" \
    "$scratch" "$here/${name}_corpus"
  rm -rf "$scratch"
done
