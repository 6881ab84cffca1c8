#!/usr/bin/env python3
"""Relay benchmark: ringlane (uring, mmsg), coturn (one relay thread, default threads) and a
minimal recvmmsg->sendmmsg forwarder (the kernel floor), measured in the same run by the same
load generator. The server under test is pinned to CPU 0, the load generator to CPU 1.

For each target and phase (a fixed offered rate, then saturation) it records relayed
packets/s, server CPU-seconds (/proc/PID/stat), whole-machine busy CPU-seconds (/proc/stat:
loopback softirq work lands outside the process), and one-way latency p50/p99 through the
relay. Prints a table and writes JSON with a `ratios` object.

Legs (--legs, default all): `udp` (client -> peer, the targets above), `p2c` (UDP, peer ->
client: the relay prepends the ChannelData header), `tcp` and `tls` (each client one TCP or
TLS 1.3 connection, ChannelData framed and padded on the stream, relayed side UDP; coturn with
its UDP listener off), and `callgrind` (instructions per relayed packet on ringlane's worker,
uring and mmsg, under valgrind at a low fixed rate). ringlane's TLS leg runs only when
`ringlane run --help` lists --listen-tls and a TLS handshake to it succeeds; otherwise it is
reported as not available.

  bench/relay_bench.py --build build [--reps 3] [--seconds 3] [--rate 50000] [--flows 64]
                       [--legs udp,p2c,tcp,tls,callgrind]
"""
import argparse
import json
import os
import glob
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                pass


BINDING = bytes.fromhex("000100002112a442")


def stream_stun(port, tls, timeout=1.0):
    """One STUN Binding over TCP (or TLS, no certificate check): True when a STUN answer comes."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
            s = raw
            if tls:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.minimum_version = ssl.TLSVersion.TLSv1_3
                s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(BINDING + os.urandom(12))
            head = s.recv(20)
            return len(head) >= 4 and head[0] < 0x40
    except (OSError, ssl.SSLError):
        return False


def wait_stream_stun(port, tls, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stream_stun(port, tls):
            return True
        time.sleep(0.1)
    return False


def wait_udp_stun(port, timeout=10.0):
    """Waits until a STUN Binding on the port gets any answer (or, for the floor, the port is bound)."""
    req = BINDING + os.urandom(12)
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
    def __init__(self, name, cmd, port, ready="udp", timeout=10.0):
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        # taskset keeps every thread of the server on CPU 0.
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if ready == "bound":
            ok = self._wait_bound(port)
        elif ready == "udp":
            ok = wait_udp_stun(port, timeout)
        else:
            ok = wait_stream_stun(port, ready == "tls", timeout)
        if not ok:
            self.stop()
            raise RuntimeError(f"{name} did not start: {self.text()[-2000:]}")

    def text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

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


def make_cert(directory):
    """A self-signed ECDSA P-256 certificate for localhost, made with the openssl CLI."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def ringlane_has_tls(build):
    ringlane = os.path.join(build, "controlplane", "ringlane")
    out = subprocess.run([ringlane, "run", "--help"], capture_output=True, text=True, timeout=30)
    return "--listen-tls" in out.stdout + out.stderr


