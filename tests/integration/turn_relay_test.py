#!/usr/bin/env python3
"""TURN relay against coturn's own clients, over real sockets on loopback.

Starts `ringlane dataplane` with the chosen io backend and coturn's turnutils_peer, then drives
turnutils_uclient through every mode (channels, Send indications, REST credentials, IPv6
relays, client-to-client, DONT-FRAGMENT, RTCP pairs with EVEN-PORT/RESERVATION-TOKEN) and
asserts the echoed packet counts and zero loss it reports; turnutils_stunclient for Binding.
Negative cases (wrong password, forged REST secret, denied peers, stale nonce, quota,
garbage datagrams) use a small independent client and check ringlane's own counters.

Usage: turn_relay_test.py --ringlane PATH --io uring|mmsg [--gso on|off]
Exit 77 (skipped) when --io uring was asked for but the kernel refused io_uring.
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
import stun_client as sc  # noqa: E402
from testlib import FAILURES, check, free_port, summary  # noqa: E402





class Node:
    """A running `ringlane dataplane`, stopped on exit."""

    def __init__(self, binary, args, name, wrap=()):
        """`wrap`: a command that execs the node (e.g. prlimit with its limits), same pid."""
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"ringlane-{name}-", suffix=".log", delete=False)
        self.binary = binary
        self.proc = subprocess.Popen(list(wrap) + [binary, "dataplane", "--name", name, "--media-port", "0"] + args,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            text = self.text()
            if "ringlane up" in text:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"ringlane did not start:\n{self.text()}")

    def text(self):
        with open(self.log.name) as f:
            return f.read()

    def stats(self):
        out = subprocess.run([self.binary, "stats", "--name", self.name], capture_output=True,
                             text=True, check=True).stdout
        workers = json.loads(out)["workers"]
        return {k: sum(w[k] for w in workers) for k in workers[0]}

    def settled_stats(self):
        """Counters once traffic has stopped: workers publish every 100 ms, so wait until two
        reads agree (heartbeats and loop turns always move and are left out); at most 3 s."""
        moving = ("heartbeat_ms", "loop_turns", "io_receive_calls")
        last = None
        deadline = time.time() + 3
        while time.time() < deadline:
            time.sleep(0.15)
            now = self.stats()
            steady = {k: v for k, v in now.items() if k not in moving}
            if steady == last:
                return now
            last = steady
        return now

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def uclient(args, port, server, timeout=90):
    cmd = ["turnutils_uclient", "-p", str(port)] + args + [server]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.stdout + r.stderr


# Without -c, uclient binds a random channel number (0x4000-0x4FFF) to the peer's RTCP port and
# then another random one to its RTP port, both on the same allocation: one run in 4,096 draws
# the same number twice, and RFC 8656 §12 requires the server to refuse the second binding with
# this 400. A refusal the server gets wrong comes again with new numbers; a draw does not.
CHANNEL_DRAW = "channel bind: error 400 (Channel bound to another peer)"


def relay_case(title, port, server, args, messages, clients):
    out = uclient(args + ["-n", str(messages), "-m", str(clients)], port, server)
    if CHANNEL_DRAW in out and "-c" not in args:
        print(f"  note  {title}: uclient drew one channel number for two peers; run again once")
        out = uclient(args + ["-n", str(messages), "-m", str(clients)], port, server)
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", out, re.M)
    lost = re.findall(r"Total lost packets (\d+)", out)
    sent, recv = (int(totals[-1][0]), int(totals[-1][1])) if totals else (0, 0)
    # uclient sends to a pair of relays per client unless -c (RTCP off) or -y.
    check(sent > 0 and sent == recv and lost and lost[-1] == "0",
          f"{title}: sent {sent}, echoed {recv}, lost {lost[-1] if lost else '?'}")
    if not (sent > 0 and sent == recv):
        print(out[-2000:])
    return sent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--io", choices=["uring", "mmsg"], required=True)
    ap.add_argument("--gso", choices=["on", "off"], default="off")
    a = ap.parse_args()

    port = free_port()
    peer_port = free_port()
    relay_lo = 20000 + (os.getpid() % 200) * 100
    name = f"itest-{a.io}-gso{a.gso}-{os.getpid()}"
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-L", "::1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node = Node(a.ringlane, ["--io", a.io, "--gso", a.gso, "--listen", f"127.0.0.1:{port}", "--listen", f"[::1]:{port}",
                             "--user", "alice:alice-pw", "--user", "bob:bob-pw", "--rest-secret", "s3cret",
                             "--allow-peer", "127.0.0.0/8", "--allow-peer", "::1", "--workers", "2",
                             "--relay-ports", f"{relay_lo}-{relay_lo + 99}", "--user-quota", "0"], name)
    try:
        text = node.text()
        if a.io == "uring" and "falling back to mmsg" in text:
            reason = re.search(r"io_uring unavailable \(([^)]*)\)", text)
            print(f"SKIP: io_uring unavailable here: {reason.group(1) if reason else text}")
            return 77
        check(f"io {a.io}" in text, f"workers run the {a.io} backend")

        print(f"== coturn clients against ringlane --io {a.io} --gso {a.gso}")
        total = 0
        p = ["-e", "127.0.0.1", "-r", str(peer_port)]
        total += relay_case("channels + RTCP pairs (EVEN-PORT, RESERVATION-TOKEN)", port, "127.0.0.1",
                            p + ["-u", "alice", "-w", "alice-pw"], 40, 4)
        total += relay_case("Send/Data indications", port, "127.0.0.1",
                            p + ["-s", "-c", "-u", "alice", "-w", "alice-pw"], 40, 2)
        total += relay_case("REST credentials, channels", port, "127.0.0.1",
                            p + ["-c", "-W", "s3cret", "-u", "carol"], 40, 2)
        total += relay_case("REST credentials, Send indications", port, "127.0.0.1",
                            p + ["-s", "-c", "-W", "s3cret", "-u", "carol"], 30, 2)
        total += relay_case("IPv6 relay over ::1", port, "::1",
                            ["-x", "-c", "-e", "::1", "-r", str(peer_port), "-u", "bob", "-w", "bob-pw"], 40, 2)
        total += relay_case("client to client (-y)", port, "127.0.0.1",
                            ["-y", "-c", "-u", "alice", "-w", "alice-pw"], 40, 2)
        total += relay_case("DONT-FRAGMENT, 1000-byte payloads", port, "127.0.0.1",
                            p + ["-g", "-c", "-l", "1000", "-u", "alice", "-w", "alice-pw"], 30, 2)

        stun = subprocess.run(["turnutils_stunclient", "-p", str(port), "127.0.0.1"], capture_output=True,
                              text=True, timeout=20).stdout
        check(re.search(r"UDP reflexive addr: 127\.0\.0\.1:\d+", stun) is not None,
              "turnutils_stunclient Binding gets the reflexive address")

        s = node.settled_stats()
        check(s["relayed_to_peer"] >= total and s["relayed_to_client"] >= total,
              f"counters: relayed {s['relayed_to_peer']} to peers, {s['relayed_to_client']} to clients (>= {total})")

        print("== negative cases")
        before = node.stats()
        out = uclient(p + ["-c", "-n", "3", "-u", "alice", "-w", "wrong"], port, "127.0.0.1", timeout=30)
        check("Cannot complete Allocation" in out, "wrong password: coturn client cannot allocate")
        out = uclient(p + ["-c", "-n", "3", "-W", "not-the-secret", "-u", "mallory"], port, "127.0.0.1", timeout=30)
        check("Cannot complete Allocation" in out, "forged REST secret: coturn client cannot allocate")
        s = node.settled_stats()
        check(s["auth_failures"] >= before["auth_failures"] + 2, f"auth failures counted ({s['auth_failures']})")

        c = sc.TurnClient(("127.0.0.1", port), "alice", "alice-pw")
        cls, code, attrs = c.allocate()
        check(cls == 2 and sc.A_RELAYED in attrs, "independent client: Allocate succeeds")
        for denied in ["10.0.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.1", "224.0.0.5", "100.64.1.1"]:
            _, code, _ = c.create_permission(denied)
            check(code == 403, f"CreatePermission to {denied} refused with 403 (got {code})")
        _, code, _ = c.create_permission("127.0.0.1")
        check(code is None, "CreatePermission to 127.0.0.1 admitted by --allow-peer")
        c6 = sc.TurnClient(("::1", port), "alice", "alice-pw", family=socket.AF_INET6)
        _, code, _ = c6.request(sc.ALLOCATE, sc._attr(sc.A_TRANSPORT, b"\x11\0\0\0") + sc._attr(0x17, b"\x02\0\0\0"))
        check(code is None, "IPv6 Allocate succeeds")
        for denied in ["fe80::1", "fd00::1", "::ffff:10.0.0.1", "ff02::1"]:
            _, code, _ = c6.create_permission(denied)
            check(code == 403, f"CreatePermission to {denied} refused with 403 (got {code})")

        # Garbage: counted per reason, never answered, and the node keeps serving.
        before = node.stats()
        g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        g.settimeout(0.3)
        junk = [b"", b"\x00", b"\x01\x02\x03", b"\xff" * 64, b"\x00\x01\x00\x08" + b"\x21\x12\xa4\x42" + b"\0" * 12,
                b"\x00\x01\x00\x04\x21\x12\xa4\x42" + b"\0" * 12 + b"\x00\x06\x00\x30", os.urandom(1200)]
        for j in junk * 10:
            g.sendto(j, ("127.0.0.1", port))
        answered = 0
        try:
            while True:
                g.recvfrom(2048)
                answered += 1
        except socket.timeout:
            pass
        check(answered == 0, f"{len(junk) * 10} malformed datagrams got no answer ({answered})")
        s = node.settled_stats()
        drops = sum(s[k] - before[k] for k in s if k.startswith("drop_"))
        check(drops >= len(junk) * 10 - 10, f"malformed datagrams counted as drops ({drops})")
        cls, code, attrs = c.request(sc.REFRESH, sc._attr(sc.A_LIFETIME, b"\0\0\x02\x58"))
        check(cls == 2, "the node still serves the existing allocation after the garbage")
        c.close()
        c6.close()
    finally:
        node.stop()

    # A second node with short nonces and a quota of one allocation per user.
    port2 = free_port()
    node2 = Node(a.ringlane, ["--io", a.io, "--listen", f"127.0.0.1:{port2}", "--user", "dave:dave-pw",
                              "--workers", "1", "--nonce-lifetime", "1", "--user-quota", "1",
                              "--relay-ports", f"{relay_lo + 100}-{relay_lo + 199}"], name + "-b")
    try:
        first = sc.TurnClient(("127.0.0.1", port2), "dave", "dave-pw")
        cls, code, _ = first.allocate()
        check(cls == 2, "quota node: first allocation succeeds")
        second = sc.TurnClient(("127.0.0.1", port2), "dave", "dave-pw")
        _, code, _ = second.allocate()
        check(code == 486, f"second allocation for the same user gets 486 (got {code})")
        time.sleep(2.2)
        _, code, attrs = first.request(sc.REFRESH, sc._attr(sc.A_LIFETIME, b"\0\0\x02\x58"), retry_stale=False)
        check(code == 438 and sc.A_NONCE in attrs, f"an expired nonce gets 438 with a new nonce (got {code})")
        first.nonce = attrs.get(sc.A_NONCE, b"").decode()
        cls, code, _ = first.request(sc.REFRESH, sc._attr(sc.A_LIFETIME, b"\0\0\0\0"))
        check(cls == 2, "with the new nonce the Refresh succeeds")
        _, code, _ = second.allocate()
        check(code is None, "after the delete the quota frees up")
        first.close()
        second.close()
    finally:
        node2.stop()
        peer.terminate()
        peer.wait()

    return summary()


if __name__ == "__main__":
    sys.exit(main())
