#!/usr/bin/env python3
"""`ringlane run` as users run it: the control plane starts the data plane as its own process,
hands it the shared region, replays the TURN policy through the rings, serves the HTTP API, and
restarts the data plane with backoff after kill -9; SIGTERM stops both.

Usage: supervisor_test.py --ringlane PATH
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, alive, check, free_port, summary, try_get, wait_status  # noqa: E402





def pids(log):
    return [int(p) for p in re.findall(r"data plane started, pid (\d+)", open(log).read())]


def stun_ok(port):
    out = subprocess.run(["turnutils_stunclient", "-p", str(port), "127.0.0.1"], capture_output=True, text=True,
                         timeout=20).stdout
    return re.search(r"UDP reflexive addr: 127\.0\.0\.1:\d+", out) is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    a = ap.parse_args()
    turn_port, peer_port, http_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    relay_lo = 23000 + (os.getpid() % 50) * 100
    log = tempfile.NamedTemporaryFile(prefix="node-", suffix=".log", delete=False).name
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node = subprocess.Popen([a.ringlane, "run", "--name", f"sup-{os.getpid()}", "--media-port", "0", "--listen", f"127.0.0.1:{turn_port}",
                             "--http", f"127.0.0.1:{http_port}", "--api-key", "k-1", "--user", "alice:pw",
                             "--rest-secret", "s3", "--allow-peer", "127.0.0.0/8", "--workers", "2",
                             "--relay-ports", f"{relay_lo}-{relay_lo + 99}"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        check(wait_status(http_port, "/readyz", 200, 15), "node up: /readyz 200")
        first = pids(log)
        check(len(first) == 1 and first[0] != node.pid and alive(first[0]),
              f"the data plane is its own process ({first} vs control {node.pid})")
        time.sleep(0.3)
        text = open(log).read()
        check(text.count("policy generation 1 applied") == 2,
              "both workers applied the policy the control plane sent through the rings")
        check(stun_ok(turn_port), "STUN Binding answered")

        status, body = try_get(http_port, "/api/turn-credentials?service=turn&username=carol",
                           {"Authorization": "Bearer k-1"})
        creds = json.loads(body) if status == 200 else {}
        check(status == 200 and creds.get("uris") == [f"turn:127.0.0.1:{turn_port}?transport=udp",
                                                         f"turn:127.0.0.1:{turn_port}?transport=tcp"],
              f"API issues credentials with this node's TURN URIs, UDP and TCP ({status}, {creds.get('uris')})")
        out = subprocess.run(["turnutils_uclient", "-p", str(turn_port), "-e", "127.0.0.1", "-r", str(peer_port),
                              "-u", creds.get("username", "x"), "-w", creds.get("password", "x"), "-c", "-n", "10",
                              "-m", "2", "127.0.0.1"], capture_output=True, text=True, timeout=60).stdout
        relayed = "Total lost packets 0 " in out and "tot_recv_msgs=20" in out
        check(relayed, "issued credentials relay 20/20")
        if not relayed:
            print("  uclient said (tail):\n" + "\n".join(out.splitlines()[-12:]), flush=True)

        os.kill(first[0], signal.SIGKILL)
        check(wait_status(http_port, "/readyz", 503, 5), "data plane killed: /readyz 503")
        check(wait_status(http_port, "/readyz", 200, 15), "restarted: /readyz 200 again")
        second = pids(log)
        check(len(second) == 2 and second[1] != first[0] and alive(second[1]), f"a new data plane process ({second})")
        check("restarting in 200 ms" in open(log).read(), "first restart after 200 ms")
        check(stun_ok(turn_port), "STUN Binding answered by the restarted data plane")
        time.sleep(0.3)
        check(open(log).read().count("policy generation 2 applied") == 2, "the policy was replayed to the new workers")

        os.kill(second[1], signal.SIGKILL)
        check(wait_status(http_port, "/readyz", 503, 5) and wait_status(http_port, "/readyz", 200, 20),
              "killed again: 503, then restarted: 200")
        check("restarting in 400 ms" in open(log).read(), "backoff doubled to 400 ms")

        last = pids(log)[-1]
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=15)
        time.sleep(0.2)
        check(not alive(last), "SIGTERM to the node stops the data plane too (no orphan)")
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
        for p in pids(log):
            if alive(p):
                os.kill(p, signal.SIGKILL)
        peer.terminate()
        peer.wait()
    if FAILURES:
        print(open(log).read()[-3000:])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
