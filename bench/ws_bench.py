#!/usr/bin/env python3
"""Signaling capacity: idle authenticated WebSocket connections held by one control plane
process and its resident memory per connection, against a textbook Boost.Beast server
(bench/ws_baseline_server.cpp) held the same way in the same run; then join latency at a fixed
1,000 joins/s and the unpaced join rate. tools/ws_load is the client, spread over 20 loopback
source addresses so ephemeral ports last.

Target (issue 3): 50,000 connections in one process at <= 4 KiB each. A process can hold only
as many connections as RLIMIT_NOFILE allows; where the hard limit is lower and cannot be raised
(no CAP_SYS_RESOURCE), the run uses what it allows and says so in the JSON ("limited_by").

Usage: bench/ws_bench.py [--build build] [--connections 50000] [--runs 3] [--out bench/out/ws.json]
"""
import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SECRET = "ws-bench-secret-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def load(build, port, pid, n, joins, burst):
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    cmd = [f"{build}/tools/ws_load", "--port", str(port), "--secret", SECRET, "--server-pid", str(pid),
           "--connections", str(n), "--sources", "127.0.0.2-127.0.0.21", "--rate", "1000",
           "--joins", str(joins), "--burst", str(burst), "--settle", "3", "--time-limit", "240",
           "--out", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
    with open(out) as f:
        return json.load(f)


def run_ringlane(build, n, joins, burst, redis_port=None):
    port = free_port()
    extra = ["--redis", f"redis://127.0.0.1:{redis_port}"] if redis_port else []
    server = subprocess.Popen([f"{build}/controlplane/ringlane-control", "--listen", f"127.0.0.1:{port}",
                               "--stats-name", f"none-{os.getpid()}", "--jwt-secret", SECRET,
                               "--node-id", "bench", "--ws-max-conns-per-ip", "1000000",
                               "--ws-max-conns", "1000000", "--ws-joins-per-s", "1000000",
                               "--max-rooms", "10000000", *extra],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        return load(build, port, server.pid, n, joins, burst)
    finally:
        server.terminate()
        server.wait(30)


def run_baseline(build, n):
    port = free_port()
    server = subprocess.Popen([f"{build}/bench/ws_baseline_server", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        return load(build, port, server.pid, n, 0, 0)
    finally:
        server.kill()
        server.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--connections", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--joins", type=int, default=5000)
    ap.add_argument("--burst", type=int, default=5000)
    ap.add_argument("--out", default="bench/out/ws.json")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Server and client each need one descriptor per connection, plus a few of their own.
    n = min(a.connections, hard - 100) if hard != resource.RLIM_INFINITY else a.connections
    limited_by = None
    if n < a.connections:
        limited_by = (f"RLIMIT_NOFILE hard limit {hard} in this environment (no CAP_SYS_RESOURCE "
                      f"to raise it): one process can hold at most ~{hard - 20} sockets")
        print(f"note: {limited_by}; measuring {n} connections")
    joins = min(a.joins, n // 2)
    burst = min(a.burst, n - joins)
    runs = []
    for i in range(a.runs):
        print(f"== ringlane-control, run {i + 1}/{a.runs}")
        runs.append(run_ringlane(a.build, n, joins, burst))
    print("== textbook Beast server (baseline)")
    base = run_baseline(a.build, n)
    # Joins again with placement in a real redis-server (each new room: a few round trips on the
    # store's thread), if one is installed.
    redis_run = None
    if shutil.which("redis-server"):
        rport = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(rport)
            print("== ringlane-control with --redis (joins)")
            rn = min(n, 2 * joins)
            redis_run = run_ringlane(a.build, rn, joins, rn - joins, redis_port=rport)
        finally:
            redis.terminate()
            redis.wait(10)
    med = lambda f: statistics.median(f(r) for r in runs)  # noqa: E731
    bytes_per_conn = med(lambda r: r["ws_bytes_per_connection"])
    result = {
        "ws_connections": min(r["ws_connections"] for r in runs),
        "ws_connections_target": a.connections,
        "limited_by": limited_by,
        "ws_bytes_per_connection": bytes_per_conn,
        "baseline_bytes_per_connection": base["ws_bytes_per_connection"],
        "connect_per_s": med(lambda r: r["ws_connections"] / r["connect_seconds"]),
        "joins_at_1000_per_s": {
            "count": joins,
            "achieved_per_s": med(lambda r: r["paced_joins"]["achieved_per_s"]),
            "p50_ms": med(lambda r: r["paced_joins"]["p50_ms"]),
            "p99_ms": med(lambda r: r["paced_joins"]["p99_ms"]),
            "failed": max(r["paced_joins"]["failed"] for r in runs),
        },
        "unpaced_joins_per_s": med(lambda r: r["unpaced_joins"]["per_s"]),
        "redis_joins_at_1000_per_s": redis_run["paced_joins"] if redis_run else None,
        "redis_unpaced_joins_per_s": redis_run["unpaced_joins"]["per_s"] if redis_run else None,
        "ratios": {
            "ws_bytes_baseline_vs_ringlane": base["ws_bytes_per_connection"] / bytes_per_conn,
            "ws_bytes_vs_4kib_target": bytes_per_conn / 4096,
        },
        "runs": runs,
        "baseline": base,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print()
    print(f"{'metric':40} {'value':>12}")
    print(f"{'connections held (one process)':40} {result['ws_connections']:>12}")
    print(f"{'bytes/connection, ringlane-control':40} {bytes_per_conn:>12.0f}")
    print(f"{'bytes/connection, textbook Beast':40} {base['ws_bytes_per_connection']:>12.0f}")
    print(f"{'ratio baseline/ringlane':40} {result['ratios']['ws_bytes_baseline_vs_ringlane']:>12.2f}")
    print(f"{'joins at 1000/s: achieved/s':40} {result['joins_at_1000_per_s']['achieved_per_s']:>12.0f}")
    print(f"{'joins at 1000/s: p50 ms':40} {result['joins_at_1000_per_s']['p50_ms']:>12.2f}")
    print(f"{'joins at 1000/s: p99 ms':40} {result['joins_at_1000_per_s']['p99_ms']:>12.2f}")
    print(f"{'unpaced joins/s':40} {result['unpaced_joins_per_s']:>12.0f}")
    if redis_run:
        rj = redis_run["paced_joins"]
        print(f"{'redis store, joins at 1000/s: p50 ms':40} {rj['p50_ms']:>12.2f}")
        print(f"{'redis store, joins at 1000/s: p99 ms':40} {rj['p99_ms']:>12.2f}")
        print(f"{'redis store, unpaced joins/s':40} {result['redis_unpaced_joins_per_s']:>12.0f}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
