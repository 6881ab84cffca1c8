#!/usr/bin/env python3
"""Adaptive stream and dynacast end to end: a subscriber's tile size picks its simulcast layer.
Chromium publishes the demo page's three VP8 layers of a 960x540 camera (240, 480 and 960 wide,
told to the server with the publish), and one watch-only page receives them, in a network
namespace whose only interface is lo. The page reports its video element's size (ResizeObserver,
`layer {track, width, height}`); nothing here sends a `layer` wish. Checked:

1. The tile at its usual size (640 CSS px wide at most): the page decodes the top layer (960, the
   smallest that covers 640).
2. The tile made 200 px wide (a person shrinking the window or the layout): within 5 s the page
   decodes the 240-wide layer, the server's reply says spatial 0, and within 10 s of the resize
   the publisher's page has turned its two upper encodings off (dynacast: nobody takes them).
3. The tile back to its size: the page decodes 960 again and the publisher encodes it again.
4. The tile hidden (display: none, 0 x 0): the route pauses and framesDecoded stands still; shown
   again, decoding goes on.
/metrics must report the route's layer (0 while small) and its switches by preference.

Skips (77) without Chromium, chromedriver or `ip netns`.
Usage: sfu_tile_size_test.py --ringlane PATH [--io uring|mmsg]
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sfu_adaptive_test import Watch, metric  # noqa: E402
from sfu_browser_test import (Pages, browser_main, free_port_pair, joined_all, start_node, stop,  # noqa: E402
                              wait_until)
from testlib import FAILURES, check, free_port, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402

TARGET_SWITCH_S = 5   # the route follows a new tile size
TARGET_DYNACAST_S = 10  # the issue's: the publisher reports the top encoding inactive

# The subscriber's tile of the publisher, styled as a person's layout would make it.
RESIZE = """
const fig = [...document.querySelectorAll('#grid figure')].find(
    (f) => f.querySelector('figcaption').textContent === arguments[0]);
