#!/usr/bin/env bash
# UDP GSO over a real device, in two network namespaces this test creates (a veth pair,
# 10.201.0.1 <-> 10.201.0.2, reachable from nowhere else):
#  1. TX checksum offload on: relayed bursts leave as GSO sends, every datagram arrives.
#  2. The link MTU below the datagram size: the kernel refuses the GSO send (EINVAL, a segment
#     larger than the path MTU), where a plain send is IP-fragmented; ringlane must resend
#     one by one and lose nothing.
# (Turning TX checksum offload off does not make kernel 6.18 refuse GSO, so EIO is not
# reproduced here; it takes the same resend path.)
# Both io backends. Skips (77) without root or ip netns.
set -euo pipefail
ringlane=${1:?ringlane}
loadgen=${2:?relay_loadgen}
if [ "$(id -u)" -ne 0 ] || ! ip netns list >/dev/null 2>&1; then
  echo "SKIP: needs root and iproute2 netns"
  exit 77
fi
ns1=rlgso-a-$$
ns2=rlgso-b-$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$ns1" 2>/dev/null || true
  ip netns del "$ns2" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns1"
ip netns add "$ns2"
ip link add vA netns "$ns1" type veth peer name vB netns "$ns2"
ip -n "$ns1" addr add 10.201.0.1/24 dev vA
ip -n "$ns2" addr add 10.201.0.2/24 dev vB
for ns in "$ns1" "$ns2"; do ip -n "$ns" link set lo up; done
ip -n "$ns1" link set vA up
ip -n "$ns2" link set vB up

fail=0
check() { if eval "$1"; then echo "ok    $2"; else echo "FAIL  $2"; fail=1; fi; }
stat() { "$ringlane" stats --name "$1" | python3 -c "import json,sys; print(sum(w['$2'] for w in json.load(sys.stdin)['workers']))"; }

run_case() {  # io, mtu
  local io=$1 mtu=$2 name="gsodev-$$-$1-$2" port=$((34000 + RANDOM % 1000)) log
  log=$(mktemp)
  ip -n "$ns1" link set vA mtu "$mtu"
  ip -n "$ns2" link set vB mtu "$mtu"
  # The peer counts what reaches it, until it has heard nothing for 2 s.
  ip netns exec "$ns2" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("10.201.0.2", 9000)); n = 0
open(sys.argv[1], "w").write("ready")
try:
    s.settimeout(20.0); s.recv(4096); n = 1; s.settimeout(2.0)
    while True:
        s.recv(4096); n += 1
except socket.timeout:
    pass
print(n)' "$log.ready" > "$log.count" &
  local counter=$!
  # Traffic sent before the peer is bound would be counted as lost (UdpNoPorts).
  for _ in $(seq 200); do [ -s "$log.ready" ] && break; sleep 0.02; done
  ip netns exec "$ns1" "$ringlane" dataplane --media-port 0 --io "$io" --gso on --listen "127.0.0.1:$port" --relay-ip 10.201.0.1 \
    --user bench:bench --allow-peer 10.201.0.0/24 --workers 1 --user-quota 0 --unauth-rate 100000 \
    --name "$name" > "$log" 2>&1 &
  local node=$!
  pids+=("$node" "$counter")
  for _ in $(seq 100); do grep -q "ringlane up" "$log" && break; sleep 0.05; done
  local out sent got
  out=$(ip netns exec "$ns1" "$loadgen" --server "127.0.0.1:$port" --mode turn --peer 10.201.0.2:9000 \
        --flows 4 --size 1200 --rate 4000 --seconds 1 --warmup 0)
  sent=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['sent'])" "$out")
  wait "$counter" || true
  got=$(cat "$log.count")
  sleep 0.3
  local gso fallbacks errors
  gso=$(stat "$name" io_gso_sends)
  fallbacks=$(stat "$name" io_gso_fallbacks)
  errors=$(stat "$name" io_send_errors)
  echo "  [$io, MTU $mtu, 1200-byte payloads] sent $sent, peer got $got, gso sends $gso, fallbacks $fallbacks, send errors $errors"
  check "[ $sent -gt 0 ] && [ $got -eq $sent ]" "$io MTU $mtu: every relayed datagram reached the peer"
  check "[ $errors -eq 0 ]" "$io MTU $mtu: no send errors"
  if [ "$mtu" -ge 1500 ]; then
    check "[ $gso -gt 0 ] && [ $fallbacks -eq 0 ]" "$io MTU $mtu: bursts left as GSO sends"
  else
    check "[ $fallbacks -ge 1 ]" "$io MTU $mtu: refused GSO sends were resent one by one"
  fi
  kill "$node" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  rm -f "$log" "$log.count" "$log.ready"
}

for io in uring mmsg; do
  run_case "$io" 1500
  run_case "$io" 1000
done
exit $fail
