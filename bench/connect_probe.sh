#!/bin/bash
# Connect time with N participants joining one room at once (sfu_connect_p95_ms's question, on
# its own): `ringlane run` with one worker pinned to CPU 0, tools/sfu_load with N participants
# (one publisher) pinned to CPU 1; prints the tool's ICE and ICE+DTLS p50/p95, the join p50/p95,
# and the data plane's CPU (10 ms ticks) from the start until every stream flows.
#   bench/connect_probe.sh [N=101] [BUILD=build]
set -euo pipefail
N=${1:-101}
B=${2:-build}
NAME=connprobe$$
TMP=$(mktemp -d)
HTTP=$((20000 + RANDOM % 20000))
MEDIA=$((40000 + RANDOM % 20000))
export RINGLANE_STATE_DIR=$TMP/state
taskset -c 0 "$B/controlplane/ringlane" run --name $NAME --io uring --workers 1 --cpus 0 \
  --listen 127.0.0.1:$((MEDIA + 5)) --media-ip 127.0.0.1 --media-port $MEDIA \
  --http 127.0.0.1:$HTTP --log-level warn >"$TMP/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$HTTP/readyz >/dev/null && break; sleep 0.1; done
DP=$("$B/controlplane/ringlane" stats --name $NAME | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
ticks() { awk '{print $14 + $15}' "/proc/$DP/stat"; }
T0=$(ticks)
taskset -c 1 "$B/tools/sfu_load" --token-url http://127.0.0.1:$HTTP/api/dev-token \
  --participants "$N" --publishers 1 --seconds 0.5 --setup-timeout 30 --room r1 \
  --json "$TMP/load.json" 2>&1 | while read -r line; do
  case "$line" in *"window start"*) echo "data plane CPU until every stream flows: $(($(ticks) - T0)) ticks of 10 ms" ;; esac
done
python3 - "$TMP/load.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
c = j["connect_ms"]
print(f"ICE p50/p95 {c['ice']['p50']:.0f}/{c['ice']['p95']:.0f} ms, ICE+DTLS p50/p95 "
      f"{c['ice_dtls']['p50']:.0f}/{c['ice_dtls']['p95']:.0f} ms, join p50/p95 "
      f"{j['join_ms']['p50']:.0f}/{j['join_ms']['p95']:.0f} ms")
PY
