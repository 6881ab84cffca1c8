#!/usr/bin/env bash
# Runs tuning/ringlane-tune for real against a fake /proc and /sys tree.
set -euo pipefail
tune=$(cd "$(dirname "$0")/../../tuning" && pwd)/ringlane-tune
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
fail=0
expect() { if eval "$1"; then echo "ok    $2"; else echo "FAIL  $2"; fail=1; fi; }

mkdir -p "$root"/proc/sys/net/core "$root"/proc/sys/net/ipv4 "$root"/proc/sys/vm \
  "$root"/sys/class/net/eth9/device/msi_irqs "$root"/sys/class/net/eth9/queues/{rx-0,rx-1,tx-0} \
  "$root"/sys/devices/system/node/node1 "$root"/proc/irq/{40,41} \
  "$root"/sys/devices/system/cpu/cpu{0,1}/cpufreq
printf 'MemTotal:       16000000 kB\n' > "$root/proc/meminfo"
printf 'processor\t: 0\nprocessor\t: 1\n' > "$root/proc/cpuinfo"
for f in rmem_max wmem_max rmem_default wmem_default; do echo 212992 > "$root/proc/sys/net/core/$f"; done
echo 1000 > "$root/proc/sys/net/core/netdev_max_backlog"
echo 300 > "$root/proc/sys/net/core/netdev_budget"
echo 0 > "$root/proc/sys/net/core/busy_poll"
echo 0 > "$root/proc/sys/net/core/busy_read"
echo 4096 > "$root/proc/sys/net/ipv4/udp_rmem_min"
echo 4096 > "$root/proc/sys/net/ipv4/udp_wmem_min"
printf '190000\t250000\t380000\n' > "$root/proc/sys/net/ipv4/udp_mem"
printf '32768\t60999\n' > "$root/proc/sys/net/ipv4/ip_local_port_range"
echo 0 > "$root/proc/sys/vm/nr_hugepages"
echo 1 > "$root/sys/class/net/eth9/device/numa_node"
echo "2-3,8" > "$root/sys/devices/system/node/node1/cpulist"
touch "$root"/sys/class/net/eth9/device/msi_irqs/{40,41}
echo "0-1" > "$root/proc/irq/40/smp_affinity_list"
echo "0-1" > "$root/proc/irq/41/smp_affinity_list"
for q in rx-0 rx-1; do echo 0 > "$root/sys/class/net/eth9/queues/$q/rps_cpus"; done
echo 0 > "$root/sys/class/net/eth9/queues/tx-0/xps_cpus"
for c in 0 1; do echo powersave > "$root/sys/devices/system/cpu/cpu$c/cpufreq/scaling_governor"; done
before=$(cd "$root" && find . -type f -exec md5sum {} + | sort)

set +e
out=$("$tune" check --root "$root" --nic eth9); rc=$?
set -e
expect '[ $rc -eq 1 ]' "check exits 1 on an untuned host"
expect '[ "$(cd "$root" && find . -type f -exec md5sum {} + | sort)" = "$before" ]' "check changes nothing"
expect 'grep -q "OFF  net.core.rmem_max *212992 (recommended 26214400)" <<< "$out"' "check reports rmem_max"
expect 'grep -q "irq 40 smp_affinity_list" <<< "$out"' "check covers the NIC IRQs"

out=$("$tune" apply --root "$root" --nic eth9 --workers 2)
echo "$out" | sed 's/^/      /'
expect '[ "$(cat "$root/proc/sys/net/core/rmem_max")" = 26214400 ]' "apply sets rmem_max"
expect '[ "$(cat "$root/proc/sys/net/ipv4/udp_mem")" = "250000 500000 1000000" ]' "apply sizes udp_mem from MemTotal"
expect '[ "$(cat "$root/proc/sys/net/ipv4/ip_local_port_range")" = "10000 49151" ]' "ephemeral ports kept below the relay range"
expect '[ "$(cat "$root/proc/irq/41/smp_affinity_list")" = "2-3,8" ]' "IRQs moved to the NIC's NUMA node CPUs"
expect '[ "$(cat "$root/sys/class/net/eth9/queues/rx-1/rps_cpus")" = "10c" ]' "RPS mask for CPUs 2,3,8 is 10c"
expect '[ "$(cat "$root/sys/class/net/eth9/queues/tx-0/xps_cpus")" = "10c" ]' "XPS mask set"
expect '[ "$(cat "$root/sys/devices/system/cpu/cpu1/cpufreq/scaling_governor")" = performance ]' "governor set"
expect '[ "$(cat "$root/proc/sys/vm/nr_hugepages")" = 16 ]' "hugepages for two workers"
expect 'grep -q "^set  net.core.busy_poll *0 -> 50" <<< "$out"' "apply prints each change"

"$tune" check --root "$root" --nic eth9 > /dev/null
expect 'true' "check exits 0 after apply"
set +e
"$tune" check --root "$root" --nic nosuch > /dev/null; rc=$?
set -e
expect '[ $rc -ne 0 ]' "an unknown NIC is an error"
exit $fail
