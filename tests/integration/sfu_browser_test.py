#!/usr/bin/env python3
"""The SFU end to end with real browsers: inside a network namespace whose only interface is lo,
`ringlane run` on embedded defaults serves its demo page, and three windows of one headless
Chromium (fake camera and microphone) open it with ?autojoin=1, take tokens from
/api/dev-token, publish, and receive each other through the SFU. Checked from the page's
window.ringlaneTest.stats(): everyone decodes the two others' video (framesDecoded rising) and
receives their audio (packetsReceived rising); when one leaves, the two others see its tracks
end and it leave while their own video keeps flowing. A screenshot of one page is saved.
Skips (77) when Chromium, chromedriver or `ip netns` is missing.

Usage: sfu_browser_test.py --ringlane PATH --io uring|mmsg [--screenshot PATH]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, check, free_port, http_get, summary, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser, find_chromium, run_in_loopback_netns  # noqa: E402

NAMES = ["p1", "p2", "p3"]


def free_port_pair():
    """Two consecutive UDP ports free on 127.0.0.1 (media ports: worker i uses BASE+i)."""
    for _ in range(50):
        base = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", base + 1))
                return base
            except OSError:
                continue
    raise RuntimeError("no two consecutive free UDP ports")


class Pages:
    """The three participants' windows of one browser, by name."""

    def __init__(self, browser):
        self.browser = browser
        self.handles = {}

    def open(self, name, url):
        handle = self.browser.window() if not self.handles else self.browser.new_window()
        self.handles[name] = handle
        self.browser.switch_to(handle)
        self.browser.open(url)

    def run(self, name, script, *args):
        self.browser.switch_to(self.handles[name])
        return self.browser.run(script, *args)

    def state(self, name):
        return self.run(name, "return window.ringlaneTest ? window.ringlaneTest.state() : null")

    def stats(self, name):
        return self.run(name, "return window.ringlaneTest.stats()")

    def published(self, name):
        """The page's state once its publisher connected or it reported an error, else None."""
        s = self.state(name)
        return s if s["publisher"] == "connected" or s["errors"] else None

    def videos(self, name):
        """The sizes of the videos playing in the page's grid, once all of them play."""
        widths = self.run(name, "return [...document.querySelectorAll('#grid video')].map((v) => v.videoWidth)")
        return widths if widths and all(widths) else None

    def saw_mute(self, name, who, kind, muted):
        """True once the page's last word on `who`'s `kind` track is `muted`, its tile showing it."""
        said = [e["muted"] for e in self.state(name)["events"]
                if e["type"] == "track_muted" and e["identity"] == who and e.get("kind") == kind]
        shown = self.run(name, "return [...document.querySelectorAll('#grid figure')].some((f) => "
                               "f.querySelector('figcaption').textContent === arguments[0] && "
                               "f.classList.contains(arguments[1]))", who, f"{kind}-muted")
        return bool(said) and said[-1] == muted and shown == muted

    def speakers(self, name):
        """The page's `speakers` events, oldest first: lists of identities, loudest first."""
        return [e["speakers"] for e in self.state(name)["events"] if e["type"] == "speakers"]

    def loudest(self, name):
        said = self.speakers(name)
        return said[-1][0] if said and said[-1] else None

    def speaking_tile(self, name):
        return self.run(name, "const f = document.querySelector('#grid figure.speaking'); "
                              "return f ? f.querySelector('figcaption').textContent : null")

    def saw_leave(self, name, who):
        """The page's state once it saw `who`'s audio and video end and `who` leave, else None."""
        s = self.state(name)
        ended = {e["kind"] for e in s["events"] if e["type"] == "track_ended" and e["identity"] == who}
        left = any(e["type"] == "participant_left" and e["identity"] == who for e in s["events"])
        return s if left and ended == {"audio", "video"} and who not in s["participants"] else None


def wait_until(what, timeout, step=0.1):
    """Calls what() until it returns something truthy or `timeout` seconds pass; the last value."""
    deadline = time.time() + timeout
    value = what()
    while not value and time.time() < deadline:
        time.sleep(step)
        value = what()
    return value


def flowing(before, after, senders):
    """Why the media from `senders` did not flow between two stats samples ("" if it did):
    exactly one video and one audio track from each, video frames decoded and audio packets
    received rising, and nothing from anyone else."""
    def by_track(sample):
        return {(r["identity"], r["trackId"]): r for r in sample["remote"]}

    a, b = by_track(before), by_track(after)
    strangers = sorted({i for i, _ in b} - set(senders))
    if strangers:
        return f"still receives {strangers}"
    for who in senders:
        for kind, counter in (("video", "framesDecoded"), ("audio", "packetsReceived")):
            mine = [k for k, r in b.items() if k[0] == who and r["kind"] == kind]
            if len(mine) != 1:
                return f"{len(mine)} {kind} tracks from {who}"
            k = mine[0]
            if k not in a or not b[k][counter] > a[k][counter] > 0:
                return f"{who}'s {kind} {counter} not rising ({a.get(k, {}).get(counter)} -> {b[k][counter]})"
    return ""


