#!/usr/bin/env python3
"""TURN over TCP (RFC 8656 §3.1) against coturn's own clients, over real sockets on loopback.

Starts `ringlane dataplane` with the chosen io backend, a TCP listener beside the UDP one and
short limits, then:
  - turnutils_uclient -t (TCP) with turnutils_peer: channels (with RTCP pairs), Send/Data
    indications, static user and REST secret, an IPv6 relay over ::1, 1000-byte payloads:
    nothing lost;
  - an allocation's lifetime is its connection's; a UDP and a TCP client on the same
    address:port get two allocations;
  - hostile streams over real sockets, while a well-behaved TCP uclient and a UDP uclient relay
    in the background without loss: garbage first bytes, 64 KiB lengths, a frame that never
    completes, a silent connection, connections past the per-IP limit, an idle connection, and
    a client that never reads while data is relayed to it. Each one is closed and counted.

Usage: turn_tcp_test.py --ringlane PATH --io uring|mmsg
Exit 77 (skipped) when --io uring was asked for but the kernel refused io_uring.
"""
import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stun_client as sc  # noqa: E402
from stun_tcp_client import TcpTurnClient, closed_by_server, raw_connection  # noqa: E402
from testlib import check, free_port, summary  # noqa: E402
from turn_relay_test import Node, relay_case, uclient  # noqa: E402

HANDSHAKE_MS = 1000
IDLE_MS = 1500
PER_IP = 4
SEND_CAP = 65536


def binding(tid=b"\x01" * 12):
    return sc.build(sc.BINDING, tid=tid)[0]


def tcp_port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def background(args, port, out):
    out["text"] = uclient(args, port, "127.0.0.1", timeout=120)


