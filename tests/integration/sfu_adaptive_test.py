#!/usr/bin/env python3
"""Adaptive quality end to end: a publisher sends three-layer VP8 simulcast (960x540 camera)
through `ringlane run`, and two watch-only pages receive it, in a network namespace whose only
interface is lo. One subscriber's downlink (the packets the SFU sends its subscriber connection)
is then shaped with tc (htb, 300 kbit/s, a 0.5 s queue): the SFU's estimate for that subscriber
falls, and it must move to the lowest layer (target: within 5 s) while the other subscriber
stays on the top layer the whole time; once the cap is lifted the shaped one must be back on top
(target: within 15 s; probing). The timings are printed against those targets and asserted at
twice them (see TARGET_*). Then 2% random loss (nftables) on the same downlink: it must keep decoding, stay off
the lowest layer and NACK, while the other is untouched. /metrics must show the layers, the
estimates and the quality KPIs. Last, the `layer` message: both subscribers ask for spatial
layer 0 and get it; with nobody on the upper layers the publisher is told to stop encoding them
(dynacast), and when one subscriber asks for layer 2 again it gets it. Decoding is sampled from
getStats() four times a second: framesDecoded may not stall across a layer switch (target 1 s,
asserted 5 s). The data plane's counters must show the layer changes, probes, dynacast and
transport-cc feedback both ways.
Skips (77) without Chromium, chromedriver, ip, tc or nft.

Usage: sfu_adaptive_test.py --ringlane PATH [--io uring|mmsg]
With RINGLANE_MEASURE_JSON=PATH in the environment it also writes the timings it measured there
(bench/adaptive_bench.py runs it repeatedly and holds them against the targets).
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sfu_browser_test import (Pages, browser_test_args, dataplane_counters, free_port_pair,  # noqa: E402
                              netns_main, start_node, stop, wait_until)
from testlib import FAILURES, check, free_port, http_get, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402

CAP_KBIT = 300
# The targets (down within 5 s of the cap, back up within 15 s of its removal, no stall
# over 1 s across a switch) are printed as measured; a timing target is a benchmark's to hold on
# a shared 2-core VM, so the assertions are looser: what they catch is an SFU that does not
# adapt, or stops the video, not a slow run. (Without a pacer, the switch down can leave the
# capped link's queue full of the old layer for a few seconds: stalls up to 3.6 s were seen.)
TARGET_DOWN_S, TARGET_UP_S, TARGET_STALL_S = 5, 15, 1.0
MEASURED = {}  # what RINGLANE_MEASURE_JSON gets: seconds, None where the run did not get there


def save_measured():
    path = os.environ.get("RINGLANE_MEASURE_JSON")
    if path:
        with open(path, "w") as f:
            json.dump(MEASURED, f)
SWITCH_DOWN_S = 2 * TARGET_DOWN_S
SWITCH_UP_S = 2 * TARGET_UP_S
STALL_S = 5.0


def sh(*cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")


def shape(port, kbit=CAP_KBIT):
    """kbit/s (300) for UDP to `port` on lo (everything else unlimited), a 0.5 s queue."""
    sh("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10")
    sh("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit")
    sh("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb",
       "rate", f"{kbit}kbit", "ceil", f"{kbit}kbit", "burst", "6k")
    sh("tc", "qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", "bfifo",
       "limit", str(kbit * 1000 // 8 // 2))
    sh("tc", "filter", "add", "dev", "lo", "protocol", "ip", "parent", "1:", "prio", "1", "u32",
       "match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", str(port), "0xffff",
       "flowid", "1:20")


def unshape():
    sh("tc", "qdisc", "del", "dev", "lo", "root")


def lose(port, percent):
    sh("nft", "add", "table", "inet", "rlloss")
    sh("nft", "add", "chain", "inet", "rlloss", "o", "{ type filter hook output priority 0; }")
    sh("nft", "add", "rule", "inet", "rlloss", "o", "udp", "dport", str(port), "numgen", "random",
       "mod", "100", "<", str(percent), "drop")


def unlose():
    sh("nft", "delete", "table", "inet", "rlloss")


class Watch:
    """Samples the subscribers' view of the publisher's video, four times a second."""

    def __init__(self, pages, names, publisher):
        self.pages = pages
        self.names = names
        self.publisher = publisher
        self.samples = {n: [] for n in names}  # (time, frameWidth, framesDecoded, nackCount)
        self.sent = []  # (time, {rid: (framesEncoded, frameWidth)}) of the publisher, each second
        self.turns = 0

    def video(self, name):
        for r in self.pages.stats(name)["remote"]:
            if r["identity"] == self.publisher and r["kind"] == "video":
                return r
        return None

    def sample(self):
        if self.turns % 4 == 0:
            out = self.pages.stats(self.publisher)["publisher"]["outbound"]
            self.sent.append((time.time(), {o["rid"]: (o["framesEncoded"], o["frameWidth"])
                                            for o in out if o["kind"] == "video"}))
        self.turns += 1
        for n in self.names:
            v = self.video(n)
            if v:
                self.samples[n].append((time.time(), v["frameWidth"], v["framesDecoded"], v["nackCount"]))

    def run(self, seconds, until=None):
        """Samples for `seconds`, or until until(latest samples) is true; the time it was."""
        end = time.time() + seconds
        while time.time() < end:
            self.sample()
            if until and until({n: s[-1] for n, s in self.samples.items() if s}):
                return time.time()
            time.sleep(0.25)
        return None

    def since(self, name, t0):
        return [s for s in self.samples[name] if s[0] >= t0]

    def widths(self, name, t0):
        return sorted({s[1] for s in self.since(name, t0)})

    def publisher_since(self, t0):
        """What the publisher did from t0 on: per rid, the widths it encoded and whether its
        framesEncoded ever stood still for a second (the encoder dropping a layer)."""
        s = [x for x in self.sent if x[0] >= t0]
        out = {}
        for rid in (s[0][1] if s else {}):
            frames = [x[1].get(rid, (0, 0)) for x in s]
            stood = any(b[0] <= a[0] for a, b in zip(frames, frames[1:]))
            out[rid] = {"widths": sorted({f[1] for f in frames}), "stalled": stood}
        return out

    def longest_stall(self, name, t0):
        """The longest time framesDecoded did not rise, from t0 on (seconds)."""
        s = self.since(name, t0)
        worst, last_rise = 0.0, s[0][0] if s else t0
        for prev, cur in zip(s, s[1:]):
            if cur[2] > prev[2]:
                last_rise = cur[0]
            worst = max(worst, cur[0] - last_rise)
        return worst


def metric(port, name, **labels):
    """The value of a /metrics sample whose labels include `labels` (None if absent)."""
    _, body = http_get(port, "/metrics")
    for m in re.finditer(r'^' + name + r'(\{[^}]*\})? (\S+)$', body, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return None


def layer_widths(pages, name):
    """rid -> frameWidth of the publisher's encodings now."""
    out = pages.stats(name)["publisher"]["outbound"]
    return {o["rid"]: o["frameWidth"] for o in out if o["kind"] == "video"}


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    media_port = free_port_pair()
    room = f"a{os.getpid()}"
    name = f"sfu-adaptive-{os.getpid()}"
    os.environ["RINGLANE_SFU_TRACE"] = "1"  # the estimates and layers each second, in the log
    server = start_node(a, tmp, name, log, http_port, free_port(), media_port)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port}")
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=1280,800"])
        pages = Pages(browser)
        base = f"http://127.0.0.1:{http_port}/?room={room}&autojoin=1"
        pages.open("pub", f"{base}&name=pub&width=960&height=540")
        for n in ("s1", "s2"):
            pages.open(n, f"{base}&name={n}&publish=0&adaptive=0")  # the tile size limits nothing here
        for n in ("pub", "s1", "s2"):
            wait_until(lambda n=n: (pages.state(n) or {}).get("joined"), 20)
            check((pages.state(n) or {}).get("joined"), f"{n}'s page joined {room}")
        if FAILURES:
            return

        # Every layer on the wire, both subscribers on the top one.
        layers = wait_until(lambda: (lambda w: w if len(w) == 3 and all(w.values()) else None)(
            layer_widths(pages, "pub")), 40, step=0.5) or layer_widths(pages, "pub")
        check(len(layers) == 3 and all(layers.values()),
              f"the publisher sends three simulcast layers ({layers})")
        top, low = max(layers.values() or [0]), min(layers.values() or [0])
        watch = Watch(pages, ["s1", "s2"], "pub")
        # Both on top, and for 4 s in a row (the estimates settled above the top layer's bitrate).
        def steady_top(last):
            recent = {n: [x for x in watch.samples[n] if x[0] >= time.time() - 4] for n in ("s1", "s2")}
            return (len(last) == 2 and all(s[1] == top for s in last.values())
                    and all(len(r) >= 12 and all(x[1] == top for x in r) for r in recent.values()))
        t_top = watch.run(60, steady_top)
        check(t_top is not None, f"both subscribers reach the top layer ({top} wide) and stay there: "
                                 f"s1 {watch.widths('s1', 0)}, s2 {watch.widths('s2', 0)}")
        if FAILURES:
            return
        port = int(pages.stats("s1")["subscriber"]["pair"]["local"].rsplit(":", 1)[1])

        # The cap: s1 goes down, s2 stays.
        shape(port)
        t_cap = time.time()
        t_low = watch.run(SWITCH_DOWN_S + 5, lambda last: last.get("s1", (0, top))[1] <= low)
        took = (t_low - t_cap) if t_low else None
        MEASURED["down_s"] = took
        print(f"  measured: down {took if took is None else round(took, 1)} s (target {TARGET_DOWN_S} s)", flush=True)
        check(t_low is not None and took <= SWITCH_DOWN_S,
              f"s1 is on the lowest layer ({low} wide) within {SWITCH_DOWN_S} s of a {CAP_KBIT} kbit/s cap "
              f"(took {took if took is None else round(took, 1)} s; widths {watch.widths('s1', t_cap)})")
        watch.run(6)
        capped = watch.since("s1", (t_low or t_cap) + 1)
        check(capped and all(s[1] <= low for s in capped),
              f"s1 stays on the lowest layer under the cap (widths {sorted({s[1] for s in capped})})")
        check(watch.widths("s2", t_cap) == [top], f"s2 stays on the top layer meanwhile ({watch.widths('s2', t_cap)}; "
                                                  f"the publisher sent {watch.publisher_since(t_cap)})")
        # Across the switch down (from the last half second before s1 was on the lowest layer)
        # and under the cap. What stalls before that is the congestion the cap made before the
        # estimate saw it (printed, not asserted: it is the link's, not the switch's).
        onset = watch.longest_stall("s1", t_cap)
        stall = watch.longest_stall("s1", (t_low or t_cap) - 0.5)
        MEASURED.update(stall_down_s=stall, stall_onset_s=onset)
        print(f"  measured: s1's longest stall across the switch {stall:.2f} s (target {TARGET_STALL_S} s), "
              f"from the cap on, onset included, {onset:.2f} s", flush=True)
        check(stall <= STALL_S, f"s1 never stops decoding for more than {STALL_S} s across the switch "
                                f"(longest stall {stall:.2f} s)")
        # What /metrics says meanwhile (the workers report every 2 s).
        seen = {w: (metric(http_port, "ringlane_sfu_route_layer", participant=w, kind="video"),
                    metric(http_port, "ringlane_sfu_subscriber_estimate_bps", participant=w)) for w in ("s1", "s2")}
        check(seen["s1"][0] == 0 and seen["s2"][0] == 2 and seen["s1"][1] and seen["s2"][1]
              and seen["s1"][1] < CAP_KBIT * 1000 * 1.5 < seen["s2"][1],
              f"/metrics: s1's video on layer 0 with an estimate under the cap, s2's on layer 2 with more "
              f"(layer, estimate: {seen})")
        kpis = {k: metric(http_port, k) for k in ("video_bitrate_avg", "video_frame_rate_avg",
                                                  "audio_packet_loss_p95", "end_to_end_latency_p95")}
        check(all(v is not None for v in kpis.values()) and kpis["video_bitrate_avg"] > 0
              and kpis["video_frame_rate_avg"] > 0, f"/metrics has the quality KPIs ({kpis})")
        shot = os.path.join(tmp, "sfu-adaptive-s1.png")
        browser.switch_to(pages.handles["s1"])
        browser.screenshot(shot)
        print(f"  screenshot of s1's page under the cap: {shot}", flush=True)

        # The cap lifted: back up through probes.
        unshape()
        t_free = time.time()
        t_up = watch.run(SWITCH_UP_S + 5, lambda last: last.get("s1", (0, 0))[1] == top)
        took = (t_up - t_free) if t_up else None
        MEASURED["up_s"] = took
        print(f"  measured: up {took if took is None else round(took, 1)} s (target {TARGET_UP_S} s)", flush=True)
        check(t_up is not None and took <= SWITCH_UP_S,
              f"s1 is back on the top layer within {SWITCH_UP_S} s of the cap's removal "
              f"(took {took if took is None else round(took, 1)} s; widths {watch.widths('s1', t_free)})")
        stall = watch.longest_stall("s1", t_free)
        MEASURED["stall_up_s"] = stall
        check(stall <= STALL_S, f"s1 decodes across the switches up (longest stall {stall:.2f} s)")

        # 2% loss on s1's downlink: NACK repairs it, s1 holds its layer, s2 sees nothing of it.
        lose(port, 2)
        t_loss = time.time()
        watch.run(15)
        unlose()
        lossy = watch.since("s1", t_loss)
        check(lossy and min(s[1] for s in lossy) > low,
              f"with 2% loss s1 stays off the lowest layer (widths {watch.widths('s1', t_loss)})")
        check(lossy and lossy[-1][3] > lossy[0][3], f"s1 NACKs what it lost (nackCount "
              f"{lossy[0][3] if lossy else '?'} -> {lossy[-1][3] if lossy else '?'})")
        stall = watch.longest_stall("s1", t_loss)
        MEASURED["stall_loss_s"] = stall
        check(stall <= STALL_S, f"s1 keeps decoding under loss (longest stall {stall:.2f} s)")
        downs = metric(http_port, "ringlane_sfu_route_layer_switches_total", participant="s1", kind="video",
                       reason="down")
        check(downs is not None and downs >= 1, f"/metrics counts s1's switches down ({downs})")
        check(watch.widths("s2", t_top) == [top], f"s2 stayed on the top layer through it all "
                                                  f"({watch.widths('s2', t_top)}; the publisher sent "
                                                  f"{watch.publisher_since(t_top)})")

        # The subscribers' own wish: layer 0 for both. Then nobody takes the upper layers, and
        # after 5 s the publisher is told to stop them (dynacast); s2 asks for layer 2 again and
        # gets it once the publisher encodes it again.
        track = watch.video("s2")["trackId"]
        for who in ("s2", "s1"):
            reply = pages.run(who, "return window.ringlaneTest.setLayer(arguments[0], 0)", track)
            check(isinstance(reply, dict) and reply.get("spatial") == 0, f"{who} asks for layer 0 ({reply})")
        t_ask = time.time()
        t_done = watch.run(5, lambda last: all(last.get(w, (0, top))[1] == low for w in ("s1", "s2")))
        check(t_done is not None, f"both get the lowest layer they asked for (s1 {watch.widths('s1', t_ask)}, "
                                  f"s2 {watch.widths('s2', t_ask)})")
        def upper_off():
            out = pages.stats("pub")["publisher"]["outbound"]
            return {o["rid"]: o["active"] for o in out if o["kind"] == "video"}
        off = wait_until(lambda: (lambda a: a if a.get("q") and not a.get("h") and not a.get("f") else None)(
            upper_off()), 12, step=0.5) or upper_off()
        told = [e for e in pages.state("pub")["events"] if e["type"] == "layers"]
        check(off.get("q") and not off.get("h") and not off.get("f"),
              f"dynacast: the publisher stops encoding the layers nobody takes (active {off}; told {told[-1:]})")
        watch.run(2)
        stall = watch.longest_stall("s2", t_done or t_ask)
        MEASURED["stall_wish_s"] = stall
        check(stall <= STALL_S, f"s2 keeps decoding layer 0 meanwhile (longest stall {stall:.2f} s)")
        pages.run("s2", "return window.ringlaneTest.setLayer(arguments[0], 2)", track)
        t_ask = time.time()
        t_done = watch.run(10, lambda last: last.get("s2", (0, 0))[1] == top)
        check(t_done is not None, f"s2 is back on the top layer when it asks for it, the publisher encoding it "
                                  f"again ({watch.widths('s2', t_ask)}; active {upper_off()})")
        check(watch.widths("s1", t_ask) == [low], f"s1 stays on the layer it asked for ({watch.widths('s1', t_ask)})")

        c = dataplane_counters(a.ringlane, name)
        wanted = ["sfu_layers_learned", "sfu_layer_switches", "sfu_layer_down", "sfu_layer_up",
                  "sfu_probes", "sfu_padding_sent", "sfu_twcc_sent", "sfu_twcc_received",
                  "sfu_dynacast_changes"]
        check(all(c.get(k, 0) > 0 for k in wanted),
              "the data plane counted layers learned, switches, downs, ups, probes, padding, "
              "transport-cc both ways and dynacast changes (" + ", ".join(f"{k[4:]} {c.get(k)}" for k in wanted) + ")")
        check(server.poll() is None, "ringlane run still running")
    finally:
        for undo in (unshape, unlose):
            try:
                undo()
            except RuntimeError:
                pass
        stop(server, browser)


def main():
    a = browser_test_args()

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        try:
            run(a, tmp, logs[0])
        finally:
            MEASURED["failures"] = len(FAILURES)
            save_measured()

    return netns_main(a, __file__, "rl-adapt", go, timeout=300, needs=("chromedriver", "ip", "tc", "nft"))


if __name__ == "__main__":
    sys.exit(main())
