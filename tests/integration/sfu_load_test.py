#!/usr/bin/env python3
"""The SFU under tools/sfu_load's synthetic participants: `ringlane run` on embedded defaults
(one worker, media on 127.0.0.1), three participants that all publish audio and video and receive
each other's, for ~5 s, with each io backend (and, where the node serves WHIP, a WHIP publisher watched over
WHEP and the WebSocket). From the tool's JSON: every subscriber received from
every publisher (4 streams each), nothing arrived altered (payload, sequence, marker, payload type,
audio level), no packet sent in the window was lost, duplicated or reordered; and the data plane
counted the forwarding and no SRTP failure. Then (uring) simulcast: one publisher sends three VP8
layers as a browser does (rid/mid/transport-wide-cc extensions, a real VP8 payload descriptor),
three subscribers send transport-cc feedback and, every second, ask (`layer`) for the lowest and
then the highest layer: each request must be followed by that layer's packets, starting at its
keyframe, nothing altered, and the data plane must have run its estimator on their feedback.
Exits 77 only if a binary is missing.

Usage: sfu_load_test.py --ringlane PATH --load PATH [--seconds S]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, check, free_port, summary, wait_status  # noqa: E402


def free_media_port():
    """A UDP port free on 127.0.0.1 whose neighbour (+1, the TURN listener here) is free too."""
    for _ in range(50):
        base = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", base + 1))
                return base
            except OSError:
                continue
    raise RuntimeError("no two consecutive free UDP ports")


def stats(ringlane, name):
    out = subprocess.run([ringlane, "stats", "--name", name], capture_output=True, text=True, timeout=10)
    return json.loads(out.stdout)["workers"][0] if out.returncode == 0 else {}


def whip_whep(a, http_port, tmp):
    """One publisher over WHIP, two players over WHEP and one subscriber over the WebSocket, when
    the node serves WHIP (OPTIONS /whip/ROOM answers 204); otherwise says so and checks nothing."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
    c.request("OPTIONS", "/whip/smoke-whip")
    status = c.getresponse().status
    c.close()
    if status != 204:
        print(f"  --    this node does not serve WHIP (OPTIONS /whip/ROOM: {status}): that part not run")
        return
    out_json = os.path.join(tmp, "load-whip.json")
    base = f"http://127.0.0.1:{http_port}"
    load = subprocess.run(
        [a.load, "--token-url", f"{base}/api/dev-token", "--participants", "4", "--publishers", "1",
         "--seconds", "3", "--room", "smoke-whip", "--whip", f"{base}/whip/smoke-whip",
         "--whep", f"{base}/whep/smoke-whip?participant={{publisher}}", "--json", out_json],
        capture_output=True, text=True, timeout=90)
    print("  " + "\n  ".join(load.stdout.strip().splitlines()), flush=True)
    r = json.load(open(out_json)) if os.path.exists(out_json) else {}
    check(r.get("setup_complete") and r.get("failed") == 0 and r.get("streams_flowing") == 6 == r.get("streams_expected"),
          f"WHIP: the publisher's audio and video reach 3 players over WHEP and the WebSocket "
          f"({r.get('streams_flowing')}/{r.get('streams_expected')}, errors {r.get('errors')})")
    check(r.get("integrity_failures") == 0 and r.get("header_mismatches") == 0 and r.get("lost") == 0
          and r.get("out_of_order") == 0,
          f"WHIP/WHEP: nothing altered, lost or reordered (integrity {r.get('integrity_failures')}, "
          f"lost {r.get('lost')}, out of order {r.get('out_of_order')})")


def simulcast(a, http_port, name, tmp):
    out_json = os.path.join(tmp, "load-simulcast.json")
    before = stats(a.ringlane, name)
    load = subprocess.run(
        [a.load, "--token-url", f"http://127.0.0.1:{http_port}/api/dev-token", "--participants", "4",
         "--publishers", "1", "--seconds", "8", "--setup-timeout", "30", "--room", "smoke-simulcast",
         "--simulcast", "--switch-every", "1", "--json", out_json],
        capture_output=True, text=True, timeout=120)
    print("  " + "\n  ".join(load.stdout.strip().splitlines()), flush=True)
    r = json.load(open(out_json)) if os.path.exists(out_json) else {}
    sc = r.get("simulcast", {})
    sw = sc.get("switches", {})
    check(r.get("setup_complete") and r.get("failed") == 0 and r.get("streams_flowing") == 6 == r.get("streams_expected"),
          f"simulcast: 3 subscribers receive the publisher's audio and top video layer "
          f"({r.get('streams_flowing')}/{r.get('streams_expected')}, errors {r.get('errors')})")
    check(r.get("integrity_failures") == 0 and r.get("header_mismatches") == 0 and r.get("unknown_ssrc") == 0,
          f"simulcast: nothing altered through the layer switches (integrity {r.get('integrity_failures')}, "
          f"header {r.get('header_mismatches')}, unknown SSRC {r.get('unknown_ssrc')})")
    layers = sc.get("layer_packets", [0, 0, 0])
    check(layers[0] > 0 and layers[2] > 0, f"simulcast: the subscribers got the lowest and the top layer "
                                           f"(packets per layer q/h/f {layers})")
    down, up = sw.get("down_ms", {}).get("count", 0), sw.get("up_ms", {}).get("count", 0)
    check(down >= 6 and up >= 6 and sw.get("timeouts") == 0,
          f"simulcast: every `layer` request was followed by the layer asked for ({down} down, {up} up, "
          f"{sw.get('timeouts')} unanswered in 5 s; p50 down {sw.get('down_ms', {}).get('p50')} ms, "
          f"up {sw.get('up_ms', {}).get('p50')} ms)")
    check(sw.get("not_at_keyframe") == 0 and load.returncode == 0,
          f"simulcast: each switch began at a keyframe of the new layer ({sw.get('not_at_keyframe')} did not; "
          f"exit {load.returncode})")
    after = stats(a.ringlane, name)
    grew = {k: after.get(k, 0) - before.get(k, 0) for k in ("sfu_twcc_received", "sfu_layer_preference",
                                                               "sfu_layer_switches", "sfu_pli_sent")}
    check(sc.get("feedbacks_sent", 0) > 0 and grew["sfu_twcc_received"] > 0,
          f"simulcast: the subscribers' transport-cc feedback reached the estimator "
          f"(sent {sc.get('feedbacks_sent')}, the data plane counted {grew['sfu_twcc_received']})")
    check(grew["sfu_layer_preference"] >= down + up and grew["sfu_layer_switches"] >= down + up
          and grew["sfu_pli_sent"] > 0,
          f"simulcast: the data plane counted the wishes, the switches and its keyframe requests ({grew})")