def targets(build, cert, key):
    """(name, leg, load generator args, readiness check, command for (port, peer_port, relay_lo)).

    Readiness: "udp" (a STUN answer on UDP), "tcp"/"tls" (one over a stream), "bound" (the floor).
    """
    ringlane = os.path.join(build, "controlplane", "ringlane")

    def node(*extra):
        return lambda port, peer_port, relay_lo: [
            ringlane, "dataplane", "--media-port", "0", "--listen", f"127.0.0.1:{port}", "--user", "bench:bench", "--realm", "bench",
            "--allow-peer", "127.0.0.0/8", "--workers", "1", "--cpus", "0", "--user-quota", "0",
            "--unauth-rate", "1000000", "--relay-ports", f"{relay_lo}-{relay_lo + 999}",
            "--tcp-max-per-ip", "4096", "--log-level", "warn", "--name", f"bench-{os.getpid()}"] + list(extra)

    def coturn(*extra, listeners=("--no-tcp", "--no-tls", "--no-dtls")):
        return lambda port, peer_port, relay_lo: [
            "turnserver", "-n", "--listening-ip", "127.0.0.1", "-p", str(port), "--relay-ip", "127.0.0.1",
            "--min-port", str(relay_lo), "--max-port", str(relay_lo + 999), "-a", "-u", "bench:bench",
            "-r", "bench", "--allow-loopback-peers", "--no-tcp-relay", *listeners,
            "--no-cli", "--no-stdout-log", "--log-file", "/dev/null", "--simple-log",
            "--pidfile", tempfile.mktemp(prefix="turnserver-", suffix=".pid")] + list(extra)

    def coturn_tls(port, peer_port, relay_lo):
        # The plain port (-p) gets no listener (--no-udp --no-tcp); TLS on `port`.
        return coturn("--relay-threads", "1", "--tls-listening-port", str(port), "--cert", cert, "--pkey", key,
                      listeners=("--no-udp", "--no-tcp", "--no-dtls"))(free_port(), peer_port, relay_lo)

    tls_node = ("--listen-tcp", "off", "--tls-cert", cert, "--tls-key", key)

    def listening(flag, make):
        return lambda port, peer_port, relay_lo: make(port, peer_port, relay_lo) + [flag, f"127.0.0.1:{port}"]

    floor = os.path.join(build, "bench", "kernel_floor")
    udp = ["--mode", "turn"]
    p2c = ["--mode", "turn", "--direction", "p2c"]
    tcp = ["--mode", "turn", "--transport", "tcp"]
    tls = ["--mode", "turn", "--transport", "tls"]
    # GSO is on by default: the baselines without it say so explicitly.
    return [
        ("ringlane_uring", "udp", udp, "udp", node("--io", "uring", "--gso", "off")),
        ("ringlane_mmsg", "udp", udp, "udp", node("--io", "mmsg", "--gso", "off")),
        ("ringlane_uring_gso", "udp", udp, "udp", node("--io", "uring", "--gso", "on")),
        ("ringlane_mmsg_gso", "udp", udp, "udp", node("--io", "mmsg", "--gso", "on")),
        ("ringlane_uring_zc", "udp", udp, "udp", node("--io", "uring", "--gso", "off", "--zerocopy", "on")),
        ("ringlane_uring_gso_zc", "udp", udp, "udp", node("--io", "uring", "--gso", "on", "--zerocopy", "on")),
        ("coturn_1thread", "udp", udp, "udp", coturn("--relay-threads", "1")),
        ("coturn_default", "udp", udp, "udp", coturn()),
        ("kernel_floor", "udp", ["--mode", "raw"], "bound",
         lambda port, peer_port, relay_lo: [floor, str(port), str(peer_port)]),
        ("p2c_ringlane_uring", "p2c", p2c, "udp", node("--io", "uring", "--gso", "off")),
        ("p2c_ringlane_mmsg", "p2c", p2c, "udp", node("--io", "mmsg", "--gso", "off")),
        ("p2c_coturn_1thread", "p2c", p2c, "udp", coturn("--relay-threads", "1")),
        ("tcp_ringlane_uring", "tcp", tcp, "tcp", listening("--listen-tcp", node("--io", "uring", "--gso", "off"))),
        ("tcp_ringlane_mmsg", "tcp", tcp, "tcp", listening("--listen-tcp", node("--io", "mmsg", "--gso", "off"))),
        ("tcp_ringlane_uring_gso", "tcp", tcp, "tcp", listening("--listen-tcp", node("--io", "uring", "--gso", "on"))),
        ("tcp_coturn_1thread", "tcp", tcp, "tcp", coturn("--relay-threads", "1",
                                                          listeners=("--no-udp", "--no-tls", "--no-dtls"))),
        ("tls_ringlane_uring", "tls", tls, "tls", listening("--listen-tls", node("--io", "uring", "--gso", "off", *tls_node))),
        ("tls_ringlane_mmsg", "tls", tls, "tls", listening("--listen-tls", node("--io", "mmsg", "--gso", "off", *tls_node))),
        ("tls_coturn_1thread", "tls", tls, "tls", coturn_tls),
    ]


