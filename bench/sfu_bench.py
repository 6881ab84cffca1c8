#!/usr/bin/env python3
"""SFU benchmark: `ringlane run` (embedded defaults, one worker pinned to CPU 0) forwards the media
of `tools/sfu_load` participants (pinned to CPU 1): fan-out 1 -> N (one publisher, N subscribers)
and meetings M x M (everyone publishes and receives everyone else), each with `--io uring` and
`--io mmsg` in the same run, plus srtp_bench's per-core ceiling for the same subscriber count.

Per run, over the load tool's measured window (it prints "window start"/"window stop" once every
stream flows): egress packets from `ringlane stats` (sfu_rtp_forwarded, io_datagrams_out), the
data plane's CPU (utime+stime of `ringlane run`'s child from /proc/PID/stat), so egress packets
per server-CPU-second and CPU per subscriber stream; the data plane's RSS growth per participant;
ICE+DTLS connect times (the data plane's sfu_connect_ms histogram and the tool's own); the tool's
latency p50/p99, loss and CPU. Prints a table and writes JSON with a `ratios` object.

  bench/sfu_bench.py --build build [--seconds 5] [--fanout 1,10,50,200] [--meeting 4,10]
                     [--io uring,mmsg] [--video-kbps 1000] [--out bench/out/sfu.json]
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONNECT_BUCKETS = ["25", "50", "100", "250", "500", "1000", "5000", "inf"]


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_pair():
    """A UDP port p with p+5 free too (the media port and the TURN listener beside it)."""
    for _ in range(100):
        base = free_port()
        if base > 65000:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", base + 5))
            return base
        except OSError:
            continue
    raise RuntimeError("no free UDP ports")


def proc_cpu_s(pid):
    """utime + stime of every thread of `pid`, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_run_s(pid):
    """Time on CPU of every thread of `pid` from /proc/PID/task/*/schedstat (ns resolution; the
    cross-check of proc_cpu_s, whose clock ticks are 10 ms)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def proc_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine_busy_s():
    """Busy CPU-seconds of the whole machine (idle, iowait and steal excluded)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4] - v[7]) / CLK_TCK


class Node:
    """`ringlane run` with embedded defaults on loopback: one worker, pinned, own state dir."""

    def __init__(self, build, io, tag):
        self.ringlane = os.path.join(build, "controlplane", "ringlane")
        self.name = f"sfubench-{os.getpid()}-{tag}"
        self.http = free_port(socket.SOCK_STREAM)
        self.media = free_udp_pair()
        self.tmp = tempfile.mkdtemp(prefix="sfu-bench-")
        self.log = os.path.join(self.tmp, "node.log")
        env = dict(os.environ, RINGLANE_STATE_DIR=os.path.join(self.tmp, "state"))
        # taskset keeps the control plane on CPU 0 too; the worker is pinned there by --cpus.
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", self.ringlane, "run", "--name", self.name, "--io", io, "--workers", "1",
             "--cpus", "0", "--listen", f"127.0.0.1:{self.media + 5}", "--media-ip", "127.0.0.1",
             "--media-port", str(self.media), "--http", f"127.0.0.1:{self.http}", "--log-level", "warn"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"ringlane run did not become ready: {open(self.log).read()[-2000:]}")
        self.dataplane_pid = self.stats()["pid"]

    def stats(self):
        out = subprocess.run([self.ringlane, "stats", "--name", self.name], capture_output=True, text=True,
                             timeout=10)
        return json.loads(out.stdout)

    def worker(self):
        return self.stats()["workers"][0]

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def snapshot(node):
    return {"t": time.monotonic(), "cpu_s": proc_cpu_s(node.dataplane_pid), "run_s": proc_run_s(node.dataplane_pid),
            "control_cpu_s": proc_cpu_s(node.proc.pid), "machine_s": machine_busy_s(),
            "rss_kib": proc_rss_kib(node.dataplane_pid), "w": node.worker()}


