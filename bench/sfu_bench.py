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

The cost of adaptation (issue 9): the same fan-out (--adaptive) with `sfu_load --simulcast` (three
VP8 layers per publisher, transport-cc feedback from every subscriber, so the estimator, probing
and the layer allocation run) against plain, uring, interleaved twice: `sfu_adaptation_cost` is
the ratio of CPU per subscriber stream (target <= 1.2). Then `--simulcast --switch-every 1` at
--switch-n: every subscriber asks for the lowest, then the highest layer, every second, and the
tool times each request to the first packet of that layer (which the server sends only from a
keyframe): `sfu_layer_switch_*_ms`.

`--janus` adds, in the same run, Debian's Janus (VideoRoom plugin, HTTP transport, ICE-lite; a
config written here, one process pinned to CPU 0) driven by the same tool (`sfu_load --janus`,
CPU 1) with the same loads, and a saturation ladder (raising the video rate at one fan-out until
each server loses packets). Janus has no stats page, so for `sfu_vs_janus` both servers' egress
is what the tool's subscribers received of the window's packets (distinct, decrypted, intact),
over the server process's CPU. Janus's libnice does not gather on loopback interfaces, so Janus
and its load run in a network namespace made here whose interfaces are lo and a veth pair (the
address Janus gathers on is local, so its packets go through that namespace's lo, as
ringlane's do through the host's).

  bench/sfu_bench.py --build build [--seconds 5] [--fanout 1,10,50,200] [--meeting 4,10]
                     [--io uring,mmsg] [--video-kbps 1000] [--out bench/out/sfu.json]
                     [--adaptive 50] [--switch-n 10] [--switch-seconds 20]
                     [--janus [--janus-reference 50] [--janus-loops 0,1] [--saturate-n 200]
                              [--saturate-kbps 250,500,1000,2000,4000,8000] [--saturate-loss 0.01]]
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


def stop_group(proc):
    """SIGTERM to a server's process group (its own session), SIGKILL after 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


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
        stop_group(self.proc)


JANUS_LIB = "/usr/lib/x86_64-linux-gnu/janus"
NETNS_PREFIX = "sfubench-janus"


def netns_cleanup_stale():
    """Namespaces left by killed runs (their owner pid gone) go first."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        ns = line.split(" ")[0]
        owner = ns[len(NETNS_PREFIX) + 1:]
        if ns.startswith(NETNS_PREFIX + "-") and owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            netns_delete(ns)


def netns_delete(ns):
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class JanusNet:
    """A network namespace of our own: lo, and a veth pair (both ends inside) whose first end
    holds the one address Janus gathers on. Nothing in it reaches outside."""

    def __init__(self):
        netns_cleanup_stale()
        self.ns = f"{NETNS_PREFIX}-{os.getpid()}"
        self.ip = "10.77.0.1"
        self.dev = "rlj0"
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        try:
            for cmd in (["ip", "link", "set", "lo", "up"],
                        ["ip", "link", "add", self.dev, "type", "veth", "peer", "name", "rlj1"],
                        ["ip", "addr", "add", f"{self.ip}/24", "dev", self.dev],
                        ["ip", "link", "set", self.dev, "up"], ["ip", "link", "set", "rlj1", "up"]):
                subprocess.run(["ip", "netns", "exec", self.ns] + cmd, check=True, capture_output=True)
        except subprocess.CalledProcessError:
            self.close()
            raise

    def exec(self):
        return ["ip", "netns", "exec", self.ns]

    def close(self):
        netns_delete(self.ns)


