#!/usr/bin/env python3
"""VP9 SVC adapted by bandwidth end to end: Chromium publishes VP9 with scalabilityMode L3T3_KEY
(one SSRC, three spatial and three temporal layers; 960x540 camera) through `ringlane run`, and
two watch-only pages receive it, in a network namespace whose only interface is lo. Nobody sends
a `layer` message: what changes s1's layers is its bandwidth. Its downlink (the packets the SFU
sends its subscriber connection) is shaped with tc (htb, 300 kbit/s, a 0.5 s queue, as
sfu_adaptive_test.py does): the SFU's estimate for s1 falls and it must drop the upper spatial
layers, so s1's decoded frameWidth falls below the top within TARGET_DOWN_S of the cap, while s2
keeps the top width; once the cap is lifted s1 must decode the top width again within
TARGET_UP_S (probes raise the estimate; the spatial layer returns at a keyframe). The targets
are the issue's (down within 5 s of a cap, up within 15 s of its removal) and are asserted as
they are. Decoding is sampled from getStats() four times a second: s2's framesDecoded never
stands still for more than 1 s, neither subscriber asks for more than a few keyframes (a decode
error makes Chromium ask for one), and s1 decodes under the cap. /metrics must report the
spatial and temporal layer each subscriber gets of the track (s1 below s2 under the cap) and
count s1's switches by reason (bandwidth down, bandwidth up, keyframe wait); `ringlane stats`
the SVC switches. Then 2% random loss (nftables) on s1's downlink for 15 s: s1 stays above the
lowest spatial layer, NACKs and keeps decoding, and s2 stays on the top width.
Skips (77) without Chromium, chromedriver, ip, tc or nft, or when Chromium cannot encode VP9 SVC.

Usage: sfu_svc_shaped_test.py --ringlane PATH [--io uring|mmsg]
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sfu_adaptive_test import CAP_KBIT, Watch, lose, metric, shape, unlose, unshape  # noqa: E402
from sfu_browser_test import (Pages, browser_test_args, dataplane_counters, free_port_pair,  # noqa: E402
                              netns_main, start_node, stop, wait_until)
from testlib import FAILURES, check, free_port, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402

TARGET_DOWN_S, TARGET_UP_S, TARGET_STALL_S = 5, 15, 1.0
LOSS_STALL_S = 2.0  # s1 under 2% loss: a loss NACK cannot repair in time waits for a keyframe
MAX_PLIS = 5  # keyframe requests a subscriber may send over the run (start, switches)
SKIPPED = []


class SvcWatch(Watch):
    """As sfu_adaptive_test's, each sample with the subscriber's pliCount too (its keyframe asks)."""

    def sample(self):
        for n in self.names:
            v = self.video(n)
            if v:
                self.samples[n].append((time.time(), v["frameWidth"], v["framesDecoded"], v["nackCount"],
                                        v["pliCount"]))

    def stall_between(self, name, t0, t1):
        """The longest time framesDecoded did not rise between t0 and t1 (seconds)."""
        s = [x for x in self.samples[name] if t0 <= x[0] <= t1]
        worst, last_rise = 0.0, s[0][0] if s else t0
        for prev, cur in zip(s, s[1:]):
            if cur[2] > prev[2]:
                last_rise = cur[0]
            worst = max(worst, cur[0] - last_rise)
        return worst


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    media_port = free_port_pair()
    room = f"svcbw{os.getpid()}"
    name = f"sfu-svc-shaped-{os.getpid()}"
    os.environ["RINGLANE_SFU_TRACE"] = "1"  # the estimates and layers each second, in the log
    server = start_node(a, tmp, name, log, http_port, free_port(), media_port)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port}")
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=1280,800"])
        pages = Pages(browser)
        base = f"http://127.0.0.1:{http_port}/?room={room}&autojoin=1"
        pages.open("pub", f"{base}&name=pub&width=960&height=540&video_codec=VP9&simulcast=0&svc=L3T3_KEY")
        for n in ("s1", "s2"):
            pages.open(n, f"{base}&name={n}&publish=0&adaptive=0")  # the tile size limits nothing here
        for n in ("pub", "s1", "s2"):
            wait_until(lambda n=n: (pages.state(n) or {}).get("joined"), 20)
            check((pages.state(n) or {}).get("joined"), f"{n}'s page joined {room}")
        if FAILURES:
            return

        def sent():
            out = pages.stats("pub")["publisher"]["outbound"]
            return [o for o in out if o["kind"] == "video"]
        out = wait_until(lambda: (lambda v: v if v and v[0]["frameWidth"] >= 960 else None)(sent()), 30,
                         step=0.5) or sent()
        codec = (out[0].get("codec") or {}).get("mimeType", "") if out else ""
        if "VP9" not in codec.upper():
            SKIPPED.append(f"the publisher does not send VP9 ({codec or 'nothing'})")
            return
        check(len(out) == 1 and out[0]["frameWidth"] >= 960,
              f"the publisher sends one VP9 encoding at full width ({[(o['rid'], o['frameWidth']) for o in out]})")
        watch = SvcWatch(pages, ["s1", "s2"], "pub")

        # Both on the top width for 3 s in a row (the estimates grown over all spatial layers).
        # The publisher's encoder may scale itself down on a loaded machine: the top is s2's.
        def steady_top(last):
            if len(last) != 2 or last["s1"][1] != last["s2"][1] or last["s1"][1] < 960:
                return False
            recent = {n: [x for x in watch.samples[n] if x[0] >= time.time() - 3] for n in ("s1", "s2")}
            return all(len(r) >= 9 and all(x[1] == last["s1"][1] for x in r) for r in recent.values())
        t_top = watch.run(40, steady_top)
        check(t_top is not None, f"both subscribers decode the full width and stay there: "
                                 f"s1 {watch.widths('s1', 0)}, s2 {watch.widths('s2', 0)}")
        if FAILURES:
            return
        # And the estimates settled above what the top takes, with the headroom going up keeps,
        # for 4 s in a row, both on the top width meanwhile (else s2 could still be moving with its
        # own estimate, the publisher ramping up, when s1 is capped).
        est = {}
        since = [None]

        def settled(last):
            est.update({w: (metric(http_port, "ringlane_sfu_subscriber_estimate_bps", participant=w),
                            metric(http_port, "ringlane_sfu_route_bitrate_bps", participant=w, kind="video"))
                        for w in ("s1", "s2")})
            ok = (all(e and b and e >= 1.4 * b for e, b in est.values()) and len(last) == 2
                  and last["s1"][1] == last["s2"][1] >= 960)
            since[0] = (since[0] or time.time()) if ok else None
            return ok and time.time() - since[0] >= 4
        t_settled = watch.run(30, settled)
        check(t_settled is not None, f"both estimates settle above the top layers' bitrate "
                                     f"(estimate, bitrate: {est})")
        if FAILURES:
            return
        top = watch.samples["s2"][-1][1]
        plis0 = {n: (watch.video(n) or {}).get("pliCount", 0) for n in ("s1", "s2")}
        port = int(pages.stats("s1")["subscriber"]["pair"]["local"].rsplit(":", 1)[1])

        # The cap: s1 drops spatial layers, s2 keeps them.
        shape(port)
        t_cap = time.time()
        t_low = watch.run(TARGET_DOWN_S + 5, lambda last: 0 < last.get("s1", (0, top))[1] < top)
        took = (t_low - t_cap) if t_low else None
        print(f"  measured: down {took if took is None else round(took, 1)} s (target {TARGET_DOWN_S} s), "
              f"s1 widths {watch.widths('s1', t_cap)}", flush=True)
        check(t_low is not None and took <= TARGET_DOWN_S,
              f"s1 decodes a lower spatial layer within {TARGET_DOWN_S} s of a {CAP_KBIT} kbit/s cap "
              f"(took {took if took is None else round(took, 1)} s; widths {watch.widths('s1', t_cap)})")
        watch.run(6)
        print("  measured: s1 from the cap on (s/width/framesDecoded/nackCount/pliCount) " +
              " ".join(f"{s[0] - t_cap:.1f}/{s[1]}/{s[2]}/{s[3]}/{s[4]}" for s in watch.since("s1", t_cap)[::2]),
              flush=True)
        capped = watch.since("s1", (t_low or t_cap) + 1)
        check(capped and all(0 < s[1] < top for s in capped),
              f"s1 stays below the top width under the cap (widths {sorted({s[1] for s in capped})})")
        check(capped and capped[-1][2] > capped[0][2],
              f"s1 keeps decoding under the cap (framesDecoded {capped[0][2] if capped else '?'} -> "
              f"{capped[-1][2] if capped else '?'})")
        print(f"  measured: s2's widths since the cap {watch.widths('s2', t_cap)}", flush=True)
        # The workers report every 2 s: what /metrics says of the layers under the cap.
        def layers():
            return {w: (metric(http_port, "ringlane_sfu_route_layer", participant=w, kind="video"),
                        metric(http_port, "ringlane_sfu_route_temporal_layer", participant=w, kind="video"),
                        metric(http_port, "ringlane_sfu_subscriber_estimate_bps", participant=w))
                    for w in ("s1", "s2")}
        seen = wait_until(lambda: (lambda s: s if s["s1"][0] is not None and s["s2"][0] is not None
                                   and s["s1"][0] < s["s2"][0] == 2 else None)(layers()), 5, step=0.5) or layers()
        print(f"  measured: /metrics under the cap (spatial, temporal, estimate) {seen}", flush=True)
        check(seen["s1"][0] is not None and seen["s2"][0] == 2 and 0 <= seen["s1"][0] < 2,
              f"/metrics: s1's video on a lower spatial layer than s2's (on 2) ({seen})")
        check(seen["s1"][1] is not None and seen["s2"][1] == 2,
              f"/metrics: the temporal layers each gets (s2 all three) ({seen})")
        check(seen["s1"][2] and seen["s2"][2] and seen["s1"][2] < CAP_KBIT * 1000 * 1.5 < seen["s2"][2],
              f"/metrics: s1's estimate under the cap, s2's above it ({seen})")

        # The cap lifted: back up through probes, at a keyframe.
        unshape()
        t_free = time.time()
        t_up = watch.run(TARGET_UP_S + 5, lambda last: last.get("s1", (0, 0))[1] == top)
        took = (t_up - t_free) if t_up else None
        print(f"  measured: up {took if took is None else round(took, 1)} s (target {TARGET_UP_S} s)", flush=True)
        check(t_up is not None and took <= TARGET_UP_S,
              f"s1 decodes the top width again within {TARGET_UP_S} s of the cap's removal "
              f"(took {took if took is None else round(took, 1)} s; widths {watch.widths('s1', t_free)})")
        watch.run(3)

        # 2% random loss on s1's downlink (the mediasoup bug where one bad link lowered everyone's
        # estimate, as a regression test): NACK repairs it, s1 stays off the lowest spatial
        # layer and keeps decoding, s2 is not touched.
        lose(port, 2)
        t_loss = time.time()
        try:
            watch.run(15)
        finally:
            unlose()
        t_clean = time.time()
        lossy = watch.since("s1", t_loss)
        low = top // 4  # L3T3: the spatial layers are 1/4, 1/2 and all of the width
        print(f"  measured: with 2% loss s1's widths {watch.widths('s1', t_loss)}, nackCount "
              f"{lossy[0][3] if lossy else '?'} -> {lossy[-1][3] if lossy else '?'}, longest stall "
              f"{watch.stall_between('s1', t_loss, t_clean):.2f} s; s2's widths "
              f"{watch.widths('s2', t_loss)}", flush=True)
        check(lossy and min(x[1] for x in lossy) > low,
              f"with 2% loss s1 stays above the lowest spatial layer ({low} wide; widths "
              f"{watch.widths('s1', t_loss)})")
        check(lossy and lossy[-1][3] > lossy[0][3], f"s1 NACKs what it lost (nackCount "
              f"{lossy[0][3] if lossy else '?'} -> {lossy[-1][3] if lossy else '?'})")
        stall = watch.stall_between("s1", t_loss, t_clean)
        check(stall <= LOSS_STALL_S, f"s1 keeps decoding under loss (longest stall {stall:.2f} s, at most "
                                     f"{LOSS_STALL_S} s)")
        under_loss = [x[1] for x in watch.samples["s2"] if t_loss <= x[0] <= t_clean]
        check(under_loss and under_loss.count(top) / len(under_loss) >= 0.9,
              f"s2 on the top width while s1 loses packets (widths {sorted(set(under_loss))})")

        stall = watch.longest_stall("s2", t_top)
        print(f"  measured: s2's longest stall {stall:.2f} s; s1's from the cap to its removal "
              f"{watch.stall_between('s1', t_cap, t_free):.2f} s, after it {watch.longest_stall('s1', t_free):.2f} s",
              flush=True)
        check(stall <= TARGET_STALL_S, f"s2 never stops decoding for more than {TARGET_STALL_S} s "
                                       f"(longest stall {stall:.2f} s)")
        # While s1 was capped (the feature's claim: the other subscriber is not touched). Before
        # and after, a loaded machine's stall can move s2's own estimate (printed).
        # A CPU stall of this shared 2-core VM can dip s2's own estimate (GCC's overuse answer is
        # 0.85 x what was acked, about 1.5 x the top layers' cost here) for a sample or two: so
        # the claim is that s2 stays on the top width nearly all the time, not that it never
        # blinks (a dip is printed; CI saw one 480 sample in a run of ~40).
        under = [x[1] for x in watch.samples["s2"] if t_cap <= x[0] <= t_free]
        at_top = sum(1 for w in under if w == top) / max(len(under), 1)
        check(under and at_top >= 0.9,
              f"s2 on the top width {at_top:.0%} of the time s1 was capped (widths {sorted(set(under))})")
        print(f"  measured: s2's widths from the settling on {watch.widths('s2', t_settled)}", flush=True)
        plis = {n: (watch.video(n) or {}).get("pliCount", 0) - plis0[n] for n in ("s1", "s2")}
        check(all(v <= MAX_PLIS for v in plis.values()),
              f"the subscribers asked for few keyframes (no decode errors): {plis}")
        reasons = {r: metric(http_port, "ringlane_sfu_route_layer_switches_total", participant="s1",
                             kind="video", reason=r) for r in ("down", "up", "preference", "keyframe_wait")}
        print(f"  measured: s1's switches by reason {reasons}", flush=True)
        check((reasons["down"] or 0) >= 1 and (reasons["up"] or 0) >= 1 and (reasons["keyframe_wait"] or 0) >= 1
              and reasons["preference"] == 0,
              f"/metrics counts s1's switches: bandwidth down and up, the spatial one up at a keyframe, "
              f"none by preference ({reasons})")
        c = dataplane_counters(a.ringlane, name)
        print("  measured: data plane " + ", ".join(f"{k[4:]} {c.get(k)}" for k in (
            "sfu_pli_received", "sfu_pli_sent", "sfu_nack_received", "sfu_retransmitted", "sfu_retransmit_missed",
            "sfu_retransmit_throttled", "sfu_nack_forwarded", "sfu_repair_keyframes", "sfu_layer_down", "sfu_layer_up", "sfu_layer_down_kept")), flush=True)
        wanted = ["sfu_svc_layer_down", "sfu_svc_layer_up", "sfu_layer_keyframe_waits", "sfu_probes"]
        check(all(c.get(k, 0) > 0 for k in wanted) and c.get("sfu_layer_preference", -1) == 0,
              "`ringlane stats` counts the SVC switches (" + ", ".join(f"{k[4:]} {c.get(k)}" for k in
                                                                    wanted + ["sfu_layer_preference"]) + ")")
        check(server.poll() is None, "ringlane run still running")
    finally:
        try:
            unshape()
        except RuntimeError:
            pass
        stop(server, browser)


def main():
    a = browser_test_args()

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        run(a, tmp, logs[0])

    code = netns_main(a, __file__, "rl-svcbw", go, timeout=220, needs=("chromedriver", "ip", "tc", "nft"))
    if SKIPPED and code == 0:
        print(f"skip: {SKIPPED[0]}")
        return 77
    return code


if __name__ == "__main__":
    sys.exit(main())