def connect_p95_bucket(before, after):
    """The upper bound (ms) of the bucket holding the 95th percentile of sessions that connected
    between two stats samples (the data plane's sfu_connect_ms_le_* histogram)."""
    counts = [after[f"sfu_connect_ms_le_{b}"] - before.get(f"sfu_connect_ms_le_{b}", 0) for b in CONNECT_BUCKETS]
    total = sum(counts)
    if total == 0:
        return None
    seen = 0
    for b, n in zip(CONNECT_BUCKETS, counts):
        seen += n
        if seen >= 0.95 * total:
            return float(b) if b != "inf" else float("inf")
    return None


def run_one(a, io, kind, n):
    participants, publishers = (n + 1, 1) if kind == "fanout" else (n, n)
    node = Node(a.build, io, f"{kind}{n}-{io}")
    try:
        idle = snapshot(node)
        out_json = os.path.join(node.tmp, "load.json")
        cmd = ["taskset", "-c", "1", os.path.join(a.build, "tools", "sfu_load"),
               "--token-url", f"http://127.0.0.1:{node.http}/api/dev-token", "--participants", str(participants),
               "--publishers", str(publishers), "--seconds", str(a.seconds), "--video-kbps", str(a.video_kbps),
               "--setup-timeout", str(a.setup_timeout), "--room", f"bench-{kind}{n}", "--json", out_json]
        load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        start = stop = None
        lines = []
        deadline = time.time() + a.seconds + a.setup_timeout + 60
        for line in load.stdout:
            lines.append(line.rstrip())
            if line.startswith("sfu_load: window start"):
                start = snapshot(node)
            elif line.startswith("sfu_load: window stop"):
                stop = snapshot(node)
            if time.time() > deadline:
                load.kill()
                break
        load.wait(timeout=30)
        if start is None or stop is None or not os.path.exists(out_json):
            raise RuntimeError(f"sfu_load did not finish its window: {lines[-10:]}")
        tool = json.load(open(out_json))
        after = node.worker()
    finally:
        node.stop()
    w0, w1 = start["w"], stop["w"]
    window = stop["t"] - start["t"]
    cpu = stop["cpu_s"] - start["cpu_s"]
    egress = w1["sfu_rtp_forwarded"] - w0["sfu_rtp_forwarded"]
    datagrams = w1["io_datagrams_out"] - w0["io_datagrams_out"]
    ingress = w1["sfu_rtp_in"] - w0["sfu_rtp_in"]
    streams = w1["sfu_subscriptions"]
    r = {
        "io": io, "kind": kind, "n": n, "participants": participants, "publishers": publishers,
        "window_s": window, "subscriber_streams": streams,
        "setup_complete": tool["setup_complete"], "setup_s": tool["setup_s"],
        "rtp_in": ingress, "rtp_forwarded": egress, "datagrams_out": datagrams,
        "egress_pps": egress / window if window > 0 else 0,
        "server_cpu_s": cpu, "server_cpu_fraction": cpu / window if window > 0 else 0,
        "server_run_s_schedstat": stop["run_s"] - start["run_s"],
        "control_cpu_s": stop["control_cpu_s"] - start["control_cpu_s"],
        "machine_busy_s": stop["machine_s"] - start["machine_s"],
        "pkts_per_server_cpu_s": egress / cpu if cpu > 0 else 0,
        "datagrams_per_server_cpu_s": datagrams / cpu if cpu > 0 else 0,
        # CPU per subscriber stream (one track to one subscriber): ms of server CPU per second.
        "cpu_ms_per_s_per_stream": 1000 * cpu / window / streams if window > 0 and streams else 0,
        "rss_idle_kib": idle["rss_kib"], "rss_kib": stop["rss_kib"],
        "rss_bytes_per_participant": (stop["rss_kib"] - idle["rss_kib"]) * 1024 / participants,
        "connect_p95_ms_dataplane": connect_p95_bucket(idle["w"], after),
        "connect_p95_ms_tool": tool["connect_ms"]["ice_dtls"]["p95"],
        "connect_p50_ms_tool": tool["connect_ms"]["ice_dtls"]["p50"],
        "latency_p50_us": tool["latency_us"]["all"]["p50"], "latency_p99_us": tool["latency_us"]["all"]["p99"],
        "latency_max_us": tool["latency_us"]["all"]["max"],
        "loss": tool["loss"]["all"], "integrity_failures": tool["integrity_failures"],
        "out_of_order": tool["out_of_order"], "streams": f"{tool['streams_flowing']}/{tool['streams_expected']}",
        "tool_cpu_fraction": tool["tool_cpu"]["window_fraction"],
        "drops": {k: w1[k] - w0.get(k, 0) for k in w1 if k.startswith("sfu_drop_") and w1[k] != w0.get(k, 0)},
        "gso_sends": w1["io_gso_sends"] - w0["io_gso_sends"],
        "io_send_errors": w1["io_send_errors"] - w0["io_send_errors"],
        "io_tx_exhausted": w1["io_tx_exhausted"] - w0["io_tx_exhausted"],
        "loop_turns": w1.get("loop_turns", 0) - w0.get("loop_turns", 0),
        "send_calls": w1["io_send_calls"] - w0["io_send_calls"],
    }
    return r