def janus_version():
    out = subprocess.run(["janus", "--help"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Janus version")), "?")


class JanusNode:
    """Debian's janus with a config written here: ICE-lite, half-trickle, no 1:1 NAT, gathering
    only on the namespace's veth address, the VideoRoom plugin and the HTTP transport alone
    (plugin/transport folders holding only those), no event handlers or loggers; pinned to CPU 0."""

    def __init__(self, net, tag, loops=0):
        self.net = net
        self.tmp = tempfile.mkdtemp(prefix="sfu-bench-janus-")
        self.port = free_port(socket.SOCK_STREAM)  # inside the namespace every port is free
        self.url = f"http://127.0.0.1:{self.port}/janus"
        self.log = os.path.join(self.tmp, "janus.log")
        conf, plugins, transports, empty = (os.path.join(self.tmp, d) for d in ("conf", "plugins", "transports", "none"))
        for d in (conf, plugins, transports, empty):
            os.makedirs(d)
        os.symlink(f"{JANUS_LIB}/plugins/libjanus_videoroom.so", os.path.join(plugins, "libjanus_videoroom.so"))
        os.symlink(f"{JANUS_LIB}/transports/libjanus_http.so", os.path.join(transports, "libjanus_http.so"))
        with open(os.path.join(conf, "janus.jcfg"), "w") as f:
            f.write(f"""general: {{
  configs_folder = "{conf}"
  plugins_folder = "{plugins}"
  transports_folder = "{transports}"
  events_folder = "{empty}"
  loggers_folder = "{empty}"
  debug_level = 4
  session_timeout = 60
  server_name = "sfubench-{tag}"
{f"  event_loops = {loops}" if loops else ""}
}}
certificates: {{
}}
media: {{
  ipv6 = false
}}
nat: {{
  ice_lite = true
  full_trickle = false
  ice_tcp = false
  ice_enforce_list = "{net.dev}"
  nice_debug = false
}}
plugins: {{
}}
transports: {{
}}
loggers: {{
}}
events: {{
  broadcast = false
}}
""")
        with open(os.path.join(conf, "janus.transport.http.jcfg"), "w") as f:
            f.write(f"""general: {{
  json = "compact"
  base_path = "/janus"
  http = true
  port = {self.port}
  ip = "127.0.0.1"
  https = false
}}
admin: {{
  admin_http = false
  admin_https = false
}}
""")
        with open(os.path.join(conf, "janus.plugin.videoroom.jcfg"), "w") as f:
            f.write("general: {\n}\n")
        self.proc = subprocess.Popen(
            net.exec() + ["taskset", "-c", "0", "janus", "-C", os.path.join(conf, "janus.jcfg"), "-F", conf, "-o"],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            text = open(self.log).read()
            if "JANUS REST (HTTP/HTTPS) transport plugin initialized" in text and "VideoRoom plugin initialized" in text:
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError(f"janus did not start: {open(self.log).read()[-2000:]}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"janus exited: {open(self.log).read()[-2000:]}")
        self.pid = self.proc.pid  # ip netns exec and taskset exec: this is janus itself
        with open(f"/proc/{self.pid}/comm") as f:
            assert f.read().strip() == "janus"

    def stop(self):
        stop_group(self.proc)


def janus_snapshot(j):
    return {"t": time.monotonic(), "cpu_s": proc_cpu_s(j.pid), "run_s": proc_run_s(j.pid),
            "machine_s": machine_busy_s(), "rss_kib": proc_rss_kib(j.pid)}


ONE_PUBLISHER = ("fanout", "simulcast", "switch")
# What sfu_load adds for a kind: simulcast (three VP8 layers, transport-cc feedback, so the
# server's estimator and layer allocation run), and layer requests timed on top of it.
LOAD_ARGS = {"simulcast": ["--simulcast"], "switch": ["--simulcast", "--switch-every", "1"]}


def drive_load(a, prefix, server_args, kind, n, kbps, take, tmp):
    """Runs sfu_load (CPU 1) for one configuration; take() samples the server at the window's
    start and stop. Returns (tool summary, start sample, stop sample)."""
    participants, publishers = (n + 1, 1) if kind in ONE_PUBLISHER else (n, n)
    out_json = os.path.join(tmp, "load.json")
    cmd = prefix + ["taskset", "-c", "1", os.path.join(a.build, "tools", "sfu_load")] + server_args + [
        "--participants", str(participants), "--publishers", str(publishers), "--seconds", str(a.seconds),
        "--video-kbps", str(kbps), "--setup-timeout", str(a.setup_timeout), "--room", f"bench-{kind}{n}",
        "--json", out_json] + LOAD_ARGS.get(kind, [])
    if kind == "switch":
        cmd[cmd.index("--seconds") + 1] = str(a.switch_seconds)
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = stop = None
    lines = []
    deadline = time.time() + a.seconds + a.setup_timeout + 60
    for line in load.stdout:
        lines.append(line.rstrip())
        if line.startswith("sfu_load: window start"):
            start = take()
        elif line.startswith("sfu_load: window stop"):
            stop = take()
        if time.time() > deadline:
            load.kill()
            break
    load.wait(timeout=30)
    if start is None or stop is None or not os.path.exists(out_json):
        raise RuntimeError(f"sfu_load did not finish its window: {lines[-10:]}")
    return json.load(open(out_json)), start, stop


def tool_received(tool):
    """Distinct intact packets the subscribers received of what was sent in the window."""
    return tool["received"]["audio"] + tool["received"]["video"]


def janus_name(loops):
    return "janus" if not loops else f"janus-l{loops}"


def run_janus(a, net, kind, n, kbps=None, loops=0):
    """Janus with its default threading (a loop thread per handle), or `loops` shared event loops
    (janus.jcfg event_loops)."""
    kbps = kbps or a.video_kbps
    participants, publishers = (n + 1, 1) if kind == "fanout" else (n, n)
    j = JanusNode(net, f"{kind}{n}", loops)
    try:
        idle = janus_snapshot(j)
        tool, start, stop = drive_load(a, net.exec(), ["--janus", j.url, "--media-ip", net.ip], kind, n, kbps,
                                       lambda: janus_snapshot(j), j.tmp)
    finally:
        j.stop()
    window = stop["t"] - start["t"]
    cpu = stop["cpu_s"] - start["cpu_s"]
    rx = tool_received(tool)
    streams = tool["streams_expected"]
    return {
        "server": janus_name(loops), "io": janus_name(loops), "event_loops": loops, "kind": kind, "n": n, "participants": participants,
        "publishers": publishers, "video_kbps": kbps, "window_s": window, "subscriber_streams": streams,
        "setup_complete": tool["setup_complete"], "setup_s": tool["setup_s"],
        "tool_received": rx, "tool_expected": tool["expected"]["audio"] + tool["expected"]["video"],
        "egress_pps": rx / window if window > 0 else 0,
        "server_cpu_s": cpu, "server_cpu_fraction": cpu / window if window > 0 else 0,
        "server_run_s_schedstat": stop["run_s"] - start["run_s"],
        "machine_busy_s": stop["machine_s"] - start["machine_s"],
        "pkts_per_server_cpu_s": rx / cpu if cpu > 0 else 0,
        "pkts_per_server_cpu_s_tool": rx / cpu if cpu > 0 else 0,
        "pkts_per_server_run_s_tool": (rx / (stop["run_s"] - start["run_s"])
                                       if stop["run_s"] > start["run_s"] else 0),
        "cpu_ms_per_s_per_stream": 1000 * cpu / window / streams if window > 0 and streams else 0,
        # The same from schedstat (ns): a light load's few CPU ticks make the 10 ms ticks coarse.
        "cpu_ms_per_s_per_stream_schedstat": (1000 * (stop["run_s"] - start["run_s"]) / window / streams
                                              if window > 0 and streams else 0),
        "rss_idle_kib": idle["rss_kib"], "rss_kib": stop["rss_kib"],
        "rss_bytes_per_participant": (stop["rss_kib"] - idle["rss_kib"]) * 1024 / participants,
        "connect_p95_ms_dataplane": None,
        "connect_p95_ms_tool": tool["connect_ms"]["ice_dtls"]["p95"],
        "connect_p50_ms_tool": tool["connect_ms"]["ice_dtls"]["p50"],
        "latency_p50_us": tool["latency_us"]["all"]["p50"], "latency_p99_us": tool["latency_us"]["all"]["p99"],
        "latency_max_us": tool["latency_us"]["all"]["max"],
        "loss": tool["loss"]["all"], "integrity_failures": tool["integrity_failures"],
        "header_mismatches": tool["header_mismatches"], "sequence_offset_changes": tool["sequence_offset_changes"],
        "unknown_ssrc": tool["unknown_ssrc"], "nacks_received": tool["nacks_received"],
        "plis_received": tool["plis_received"],
        "out_of_order": tool["out_of_order"], "streams": f"{tool['streams_flowing']}/{tool['streams_expected']}",
        "tool_cpu_fraction": tool["tool_cpu"]["window_fraction"], "errors": tool["errors"][:3],
    }


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


def run_one(a, io, kind, n, kbps=None):
    kbps = kbps or a.video_kbps
    participants, publishers = (n + 1, 1) if kind in ONE_PUBLISHER else (n, n)
    node = Node(a.build, io, f"{kind}{n}-{io}")
    try:
        idle = snapshot(node)
        tool, start, stop = drive_load(a, [], ["--token-url", f"http://127.0.0.1:{node.http}/api/dev-token"],
                                       kind, n, kbps, lambda: snapshot(node), node.tmp)
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
    rx = tool_received(tool)
    r = {
        "server": "ringlane", "io": io, "kind": kind, "n": n, "participants": participants,
        "publishers": publishers, "video_kbps": kbps, "window_s": window, "subscriber_streams": streams,
        # The same count as Janus's (sfu_vs_janus): what the tool's subscribers received.
        "tool_received": rx, "tool_expected": tool["expected"]["audio"] + tool["expected"]["video"],
        "pkts_per_server_cpu_s_tool": rx / cpu if cpu > 0 else 0,
        "pkts_per_server_run_s_tool": (rx / (stop["run_s"] - start["run_s"])
                                       if stop["run_s"] > start["run_s"] else 0),
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
        # The same from schedstat (ns): a light load's few CPU ticks make the 10 ms ticks coarse.
        "cpu_ms_per_s_per_stream_schedstat": (1000 * (stop["run_s"] - start["run_s"]) / window / streams
                                              if window > 0 and streams else 0),
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
    if "simulcast" in tool:
        # The layers' packets the subscribers got, the server's probes, and the switches timed.
        r["simulcast"] = tool["simulcast"]
        r["layer_switches"] = w1.get("sfu_layer_switches", 0) - w0.get("sfu_layer_switches", 0)
        r["probes"] = w1.get("sfu_probes", 0) - w0.get("sfu_probes", 0)
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
    # The same with the send of a 1,200-byte packet whose reader is woken for it (srtp_bench: an
    # upper bound on a loopback send, as the model's is a lower one).
    delivered = g["unprotect_ns"] + subscribers * (s["rtp_rewrite_ns"] + g["protect_ns"]
                                                   + s.get("udp_sendmsg_delivered_ns", s["udp_sendmsg_ns"]))
    return {"subscribers": subscribers, "ceiling_pps": subscribers * 1e9 / per_in,
            "ceiling_pps_delivered": subscribers * 1e9 / delivered,
            "udp_sendmsg_delivered_ns": s.get("udp_sendmsg_delivered_ns"),
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
    ap.add_argument("--adaptive", type=int, default=50,
                    help="fan-out for the cost of adaptation: the same load with --simulcast (3 layers, "
                         "transport-cc, estimation on) against plain, uring; 0 = skip")
    ap.add_argument("--switch-n", type=int, default=10,
                    help="fan-out for the layer-switch times (--simulcast --switch-every 1); 0 = skip")
    ap.add_argument("--switch-seconds", type=float, default=20.0)
    ap.add_argument("--out", default="bench/out/sfu.json")
    ap.add_argument("--no-ceiling", action="store_true", help="skip srtp_bench's ceiling model")
    ap.add_argument("--janus", action="store_true",
                    help="also run every configuration against Janus's VideoRoom (sfu_vs_janus)")
    ap.add_argument("--saturate-n", type=int, default=200,
                    help="fan-out of the saturation ladder (--janus; 0: no ladder)")
    ap.add_argument("--saturate-kbps", default="250,500,1000,2000,4000,8000",
                    help="video rates of the ladder; each server climbs until it loses --saturate-loss")
    ap.add_argument("--saturate-loss", type=float, default=0.01)
    ap.add_argument("--janus-reference", type=int, default=50,
                    help="fan-out whose packets per server-CPU-second sfu_vs_janus compares")
    ap.add_argument("--janus-loops", default="0,1",
                    help="Janus variants: 0 = its default (one loop thread per handle), N = event_loops N; "
                         "sfu_vs_janus quotes the most efficient")
    a = ap.parse_args()

    configs = [("fanout", int(x)) for x in a.fanout.split(",") if x] + \
              [("meeting", int(x)) for x in a.meeting.split(",") if x]
    fanouts = sorted(n for k, n in configs if k == "fanout")
    if not a.reference:
        a.reference = fanouts[-1] if fanouts else 0
    ios = [x for x in a.io.split(",") if x]
    if a.janus and "uring" not in ios:
        ios.append("uring")  # sfu_vs_janus compares against uring
    net = JanusNet() if a.janus else None
    loops_list = [int(x) for x in a.janus_loops.split(",") if x] if a.janus else []
    servers = ["ringlane"] + [janus_name(x) for x in loops_list]

    def line(r):
        print(f"{r['kind']:7s} {r['n']:>4d} {r['io']:5s} {r['video_kbps']:>5d}k egress {r['egress_pps']:>8.0f} pps  "
              f"{r['pkts_per_server_cpu_s']:>9.0f} pkt/server-cpu-s (tool-counted {r['pkts_per_server_cpu_s_tool']:.0f})  "
              f"cpu {100 * r['server_cpu_fraction']:5.1f}%  p50 {r['latency_p50_us']:.0f}us p99 {r['latency_p99_us']:.0f}us "
              f"loss {r['loss']:.4f}  streams {r['streams']}  tool cpu {100 * r['tool_cpu_fraction']:.0f}%", flush=True)

    runs = []
    saturation = []
    # The cost of adaptation, interleaved with the plain run it is compared with (twice each, the
    # medians quoted: one 5 s window of a 2-core VM is noisy), and the switch times.
    adaptive = []
    if a.adaptive:
        for _ in range(2):
            for kind in ("fanout", "simulcast"):
                r = run_one(a, "uring", kind, a.adaptive)
                adaptive.append(r)
                line(r)
                time.sleep(0.3)
    if a.switch_n:
        r = run_one(a, "uring", "switch", a.switch_n)
        adaptive.append(r)
        line(r)
    try:
        for kind, n in configs:
            for io in ios:  # interleaved: both backends (and Janus) see the same machine moments
                r = run_one(a, io, kind, n)
                runs.append(r)
                line(r)
                time.sleep(0.3)
            for loops in loops_list:
                r = run_janus(a, net, kind, n, loops=loops)
                runs.append(r)
                line(r)
                time.sleep(0.3)
        # Saturation: one fan-out, the video rate raised step by step (the same steps for every
        # server, interleaved) until a server loses at least --saturate-loss of the window's
        # packets; a server stops climbing at its first such step. Bounded by the list. A step
        # whose setup did not complete (not every stream flowing after --setup-timeout: a setup
        # failure, not a rate limit) is run once more, and ends the climb if it fails again.
        if net and a.saturate_n:
            climbing = {s: True for s in servers}
            for kbps in [int(x) for x in a.saturate_kbps.split(",") if x]:
                for server in servers:
                    for attempt in range(2):
                        if not climbing[server]:
                            break
                        try:
                            r = (run_one(a, "uring", "fanout", a.saturate_n, kbps) if server == "ringlane"
                                 else run_janus(a, net, "fanout", a.saturate_n, kbps,
                                                loops_list[servers.index(server) - 1]))
                        except RuntimeError as e:  # no window at all
                            r = {"server": server, "io": "uring" if server == "ringlane" else server,
                                 "kind": "fanout", "n": a.saturate_n, "video_kbps": kbps,
                                 "error": str(e)[-300:], "loss": 1.0, "setup_complete": False}
                            print(f"saturation {server} {kbps}k: {r['error']}", flush=True)
                        else:
                            line(r)
                        r["attempt"] = attempt
                        saturation.append(r)
                        time.sleep(0.3)
                        if r.get("setup_complete"):
                            climbing[server] = r["loss"] < a.saturate_loss
                            break
                        if attempt == 1:
                            climbing[server] = False
    finally:
        if net:
            net.close()
    ceiling = None if a.no_ceiling else srtp_ceiling(a, a.reference)

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
    # Janus: both servers' egress counted by the tool (what the subscribers received), over the
    # server process's CPU, at --janus-reference (a fan-out Janus carries on one core with room to
    # spare: a saturated server spends CPU on queues and delivers late, which is the saturation
    # figures' subject); when that fan-out was not run, the largest Janus carried without loss.
    clean_j = [n for n in fanouts
               if all((find(janus_name(x), "fanout", n) or {}).get("loss", 1) < a.saturate_loss for x in loops_list)]
    janus_reference = (a.janus_reference if a.janus_reference in fanouts
                       else clean_j[-1] if clean_j else a.reference)
    ref_uj = find("uring", "fanout", janus_reference)
    # Against the most efficient Janus variant there (the conservative figure).
    variants = [find(janus_name(x), "fanout", janus_reference) for x in loops_list]
    variants = [v for v in variants if v and v["pkts_per_server_cpu_s_tool"] > 0]
    ref_j = max(variants, key=lambda v: v["pkts_per_server_cpu_s_tool"]) if variants else None
    jname = ref_j["server"] if ref_j else "janus"
    ratios = {
        "sfu_uring_vs_mmsg": div(ref_u and ref_u["pkts_per_server_cpu_s"], ref_m and ref_m["pkts_per_server_cpu_s"]),
        "sfu_vs_ceiling": div(ref_u and ref_u["pkts_per_server_cpu_s"], ceiling and ceiling["ceiling_pps"]),
        "sfu_vs_ceiling_delivered": div(ref_u and ref_u["pkts_per_server_cpu_s"],
                                        ceiling and ceiling["ceiling_pps_delivered"]),
        # Marginal: the RSS growth from the smallest to the largest fan-out, per added participant
        # (the fixed costs — buffer pool pages touched, the 5 MB retransmission store — cancel out).
        "sfu_bytes_per_participant": marginal,
        "sfu_connect_p95_ms": conn and conn["connect_p95_ms_tool"],
        "sfu_vs_janus": div(ref_uj and ref_uj["pkts_per_server_cpu_s_tool"],
                            ref_j and ref_j["pkts_per_server_cpu_s_tool"]),
        # The same with CPU time from schedstat (ns, every thread) instead of 10 ms ticks.
        "sfu_vs_janus_schedstat": div(ref_uj and ref_uj["pkts_per_server_run_s_tool"],
                                      ref_j and ref_j["pkts_per_server_run_s_tool"]),
        # Janus as packaged (a loop thread per handle).
        "sfu_vs_janus_default": div(ref_uj and ref_uj["pkts_per_server_cpu_s_tool"],
                                    (find("janus", "fanout", janus_reference) or {}).get("pkts_per_server_cpu_s_tool")),
    }
    def median_of(kind, key):
        v = sorted(r[key] for r in adaptive if r["kind"] == kind and r.get(key))
        return v[len(v) // 2] if v else None

    sw = next((r["simulcast"]["switches"] for r in adaptive if r["kind"] == "switch"), None)
    ratios.update({
        # CPU per subscriber stream with simulcast and estimation on over the same fan-out plain
        # (target <= 1.2): the publisher's three layers unprotected, estimation, allocation.
        "sfu_adaptation_cost": div(median_of("simulcast", "cpu_ms_per_s_per_stream_schedstat"),
                                   median_of("fanout", "cpu_ms_per_s_per_stream_schedstat")),
        "sfu_adaptation_cost_ticks": div(median_of("simulcast", "cpu_ms_per_s_per_stream"),
                                         median_of("fanout", "cpu_ms_per_s_per_stream")),
        "sfu_layer_switch_p50_ms": sw and sw["all_ms"]["p50"],
        "sfu_layer_switch_p99_ms": sw and sw["all_ms"]["p99"],
        "sfu_layer_switch_down_p50_ms": sw and sw["down_ms"]["p50"],
        "sfu_layer_switch_down_p99_ms": sw and sw["down_ms"]["p99"],
        "sfu_layer_switch_up_p50_ms": sw and sw["up_ms"]["p50"],
        "sfu_layer_switch_up_p99_ms": sw and sw["up_ms"]["p99"],
    })
    per_config = {}
    for kind, n in configs:
        u, m = find("uring", kind, n), find("mmsg", kind, n)
        per_config[f"{kind}_{n}_uring_vs_mmsg"] = div(u and u["pkts_per_server_cpu_s"], m and m["pkts_per_server_cpu_s"])
        for loops in loops_list:
            j = find(janus_name(loops), kind, n)
            per_config[f"{kind}_{n}_vs_{janus_name(loops).replace('-', '_')}"] = div(
                u and u["pkts_per_server_cpu_s_tool"], j and j["pkts_per_server_cpu_s_tool"])
    # Per server: the highest ladder step without loss, and the loss at the step that saturated it.
    saturation_summary = {}
    for server in servers if a.janus else []:
        steps = [r for r in saturation if r["server"] == server]
        clean = [r for r in steps if r["loss"] < a.saturate_loss and r.get("setup_complete")]
        lossy = [r for r in steps if r["loss"] >= a.saturate_loss and r.get("setup_complete")]
        incomplete = [r for r in steps if not r.get("setup_complete")]
        if steps:
            best = max(clean, key=lambda r: r["egress_pps"]) if clean else None
            saturation_summary[server] = {
                "fanout": a.saturate_n,
                "max_clean_kbps": best and best["video_kbps"], "max_clean_egress_pps": best and best["egress_pps"],
                "max_clean_server_cpu_fraction": best and best["server_cpu_fraction"],
                "saturated_at_kbps": lossy[0]["video_kbps"] if lossy else None,
                "loss_at_saturation": lossy[0]["loss"] if lossy else None,
                "egress_pps_at_saturation": lossy[0].get("egress_pps") if lossy else None,
                "server_cpu_fraction_at_saturation": lossy[0].get("server_cpu_fraction") if lossy else None,
                "tool_cpu_fraction_at_saturation": lossy[0].get("tool_cpu_fraction") if lossy else None,
                "drops_at_saturation": lossy[0].get("drops") if lossy else None,
                "loss_at_last_step": steps[-1]["loss"], "last_step_kbps": steps[-1]["video_kbps"],
                "last_step_tool_cpu_fraction": steps[-1].get("tool_cpu_fraction"),
                "setup_incomplete_steps": [(r["video_kbps"], r.get("streams")) for r in incomplete],
            }

    print()
    hdr = (f"{'config':12s}{'io':6s}{'streams':>8s}{'egress pps':>11s}{'srv cpu':>8s}{'pkt/srv-cpu-s':>14s}"
           f"{'ms/s/stream':>12s}{'B/particip':>11s}{'conn p95':>9s}{'dp p95':>7s}{'p50 us':>8s}{'p99 us':>8s}"
           f"{'loss':>8s}{'tool cpu':>9s}")
    print(hdr)
    print("-" * len(hdr))
    for r in runs + adaptive:
        dp = r["connect_p95_ms_dataplane"]
        print(f"{r['kind'] + ' ' + str(r['n']):12s}{r['io']:6s}{r['subscriber_streams']:>8d}{r['egress_pps']:>11.0f}"
              f"{100 * r['server_cpu_fraction']:>7.1f}%{r['pkts_per_server_cpu_s']:>14.0f}"
              f"{r['cpu_ms_per_s_per_stream']:>12.3f}{r['rss_bytes_per_participant']:>11.0f}"
              f"{r['connect_p95_ms_tool']:>9.1f}{'<=' + str(int(dp)) if dp not in (None, float('inf')) else str(dp):>7s}"
              f"{r['latency_p50_us']:>8.0f}{r['latency_p99_us']:>8.0f}{r['loss']:>8.4f}"
              f"{100 * r['tool_cpu_fraction']:>8.1f}%")
    print()
    if a.janus:
        print(f"ringlane (uring) vs Janus {janus_version()} VideoRoom, egress counted by the tool's subscribers:")
        jh = (f"{'config':12s}{'server':9s}{'kbps':>6s}{'rx pps':>9s}{'srv cpu':>8s}{'rx pkt/srv-cpu-s':>17s}"
              f"{'p50 us':>8s}{'p99 us':>8s}{'loss':>8s}{'tool cpu':>9s}")
        print(jh)
        print("-" * len(jh))
        for r in [r for r in runs if r["io"] == "uring" or r["io"].startswith("janus")] + saturation:
            if "error" in r:
                print(f"{r['kind'] + ' ' + str(r['n']):12s}{r['server']:9s}{r['video_kbps']:>6d}  no window: "
                      f"{r['error'][-80:]}")
                continue
            print(f"{r['kind'] + ' ' + str(r['n']):12s}{r['server']:9s}{r['video_kbps']:>6d}{r['egress_pps']:>9.0f}"
                  f"{100 * r['server_cpu_fraction']:>7.1f}%{r['pkts_per_server_cpu_s_tool']:>17.0f}"
                  f"{r['latency_p50_us']:>8.0f}{r['latency_p99_us']:>8.0f}{r['loss']:>8.4f}"
                  f"{100 * r['tool_cpu_fraction']:>8.1f}%")
        print(f"sfu_vs_janus quotes {jname} at fan-out {janus_reference}")
        for server, s in saturation_summary.items():
            head = f"saturation {server:8s} fan-out {s['fanout']}: clean up to {s['max_clean_kbps']} kbps " \
                   f"({s['max_clean_egress_pps'] or 0:.0f} pps); "
            if s["saturated_at_kbps"]:
                print(head + f"saturated at {s['saturated_at_kbps']} kbps with loss {s['loss_at_saturation']:.4f}")
            elif s["setup_incomplete_steps"] and s["setup_incomplete_steps"][-1][0] == s["last_step_kbps"]:
                print(head + f"stopped at {s['last_step_kbps']} kbps: setup incomplete twice "
                      f"(streams {s['setup_incomplete_steps'][-1][1]})")
            else:
                print(head + f"no loss up to the last step, {s['last_step_kbps']} kbps (tool cpu "
                      f"{100 * (s['last_step_tool_cpu_fraction'] or 0):.0f}%)")
        print()
    if adaptive:
        print(f"adaptation at fan-out {a.adaptive} (uring): CPU per subscriber stream plain "
              f"{median_of('fanout', 'cpu_ms_per_s_per_stream_schedstat') or 0:.3f} ms/s, with simulcast and "
              f"estimation {median_of('simulcast', 'cpu_ms_per_s_per_stream_schedstat') or 0:.3f} ms/s "
              f"(schedstat, medians of 2)")
        if sw:
            print(f"layer switches at fan-out {a.switch_n} (`layer` request to the first packet of the layer): "
                  f"{sw['down_ms']['count']} down p50 {sw['down_ms']['p50']:.0f} ms p99 {sw['down_ms']['p99']:.0f} ms, "
                  f"{sw['up_ms']['count']} up p50 {sw['up_ms']['p50']:.0f} ms p99 {sw['up_ms']['p99']:.0f} ms, "
                  f"timeouts {sw['timeouts']}, not at a keyframe {sw['not_at_keyframe']}")
        print()
    if ceiling:
        print(f"srtp_bench ceiling at {ceiling['subscribers']} subscribers: {ceiling['ceiling_pps']:.0f} pps per core "
              f"(its own figure at 10: {ceiling['srtp_bench_sfu_ceiling_pps_per_core']:.0f}; sendmsg "
              f"{ceiling['udp_sendmsg_ns']:.0f} ns; with each send's reader woken: "
              f"{ceiling['ceiling_pps_delivered']:.0f} pps, sendmsg {ceiling['udp_sendmsg_delivered_ns'] or 0:.0f} ns)")
    for k, v in list(ratios.items()) + list(per_config.items()):
        print(f"{k:40s} {v:.3f}" if isinstance(v, (int, float)) else
              f"{k:40s} n/a{' (run with --janus)' if k == 'sfu_vs_janus' and not a.janus else ''}")

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump({"config": vars(a), "runs": runs, "adaptive": adaptive, "ceiling": ceiling, "ratios": ratios,
                   "per_config": per_config, "saturation": saturation, "saturation_summary": saturation_summary,
                   "janus_reference_fanout": janus_reference if a.janus else None,
                   "janus_reference_variant": jname if a.janus else None,
                   "janus_version": janus_version() if a.janus else None, "kernel": os.uname().release,
                   "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}, f, indent=1)
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