def wait_flowing(pages, expect, timeout):
    """Samples every page's stats twice, 1.2 s apart, until each receives from exactly the
    senders `expect` names for it; returns the reasons of the last failed round ({} if none)."""
    deadline = time.time() + timeout
    while True:
        first = {n: pages.stats(n) for n in expect}
        time.sleep(1.2)  # the sampling interval; the proof is the counters rising across it
        second = {n: pages.stats(n) for n in expect}
        why = {n: flowing(first[n], second[n], expect[n]) for n in expect}
        why = {n: w for n, w in why.items() if w}
        if not why or time.time() > deadline:
            return why, second


def loopback_only(stats):
    """True when the page's media runs over 127.0.0.1 only (the selected candidate pairs)."""
    pairs = [stats["publisher"].get("pair"), stats["subscriber"].get("pair")]
    return all(p and p["local"].startswith("127.0.0.1:") and p["remote"].startswith("127.0.0.1:")
               for p in pairs), pairs


def start_node(a, tmp, name, log, http_port, turn_port, media_port, extra=()):
    """`ringlane run` on embedded defaults for a browser test: 2 workers, TURN on turn_port, the
    SFU's media ports from media_port on 127.0.0.1, state (secrets, media) kept in tmp."""
    env = dict(os.environ, RINGLANE_STATE_DIR=os.path.join(tmp, "state"))
    return subprocess.Popen(
        [a.ringlane, "run", "--name", name, "--io", a.io, "--workers", "2",
         "--listen", f"127.0.0.1:{turn_port}", "--media-ip", "127.0.0.1", "--media-port", str(media_port),
         "--http", f"127.0.0.1:{http_port}", *extra],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)


def stop(server, browser):
    if browser:
        browser.close()
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()


def kill_dataplane(pid):
    """Kills a data plane a test's control plane left running (it outlives a killed parent)."""
    if pid and os.path.exists(f"/proc/{pid}"):
        time.sleep(0.5)
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def dataplane_counters(binary, name):
    """The data plane's counters summed over its workers (`ringlane stats`)."""
    out = subprocess.run([binary, "stats", "--name", name], capture_output=True, text=True, timeout=5)
    workers = json.loads(out.stdout)["workers"]
    return {k: sum(w[k] for w in workers) for k in workers[0] if isinstance(workers[0][k], (int, float))}


def browser_test_args():
    """--ringlane PATH [--io uring|mmsg] and the hidden --in-netns of netns_main()."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--io", choices=["uring", "mmsg"], default="uring")
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args()


def browser_main(script, prefix, run_fn, timeout=220, needs=("chromedriver", "ip")):
    """A browser test's main(): run_fn(a, tmp, log) inside a namespace with only lo (netns_main),
    the node's log (`log`, in tmp) printed when a check failed."""
    a = browser_test_args()

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        run_fn(a, tmp, logs[0])

    return netns_main(a, script, prefix, go, timeout=timeout, needs=needs)


def joined_all(pages, names, room, timeout=20):
    """Each page in `names` has joined `room` (checked); False if one has not."""
    for n in names:
        wait_until(lambda n=n: (pages.state(n) or {}).get("joined"), timeout)
        check((pages.state(n) or {}).get("joined"), f"{n}'s page joined {room}")
    return not FAILURES