def lossless(title, out):
    text = out.get("text", "")
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", text, re.M)
    lost = re.findall(r"Total lost packets (\d+)", text)
    sent, recv = (int(totals[-1][0]), int(totals[-1][1])) if totals else (0, 0)
    check(sent > 0 and sent == recv and lost and lost[-1] == "0",
          f"{title}: sent {sent}, echoed {recv}, lost {lost[-1] if lost else '?'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--io", choices=["uring", "mmsg"], required=True)
    a = ap.parse_args()

    port = free_port()
    while not tcp_port_free(port):
        port = free_port()
    peer_port = free_port()
    relay_lo = 26000 + (os.getpid() % 100) * 100
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-L", "::1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node = Node(a.ringlane, ["--io", a.io, "--listen", f"127.0.0.1:{port}", "--listen", f"[::1]:{port}",
                             "--user", "alice:alice-pw", "--rest-secret", "s3cret",
                             "--allow-peer", "127.0.0.0/8", "--allow-peer", "::1", "--workers", "2",
                             "--relay-ports", f"{relay_lo}-{relay_lo + 99}", "--user-quota", "0",
                             "--tcp-max-per-ip", str(PER_IP), "--tcp-handshake-timeout", str(HANDSHAKE_MS),
                             "--tcp-idle-timeout", str(IDLE_MS), "--tcp-send-cap", str(SEND_CAP)],
                f"itest-tcp-{a.io}-{os.getpid()}")
    server = ("127.0.0.1", port)
    try:
        text = node.text()
        if a.io == "uring" and "falling back to mmsg" in text:
            print("SKIP: io_uring unavailable here")
            return 77
        check(f"io {a.io}" in text and f"TCP 127.0.0.1:{port}, [::1]:{port}" in text,
              f"workers run {a.io} and listen on TCP 127.0.0.1:{port} and [::1]:{port}")

        print(f"== coturn clients over TCP against ringlane --io {a.io}")
        p = ["-t", "-e", "127.0.0.1", "-r", str(peer_port)]
        total = 0
        total += relay_case("TCP: channels + RTCP pairs", port, "127.0.0.1",
                            p + ["-u", "alice", "-w", "alice-pw"], 40, 1)
        total += relay_case("TCP: Send/Data indications", port, "127.0.0.1",
                            p + ["-s", "-c", "-u", "alice", "-w", "alice-pw"], 40, 2)
        total += relay_case("TCP: REST credentials, channels", port, "127.0.0.1",
                            p + ["-c", "-W", "s3cret", "-u", "carol"], 40, 2)
        total += relay_case("TCP: REST credentials, Send indications", port, "127.0.0.1",
                            p + ["-s", "-c", "-W", "s3cret", "-u", "carol"], 30, 2)
        total += relay_case("TCP: IPv6 relay over ::1", port, "::1",
                            ["-t", "-x", "-c", "-e", "::1", "-r", str(peer_port), "-u", "alice", "-w", "alice-pw"],
                            30, 2)
        total += relay_case("TCP: 1000-byte payloads (frames straddle receives)", port, "127.0.0.1",
                            p + ["-c", "-l", "1000", "-u", "alice", "-w", "alice-pw"], 40, 2)
        total += relay_case("TCP: mandatory channel padding (-D)", port, "127.0.0.1",
                            p + ["-c", "-D", "-l", "101", "-u", "alice", "-w", "alice-pw"], 30, 2)
        s = node.settled_stats()
        check(s["tcp_channel_frames"] > 0 and s["tcp_stun_frames"] > 0 and s["relayed_to_client"] >= total,
              f"counted: {s['tcp_stun_frames']} STUN and {s['tcp_channel_frames']} ChannelData frames, "
              f"{s['tcp_zero_copy_frames']} relayed without a copy, {s['tcp_reassembled_frames']} reassembled")
        check(s["allocations"] == 0 and s["tcp_active"] == 0,
              f"the clients gone, no allocation and no connection is left ({s['allocations']}, {s['tcp_active']})")

        print("== an allocation lives as long as its connection")
        before = node.stats()
        c = TcpTurnClient(server, "alice", "alice-pw", local=("127.0.0.3", 0))
        local_port = c.sock.getsockname()[1]
        cls, _, attrs = c.allocate()
        check(cls == 2 and sc.A_RELAYED in attrs, "independent client: Allocate over TCP succeeds")
        u = sc.TurnClient(server, "alice", "alice-pw")
        u.sock.close()
        u.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sock.bind(("127.0.0.3", local_port))
        u.sock.settimeout(2.0)
        ucls, _, uattrs = u.allocate()
        check(ucls == 2 and uattrs.get(sc.A_RELAYED) != attrs.get(sc.A_RELAYED),
              f"a UDP client on the same 127.0.0.3:{local_port} gets its own allocation")
        mid = node.settled_stats()
        check(mid["allocations"] == before["allocations"] + 2, f"two allocations ({mid['allocations']})")
        c.sock.close()
        after = node.settled_stats()
        check(after["allocations"] == mid["allocations"] - 1
              and after["tcp_allocations_closed"] == mid["tcp_allocations_closed"] + 1,
              "closing the TCP connection deletes its allocation, and only that one")
        cls, _, _ = u.request(sc.REFRESH, sc._attr(sc.A_LIFETIME, b"\0\0\0\0"))
        check(cls == 2, "the UDP allocation is still there (deleted with Refresh 0)")
        u.close()

        print("== hostile streams, while a TCP and a UDP client keep relaying")
        bg_tcp, bg_udp = {}, {}
        threads = [threading.Thread(target=background, args=(p + ["-c", "-n", "400", "-m", "1", "-u", "alice",
                                                                  "-w", "alice-pw"], port, bg_tcp)),
                   threading.Thread(target=background, args=(["-c", "-e", "127.0.0.1", "-r", str(peer_port), "-n",
                                                              "400", "-m", "1", "-u", "alice", "-w", "alice-pw"],
                                                             port, bg_udp))]
        for t in threads:
            t.start()
        time.sleep(0.5)
        before = node.stats()  # traffic is running: these counters never settle

        # Garbage before the first STUN header: an HTTP request.
        g = raw_connection(server, ("127.0.0.10", 0))
        g.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # 'G' = 0x47: ChannelData's range
        check(closed_by_server(g, 2), "an HTTP request as first bytes: the connection is closed at once")
        g.close()
        g = raw_connection(server, ("127.0.0.10", 0))
        g.sendall(b"\x16\x03\x01\x00\x05hello")  # a TLS record: STUN's range, no magic cookie
        check(closed_by_server(g, 2), "a TLS record as first bytes: closed at once")
        g.close()
        g = raw_connection(server, ("127.0.0.10", 0))
        g.sendall(b"\xff" * 32)
        check(closed_by_server(g, 2), "0xFF bytes as first bytes: closed at once")
        g.close()
        # A STUN header announcing 64 KiB (never sent), and a ChannelData one after a Binding.
        big = raw_connection(server, ("127.0.0.10", 0))
        big.sendall(struct.pack("!HHI", 0x0001, 0xFFFC, sc.COOKIE) + b"\x02" * 12)
        check(closed_by_server(big, 2), "a STUN length of 64 KiB: closed at once")
        big.close()
        big = TcpTurnClient(server, "x", "y", local=("127.0.0.10", 0))
        cls, _, _ = big.exchange(binding())
        big.sock.sendall(struct.pack("!HH", 0x4000, 0xFFFF) + b"\0" * 100)
        check(cls == 2 and big.closed_by_server(2), "Binding answered, then a ChannelData length of 64 KiB: closed")
        big.sock.close()
        # Slowloris: nothing at all; half a header; a frame that never completes.
        t0 = time.time()
        silent = raw_connection(server, ("127.0.0.11", 0))
        half = raw_connection(server, ("127.0.0.11", 0))
        half.sendall(binding()[:10])
        partial = TcpTurnClient(server, "x", "y", local=("127.0.0.11", 0))
        partial.exchange(binding())
        partial.sock.sendall(struct.pack("!HHI", 0x0001, 1000, sc.COOKIE) + b"\x03" * 12 + b"\0" * 500)
        closed = [closed_by_server(x, 3 * HANDSHAKE_MS / 1000) for x in (silent, half, partial.sock)]
        waited = time.time() - t0
        check(all(closed) and waited >= HANDSHAKE_MS / 1000 * 0.9,
              f"silent, half-header and never-completed frames closed by the handshake timeout "
              f"({closed}, after {waited:.1f} s)")
        for x in (silent, half, partial.sock):
            x.close()

        # The per-IP limit: PER_IP connections from 127.0.0.12 work, the next is refused.
        held = []
        for i in range(PER_IP):
            h = TcpTurnClient(server, "x", "y", local=("127.0.0.12", 0))
            cls, _, _ = h.exchange(binding(bytes([i + 1]) * 12))
            held.append((h, cls))
        check(all(cls == 2 for _, cls in held), f"{PER_IP} connections from 127.0.0.12 are served")
        extra = raw_connection(server, ("127.0.0.12", 0))
        try:
            extra.sendall(binding())
        except OSError:
            pass
        check(closed_by_server(extra, 2), f"connection {PER_IP + 1} from 127.0.0.12 is closed unserved")
        extra.close()
        other = TcpTurnClient(server, "x", "y", local=("127.0.0.13", 0))
        check(other.exchange(binding())[0] == 2, "another IP is still served")
        other.sock.close()
        held[0][0].sock.close()
        time.sleep(0.3)
        again = TcpTurnClient(server, "x", "y", local=("127.0.0.12", 0))
        check(again.exchange(binding())[0] == 2, "after one closes, 127.0.0.12 gets a connection again")
        again.sock.close()

        # Idle: without an allocation closed after the idle timeout; with one, kept.
        idle = TcpTurnClient(server, "x", "y", local=("127.0.0.14", 0))
        idle.exchange(binding())
        busy = TcpTurnClient(server, "alice", "alice-pw", local=("127.0.0.14", 0))
        check(busy.allocate()[0] == 2, "an allocation over TCP from 127.0.0.14")
        t0 = time.time()
        check(idle.closed_by_server(3 * IDLE_MS / 1000) and time.time() - t0 >= IDLE_MS / 1000 * 0.6,
              f"a connection without an allocation is closed when idle ({time.time() - t0:.1f} s)")
        time.sleep(0.5)
        cls, _, _ = busy.request(sc.REFRESH, sc._attr(sc.A_LIFETIME, b"\0\0\x02\x58"))
        check(cls == 2, "the idle connection with an allocation is kept (Refresh answered)")

        # A client that never reads while a peer sends to it.
        slow = TcpTurnClient(server, "alice", "alice-pw", local=("127.0.0.15", 0), rcvbuf=4096)
        cls, _, attrs = slow.allocate()
        relayed = attrs.get(sc.A_RELAYED, b"")
        rport = struct.unpack("!H", relayed[2:4])[0] ^ (sc.COOKIE >> 16) if len(relayed) >= 8 else 0
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        cls2, _, _ = slow.create_permission("127.0.0.1", sender.getsockname()[1])
        check(cls == 2 and cls2 == 2 and rport > 0, f"a non-reading client allocates (relay port {rport})")
        mark = node.stats()
        payload = b"\xab" * 1000
        for i in range(4000):
            sender.sendto(payload, ("127.0.0.1", rport))
            if i % 200 == 199:
                time.sleep(0.01)
        sender.close()
        deadline = time.time() + 3
        s = node.stats()
        while s["tcp_send_cap_closed"] == mark["tcp_send_cap_closed"] and time.time() < deadline:
            time.sleep(0.1)
            s = node.stats()
        check(s["tcp_send_cap_closed"] > mark["tcp_send_cap_closed"],
              f"the non-reading client is disconnected at the send cap ({s['tcp_send_cap_closed']})")
        slow.sock.close()
        busy.sock.close()
        for h, _ in held[1:]:
            h.sock.close()

        for t in threads:
            t.join()
        lossless("background TCP client during the hostile streams", bg_tcp)
        lossless("background UDP client during the hostile streams", bg_udp)
        s = node.settled_stats()
        d = {k: s[k] - before[k] for k in s}
        check(d["tcp_drop_channel_before_stun"] >= 1 and d["tcp_drop_bad_magic_cookie"] >= 1
              and d["tcp_drop_not_turn"] >= 1,
              f"garbage counted (+{d['tcp_drop_channel_before_stun']} channel_before_stun, "
              f"+{d['tcp_drop_bad_magic_cookie']} bad_magic_cookie, +{d['tcp_drop_not_turn']} not_turn)")
        check(d["tcp_drop_stun_too_large"] >= 1 and d["tcp_drop_channel_too_large"] >= 1,
              f"64 KiB lengths counted (+{d['tcp_drop_stun_too_large']} STUN, "
              f"+{d['tcp_drop_channel_too_large']} ChannelData)")
        check(d["tcp_handshake_timeouts"] >= 3, f"handshake timeouts counted (+{d['tcp_handshake_timeouts']})")
        check(d["tcp_refused_per_ip"] >= 1, f"per-IP refusal counted (+{d['tcp_refused_per_ip']})")
        check(d["tcp_idle_timeouts"] >= 1, f"idle timeout counted (+{d['tcp_idle_timeouts']})")
        check(d["tcp_send_cap_closed"] >= 1, f"send cap counted (+{d['tcp_send_cap_closed']})")
        # The UDP uclient leaves its allocation to expire; every TCP one went with its connection.
        check(s["tcp_active"] == 0 and s["allocations"] <= 1,
              f"all closed at the end: {s['tcp_active']} connections, {s['allocations']} allocation(s) "
              f"(the UDP client's)")
        check(d["io_no_buffers"] == 0, f"no receive stalled for want of buffers (+{d['io_no_buffers']})")
    finally:
        node.stop()
        peer.terminate()
        peer.wait()

    # --listen-tcp off: no TCP listener at all.
    port2 = free_port()
    node2 = Node(a.ringlane, ["--io", a.io, "--listen", f"127.0.0.1:{port2}", "--listen-tcp", "off",
                              "--user", "alice:alice-pw", "--workers", "1",
                              "--relay-ports", f"{relay_lo + 100}-{relay_lo + 199}"], f"itest-tcp-off-{os.getpid()}")
    try:
        check("| TCP off |" in node2.text(), "--listen-tcp off: the log says TCP off")
        try:
            raw_connection(("127.0.0.1", port2), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        check(refused, "--listen-tcp off: a TCP connect is refused")
    finally:
        node2.stop()

    # Out of descriptors (EMFILE): the listener rests instead of spinning on accepts that fail at
    # once, and accepts again when descriptors come free.
    port3 = free_port()
    while not tcp_port_free(port3):
        port3 = free_port()
    # The limit is set before the node starts: io_uring reads it when an accept is armed.
    limit = 64
    node3 = Node(a.ringlane, ["--io", a.io, "--listen", f"127.0.0.1:{port3}", "--user", "alice:alice-pw",
                              "--workers", "1", "--tcp-max-per-ip", "0",
                              "--relay-ports", f"{relay_lo + 200}-{relay_lo + 299}"], f"itest-tcp-emfile-{os.getpid()}",
                 wrap=["prlimit", f"--nofile={limit}:{limit}"])
    held = []
    try:
        pid = node3.proc.pid
        free = limit - len([fd for fd in os.listdir(f"/proc/{pid}/fd") if int(fd) < limit])
        # More connections than descriptors left: the kernel completes them all into the backlog.
        for _ in range(free + 6):
            held.append(raw_connection(("127.0.0.1", port3), timeout=2))
        time.sleep(0.3)  # the first accepts fail; from here the listener rests between tries
        before, t0 = node3.stats(), time.time()
        time.sleep(1.5)  # the window the failed accepts are counted over
        after, elapsed = node3.stats(), time.time() - t0
        errors = after["tcp_accept_errors"] - before["tcp_accept_errors"]
        # One try per rest of 100 ms at most (and the stats page's 100 ms of lag either side).
        bound = int((elapsed + 0.2) * 10) + 2
        check(before["tcp_accept_errors"] >= 1, f"EMFILE: failed accepts are counted ({before['tcp_accept_errors']})")
        check(0 < errors <= bound, f"EMFILE: the listener rests between tries, no spin: {errors} failed "
                                   f"accepts in {elapsed:.1f} s (at most {bound})")
        for c in held:
            c.close()
        held = []
        time.sleep(0.5)
        try:
            probe = raw_connection(("127.0.0.1", port3), timeout=3)
            probe.sendall(binding(b"\x03" * 12))
            answer = probe.recv(20)
            probe.close()
        except OSError as e:
            answer = repr(e).encode()
        check(len(answer) == 20 and answer[:2] == b"\x01\x01",
              f"EMFILE: once descriptors are free again a new connection is accepted and answered ({answer[:4]!r})")
    finally:
        for c in held:
            c.close()
        node3.stop()
    return summary()


if __name__ == "__main__":
    sys.exit(main())
