#!/usr/bin/env python3
"""AV1 SVC end to end, driven by the Dependency Descriptor header extension (AV1 RTP payload
format, Appendix A): Chromium publishes AV1 with one SSRC through `ringlane run`, two watch-only
pages receive it, in a network namespace whose only interface is lo; the camera is 640x360 for
L1T3 (the machine has 2 cores and libaom encodes in software).
  L1T3: the answers carry the descriptor (and a=extmap-allow-mixed, without which Chromium sends
  none); both pages decode. s1 sends `layer {temporal: 0}`: the SFU drops temporal layers 1-2 for
  it, so s1 decodes clearly fewer frames than s2 over the same seconds (TL0 is a quarter of them),
  both decoding all along (framesDecoded rising, few keyframe requests). Back to every temporal
  layer, s1 catches up with s2's rate.
  L3T3 (when Chromium's AV1 encoder gives it; 960x540, since libaom makes 640x360 L2T3): s1
  sends `layer {spatial: 0}` and its decoded frameWidth falls to the lowest spatial layer while s2
  keeps the top one.
Skips (77) without Chromium, chromedriver or ip, or when Chromium cannot encode AV1 with L1T3
(says which: no AV1 at all, or AV1 without that scalabilityMode). L3T3 missing is reported, not a
failure.

Usage: sfu_av1_test.py --ringlane PATH [--io uring|mmsg]
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sfu_browser_test import (Pages, browser_test_args, dataplane_counters, free_port_pair,  # noqa: E402
                              netns_main, start_node, stop, wait_until)
from testlib import FAILURES, check, free_port, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402

SKIPPED = []
DD = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
WIDTH = 640


def video(pages, name, publisher):
    for r in pages.stats(name)["remote"]:
        if r["identity"] == publisher and r["kind"] == "video":
            return r
    return None


def sample(pages, names, publisher):
    return {n: video(pages, n, publisher) or {} for n in names}


def watch(pages, names, publisher, seconds):
    """Samples every 0.25 s for `seconds`: per name, a list of (time, stats)."""
    out = {n: [] for n in names}
    for _ in range(int(seconds * 4)):
        s = sample(pages, names, publisher)
        for n in names:
            out[n].append((time.time(), s[n]))
        time.sleep(0.25)
    return out


def rising(samples):
    """framesDecoded rose in every second of the samples (no stall of a whole second)."""
    frames = [s.get("framesDecoded", 0) for _, s in samples]
    return all(frames[i + 4] > frames[i] for i in range(0, len(frames) - 4, 4))


def decoded(seen, n):
    return seen[n][-1][1].get("framesDecoded", 0) - seen[n][0][1].get("framesDecoded", 0)


def goto(pages, name, url):
    """Opens `url` in `name`'s window (a new one the first time; the page before it leaves)."""
    if name in pages.handles:
        pages.browser.switch_to(pages.handles[name])
        pages.browser.open(url)
    else:
        pages.open(name, url)


def publish(pages, base, publisher, subscribers, mode, width=WIDTH):
    """Opens the publisher (AV1, one encoding with `mode`, a `width` camera) and the watch-only
    pages in a room; the publisher's video outbound-rtp stats once it sends at full width (or the
    last seen)."""
    goto(pages, publisher, f"{base}&name={publisher}&width={width}&height={width * 9 // 16}"
                           f"&video_codec=AV1&simulcast=0&svc={mode}")
    for n in subscribers:
        goto(pages, n, f"{base}&name={n}&publish=0&adaptive=0")  # the tile size limits nothing here
    for n in (publisher, *subscribers):
        wait_until(lambda n=n: (pages.state(n) or {}).get("joined"), 20)
        check((pages.state(n) or {}).get("joined"), f"{n}'s page joined")

    def sent():
        out = pages.stats(publisher)["publisher"]["outbound"]
        return [o for o in out if o["kind"] == "video"]
    return wait_until(lambda: (lambda v: v if v and v[0]["frameWidth"] >= width else None)(sent()), 40,
                      step=0.5) or sent()


def av1_mode(out):
    """(codec mimeType, scalabilityMode) of the publisher's one video encoding."""
    if not out:
        return "", None
    return (out[0].get("codec") or {}).get("mimeType", ""), out[0].get("scalabilityMode")