def run_loadgen(build, port, peer_port, lg_args, pid, rate, a, flows=None, seconds=None, extra=()):
    seconds = a.seconds if seconds is None else seconds
    cmd = [os.path.join(build, "bench", "relay_loadgen"), "--server", f"127.0.0.1:{port}", *lg_args,
           "--user", "bench", "--pass", "bench", "--peer-port", str(peer_port), "--flows", str(flows or a.flows),
           "--size", str(a.size), "--rate", str(rate), "--seconds", str(seconds), "--server-pid", str(pid),
           "--cpu", "1", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
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


def callgrind_totals(pattern):
    """Ir per thread from callgrind's output files (one per thread with --separate-threads=yes)."""
    per_thread = []
    for path in sorted(glob.glob(pattern)):
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("totals:"):
                    per_thread.append(int(line.split()[1]))
                    break
    return per_thread


def callgrind_leg(a, make_node, io):
    """Instructions (valgrind's Ir, user space) per relayed packet: ringlane dataplane under
    callgrind with instrumentation off, turned on by the load generator after its flows are set
    up and off (then dumped, one file per thread) after the last packet has landed, so the window
    holds exactly the packets sent. The process is killed afterwards (under valgrind a worker
    blocked in io_uring_enter does not see SIGTERM)."""
    work = tempfile.mkdtemp(prefix=f"bench-callgrind-{io}-")
    port, peer_port = free_port(), free_port()
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
           f"--callgrind-out-file={work}/cg.out"] + make_node(port, peer_port, 40000)
    srv = Server(f"callgrind-{io}", cmd, port, "udp", timeout=90)
    try:
        ctl = f"callgrind_control {{}} {srv.proc.pid} >/dev/null"
        r = run_loadgen(a.build, port, peer_port, ["--mode", "turn"], srv.proc.pid, a.callgrind_rate, a,
                        flows=16, seconds=a.callgrind_packets / a.callgrind_rate,
                        extra=["--on-start", ctl.format("-i on"),
                               "--on-stop", ctl.format("-i off") + " && " + ctl.format("-d")])
        log = srv.text()
    finally:
        os.killpg(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
    per_thread = callgrind_totals(f"{work}/cg.out.*")
    shutil.rmtree(work, ignore_errors=True)
    fell_back = io == "uring" and "falling back to mmsg" in log
    rec = max(r["received"], 1)
    worker = max(per_thread) if per_thread else 0
    return {"io": io, "sent": r["sent"], "received": r["received"], "rate": a.callgrind_rate,
            "ir_worker": worker, "ir_all_threads": sum(per_thread), "threads": len(per_thread),
            "ir_per_packet_worker": worker / rec, "ir_per_packet_all": sum(per_thread) / rec,
            "fell_back_to_mmsg": fell_back}


def ktls_probe():
    """Whether this kernel can take TLS records off userspace (kTLS): the "tls" upper-layer
    protocol set on a connected TCP socket (what TLS_TX/TLS_RX need first). The issue asks for
    kTLS to be tried against userspace TLS; without the ULP there is nothing to measure."""
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            ulps = f.read().split()
    except OSError:
        ulps = []
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    c = socket.create_connection(lst.getsockname())
    s, _ = lst.accept()
    try:
        s.setsockopt(socket.IPPROTO_TCP, 31, b"tls")  # TCP_ULP
        ok, why = True, "TCP_ULP tls accepted"
    except OSError as e:
        ok, why = False, f"setsockopt(TCP_ULP, \"tls\"): {os.strerror(e.errno)} (the kernel has no CONFIG_TLS)"
    finally:
        for x in (s, c, lst):
            x.close()
    return {"available": ok, "why": why, "kernel": os.uname().release, "tcp_available_ulp": ulps}


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
    ap.add_argument("--legs", default="udp,p2c,tcp,tls,callgrind")
    ap.add_argument("--callgrind-packets", type=int, default=20000)
    ap.add_argument("--callgrind-rate", type=int, default=5000)
    a = ap.parse_args()
    legs = set(a.legs.split(","))

    certdir = tempfile.mkdtemp(prefix="bench-tls-")
    cert, key = make_cert(certdir)
    tls_help = ringlane_has_tls(a.build)
    unavailable = {}  # target -> why it was not measured
    ktls = ktls_probe()
    if not ktls["available"]:
        unavailable["tls_ringlane_ktls"] = (f"kTLS: {ktls['why']}; tcp_available_ulp: "
                                            f"{' '.join(ktls['tcp_available_ulp']) or 'none'}")
    else:
        unavailable["tls_ringlane_ktls"] = "the kernel has kTLS, but ringlane has no kTLS path to compare yet"
    phases = [("fixed", a.rate), ("saturation", 0)]
    results = {}
    all_targets = targets(a.build, cert, key)
    for rep in range(a.reps):
        for name, leg, lg_args, ready, make_cmd in all_targets:
            if leg not in legs or name in unavailable or (a.only and name not in a.only.split(",")):
                continue
            if leg == "tls" and name.startswith("tls_ringlane") and not tls_help:
                unavailable[name] = "`ringlane run --help` does not list --listen-tls"
                continue
            port, peer_port = free_port(), free_port()
            relay_lo = 30000 + (rep * 1000) % 10000
            try:
                srv = Server(name, make_cmd(port, peer_port, relay_lo), port, ready)
            except RuntimeError as e:
                if leg != "tls" or not name.startswith("tls_ringlane"):
                    raise
                unavailable[name] = f"no TLS handshake: {str(e).splitlines()[-1][:200]}"
                continue
            try:
                for phase, rate in phases:
                    r = derive(run_loadgen(a.build, port, peer_port, lg_args, srv.proc.pid, rate, a))
                    results.setdefault(name, {}).setdefault(phase, []).append(r)
                    tls_note = f" {r['tls_version']} {r['tls_cipher']}" if r.get("tls_version") else ""
                    print(f"rep {rep + 1} {name:22s} {phase:10s} {r['pps']:>9.0f} pps "
                          f"{r['pkts_per_server_cpu_s']:>10.0f} pkt/server-cpu-s "
                          f"p50 {r['lat_p50_us']:.0f}us p99 {r['lat_p99_us']:.0f}us loss {r['loss']:.4f}{tls_note}",
                          flush=True)
            finally:
                srv.stop()
            time.sleep(0.3)
    shutil.rmtree(certdir, ignore_errors=True)

    callgrind = {}
    if "callgrind" in legs:
        if shutil.which("valgrind") is None:
            unavailable["callgrind"] = "valgrind is not installed (tools/dev bench installs it)"
        else:
            node_cmd = {n: c for n, _, _, _, c in all_targets}
            for io in ("uring", "mmsg"):
                callgrind[io] = c = callgrind_leg(a, node_cmd[f"ringlane_{io}"], io)
                print(f"callgrind {io:6s} {c['received']} of {c['sent']} packets relayed, "
                      f"{c['ir_per_packet_worker']:.0f} Ir/packet on the worker thread, "
                      f"{c['ir_per_packet_all']:.0f} over all {c['threads']} threads"
                      + (" (io_uring refused under valgrind: ran mmsg)" if c["fell_back_to_mmsg"] else ""),
                      flush=True)

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
        for leg in ("p2c", "tcp", "tls"):
            for io in ("uring", "mmsg"):
                ratios[f"{leg}_{io}_vs_coturn{suffix}"] = ratio(f"{leg}_ringlane_{io}", f"{leg}_coturn_1thread",
                                                               phase, "pkts_per_server_cpu_s")
            ratios[f"{leg}_uring_vs_mmsg{suffix}"] = ratio(f"{leg}_ringlane_uring", f"{leg}_ringlane_mmsg", phase,
                                                          "pkts_per_server_cpu_s")
        for leg in ("tcp", "tls"):
            ratios[f"{leg}_vs_udp_uring{suffix}"] = ratio(f"{leg}_ringlane_uring", "ringlane_uring", phase,
                                                         "pkts_per_server_cpu_s")
            ratios[f"{leg}_vs_udp_coturn{suffix}"] = ratio(f"{leg}_coturn_1thread", "coturn_1thread", phase,
                                                          "pkts_per_server_cpu_s")
    if callgrind.get("uring") and callgrind.get("mmsg"):
        ratios["callgrind_ir_uring_vs_mmsg"] = (callgrind["uring"]["ir_per_packet_worker"]
                                                / max(callgrind["mmsg"]["ir_per_packet_worker"], 1))

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
    for name, why in unavailable.items():
        print(f"{name:22s}not available: {why}")
    print()
    for k, v in ratios.items():
        print(f"{k:40s} {v:.3f}" if v is not None else f"{k:40s} n/a")
    for io, c in callgrind.items():
        print(f"{'callgrind_ir_per_packet_' + io:40s} {c['ir_per_packet_worker']:.0f}")

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"config": vars(a), "summary": summary, "runs": results, "ratios": ratios,
                   "callgrind": callgrind, "not_available": unavailable, "ktls": ktls,
                   "kernel": os.uname().release, "cpus": os.cpu_count()}, f, indent=1)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
