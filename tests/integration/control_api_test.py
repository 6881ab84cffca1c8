#!/usr/bin/env python3
"""ringlane-control's HTTP API against a running data plane, over real sockets:
health, readiness (and its loss when the data plane is killed), Prometheus metrics, and TURN
REST credentials that coturn's turnutils_uclient then uses to relay through ringlane dataplane.

Usage: control_api_test.py --ringlane PATH --control PATH
"""
import argparse
import http.client
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
from testlib import FAILURES, check, free_port, summary  # noqa: E402





def wait_log(path, text, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in open(path).read():
            return True
        time.sleep(0.05)
    return False


def request(port, method, target, headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, target, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    c.close()
    return r.status, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--control", required=True)
    a = ap.parse_args()
    turn_port, peer_port, http_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    name = f"ctl-{os.getpid()}"
    relay_lo = 21000 + (os.getpid() % 100) * 100
    dlog = tempfile.NamedTemporaryFile(prefix="dataplane-", suffix=".log", delete=False).name
    clog = tempfile.NamedTemporaryFile(prefix="control-", suffix=".log", delete=False).name
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = subprocess.Popen([a.ringlane, "dataplane", "--name", name, "--media-port", "0", "--listen", f"127.0.0.1:{turn_port}",
                             "--rest-secret", "shared-secret", "--allow-peer", "127.0.0.0/8", "--workers", "2",
                             "--relay-ports", f"{relay_lo}-{relay_lo + 99}"], stdout=open(dlog, "w"),
                            stderr=subprocess.STDOUT)
    control = subprocess.Popen([a.control, "--listen", f"127.0.0.1:{http_port}", "--stats-name", name,
                                "--api-key", "k-123", "--rest-secret", "shared-secret",
                                "--turn-uri", f"turn:127.0.0.1:{turn_port}?transport=udp"],
                               stdout=open(clog, "w"), stderr=subprocess.STDOUT)
    try:
        check(wait_log(dlog, "ringlane up") and wait_log(clog, "ringlane-control up"), "both processes start")
        time.sleep(0.3)
        status, body = request(http_port, "GET", "/healthz")
        check(status == 200 and body == "ok\n", f"/healthz 200 ({status})")
        status, body = request(http_port, "GET", "/readyz")
        check(status == 200 and "2 worker(s)" in body, f"/readyz 200 with the data plane up ({status} {body.strip()})")

        status, body = request(http_port, "GET", "/api/turn-credentials?service=turn&username=alice")
        check(status == 401 and json.loads(body)["error"]["code"] == "unauthorized", "no API key: 401 unauthorized")
        status, body = request(http_port, "GET", "/api/turn-credentials?username=alice",
                               {"Authorization": "Bearer wrong"})
        check(status == 401, "wrong API key: 401")
        status, body = request(http_port, "GET", "/api/turn-credentials?username=a:b",
                               {"Authorization": "Bearer k-123"})
        check(status == 400 and json.loads(body)["error"]["code"] == "bad_username", "username with ':' : 400")
        status, body = request(http_port, "POST", "/api/turn-credentials", {"Authorization": "Bearer k-123"}, "x")
        check(status == 405, "POST: 405")
        status, body = request(http_port, "GET", "/nope")
        check(status == 404 and json.loads(body)["error"]["code"] == "not_found", "unknown path: 404")
        status, body = request(http_port, "PUT", "/healthz", {}, "x" * 70000)
        check(status == 413, f"70 KB body: 413 ({status})")

        status, body = request(http_port, "GET", "/api/turn-credentials?service=turn&username=alice",
                               {"Authorization": "Bearer k-123"})
        creds = json.loads(body) if status == 200 else {}
        check(status == 200 and creds.get("username", "").endswith(":alice") and creds.get("ttl") == 86400
              and creds.get("uris") == [f"turn:127.0.0.1:{turn_port}?transport=udp"],
              f"credentials issued ({status} {body[:80]})")
        out = subprocess.run(["turnutils_uclient", "-p", str(turn_port), "-e", "127.0.0.1", "-r", str(peer_port),
                              "-u", creds.get("username", "x"), "-w", creds.get("password", "x"), "-c", "-n", "20",
                              "-m", "2", "127.0.0.1"], capture_output=True, text=True, timeout=60).stdout
        totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", out, re.M)
        check(bool(totals) and totals[-1][0] == totals[-1][1] == "40" and "Total lost packets 0 " in out,
              f"turnutils_uclient relays with the issued credentials ({totals[-1] if totals else 'none'})")

        # Workers publish their counters every 100 ms: poll briefly rather than race them.
        total, m, status, body = 0, None, 0, ""
        for _ in range(20):
            status, body = request(http_port, "GET", "/metrics")
            m = re.search(r'^ringlane_relayed_to_peer\{worker="\d"\} (\d+)$', body, re.M)
            total = sum(int(v) for v in re.findall(r'^ringlane_relayed_to_peer\{worker="\d"\} (\d+)$', body, re.M))
            if total >= 40:
                break
            time.sleep(0.1)
        check(status == 200 and m is not None and total >= 40 and "ringlane_dataplane_attached 1" in body,
              f"/metrics reports the relayed packets ({total})")

        codes = [request(http_port, "GET", "/api/turn-credentials?username=bob",
                         {"Authorization": "Bearer k-123"})[0] for _ in range(60)]
        check(codes.count(429) > 0 and codes.count(200) > 0, f"rate limit: {codes.count(429)} of 60 got 429")

        data.send_signal(signal.SIGKILL)
        data.wait()
        ready = 200
        for _ in range(40):
            ready, body = request(http_port, "GET", "/readyz")
            if ready == 503:
                break
            time.sleep(0.1)
        check(ready == 503 and ("is not running" in body or "has not reported" in body),
              f"data plane killed: /readyz 503 ({body.strip()})")
    finally:
        for p in (control, data, peer):
            if p.poll() is None:
                p.terminate()
                p.wait()
        try:
            os.unlink(f"/dev/shm/ringlane-{name}.stats")
        except OSError:
            pass
    return summary()


if __name__ == "__main__":
    sys.exit(main())