def negotiated(pages, publisher, subscriber):
    """Whether the descriptor went through both negotiations: the publisher's offer and our
    answer (with a=extmap-allow-mixed), our offer to the subscriber."""
    p = pages.run(publisher, "return window.ringlaneTest.descriptions()")["publisher"]
    s = pages.run(subscriber, "return window.ringlaneTest.descriptions()")["subscriber"]
    answer = p.get("remote") or ""
    return {
        "publisher offer": DD in (p.get("local") or ""),
        "publisher answer": DD in answer and "a=extmap-allow-mixed" in answer,
        "subscriber offer": DD in (s.get("remote") or ""),
    }


def wait_decoding(pages, names, publisher, width):
    """Both subscribers decode at `width` or more (the estimate has grown over the layers)."""
    full = wait_until(lambda: (lambda s: s if all(v.get("frameWidth", 0) >= width for v in s.values())
                               else None)(sample(pages, names, publisher)), 60, step=0.5)
    return full or sample(pages, names, publisher)


def l1t3(pages, base):
    names = ("s1", "s2")
    out = publish(pages, base, "pub", names, "L1T3")
    if FAILURES:
        return
    codec, mode = av1_mode(out)
    if "AV1" not in codec.upper():
        SKIPPED.append(f"Chromium does not encode AV1 here (the publisher sends {codec or 'nothing'})")
        return
    if mode != "L1T3":
        SKIPPED.append(f"Chromium's AV1 encoder does not do SVC here (scalabilityMode {mode!r}, asked L1T3)")
        return
    check(len(out) == 1 and out[0]["frameWidth"] >= WIDTH,
          f"the publisher sends one AV1 L1T3 encoding at {WIDTH} ({[(o['rid'], o['frameWidth']) for o in out]})")
    sdp = negotiated(pages, "pub", "s1")
    check(all(sdp.values()), f"the dependency descriptor is negotiated both ways ({sdp})")
    full = wait_decoding(pages, names, "pub", WIDTH)
    check(all(v.get("frameWidth", 0) >= WIDTH and "AV1" in (v.get("codec") or {}).get("mimeType", "").upper()
              for v in full.values()),
          f"both subscribers decode AV1 at {WIDTH} ({ {n: v.get('frameWidth') for n, v in full.items()} })")
    if FAILURES:
        return
    track = full["s1"]["trackId"]
    plis0 = {n: full[n].get("pliCount", 0) for n in names}
    time.sleep(2)
    seen = watch(pages, names, "pub", 6)
    before = {n: decoded(seen, n) for n in names}
    print(f"  measured: L1T3 frames decoded over 6 s with all layers {before}", flush=True)

    reply = pages.run("s1", "return window.ringlaneTest.setLayer(arguments[0], 2, false, 0)", track)
    check(isinstance(reply, dict) and reply.get("temporal") == 0, f"s1 asks for temporal layer 0 ({reply})")
    time.sleep(2)
    seen = watch(pages, names, "pub", 8)
    low = {n: decoded(seen, n) for n in names}
    fps = {n: [round(s.get("framesPerSecond", 0)) for _, s in seen[n][::4]] for n in names}
    print(f"  measured: L1T3 frames decoded over 8 s, s1 at temporal 0: {low}, framesPerSecond {fps}",
          flush=True)
    check(0 < low["s1"] < 0.6 * low["s2"],
          f"s1 with temporal layer 0 decodes well under s2's frames (s1 {low['s1']}, s2 {low['s2']})")
    for n in names:
        check(rising(seen[n]), f"{n} keeps decoding (framesDecoded "
                               f"{[s.get('framesDecoded') for _, s in seen[n][::4]]})")
    widths = {n: sorted({s.get("frameWidth") for _, s in seen[n]}) for n in names}
    check(widths["s1"] == widths["s2"], f"s1 keeps the full size, with fewer frames ({widths})")

    pages.run("s1", "return window.ringlaneTest.setLayer(arguments[0], 2)", track)
    # The upper layers return at the next switching point, as far as s1's estimate (which fell with
    # what it received) allows: its rate catches up once that has grown again.
    wait_until(lambda: (lambda s: s if s["s1"].get("framesPerSecond", 0) >= 0.8 * s["s2"].get("framesPerSecond", 1)
                        else None)(sample(pages, names, "pub")), 20, step=0.5)
    time.sleep(1)
    seen = watch(pages, names, "pub", 6)
    back = {n: decoded(seen, n) for n in names}
    print(f"  measured: L1T3 frames decoded over 6 s with every layer again {back}", flush=True)
    check(back["s1"] > 0.8 * back["s2"], f"s1 with every temporal layer again decodes about as many frames "
                                         f"as s2 ({back})")
    last = sample(pages, names, "pub")
    plis = {n: last[n].get("pliCount", 0) - plis0[n] for n in names}
    check(all(v <= 5 for v in plis.values()), f"the subscribers asked for few keyframes (no decode errors): {plis}")