def srtp_ceiling(a, subscribers):
    """srtp_bench's SFU ceiling model at `subscribers` (the packets out per second one core can
    produce when each packet in is unprotected once and, per subscriber, rewritten, protected and
    sent): S / (unprotect + S x (rewrite + protect + sendmsg)), GCM at 1,200 bytes."""
    out = os.path.join(tempfile.mkdtemp(prefix="sfu-bench-srtp-"), "srtp.json")
    subprocess.run(["taskset", "-c", "0", os.path.join(a.build, "bench", "srtp_bench"), "--out", out],
                   check=True, capture_output=True, timeout=300)
    s = json.load(open(out))
    g = next(r for r in s["rows"] if r["profile"] == "AEAD_AES_128_GCM" and r["bytes"] == 1200)
    per_in = g["unprotect_ns"] + subscribers * (s["rtp_rewrite_ns"] + g["protect_ns"] + s["udp_sendmsg_ns"])
    return {"subscribers": subscribers, "ceiling_pps": subscribers * 1e9 / per_in,
            "srtp_bench_sfu_ceiling_pps_per_core": s["sfu_ceiling_pps_per_core"],
            "udp_sendmsg_ns": s["udp_sendmsg_ns"], "gcm_1200_protect_ns": g["protect_ns"],
            "gcm_1200_unprotect_ns": g["unprotect_ns"], "rtp_rewrite_ns": s["rtp_rewrite_ns"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--setup-timeout", type=float, default=30.0)
    ap.add_argument("--fanout", default="1,10,50,200")
    ap.add_argument("--meeting", default="4,10")
    ap.add_argument("--io", default="uring,mmsg")
    ap.add_argument("--video-kbps", type=int, default=1000)
    ap.add_argument("--reference", type=int, default=0,
                    help="fan-out whose throughput the ratios quote [the largest run]")
    ap.add_argument("--connect-reference", type=int, default=50,
                    help="fan-out whose connect p95 sfu_connect_p95_ms quotes (N+1 joining at once)")
    ap.add_argument("--out", default="bench/out/sfu.json")
    a = ap.parse_args()

    configs = [("fanout", int(x)) for x in a.fanout.split(",") if x] + \
              [("meeting", int(x)) for x in a.meeting.split(",") if x]
    fanouts = sorted(n for k, n in configs if k == "fanout")
    if not a.reference:
        a.reference = fanouts[-1] if fanouts else 0
    ios = [x for x in a.io.split(",") if x]
    runs = []
    for kind, n in configs:
        for io in ios:  # interleaved: both backends see the same machine moments
            r = run_one(a, io, kind, n)
            runs.append(r)
            print(f"{kind:7s} {n:>4d} {io:5s} egress {r['egress_pps']:>8.0f} pps  "
                  f"{r['pkts_per_server_cpu_s']:>9.0f} pkt/server-cpu-s  cpu {100 * r['server_cpu_fraction']:5.1f}%  "
                  f"p50 {r['latency_p50_us']:.0f}us p99 {r['latency_p99_us']:.0f}us loss {r['loss']:.4f}  "
                  f"streams {r['streams']}", flush=True)
            time.sleep(0.3)
    ceiling = srtp_ceiling(a, a.reference)

    def find(io, kind, n):
        return next((r for r in runs if r["io"] == io and r["kind"] == kind and r["n"] == n), None)

    def div(x, y):
        return x / y if x is not None and y else None

    ref_u, ref_m = find("uring", "fanout", a.reference), find("mmsg", "fanout", a.reference)
    conn = find("uring", "fanout", a.connect_reference) or ref_u
    small, large = (find("uring", "fanout", fanouts[0]), find("uring", "fanout", fanouts[-1])) if fanouts else (None, None)
    marginal = None
    if small and large and large["participants"] > small["participants"]:
        marginal = (large["rss_kib"] - small["rss_kib"]) * 1024 / (large["participants"] - small["participants"])
    ratios = {
        "sfu_uring_vs_mmsg": div(ref_u and ref_u["pkts_per_server_cpu_s"], ref_m and ref_m["pkts_per_server_cpu_s"]),
        "sfu_vs_ceiling": div(ref_u and ref_u["pkts_per_server_cpu_s"], ceiling["ceiling_pps"]),
        # Marginal: the RSS growth from the smallest to the largest fan-out, per added participant
        # (the fixed costs — buffer pool pages touched, the 5 MB retransmission store — cancel out).
        "sfu_bytes_per_participant": marginal,
        "sfu_connect_p95_ms": conn and conn["connect_p95_ms_tool"],
    }
    per_config = {}
    for kind, n in configs:
        u, m = find("uring", kind, n), find("mmsg", kind, n)
        per_config[f"{kind}_{n}_uring_vs_mmsg"] = div(u and u["pkts_per_server_cpu_s"], m and m["pkts_per_server_cpu_s"])

    print()
    hdr = (f"{'config':12s}{'io':6s}{'streams':>8s}{'egress pps':>11s}{'srv cpu':>8s}{'pkt/srv-cpu-s':>14s}"
           f"{'ms/s/stream':>12s}{'B/particip':>11s}{'conn p95':>9s}{'dp p95':>7s}{'p50 us':>8s}{'p99 us':>8s}"
           f"{'loss':>8s}{'tool cpu':>9s}")
    print(hdr)
    print("-" * len(hdr))
    for r in runs:
        dp = r["connect_p95_ms_dataplane"]
        print(f"{r['kind'] + ' ' + str(r['n']):12s}{r['io']:6s}{r['subscriber_streams']:>8d}{r['egress_pps']:>11.0f}"
              f"{100 * r['server_cpu_fraction']:>7.1f}%{r['pkts_per_server_cpu_s']:>14.0f}"
              f"{r['cpu_ms_per_s_per_stream']:>12.3f}{r['rss_bytes_per_participant']:>11.0f}"
              f"{r['connect_p95_ms_tool']:>9.1f}{'<=' + str(int(dp)) if dp not in (None, float('inf')) else str(dp):>7s}"
              f"{r['latency_p50_us']:>8.0f}{r['latency_p99_us']:>8.0f}{r['loss']:>8.4f}"
              f"{100 * r['tool_cpu_fraction']:>8.1f}%")
    print()
    print(f"srtp_bench ceiling at {ceiling['subscribers']} subscribers: {ceiling['ceiling_pps']:.0f} pps per core "
          f"(its own figure at 10: {ceiling['srtp_bench_sfu_ceiling_pps_per_core']:.0f}; sendmsg "
          f"{ceiling['udp_sendmsg_ns']:.0f} ns)")
    for k, v in list(ratios.items()) + list(per_config.items()):
        print(f"{k:40s} {v:.3f}" if isinstance(v, (int, float)) else f"{k:40s} n/a")
    print("sfu_vs_janus                             not measured (no Janus on this machine)")

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"config": vars(a), "runs": runs, "ceiling": ceiling, "ratios": ratios,
                   "per_config": per_config, "kernel": os.uname().release, "cpus": os.cpu_count(),
                   "date": time.strftime("%Y-%m-%d")}, f, indent=1)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
