#!/usr/bin/env python3
"""The control plane dies and comes back without dropping a packet.

`ringlane run` starts; coturn's turnutils_uclient drives a TURN flow through it (2 clients,
400 packets each, 20 ms apart); mid-flow the control plane is killed with SIGKILL. The data
plane keeps forwarding. A new `ringlane run` with the same node name adopts the running data
plane (pidfd_getfd of its region and doorbells), resynchronises it (policy replayed through the
rings, with a user added on the way), reports the same allocations in /metrics and turns
/readyz ready. The flow ends with zero packets lost. Then the adopted data plane is killed and
the new control plane restarts it; SIGTERM stops everything with no orphan.

Usage: control_restart_test.py --ringlane PATH
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
from testlib import alive, check, free_port, http_get, summary, try_get, wait_status  # noqa: E402


def allocations(port):
    _, body = try_get(port, "/metrics")
    values = re.findall(r'^ringlane_allocations\{worker="\d+"\} (\d+)$', body, re.M)
    return sum(int(v) for v in values) if values else None


def dev_secrets_check(a, peer_port):
    """`ringlane run` with no secrets at all, killed with -9 and started again: the secrets it
    made up are kept (RINGLANE_STATE_DIR), so the API key and the TURN credentials the first
    control plane handed out still work through the second one and the adopted data plane."""
    turn_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    relay_lo = 29000 + (os.getpid() % 50) * 100
    state = tempfile.mkdtemp(prefix="ringlane-state-")
    env = dict(os.environ, RINGLANE_STATE_DIR=state)
    name = f"dev-{os.getpid()}"
    args = [a.ringlane, "run", "--name", name, "--media-port", "0", "--listen", f"127.0.0.1:{turn_port}",
            "--http", f"127.0.0.1:{http_port}", "--allow-peer", "127.0.0.0/8", "--workers", "2",
            "--relay-ports", f"{relay_lo}-{relay_lo + 99}"]
    logs = [tempfile.NamedTemporaryFile(prefix=f"dev{i}-", suffix=".log", delete=False).name for i in (1, 2)]
    first = subprocess.Popen(args, stdout=open(logs[0], "w"), stderr=subprocess.STDOUT, env=env)
    second = None
    dataplane = None
    try:
        check(wait_status(http_port, "/readyz", 200, 15), "dev node up")
        text = open(logs[0]).read()
        key = re.search(r"generated '([^']+)' for the HTTP API", text)
        key = key.group(1) if key else ""
        started = re.findall(r"data plane started, pid (\d+)", text)
        dataplane = int(started[0]) if started else None
        check(bool(key) and os.path.exists(f"{state}/{name}.secrets")
              and oct(os.stat(f"{state}/{name}.secrets").st_mode & 0o777) == "0o600",
              "generated secrets printed once and kept in a 0600 file")
        status, body = http_get(http_port, "/api/turn-credentials?username=dev", {"Authorization": f"Bearer {key}"})
        creds = json.loads(body) if status == 200 else {}
        first.send_signal(signal.SIGKILL)
        first.wait(5)
        second = subprocess.Popen(args, stdout=open(logs[1], "w"), stderr=subprocess.STDOUT, env=env)
        check(wait_status(http_port, "/readyz", 200, 15), "dev node restarted")
        text2 = open(logs[1]).read()
        check("using the development secrets kept in" in text2 and "generated" not in text2,
              "the restarted control plane reuses the kept secrets and prints none")
        status, _ = http_get(http_port, "/api/turn-credentials?username=dev2", {"Authorization": f"Bearer {key}"})
        check(status == 200, "the first API key works on the restarted control plane")
        out = subprocess.run(["turnutils_uclient", "-p", str(turn_port), "-e", "127.0.0.1", "-r", str(peer_port),
                              "-u", creds.get("username", "x"), "-w", creds.get("password", "x"), "-c", "-n", "10",
                              "-m", "1", "127.0.0.1"], capture_output=True, text=True, timeout=60).stdout
        check("Total lost packets 0 " in out and "tot_recv_msgs=10" in out,
              "TURN credentials issued before the restart relay after it")
        second.terminate()
        second.wait(15)
    finally:
        for p in (first, second):
            if p and p.poll() is None:
                p.kill()
        if dataplane and alive(dataplane):
            os.kill(dataplane, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    a = ap.parse_args()
    turn_port, peer_port, http_port = free_port(), free_port(), free_port(socket.SOCK_STREAM)
    relay_lo = 27000 + (os.getpid() % 50) * 100
    name = f"cr-{os.getpid()}"
    logs = [tempfile.NamedTemporaryFile(prefix=f"node{i}-", suffix=".log", delete=False).name for i in (1, 2)]
    args = [a.ringlane, "run", "--name", name, "--media-port", "0", "--listen", f"127.0.0.1:{turn_port}",
            "--http", f"127.0.0.1:{http_port}", "--api-key", "k-1", "--rest-secret", "s3",
            "--user", "alice:pw", "--allow-peer", "127.0.0.0/8", "--workers", "2",
            "--relay-ports", f"{relay_lo}-{relay_lo + 99}", "--jwt-secret", "restart-test-secret-0123"]
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = subprocess.Popen(args, stdout=open(logs[0], "w"), stderr=subprocess.STDOUT)
    second = None
    dataplane = None
    try:
        check(wait_status(http_port, "/readyz", 200, 15), "node up: /readyz 200")
        started = re.findall(r"data plane started, pid (\d+)", open(logs[0]).read())
        dataplane = int(started[0]) if started else None
        flow = subprocess.Popen(["turnutils_uclient", "-p", str(turn_port), "-e", "127.0.0.1", "-r", str(peer_port),
                                 "-u", "alice", "-w", "pw", "-c", "-n", "400", "-z", "20", "-m", "2", "127.0.0.1"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # The clients allocate one after another: wait until the count holds still.
        deadline = time.time() + 10
        before, last = None, None
        while time.time() < deadline:
            now = allocations(http_port)
            if now and now >= 2 and now == last:
                before = now
                break
            last = now
            time.sleep(0.4)
        check(before is not None and before >= 2, f"the flow's allocations show in /metrics ({before})")

        first.send_signal(signal.SIGKILL)
        first.wait(5)
        time.sleep(0.5)
        check(dataplane is not None and alive(dataplane), f"control plane killed: data plane {dataplane} still runs")
        check(try_get(http_port, "/healthz")[0] == 0, "no control plane answers meanwhile")

        # The restarted control plane adds a user: it reaches the adopted data plane through the
        # rings or not at all.
        second = subprocess.Popen(args + ["--user", "dave:pw2"], stdout=open(logs[1], "w"), stderr=subprocess.STDOUT)
        check(wait_status(http_port, "/readyz", 200, 15), "restarted control plane: /readyz 200")
        text = open(logs[1]).read()
        check(f"adopted the running data plane, pid {dataplane}" in text and "data plane started" not in text,
              "the new control plane adopted the same data plane, started none")
        _, metrics = try_get(http_port, "/metrics")
        check("ringlane_dataplane_adopted 1" in metrics, "/metrics says the data plane was adopted")
        commands = re.findall(r'^ringlane_ring_messages_total\{worker="(\d)",ring="commands"\} (\d+)$', metrics, re.M)
        check(len(commands) == 2 and all(int(n) > 0 for _, n in commands),
              f"/metrics: both workers' command rings carried the replayed policy ({commands})")
        check(re.search(r'^ringlane_ring_backpressure_total\{worker="0",ring="events"\} 0$', metrics, re.M) is not None,
              "/metrics: ring backpressure counted (none here)")
        after = allocations(http_port)
        check(after == before, f"the restarted control plane reports the same allocations ({after} vs {before})")

        out, _ = flow.communicate(timeout=60)
        lost = re.findall(r"Total lost packets \d+", out)
        received = re.findall(r"tot_recv_msgs=\d+", out)
        check("Total lost packets 0 " in out and "tot_recv_msgs=800" in out,
              f"flow across the control plane's kill -9: 800/800 relayed, lost 0 ({lost}, {received[-1:]})")

        time.sleep(0.5)
        log_now = open(logs[0]).read()
        check(log_now.count("policy generation 1 applied") >= 4,
              "both workers applied the policy replayed by the new control plane")
        dave = subprocess.run(["turnutils_uclient", "-p", str(turn_port), "-e", "127.0.0.1", "-r", str(peer_port),
                               "-u", "dave", "-w", "pw2", "-c", "-n", "10", "-m", "1", "127.0.0.1"],
                              capture_output=True, text=True, timeout=60).stdout
        check("Total lost packets 0 " in dave and "tot_recv_msgs=10" in dave,
              "a user only the new control plane knows relays through the adopted data plane")

        status, body = http_get(http_port, "/api/turn-credentials?username=x", {"Authorization": "Bearer k-1"})
        check(status == 200 and json.loads(body).get("password"), "TURN REST credentials served after the restart")

        os.kill(dataplane, signal.SIGKILL)
        check(wait_status(http_port, "/readyz", 503, 5), "adopted data plane killed: /readyz 503")
        check(wait_status(http_port, "/readyz", 200, 15), "the new control plane restarted it: /readyz 200")
        restarted = re.findall(r"data plane started, pid (\d+)", open(logs[1]).read())
        check("the adopted data plane exited" in open(logs[1]).read() and len(restarted) == 1,
              f"restart logged ({restarted})")
        newer = int(restarted[0]) if restarted else None
        second.terminate()
        second.wait(15)
        time.sleep(0.3)
        check(newer is not None and not alive(newer), "SIGTERM: control plane and data plane gone")
        dataplane = newer
        dev_secrets_check(a, peer_port)
    finally:
        for p in (first, second):
            if p and p.poll() is None:
                p.kill()
        if dataplane and alive(dataplane):
            os.kill(dataplane, signal.SIGKILL)
        peer.terminate()
    if summary():
        for path in logs:
            print(f"--- {path}")
            print(open(path).read()[-3000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
