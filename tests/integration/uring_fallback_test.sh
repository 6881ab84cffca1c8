#!/usr/bin/env bash
# With io_uring switched off by the kernel (kernel.io_uring_disabled=2), `ringlane run --io
# uring` must fall back to mmsg with one clear log line and still serve STUN/TURN.
# Skips (77) when the knob is absent or not writable; restores it on exit.
set -euo pipefail
ringlane=${1:?path to ringlane}
knob=/proc/sys/kernel/io_uring_disabled
if [ ! -w "$knob" ]; then
  echo "SKIP: $knob missing or not writable (needs root and Linux >= 6.6)"
  exit 77
fi
old=$(cat "$knob")
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
pid=""
cleanup() { echo "$old" > "$knob"; [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -f "$log"; }
trap cleanup EXIT
echo 2 > "$knob"
"$ringlane" dataplane --media-port 0 --io uring --listen "127.0.0.1:$port" --user a:b --workers 1 --name "fallback-$$" >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "ringlane up" "$log" && break; sleep 0.05; done
echo "$old" > "$knob"   # the node is up; give io_uring back to everyone else at once
fail=0
if grep -q "io_uring unavailable (io_uring_setup: Operation not permitted (kernel.io_uring_disabled or a seccomp filter)); falling back to mmsg" "$log"; then
  echo "ok    one clear fallback line"
else
  echo "FAIL  no fallback line:"; cat "$log"; fail=1
fi
if [ "$(grep -c "falling back to mmsg" "$log")" = 1 ]; then echo "ok    logged once"; else echo "FAIL  logged more than once"; fail=1; fi
grep -q "io mmsg" "$log" && echo "ok    worker runs mmsg" || { echo "FAIL  worker not on mmsg"; fail=1; }
if turnutils_stunclient -p "$port" 127.0.0.1 2>&1 | grep -q "UDP reflexive addr: 127.0.0.1"; then
  echo "ok    STUN Binding answered on the fallback backend"
else
  echo "FAIL  no Binding answer"; fail=1
fi
exit $fail
