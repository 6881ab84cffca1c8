#!/usr/bin/env python3
"""A control plane killed with -9 mid-call keeps the call: inside a network namespace whose only
interface is lo, two Chromium pages of the demo page are in a call through `ringlane run`; the
control plane is killed with SIGKILL (its data plane, which holds the sessions and keys, runs
on); while it is down the pages go on decoding each other's video; a new `ringlane run` of the
same name adopts the data plane, reads back the media state its predecessor kept, the pages'
WebSockets reconnect with their tokens and resume their participants without an ICE restart
(the same selected candidate pairs, no new connection); and a third participant joins after it
and everyone decodes everyone. Then the data plane itself is killed with -9: the control plane
starts a new one (which has none of the sessions or keys), tells every participant
`media_reset`, and the pages start their media over (new peer connections, publish again, new
subscriber offers): all three decode each other again, on the new data plane.
Skips (77) when Chromium, chromedriver or `ip netns` is missing.

Usage: sfu_restart_test.py --ringlane PATH [--io uring|mmsg]
"""
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sfu_browser_test import (Pages, browser_test_args, free_port_pair, kill_dataplane,  # noqa: E402
                              netns_main, start_node, stop, wait_flowing, wait_until)
from testlib import FAILURES, check, free_port, http_get, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402



def ends(stats):
    """The addresses of both connections' selected candidate pairs (not their changing RTTs)."""
    return tuple((p or {}).get("local") and (p["local"], p["remote"])
                 for p in (stats["publisher"].get("pair"), stats["subscriber"].get("pair")))

def metric(port, name):
    status, body = http_get(port, "/metrics")
    if status != 200:
        return None
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def run(a, tmp, logs):
    http_port = free_port(socket.SOCK_STREAM)
    turn_port = free_port()
    media_port = free_port_pair()
    room = f"k{os.getpid()}"
    name = f"sfu-restart-{os.getpid()}"

    def start(i):
        logs.append(os.path.join(tmp, f"ringlane-{i}.log"))
        return start_node(a, tmp, name, logs[-1], http_port, turn_port, media_port)

    server = start(1)
    browser = None
    dataplane = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port}")
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=1280,800"])
        pages = Pages(browser)
        url = f"http://127.0.0.1:{http_port}/?room={room}&autojoin=1&name="
        for who in ("p1", "p2"):
            pages.open(who, url + who)
        for who in ("p1", "p2"):
            s = wait_until(lambda n=who: pages.published(n), 30) or pages.state(who)
            check(s["publisher"] == "connected" and not s["errors"], f"{who} joins and publishes ({s['errors']})")
        if FAILURES:
            return
        pair = {"p1": ["p2"], "p2": ["p1"]}
        why, before = wait_flowing(pages, pair, 40)
        check(not why, f"p1 and p2 decode each other ({why or 'all rising'})")
        pairs_before = {w: ends(before[w]) for w in pair}
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        dataplane = int(children[0]) if children else None
        check(dataplane is not None, f"the data plane runs as the control plane's child ({children})")

        server.send_signal(signal.SIGKILL)
        server.wait(10)
        check(not wait_http(http_port, timeout=0.5), "the control plane is gone (SIGKILL)")
        why, _ = wait_flowing(pages, pair, 10)
        check(not why, f"with no control plane, p1 and p2 still decode each other ({why or 'all rising'})")
        down = {w: pages.state(w)["reconnecting"] for w in pair}
        check(all(down.values()), f"both pages noticed and are reconnecting ({down})")

        server = start(2)
        check(wait_http(http_port), "a new ringlane run of the same name answers HTTP")
        def log2():
            with open(logs[-1]) as f:
                return f.read()
        adopted = wait_until(lambda: "adopt" in log2() and "media state restored" in log2(), 10)
        check(bool(adopted), "it adopts the running data plane and restores the media state "
                             f"({[l for l in log2().splitlines() if 'adopt' in l or 'restored' in l]})")
        check(dataplane is not None and os.path.exists(f"/proc/{dataplane}"),
              "the data plane is the same process as before")
        back = wait_until(lambda: all(pages.state(w)["reconnects"] >= 1 and pages.state(w)["joined"]
                                      and not pages.state(w)["reconnecting"] for w in pair), 30)
        check(bool(back), f"both pages reconnect their WebSocket and join again "
                          f"({ {w: (pages.state(w)['reconnects'], pages.state(w)['errors']) for w in pair} })")
        resumed = wait_until(lambda: (metric(http_port, "ringlane_sfu_resumed_total") or 0) >= 2, 10)
        check(bool(resumed), f"the new control plane resumed both participants "
                             f"(ringlane_sfu_resumed_total {metric(http_port, 'ringlane_sfu_resumed_total')})")
        why, after = wait_flowing(pages, pair, 20)
        check(not why, f"after the restart p1 and p2 decode each other ({why or 'all rising'})")
        pairs_after = {w: ends(after[w]) for w in pair}
        check(pairs_after == pairs_before, "no ICE restart: the same selected candidate pairs on both "
                                           f"connections ({pairs_before} -> {pairs_after})")
        states = {w: (pages.state(w)["publisher"], pages.state(w)["subscriber"]) for w in pair}
        check(all(s == ("connected", "connected") for s in states.values()),
              f"both peer connections stayed connected ({states})")

        pages.open("p3", url + "p3")
        s = wait_until(lambda: pages.published("p3"), 30) or pages.state("p3")
        check(s["publisher"] == "connected" and not s["errors"], f"p3 joins after the restart ({s['errors']})")
        everyone = {"p1": ["p2", "p3"], "p2": ["p1", "p3"], "p3": ["p1", "p2"]}
        why, _ = wait_flowing(pages, everyone, 40)
        check(not why, f"all three decode each other ({why or 'all rising'})")

        # The data plane dies (kill -9): a new one starts, and the media starts over on it.
        restarts = metric(http_port, "ringlane_dataplane_restarts_total") or 0
        os.kill(dataplane, signal.SIGKILL)
        replaced = wait_until(lambda: (metric(http_port, "ringlane_dataplane_restarts_total") or 0) > restarts, 15)
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        check(bool(replaced) and children and int(children[0]) != dataplane,
              f"the control plane starts a new data plane ({children}, restarts {restarts} -> "
              f"{metric(http_port, 'ringlane_dataplane_restarts_total')})")
        dataplane = int(children[0]) if children else None
        reset = wait_until(lambda: all(any(e["type"] == "media_reset" for e in pages.state(w)["events"])
                                       for w in everyone), 10)
        check(bool(reset), "every page is told media_reset")
        again = wait_until(lambda: all(pages.published(w) for w in everyone), 30)
        check(bool(again), f"every page publishes again "
                           f"({ {w: (pages.state(w)['publisher'], pages.state(w)['errors']) for w in everyone} })")
        why, _ = wait_flowing(pages, everyone, 40)
        check(not why, f"on the new data plane all three decode each other again ({why or 'all rising'})")
        active = metric(http_port, "webrtc_peer_connections_active")
        check(active == 6, f"the new data plane holds their 6 peer connections ({active})")
    finally:
        stop(server, browser)
        kill_dataplane(dataplane)


def main():
    a = browser_test_args()
    return netns_main(a, __file__, "rl-sfurs", lambda tmp, logs: run(a, tmp, logs))

if __name__ == "__main__":
    sys.exit(main())
