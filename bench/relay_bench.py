#!/usr/bin/env python3
"""Relay benchmark: ringlane (uring, mmsg), coturn (one relay thread, default threads) and a
minimal recvmmsg->sendmmsg forwarder (the kernel floor), measured in the same run by the same
load generator. The server under test is pinned to CPU 0, the load generator to CPU 1.

For each target and phase (a fixed offered rate, then saturation) it records relayed
packets/s, server CPU-seconds (/proc/PID/stat), whole-machine busy CPU-seconds (/proc/stat:
loopback softirq work lands outside the process), and one-way latency p50/p99 through the
relay. Prints a table and writes JSON with a `ratios` object.

  bench/relay_bench.py --build build [--reps 3] [--seconds 3] [--rate 50000] [--flows 64]
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_udp_stun(port, timeout=10.0):
    """Waits until a STUN Binding on the port gets any answer (or, for the floor, the port is bound)."""
    req = bytes.fromhex("000100002112a442") + os.urandom(12)
    deadline = time.time() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.time() < deadline:
            s.sendto(req, ("127.0.0.1", port))
            try:
                s.recvfrom(2048)
                return True
            except OSError:
                pass
    return False


def port_bound(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return False
        except OSError:
            return True


class Server:
    def __init__(self, name, cmd, port, stun=True):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        # taskset keeps every thread of the server on CPU 0.
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        ok = wait_udp_stun(port) if stun else self._wait_bound(port)
        if not ok:
            self.stop()
            raise RuntimeError(f"{name} did not start: {open(self.log.name).read()[-2000:]}")

    def _wait_bound(self, port):
        for _ in range(100):
            if port_bound(port):
                return True
            time.sleep(0.05)
        return False

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def targets(build):
    """(name, load generator mode, answers STUN, command for (port, peer_port, relay_lo))."""
    ringlane = os.path.join(build, "controlplane", "ringlane")

    def node(*extra):
        return lambda port, peer_port, relay_lo: [
            ringlane, "dataplane", "--media-port", "0", "--listen", f"127.0.0.1:{port}", "--user", "bench:bench", "--realm", "bench",
            "--allow-peer", "127.0.0.0/8", "--workers", "1", "--cpus", "0", "--user-quota", "0",
            "--unauth-rate", "1000000", "--relay-ports", f"{relay_lo}-{relay_lo + 999}",
            "--log-level", "warn", "--name", f"bench-{os.getpid()}"] + list(extra)

    def coturn(*extra):
        return lambda port, peer_port, relay_lo: [
            "turnserver", "-n", "--listening-ip", "127.0.0.1", "-p", str(port), "--relay-ip", "127.0.0.1",
            "--min-port", str(relay_lo), "--max-port", str(relay_lo + 999), "-a", "-u", "bench:bench",
            "-r", "bench", "--allow-loopback-peers", "--no-tcp", "--no-tls", "--no-dtls", "--no-tcp-relay",
            "--no-cli", "--no-stdout-log", "--log-file", "/dev/null", "--simple-log",
            "--pidfile", tempfile.mktemp(prefix="turnserver-", suffix=".pid")] + list(extra)

    floor = os.path.join(build, "bench", "kernel_floor")
    # GSO is on by default: the baselines without it say so explicitly.
    return [
        ("ringlane_uring", "turn", True, node("--io", "uring", "--gso", "off")),
        ("ringlane_mmsg", "turn", True, node("--io", "mmsg", "--gso", "off")),
        ("ringlane_uring_gso", "turn", True, node("--io", "uring", "--gso", "on")),
        ("ringlane_mmsg_gso", "turn", True, node("--io", "mmsg", "--gso", "on")),
        ("ringlane_uring_zc", "turn", True, node("--io", "uring", "--gso", "off", "--zerocopy", "on")),
        ("ringlane_uring_gso_zc", "turn", True, node("--io", "uring", "--gso", "on", "--zerocopy", "on")),
        ("coturn_1thread", "turn", True, coturn("--relay-threads", "1")),
        ("coturn_default", "turn", True, coturn()),
        ("kernel_floor", "raw", False, lambda port, peer_port, relay_lo: [floor, str(port), str(peer_port)]),
    ]


def run_loadgen(build, port, peer_port, mode, pid, rate, a):
    cmd = [os.path.join(build, "bench", "relay_loadgen"), "--server", f"127.0.0.1:{port}", "--mode", mode,
           "--user", "bench", "--pass", "bench", "--peer-port", str(peer_port), "--flows", str(a.flows),
           "--size", str(a.size), "--rate", str(rate), "--seconds", str(a.seconds), "--server-pid", str(pid),
           "--cpu", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def derive(r):
    rec = max(r["received"], 1)
    r["pkts_per_server_cpu_s"] = rec / r["server_cpu_s"] if r["server_cpu_s"] > 0 else 0
    r["pkts_per_machine_cpu_s"] = rec / r["machine_busy_s"] if r["machine_busy_s"] > 0 else 0
    r["server_cpu_s_per_mpkt"] = r["server_cpu_s"] / (rec / 1e6)
    r["machine_cpu_s_per_mpkt"] = r["machine_busy_s"] / (rec / 1e6)
    r["loss"] = 1 - r["received"] / r["sent"] if r["sent"] else 0
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rate", type=int, default=50000)
    ap.add_argument("--flows", type=int, default=64)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--out", default="bench/out/relay.json")
    ap.add_argument("--only", default="")
    a = ap.parse_args()

    phases = [("fixed", a.rate), ("saturation", 0)]
    results = {}
    for rep in range(a.reps):
        for name, mode, stun, make_cmd in targets(a.build):
            if a.only and name not in a.only.split(","):
                continue
            port, peer_port = free_port(), free_port()
            relay_lo = 30000 + (rep * 1000) % 10000
            srv = Server(name, make_cmd(port, peer_port, relay_lo), port, stun)
            try:
                for phase, rate in phases:
                    r = derive(run_loadgen(a.build, port, peer_port, mode, srv.proc.pid, rate, a))
                    results.setdefault(name, {}).setdefault(phase, []).append(r)
                    print(f"rep {rep + 1} {name:22s} {phase:10s} {r['pps']:>9.0f} pps "
                          f"{r['pkts_per_server_cpu_s']:>10.0f} pkt/server-cpu-s "
                          f"p50 {r['lat_p50_us']:.0f}us p99 {r['lat_p99_us']:.0f}us loss {r['loss']:.4f}",
                          flush=True)
            finally:
                srv.stop()
            time.sleep(0.3)

    # Median over repetitions, per metric.
    summary = {}
    for name, by_phase in results.items():
        for phase, runs in by_phase.items():
            keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float))]
            summary.setdefault(name, {})[phase] = {k: statistics.median(r[k] for r in runs) for k in keys}

    def ratio(x, y, phase, metric):
        try:
            return summary[x][phase][metric] / summary[y][phase][metric]
        except (KeyError, ZeroDivisionError):
            return None

    ratios = {}
    for phase in ["saturation", "fixed"]:
        suffix = "" if phase == "saturation" else "_fixed_rate"
        for metric, tag in [("pkts_per_server_cpu_s", ""), ("pkts_per_machine_cpu_s", "_machine")]:
            ratios[f"uring_vs_coturn{tag}{suffix}"] = ratio("ringlane_uring", "coturn_1thread", phase, metric)
            ratios[f"uring_vs_coturn_default{tag}{suffix}"] = ratio("ringlane_uring", "coturn_default", phase, metric)
            ratios[f"uring_vs_mmsg{tag}{suffix}"] = ratio("ringlane_uring", "ringlane_mmsg", phase, metric)
            ratios[f"uring_vs_floor{tag}{suffix}"] = ratio("ringlane_uring", "kernel_floor", phase, metric)
        ratios[f"uring_vs_coturn_pps{suffix}"] = ratio("ringlane_uring", "coturn_1thread", phase, "pps")
        ratios[f"gso_vs_no_gso_uring{suffix}"] = ratio("ringlane_uring_gso", "ringlane_uring", phase, "pkts_per_server_cpu_s")
        ratios[f"gso_vs_no_gso_mmsg{suffix}"] = ratio("ringlane_mmsg_gso", "ringlane_mmsg", phase, "pkts_per_server_cpu_s")
        ratios[f"uring_gso_vs_mmsg_gso{suffix}"] = ratio("ringlane_uring_gso", "ringlane_mmsg_gso", phase,
                                                       "pkts_per_server_cpu_s")
        ratios[f"zerocopy_vs_copy_uring{suffix}"] = ratio("ringlane_uring_zc", "ringlane_uring", phase,
                                                          "pkts_per_server_cpu_s")

    print()
    hdr = f"{'target':22s}{'phase':12s}{'pps':>10s}{'srv cpu-s/Mpkt':>16s}{'mach cpu-s/Mpkt':>17s}" \
          f"{'pkt/srv-cpu-s':>15s}{'p50 us':>9s}{'p99 us':>9s}{'loss':>8s}"
    print(hdr)  # medians over the repetitions
    print("-" * len(hdr))
    for name, by_phase in summary.items():
        for phase, m in by_phase.items():
            print(f"{name:22s}{phase:12s}{m['pps']:>10.0f}{m['server_cpu_s_per_mpkt']:>16.3f}"
                  f"{m['machine_cpu_s_per_mpkt']:>17.3f}{m['pkts_per_server_cpu_s']:>15.0f}"
                  f"{m['lat_p50_us']:>9.1f}{m['lat_p99_us']:>9.1f}{m['loss']:>8.4f}")
    print()
    for k, v in ratios.items():
        print(f"{k:40s} {v:.3f}" if v is not None else f"{k:40s} n/a")

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"config": vars(a), "summary": summary, "runs": results, "ratios": ratios,
                   "kernel": os.uname().release, "cpus": os.cpu_count()}, f, indent=1)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