def netns_main(a, script, prefix, run_fn, timeout=220, needs=("chromedriver", "ip")):
    """Runs `script` again inside a fresh network namespace with only lo (skip, 77, when a tool or
    the namespace is missing); inside it, calls run_fn(tmp, logs) and reports the checks,
    printing the tail of each log in `logs` on failure."""
    if not a.in_netns:
        if not find_chromium():
            print("skip: chromium and chromium-driver are needed")
            return 77
        for tool in needs:
            if not shutil.which(tool):
                print(f"skip: {tool} is needed")
                return 77
        argv = [sys.executable, os.path.abspath(script), "--in-netns"] + sys.argv[1:]
        code, why = run_in_loopback_netns(argv, prefix, timeout)
        if code is None:
            print(f"skip: no network namespace ({why}); host candidates need one with only lo")
            return 77
        return code
    tmp = tempfile.mkdtemp(prefix=prefix + "-")
    logs = []
    try:
        run_fn(tmp, logs)
    except Exception as e:  # a broken page or driver is a failure too, with the server's log
        check(False, f"{type(e).__name__}: {e}")
    if summary():
        for log in logs:
            if os.path.exists(log):
                print(f"--- {log} (tail) ---")
                print(open(log).read()[-4000:])
        return 1
    return 0


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    turn_port = free_port()
    media_port = free_port_pair()
    room = f"r{os.getpid()}"
    server = start_node(a, tmp, f"sfu-browser-{os.getpid()}", log, http_port, turn_port, media_port)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port} (io {a.io})")
        check("dev tokens on" in open(log).read(), "on embedded defaults the node says its dev tokens are on")
        status, body = http_get(http_port, "/")
        check(status == 200 and 'src="/app.js"' in body, f"GET / serves the demo page ({status})")
        status, body = http_get(http_port, f"/api/dev-token?room={room}&identity=probe")
        grant = json.loads(body) if status == 200 else {}
        check(grant.get("token") and grant.get("ws_url") == f"ws://127.0.0.1:{http_port}/ws"
              and grant.get("ice_servers"), f"/api/dev-token hands out a token without a key ({status})")

        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=1280,800"])
        pages = Pages(browser)
        for name in NAMES:
            pages.open(name, f"http://127.0.0.1:{http_port}/?room={room}&name={name}&autojoin=1")
        for name in NAMES:
            wait_until(lambda n=name: (pages.state(n) or {}).get("joined"), 20)
            s = pages.state(name) or {}
            check(s.get("joined"), f"{name}'s page joined {room} (participants {s.get('participants')}, "
                                   f"errors {s.get('errors')})")
        for name in NAMES:
            s = wait_until(lambda n=name: pages.published(n), 30) or pages.state(name)
            check(s["publisher"] == "connected" and not s["errors"],
                  f"{name} publishes: its publisher connection is connected, no errors "
                  f"({s['publisher']}, errors {s['errors']})")
        if FAILURES:
            return

        everyone = {n: [m for m in NAMES if m != n] for n in NAMES}
        why, last = wait_flowing(pages, everyone, 60)
        check(not why, f"each page decodes the 2 others' video and receives their audio ({why or 'all rising'})")
        for name in NAMES:
            ok, pairs = loopback_only(last[name])
            check(ok, f"{name}'s media runs over loopback only ({pairs})")
        v = last["p1"]["remote"]
        print("  p1 receives: " + ", ".join(
            f"{r['identity']} {r['kind']} {r['frameWidth']}x{r['frameHeight']} frames {r['framesDecoded']} "
            f"packets {r['packetsReceived']} nack {r['nackCount']} pli {r['pliCount']}" for r in v), flush=True)

        widths = wait_until(lambda: pages.videos("p1"), 10)
        check(widths and len(widths) == 3, f"p1's grid shows three playing videos (widths {widths})")
        names = pages.run("p1", "return [...document.querySelectorAll('#grid figcaption')].map((c) => c.textContent)")
        check(sorted(names) == ["p1 (you)", "p2", "p3"], f"p1's tiles are labelled with the names ({names})")
        shot = a.screenshot or os.path.join(tmp, "sfu-browser-p1.png")
        browser.switch_to(pages.handles["p1"])
        browser.screenshot(shot)
        print(f"  screenshot of p1's page: {shot}", flush=True)

        for muted in (True, False):
            pages.run("p2", "document.getElementById('camera').click()")
            seen = wait_until(lambda m=muted: pages.saw_mute("p1", "p2", "video", m), 5)
            check(seen, f"p2 {'stops' if muted else 'restarts'} its camera: p1 hears track_muted "
                        f"{str(muted).lower()} and its tile shows it")

        # Active speaker: only p1's microphone on, then only p2's.
        for who in ("p2", "p3"):
            pages.run(who, "document.getElementById('mic').click()")
        spoke = wait_until(lambda: pages.loudest("p2") == "p1" and pages.speaking_tile("p2") == "p1", 8)
        check(spoke, f"with only p1's microphone on, p2 hears p1 is the active speaker and its tile shows it "
                     f"(speakers events {pages.speakers('p2')[-3:]}, tile {pages.speaking_tile('p2')})")
        pages.run("p1", "document.getElementById('mic').click()")
        pages.run("p2", "document.getElementById('mic').click()")
        spoke = wait_until(lambda: pages.loudest("p3") == "p2", 8)
        check(spoke, f"then with only p2's on, p3 hears p2 is ({pages.speakers('p3')[-3:]})")
        for who in ("p1", "p3"):
            pages.run(who, "document.getElementById('mic').click()")

        pages.run("p3", "document.getElementById('leave').click()")
        left = wait_until(lambda: not pages.state("p3")["joined"], 5)
        check(left, "p3 clicks Leave")
        for name in ("p1", "p2"):
            s = wait_until(lambda n=name: pages.saw_leave(n, "p3"), 5)
            seen = s or pages.state(name)
            about = [e["type"] + (f" {e['kind']}" if e.get("kind") else "")
                     for e in seen["events"] if e.get("identity") == "p3"]
            check(bool(s), f"{name} sees p3's audio and video end and p3 leave within 5 s "
                           f"(its events about p3: {', '.join(about)}; participants {seen['participants']})")
        why, _ = wait_flowing(pages, {"p1": ["p2"], "p2": ["p1"]}, 15)
        check(not why, f"p1 and p2 go on decoding each other's video, nothing from p3 ({why or 'all rising'})")
        check(server.poll() is None, "ringlane run still running")
    finally:
        stop(server, browser)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--io", choices=["uring", "mmsg"], required=True)
    ap.add_argument("--screenshot")
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        run(a, tmp, logs[0])

    return netns_main(a, __file__, "rl-sfu", go)

if __name__ == "__main__":
    sys.exit(main())