if (!fig) return false;
fig.style.maxWidth = arguments[1];
fig.style.display = arguments[2];
return fig.querySelector('video').clientWidth;
"""


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    media_port = free_port_pair()
    room = f"tile{os.getpid()}"
    name = f"sfu-tile-{os.getpid()}"
    server = start_node(a, tmp, name, log, http_port, free_port(), media_port)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port}")
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=1280,800"])
        pages = Pages(browser)
        base = f"http://127.0.0.1:{http_port}/?room={room}&autojoin=1"
        pages.open("pub", f"{base}&name=pub&width=960&height=540")
        pages.open("s1", f"{base}&name=s1&publish=0")
        if not joined_all(pages, ("pub", "s1"), room):
            return
        watch = Watch(pages, ["s1"], "pub")

        def active():
            out = pages.stats("pub")["publisher"]["outbound"]
            return {o["rid"]: o["active"] for o in out if o["kind"] == "video"}

        def layer_replies():
            return [e for e in pages.state("s1")["events"] if e["type"] == "layer"]

        # 1. The usual tile: the top layer covers it.
        t_top = watch.run(40, lambda last: last.get("s1", (0, 0))[1] >= 960)
        shown = pages.run("s1", RESIZE, "pub", "", "")
        check(t_top is not None, f"s1's {shown}-px tile decodes the top layer (widths {watch.widths('s1', 0)})")

        # The page reports its tile's size when it sees it change (a resize observer): the reply
        # may come after the top layer's first frames, so it is waited for, bounded.
        def covered():
            v = layer_replies()
            return v if v and v[-1].get("spatial") == 2 and v[-1].get("width", 0) > 0 else None
        sizes = wait_until(covered, 10) or layer_replies()
        check(sizes and sizes[-1].get("spatial") == 2 and sizes[-1].get("width", 0) > 0,
              f"the page told the server its tile's size, which the top layer covers ({sizes[-1:]})")
        if FAILURES:
            return

        # 2. A small tile: the smallest layer, then the publisher stops the others.
        shown = pages.run("s1", RESIZE, "pub", "200px", "")
        t_small = time.time()
        t_low = watch.run(TARGET_SWITCH_S + 5, lambda last: 0 < last.get("s1", (0, 960))[1] <= 240)
        took = (t_low - t_small) if t_low else None
        print(f"  measured: {shown}-px tile -> 240-wide layer in {took if took is None else round(took, 1)} s",
              flush=True)
        check(t_low is not None and took <= TARGET_SWITCH_S,
              f"a {shown}-px tile gets the 240-wide layer within {TARGET_SWITCH_S} s "
              f"(took {took if took is None else round(took, 1)} s; widths {watch.widths('s1', t_small)})")
        sizes = layer_replies()
        check(sizes and sizes[-1].get("spatial") == 0 and 0 < sizes[-1].get("width", 0) <= 240,
              f"the server's reply to the new size: spatial 0 ({sizes[-1:]})")
        # Sampling s1 all along (its decoding across the switch and the publisher's change).
        seen = {}

        def upper_off(_):
            seen.update(active())
            return seen.get("q") and not seen.get("h") and not seen.get("f")
        t_off = watch.run(TARGET_DYNACAST_S + 2, upper_off) or time.time()
        off = dict(seen)
        print(f"  measured: dynacast {t_off - t_small:.1f} s after the resize, active {off}", flush=True)
        check(off.get("q") and not off.get("h") and not off.get("f") and t_off - t_small <= TARGET_DYNACAST_S,
              f"dynacast: with only a small tile watching, the publisher turns its upper encodings off "
              f"(active {off} after {t_off - t_small:.1f} s)")
        wait_until(lambda: metric(http_port, "ringlane_sfu_route_layer", participant="s1", kind="video") == 0, 5,
                   step=0.5)
        layer = metric(http_port, "ringlane_sfu_route_layer", participant="s1", kind="video")
        check(layer == 0, f"/metrics: s1's route on layer 0 ({layer})")
        watch.run(2)
        print("  measured: s1 from the resize on (s/width/framesDecoded) " +
              " ".join(f"{x[0] - t_small:.1f}/{x[1]}/{x[2]}" for x in watch.since("s1", t_small)[::2]), flush=True)
        shot = os.path.join(tmp, "sfu-tile-size-s1.png")
        browser.switch_to(pages.handles["s1"])
        browser.screenshot(shot)
        print(f"  screenshot of s1's page with the small tile: {shot}", flush=True)
        # Printed, and bounded only loosely: one CI run saw s1 decode nothing for 7.5 s after this
        # switch (seen nowhere else, in ~10 runs; not found yet); what is asserted is that it
        # decodes the small layer by the end of the dynacast change.
        stall = watch.longest_stall("s1", t_small)
        print(f"  measured: s1's longest stall across the switch down {stall:.2f} s", flush=True)
        first = watch.since("s1", t_low or t_small)[:1]
        watch.run(10, lambda last: first and last.get("s1", (0, 0, 0))[2] > first[0][2])
        small = watch.since("s1", t_low or t_small)
        check(small and small[-1][2] > small[0][2] and 0 < small[-1][1] <= 240,
              f"s1 decodes the small layer after the switch (framesDecoded {small[0][2] if small else '?'} -> "
              f"{small[-1][2] if small else '?'}; longest stall {stall:.2f} s)")

        # 3. The tile back to its size: the top layer again, encoded again.
        pages.run("s1", RESIZE, "pub", "", "")
        t_big = time.time()
        t_back = watch.run(15, lambda last: last.get("s1", (0, 0))[1] >= 960)
        took = (t_back - t_big) if t_back else None
        print(f"  measured: back to 960 in {took if took is None else round(took, 1)} s, active {active()}",
              flush=True)
        check(t_back is not None,
              f"the tile back to its size decodes the top layer again, the publisher encoding it "
              f"(took {took if took is None else round(took, 1)} s; widths {watch.widths('s1', t_big)}; "
              f"active {active()})")
        def preference_switches():
            return metric(http_port, "ringlane_sfu_route_layer_switches_total", participant="s1", kind="video",
                          reason="preference")
        # The workers report every 2 s. The way down is the size's alone; the way up may be the
        # estimate's too (counted as up when it held the layer back a moment, on a loaded machine).
        prefs = wait_until(lambda: (lambda n: n if n is not None and n >= 2 else None)(preference_switches()), 5,
                           step=0.5) or preference_switches()
        print(f"  measured: preference switches {prefs}", flush=True)
        check(prefs is not None and prefs >= 1, f"/metrics counts the size changes as preference ({prefs})")

        # 4. Hidden: nothing sent; shown: decoding goes on.
        pages.run("s1", RESIZE, "pub", "", "none")
        time.sleep(1.5)
        watch.run(3)
        t_hidden = time.time()
        watch.run(3)
        hidden = watch.since("s1", t_hidden)
        check(hidden and hidden[-1][2] == hidden[0][2],
              f"a hidden tile gets no video (framesDecoded {hidden[0][2] if hidden else '?'} -> "
              f"{hidden[-1][2] if hidden else '?'} over 3 s; replies {layer_replies()[-1:]})")
        pages.run("s1", RESIZE, "pub", "", "")
        t_shown = time.time()
        watch.run(8, lambda last: len(watch.since("s1", t_shown)) > 4 and
                  watch.since("s1", t_shown)[-1][2] > watch.since("s1", t_shown)[0][2])
        again = watch.since("s1", t_shown)
        check(again and again[-1][2] > again[0][2],
              f"shown again, s1 decodes again (framesDecoded {again[0][2] if again else '?'} -> "
              f"{again[-1][2] if again else '?'})")
        check(server.poll() is None, "ringlane run still running")
    finally:
        stop(server, browser)


if __name__ == "__main__":
    sys.exit(browser_main(__file__, "rl-tile", run, timeout=150))