def l3t3(pages, base):
    """Three spatial layers need a larger camera: libaom gives 640x360 only two (L2T3)."""
    names = ("s1", "s2")
    width = 960
    out = publish(pages, base, "pub", names, "L3T3", width)
    codec, mode = av1_mode(out)
    spatial = int(mode[1]) if mode and mode[0] == "L" and mode[1].isdigit() else 1
    if "AV1" not in codec.upper() or spatial < 2:
        print(f"  note: no AV1 spatial layers from Chromium here (codec {codec or 'none'}, scalabilityMode "
              f"{mode!r} for L3T3); the spatial part is not checked", flush=True)
        return
    print(f"  measured: the publisher encodes AV1 {mode} at {out[0]['frameWidth']}", flush=True)
    lowest = width >> (spatial - 1)
    # Both decode the top layer (the estimate has grown over all of them), or at least above the
    # lowest when the publisher's encoder scaled itself down on a loaded machine.
    full = wait_decoding(pages, names, "pub", width)
    top = min(v.get("frameWidth", 0) for v in full.values())
    check(top > lowest, f"both subscribers decode above the lowest spatial layer ({lowest}) "
                        f"({ {n: v.get('frameWidth') for n, v in full.items()} })")
    if FAILURES:
        return
    track = full["s1"]["trackId"]
    reply = pages.run("s1", "return window.ringlaneTest.setLayer(arguments[0], 0)", track)
    check(isinstance(reply, dict) and reply.get("spatial") == 0, f"s1 asks for spatial layer 0 ({reply})")
    low = wait_until(lambda: (lambda v: v if 0 < v.get("frameWidth", 0) <= lowest + 16 else None)(
        video(pages, "s1", "pub") or {}), 15, step=0.25) or video(pages, "s1", "pub") or {}
    check(0 < low.get("frameWidth", 0) <= lowest + 16,
          f"s1 decodes the lowest spatial layer (frameWidth {low.get('frameWidth')}, lowest {lowest})")
    seen = watch(pages, names, "pub", 6)
    widths = {n: sorted({s.get("frameWidth") for _, s in seen[n]}) for n in names}
    print(f"  measured: {mode} widths over 6 s, s1 at spatial 0: {widths}", flush=True)
    check(max(widths["s1"]) <= lowest + 16, f"s1 stays on the lowest spatial layer ({widths['s1']})")
    check(min(widths["s2"]) > max(widths["s1"]),
          f"s2 keeps the upper spatial layers meanwhile ({widths['s2']}, s1 {widths['s1']})")
    for n in names:
        check(rising(seen[n]), f"{n} keeps decoding the {mode} stream (framesDecoded "
                               f"{[s.get('framesDecoded') for _, s in seen[n][::4]]})")


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    media_port = free_port_pair()
    name = f"sfu-av1-{os.getpid()}"
    server = start_node(a, tmp, name, log, http_port, free_port(), media_port)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port}")
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=1280,800"])
        pages = Pages(browser)
        l1t3(pages, f"http://127.0.0.1:{http_port}/?room=av1a{os.getpid()}&autojoin=1")
        if SKIPPED or FAILURES:
            return
        # The same windows in a second room (leaving the first): one AV1 encoder at a time.
        l3t3(pages, f"http://127.0.0.1:{http_port}/?room=av1b{os.getpid()}&autojoin=1")
        c = dataplane_counters(a.ringlane, name)
        check(c.get("sfu_rtp_forwarded", 0) > 0, f"the data plane forwarded ({c.get('sfu_rtp_forwarded')})")
        check(server.poll() is None, "ringlane run still running")
    finally:
        stop(server, browser)


def main():
    a = browser_test_args()

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        run(a, tmp, logs[0])

    code = netns_main(a, __file__, "rl-av1", go, timeout=300)
    if SKIPPED and code == 0:
        print(f"skip: {SKIPPED[0]}")
        return 77
    return code


if __name__ == "__main__":
    sys.exit(main())