def run(a, io, tmp):
    http_port = free_port(socket.SOCK_STREAM)
    media_port = free_media_port()
    name = f"sfu-load-{os.getpid()}-{io}"
    log = os.path.join(tmp, f"node-{io}.log")
    env = dict(os.environ, RINGLANE_STATE_DIR=os.path.join(tmp, f"state-{io}"))
    server = subprocess.Popen(
        [a.ringlane, "run", "--name", name, "--io", io, "--workers", "1",
         "--listen", f"127.0.0.1:{media_port + 1}", "--media-ip", "127.0.0.1", "--media-port", str(media_port),
         "--http", f"127.0.0.1:{http_port}"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    try:
        # /readyz answers 503 until the data plane is up: wait for its 200, not for any answer.
        check(wait_status(http_port, "/readyz", 200, 15), f"ringlane run ({io}) is ready on 127.0.0.1:{http_port}")
        out_json = os.path.join(tmp, f"load-{io}.json")
        load = subprocess.run(
            [a.load, "--token-url", f"http://127.0.0.1:{http_port}/api/dev-token", "--participants", "3",
             "--seconds", str(a.seconds), "--setup-timeout", "30", "--room", f"smoke-{io}", "--json", out_json],
            capture_output=True, text=True, timeout=a.seconds + 90)
        print("  " + "\n  ".join(load.stdout.strip().splitlines()), flush=True)
        check(os.path.exists(out_json), f"sfu_load wrote its summary (exit {load.returncode}; {load.stderr[-300:]})")
        if not os.path.exists(out_json):
            return
        r = json.load(open(out_json))
        check(r["setup_complete"] and r["failed"] == 0,
              f"all 3 joined, published and connected both transports (errors {r['errors']})")
        check(r["streams_expected"] == 12 and r["streams_flowing"] == 12 and not r["missing_streams"],
              f"every subscriber received audio and video from every other publisher "
              f"({r['streams_flowing']}/{r['streams_expected']}, missing {r['missing_streams']})")
        check(r["integrity_failures"] == 0 and r["header_mismatches"] == 0 and r["unknown_ssrc"] == 0,
              f"nothing arrived altered: integrity {r['integrity_failures']}, header {r['header_mismatches']}, "
              f"unknown SSRC {r['unknown_ssrc']}")
        check(r["sent"]["video"] > 0 and r["sent"]["audio"] > 0
              and r["expected"]["video"] == 2 * r["sent"]["video"] and r["expected"]["audio"] == 2 * r["sent"]["audio"],
              f"each packet sent in the window is owed to the 2 other participants (sent {r['sent']}, "
              f"expected {r['expected']})")
        check(r["lost"] == 0 and r["out_of_order"] == 0 and r["duplicates"] == 0,
              f"sequence continuity: lost {r['lost']}, out of order {r['out_of_order']}, duplicates {r['duplicates']}")
        check(r["latency_us"]["all"]["count"] == r["received"]["audio"] + r["received"]["video"],
              f"every packet of the window has a latency sample (p50 {r['latency_us']['all']['p50']} us, "
              f"p99 {r['latency_us']['all']['p99']} us)")
        check(r["srtp_failures"] == 0 and r["srtcp_failures"] == 0,
              f"the tool unprotected everything it received (SRTP {r['srtp_failures']}, SRTCP {r['srtcp_failures']})")
        if io == "uring":
            whip_whep(a, http_port, tmp)
            simulcast(a, http_port, name, tmp)
        w = stats(a.ringlane, name)
        deadline = time.time() + 3  # the closes go through the command ring; the page every 100 ms
        while w.get("sfu_sessions", 1) != 0 and time.time() < deadline:
            time.sleep(0.1)
            w = stats(a.ringlane, name)
        check(w.get("sfu_rtp_forwarded", 0) >= r["received"]["audio"] + r["received"]["video"],
              f"the data plane counted its forwarding ({w.get('sfu_rtp_forwarded')} copies)")
        check(w.get("sfu_drop_srtp_auth", 1) == 0 and w.get("sfu_drop_unknown_ssrc", 1) == 0,
              f"the data plane dropped nothing for SRTP auth or unknown SSRC "
              f"({w.get('sfu_drop_srtp_auth')}, {w.get('sfu_drop_unknown_ssrc')})")
        check(w.get("sfu_sessions", 1) == 0, f"the participants' leave closed their 6 sessions "
                                             f"({w.get('sfu_sessions')} left)")
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if FAILURES:
        print(open(log).read()[-3000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    for path in (a.ringlane, a.load):
        if not os.access(path, os.X_OK):
            print(f"SKIP: {path} is missing")
            return 77
    with tempfile.TemporaryDirectory(prefix="sfu-load-test-") as tmp:
        for io in ("uring", "mmsg"):
            run(a, io, tmp)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
