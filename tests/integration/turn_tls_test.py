#!/usr/bin/env python3
"""TURN over TLS (RFC 8656 §3.1, `turns:`) against coturn's own clients, over real sockets on
loopback.

Starts `ringlane dataplane` with the chosen io backend, a TLS listener (a certificate this test
makes with the openssl command) beside the UDP and TCP ones and short limits, then:
  - turnutils_uclient -t -S (TLS) with turnutils_peer: channels, Send/Data indications, static
    user and REST secret, an IPv6 relay over ::1, 1000-byte payloads: nothing lost;
  - hostile TLS streams, while a well-behaved TLS uclient relays in the background without
    loss: garbage before the ClientHello, a ClientHello flood (connections that send one and
    stall), a silent connection, a half-closed one, a handshake left one flight short, a
    plain STUN client on the TLS port, and a handshake flood from one IP (refused at the accept
    past --tcp-accept-rate). Each one is closed and counted;
  - a close of the server's (the idle timeout) sends close_notify;
  - SIGHUP reload: a TLS connection made before it keeps working after it, a new one sees the
    new certificate (its SHA-256 fingerprint), a broken file keeps the old one;
  - --listen-tls without a certificate is refused at start.

Usage: turn_tls_test.py --ringlane PATH --io uring|mmsg
Exit 77 (skipped) when --io uring was asked for but the kernel refused io_uring.
"""
import argparse
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stun_client as sc  # noqa: E402
from stun_tcp_client import TcpTurnClient, closed_by_server, raw_connection  # noqa: E402
from testlib import check, free_port, summary  # noqa: E402
from turn_relay_test import Node, relay_case, uclient  # noqa: E402
from turn_tcp_test import binding, lossless, tcp_port_free  # noqa: E402

HANDSHAKE_MS = 1500
IDLE_MS = 4000
PER_IP = 8
ACCEPT_RATE = 20  # new connections per IP per second, bursts of 40
FLOOD_IPS = ["127.0.0.20", "127.0.0.21", "127.0.0.22"]  # PER_IP stalled handshakes each


def make_cert(path, key, cn):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", path, "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
                   check=True, capture_output=True)


def pem_fingerprint(path):
    with open(path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def client_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["stun.turn"])
    return ctx


class TlsTurnClient(TcpTurnClient):
    """The independent TCP client of stun_tcp_client.py with TLS under it (verifying the
    server's certificate against `cafile`, SNI localhost)."""

    def __init__(self, server, user, password, cafile, local=None, timeout=2.0):
        super().__init__(server, user, password, local=local, timeout=timeout)
        self.sock = client_context(cafile).wrap_socket(self.sock, server_hostname="localhost")
        self.sock.settimeout(timeout)

    def fingerprint(self):
        return hashlib.sha256(self.sock.getpeercert(binary_form=True)).hexdigest()


def client_hello():
    """The first flight of a real TLS client (Python's ssl on memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, incoming, outgoing


def read_some(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(65536)
    except (socket.timeout, OSError):
        return b""


def background(args, port, out):
    out["text"] = uclient(args, port, "127.0.0.1", timeout=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--io", choices=["uring", "mmsg"], required=True)
    a = ap.parse_args()

    if shutil.which("openssl") is None or shutil.which("turnutils_uclient") is None:
        print("SKIP: needs the openssl command and coturn's turnutils")
        return 77
    work = tempfile.mkdtemp(prefix="ringlane-tls-test-")
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    make_cert(cert, key, "first")
    first_fp = pem_fingerprint(cert)
    ca_first = os.path.join(work, "first.pem")
    shutil.copy(cert, ca_first)

    port = free_port()
    while not tcp_port_free(port):
        port = free_port()
    tport = free_port()
    while not tcp_port_free(tport) or tport == port:
        tport = free_port()
    peer_port = free_port()
    relay_lo = 30000 + (os.getpid() % 100) * 100
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-L", "::1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    node = Node(a.ringlane, ["--io", a.io, "--listen", f"127.0.0.1:{port}", "--listen", f"[::1]:{port}",
                             "--listen-tls", f"127.0.0.1:{tport}", "--listen-tls", f"[::1]:{tport}",
                             "--tls-cert", cert, "--tls-key", key,
                             "--user", "alice:alice-pw", "--rest-secret", "s3cret",
                             "--allow-peer", "127.0.0.0/8", "--allow-peer", "::1", "--workers", "2",
                             "--relay-ports", f"{relay_lo}-{relay_lo + 99}", "--user-quota", "0",
                             "--tcp-max-per-ip", str(PER_IP), "--tcp-handshake-timeout", str(HANDSHAKE_MS),
                             "--tcp-idle-timeout", str(IDLE_MS), "--tcp-accept-rate", str(ACCEPT_RATE)],
                f"itest-tls-{a.io}-{os.getpid()}")
    server = ("127.0.0.1", tport)
    try:
        text = node.text()
        if a.io == "uring" and "falling back to mmsg" in text:
            print("SKIP: io_uring unavailable here")
            return 77
        check(f"io {a.io}" in text and f"TLS 127.0.0.1:{tport}, [::1]:{tport}" in text,
              f"workers run {a.io} and listen on TLS 127.0.0.1:{tport} and [::1]:{tport}")

        print(f"== coturn clients over TLS against ringlane --io {a.io}")
        p = ["-t", "-S", "-e", "127.0.0.1", "-r", str(peer_port)]
        total = 0
        total += relay_case("TLS: channels + RTCP pairs", tport, "127.0.0.1",
                            p + ["-u", "alice", "-w", "alice-pw"], 40, 1)
        total += relay_case("TLS: Send/Data indications", tport, "127.0.0.1",
                            p + ["-s", "-c", "-u", "alice", "-w", "alice-pw"], 40, 2)
        total += relay_case("TLS: REST credentials, channels", tport, "127.0.0.1",
                            p + ["-c", "-W", "s3cret", "-u", "carol"], 40, 2)
        total += relay_case("TLS: REST credentials, Send indications", tport, "127.0.0.1",
                            p + ["-s", "-c", "-W", "s3cret", "-u", "carol"], 30, 2)
        total += relay_case("TLS: IPv6 relay over ::1", tport, "::1",
                            ["-t", "-S", "-x", "-c", "-e", "::1", "-r", str(peer_port), "-u", "alice", "-w",
                             "alice-pw"], 30, 2)
        total += relay_case("TLS: 1000-byte payloads (records straddle receives)", tport, "127.0.0.1",
                            p + ["-c", "-l", "1000", "-u", "alice", "-w", "alice-pw"], 40, 2)
        s = node.settled_stats()
        check(s["tls_handshakes"] >= 9 and s["tls_handshake_failures"] == 0 and s["tls_failures"] == 0,
              f"counted: {s['tls_accepted']} TLS connections, {s['tls_handshakes']} handshakes, "
              f"{s['tls_handshake_failures']} failed, {s['tls_old_protocol']} refused for TLS < 1.2 "
              f"(coturn's uclient tries old versions at random, then retries)")
        check(s["tcp_channel_frames"] > 0 and s["relayed_to_client"] >= total,
              f"{s['tcp_channel_frames']} ChannelData frames over TLS, {s['relayed_to_client']} relayed to clients")
        check(s["allocations"] == 0 and s["tcp_active"] == 0,
              f"the clients gone, no allocation and no connection is left ({s['allocations']}, {s['tcp_active']})")

        # An independent client: Python's ssl, verifying the certificate (SAN 127.0.0.1 / localhost).
        c = TlsTurnClient(server, "alice", "alice-pw", ca_first, local=("127.0.0.3", 0))
        cls, _, attrs = c.allocate()
        check(cls == 2 and sc.A_RELAYED in attrs and c.fingerprint() == first_fp,
              f"Python ssl ({c.sock.version()}): Allocate over TLS, certificate verified")
        c.sock.close()
        c12 = TcpTurnClient(server, "x", "y", local=("127.0.0.3", 0))
        ctx12 = client_context(ca_first)
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        c12.sock = ctx12.wrap_socket(c12.sock, server_hostname="localhost")
        check(c12.exchange(binding())[0] == 2 and c12.sock.version() == "TLSv1.2",
              "a TLS 1.2 client gets its Binding answered")
        c12.sock.close()

        print("== hostile TLS streams, while a TLS client keeps relaying")
        bg = {}
        thread = threading.Thread(target=background,
                                  args=(p + ["-c", "-n", "400", "-m", "1", "-u", "alice", "-w", "alice-pw"],
                                        tport, bg))
        thread.start()
        time.sleep(0.5)
        before = node.stats()

        # Garbage before the ClientHello.
        for junk, what in ((b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "an HTTP request"),
                           (b"\x16\x03\x01\x00\x05hello", "a TLS record header with junk"),
                           (binding(), "a plain STUN Binding (a TCP client on the TLS port)"),
                           (b"\xff" * 64, "0xFF bytes")):
            g = raw_connection(server, ("127.0.0.10", 0))
            g.sendall(junk)
            check(closed_by_server(g, 2), f"{what} before the ClientHello: closed at once")
            g.close()

        # A ClientHello flood: connections that send one and stall.
        t0 = time.time()
        flood = []
        for ip in FLOOD_IPS:
            for _ in range(PER_IP):
                f = raw_connection(server, (ip, 0))
                f.sendall(client_hello()[2].read())
                flood.append(f)
        answered = sum(1 for f in flood if read_some(f, 2))
        check(answered == len(flood), f"{len(flood)} stalled ClientHellos from {len(FLOOD_IPS)} IPs all answered "
                                      f"({answered})")
        # A silent (half-open) connection, one half-closed after its ClientHello, and a handshake
        # left one flight short (the client's Finished never sent).
        silent = raw_connection(server, ("127.0.0.11", 0))
        halfclosed = raw_connection(server, ("127.0.0.11", 0))
        halfclosed.sendall(client_hello()[2].read())
        halfclosed.shutdown(socket.SHUT_WR)
        obj, incoming, outgoing = client_hello()
        short = raw_connection(server, ("127.0.0.11", 0))
        short.sendall(outgoing.read())
        deadline = time.time() + 3
        while time.time() < deadline:
            incoming.write(read_some(short, 0.5))
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                continue
        finished = outgoing.read()
        check(len(finished) > 0, f"the short handshake's client is done and holds its Finished ({len(finished)} B)")
        check(closed_by_server(halfclosed, 2), "half-closed after a ClientHello: closed at the EOF")
        check(all(closed_by_server(x, 3 * HANDSHAKE_MS / 1000) for x in flood + [silent, short]),
              "the flood, the silent connection and the short handshake are closed by the handshake timeout")
        waited = time.time() - t0
        check(waited >= HANDSHAKE_MS / 1000 * 0.9, f"... not before it ({waited:.1f} s)")
        for x in flood + [silent, short, halfclosed]:
            x.close()
        other = TlsTurnClient(server, "x", "y", ca_first, local=("127.0.0.20", 0))
        check(other.exchange(binding())[0] == 2, "a flooding IP gets served again once its stalled ones are gone")
        other.sock.close()
        # A handshake flood: one IP opens connections as fast as it can, each sending a
        # ClientHello (a key exchange and a signature for the server) and closing. Past the
        # burst the IP's new connections are refused at the accept, before any TLS work.
        hello = client_hello()[2].read()
        st = node.stats()
        rate_before, per_ip_before = st["tcp_refused_rate"], st["tcp_refused_per_ip"]
        t1 = time.time()
        refused = 0
        for _ in range(150):
            h = raw_connection(server, ("127.0.0.30", 0))
            try:
                h.sendall(hello)
                refused += not read_some(h, 1)
            except OSError:
                refused += 1
            h.close()
        spent = time.time() - t1
        # (each worker reads its clock once per loop turn, and the two share the buckets: a
        # worker's clock ahead of the other's by up to a turn refills a few more)
        allowed = 2 * ACCEPT_RATE + ACCEPT_RATE * (spent + 0.25)
        st = node.settled_stats()
        counted = st["tcp_refused_rate"] - rate_before
        # (one whose earlier connection the server has not seen closed yet may meet the per-IP
        # limit first)
        per_ip = st["tcp_refused_per_ip"] - per_ip_before
        check(counted > 0 and counted + per_ip >= 150 - allowed - 1 and refused >= (counted + per_ip) * 0.9,
              f"150 handshakes from one IP in {spent:.1f} s: {counted} refused at the accept "
              f"(rate {ACCEPT_RATE}/s, bursts of {2 * ACCEPT_RATE}), {refused} got no ServerHello")
        time.sleep(1)
        again = TlsTurnClient(server, "x", "y", ca_first, local=("127.0.0.30", 0))
        check(again.exchange(binding())[0] == 2, "... served again once its bucket refills")
        again.sock.close()
        # Garbage inside the session: a record that does not decrypt.
        bad = TlsTurnClient(server, "x", "y", ca_first, local=("127.0.0.12", 0))
        bad.exchange(binding())
        # Raw bytes on the same TCP connection, under the session's back.
        plain = socket.socket(fileno=os.dup(bad.sock.fileno()))
        plain.sendall(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
        check(closed_by_server(plain, 2), "an application record that does not decrypt: closed")
        plain.close()
        bad.sock.close()

        thread.join()
        lossless("background TLS client during the hostile streams", bg)
        s = node.settled_stats()
        d = {k: s[k] - before[k] for k in s}
        check(d["tls_handshake_failures"] >= 4, f"garbage before the handshake counted "
                                                 f"(+{d['tls_handshake_failures']} handshake failures)")
        check(d["tls_handshake_timeouts"] >= len(flood) + 2,
              f"stalled handshakes counted (+{d['tls_handshake_timeouts']} TLS handshake timeouts)")
        check(d["tls_failures"] >= 1, f"the bad record counted (+{d['tls_failures']})")
        check(d["tcp_closed_by_peer"] >= 1, f"the half-closed one counted as closed by the peer "
                                            f"(+{d['tcp_closed_by_peer']})")
        check(s["tcp_active"] == 0 and s["allocations"] == 0,
              f"all closed at the end: {s['tcp_active']} connections, {s['allocations']} allocations")

        print("== a close of ours is announced with close_notify")
        before = node.stats()
        idle = client_context(ca_first).wrap_socket(raw_connection(server, ("127.0.0.15", 0)),
                                                    server_hostname="localhost", suppress_ragged_eofs=False)
        idle.sendall(binding())
        idle.settimeout(2)
        check(len(idle.recv(2048)) > 20, "a TLS client without an allocation gets its Binding answered")
        t2 = time.time()
        idle.settimeout(IDLE_MS / 1000 + 5)
        try:
            end = "close_notify" if idle.recv(2048) == b"" else "data"
        except ssl.SSLEOFError:
            end = "EOF without close_notify"
        except (OSError, ssl.SSLError) as e:
            end = f"{type(e).__name__}"
        waited = time.time() - t2
        check(end == "close_notify" and waited >= IDLE_MS / 1000 * 0.9,
              f"closed by the idle timeout after {waited:.1f} s with {end}")
        idle.close()
        s = node.settled_stats()
        check(s["tls_close_notify_sent"] - before["tls_close_notify_sent"] >= 1 and
              s["tcp_idle_timeouts"] - before["tcp_idle_timeouts"] >= 1,
              f"counted: +{s['tls_close_notify_sent'] - before['tls_close_notify_sent']} close_notify sent, "
              f"+{s['tcp_idle_timeouts'] - before['tcp_idle_timeouts']} idle timeouts")

        print("== certificate reload on SIGHUP")
        old = TlsTurnClient(server, "alice", "alice-pw", ca_first, local=("127.0.0.13", 0))
        check(old.allocate()[0] == 2 and old.fingerprint() == first_fp, "a connection before the reload")
        staging_cert, staging_key = os.path.join(work, "new.pem"), os.path.join(work, "new.key")
        make_cert(staging_cert, staging_key, "second")
        second_fp = pem_fingerprint(staging_cert)
        os.replace(staging_key, key)
        os.replace(staging_cert, cert)
        mark = node.text().count("TLS certificate reloaded")
        node.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while node.text().count("TLS certificate reloaded") == mark and time.time() < deadline:
            time.sleep(0.05)
        check(node.text().count("TLS certificate reloaded") > mark, "the node logs the reload")
        new = TlsTurnClient(server, "x", "y", cert, local=("127.0.0.14", 0))
        check(new.exchange(binding())[0] == 2 and new.fingerprint() == second_fp != first_fp,
              "a new connection sees the new certificate")
        new.sock.close()
        cls, _, _ = old.request(sc.REFRESH, sc._attr(sc.A_LIFETIME, b"\0\0\x02\x58"))
        check(cls == 2, "the connection from before the reload goes on (Refresh answered over it)")
        relay_case("TLS after the reload", tport, "127.0.0.1", p + ["-c", "-u", "alice", "-w", "alice-pw"],
                           20, 1)
        # A broken file: the reload fails, the working certificate stays.
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbroken\n")
        mark = node.text().count("keeping the certificate")
        node.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while node.text().count("keeping the certificate") == mark and time.time() < deadline:
            time.sleep(0.05)
        check(node.text().count("keeping the certificate") > mark, "a broken certificate file: reload refused, logged")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(raw_connection(server, ("127.0.0.14", 0)), server_hostname="localhost") as t:
            got = hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()
        check(got == second_fp, "... and new connections still get the second certificate")
        old.sock.close()
    finally:
        node.stop()
        peer.terminate()
        peer.wait()

    # --listen-tls without a certificate: refused at start.
    port2 = free_port()
    r = subprocess.run([a.ringlane, "dataplane", "--name", f"itest-tls-nocert-{os.getpid()}", "--media-port", "0",
                        "--io", a.io, "--listen", f"127.0.0.1:{port2}", "--listen-tls", f"127.0.0.1:{port2}",
                        "--workers", "1"], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "--listen-tls needs a certificate" in r.stdout + r.stderr,
          f"--listen-tls without a certificate: refused (exit {r.returncode})")
    shutil.rmtree(work, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
