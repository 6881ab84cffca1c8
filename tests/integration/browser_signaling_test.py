#!/usr/bin/env python3
"""Signaling with a real browser: headless Chromium (driven through chromedriver) opens
WebSockets to ringlane-control's /ws with join tokens from /api/join-token, joins a room with
two participants, hears participant events, outlives the server's idle timeout by answering
its pings by itself, and sees our close codes for an oversize message (1009) and a bad token
(4001) in its CloseEvent. Skips (77) when Chromium or chromedriver is not installed.

Usage: browser_signaling_test.py --control PATH
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, free_port, http_get, summary, wait_http  # noqa: E402
from webdriver import Browser, find_chromium  # noqa: E402

KEY = "browser-test-key"
SECRET = "browser-test-secret-0123456789"

HELPERS = """
window.socks = window.socks || {};
window.openSock = function (name, url) {
  const s = {msgs: [], closed: null};
  const ws = new WebSocket(url);
  ws.onmessage = (e) => s.msgs.push(JSON.parse(e.data));
  ws.onclose = (e) => { s.closed = {code: e.code, reason: e.reason}; };
  s.ws = ws;
  window.socks[name] = s;
};
window.find = function (name, type) {
  return window.socks[name].msgs.find((m) => m.type === type) || null;
};
"""


def token(port, room, identity):
    status, body = http_get(port, f"/api/join-token?room={room}&identity={identity}",
                            {"Authorization": f"Bearer {KEY}"})
    return json.loads(body) if status == 200 else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", required=True)
    a = ap.parse_args()
    if not find_chromium() or not shutil.which("chromedriver"):
        print("skip: chromium and chromium-driver are needed")
        return 77
    port = free_port(socket.SOCK_STREAM)
    log = tempfile.NamedTemporaryFile(prefix="browser-signaling-", suffix=".log", delete=False).name
    server = subprocess.Popen([a.control, "--listen", f"127.0.0.1:{port}", "--api-key", KEY,
                               "--stats-name", f"none-{os.getpid()}", "--jwt-secret", SECRET,
                               "--node-id", "n1", "--ws-max-frame", "1024", "--ws-idle-timeout-ms", "1500"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    browser = None
    try:
        check(wait_http(port), "ringlane-control answers HTTP")
        browser = Browser()
        # A page from the node itself: Chromium lets a loopback origin open loopback sockets
        # (from about:blank, Local Network Access rules get in the way).
        browser.open(f"http://127.0.0.1:{port}/healthz")
        browser.run(HELPERS)
        alice, bob = token(port, "r1", "alice"), token(port, "r1", "bob")
        url = alice.get("ws_url", "")
        browser.run("openSock(arguments[0], arguments[1])", "alice", f"{url}?access_token={alice.get('token')}")
        w = browser.wait_for("return find('alice', 'welcome')")
        check(w and w.get("participant") == "alice", f"Chromium's WebSocket gets welcome ({w})")
        browser.run("socks.alice.ws.send(JSON.stringify({type: 'join', id: 1}))")
        j = browser.wait_for("return find('alice', 'joined')")
        check(j and j.get("room") == "r1" and j.get("participants") == [], f"alice joined r1 ({j})")

        browser.run("openSock(arguments[0], arguments[1])", "bob", f"{url}?access_token={bob.get('token')}")
        browser.wait_for("return find('bob', 'welcome')")
        browser.run("socks.bob.ws.send(JSON.stringify({type: 'join'}))")
        j = browser.wait_for("return find('bob', 'joined')")
        check(j and j.get("participants") == ["alice"], f"bob joined and sees alice ({j})")
        ev = browser.wait_for("return find('alice', 'participant_joined')")
        check(ev and ev.get("participant") == "bob", "alice's page hears participant_joined bob")

        # Idle timeout 1.5 s: the server pings at 0.75 s of silence; the browser answers by itself.
        time.sleep(4)
        states = browser.run("return [socks.alice.ws.readyState, socks.bob.ws.readyState, socks.alice.closed]")
        check(states[0] == 1 and states[1] == 1 and states[2] is None,
              f"both sockets open after 4 s of app silence: the browser answered the server's pings ({states})")
        browser.run("socks.alice.ws.send(JSON.stringify({type: 'ping', id: 'p'}))")
        pong = browser.wait_for("return find('alice', 'pong')")
        check(pong and pong.get("id") == "p", "application ping/pong")

        browser.run("socks.bob.ws.close()")
        ev = browser.wait_for("return find('alice', 'participant_left')")
        check(ev and ev.get("participant") == "bob", "bob's page closes: alice hears participant_left")

        carol = token(port, "r2", "carol")
        browser.run("openSock(arguments[0], arguments[1])", "carol", f"{url}?access_token={carol.get('token')}")
        browser.wait_for("return find('carol', 'welcome')")
        browser.run("socks.carol.ws.send(JSON.stringify({type: 'ping', pad: 'x'.repeat(2000)}))")
        closed = browser.wait_for("return socks.carol.closed")
        err = browser.run("return find('carol', 'error')")
        check(closed and closed.get("code") == 1009 and err and err.get("code") == "frame_too_large",
              f"oversize message: the page reads frame_too_large, then CloseEvent 1009 ({err}, {closed})")

        browser.run("openSock(arguments[0], arguments[1])", "eve", f"{url}?access_token=not.a.token")
        closed = browser.wait_for("return socks.eve.closed")
        err = browser.run("return find('eve', 'error')")
        check(closed and closed.get("code") == 4001 and err and err.get("code") == "bad_token",
              f"bad token: the page reads bad_token, then CloseEvent 4001 ({err}, {closed})")
        check(server.poll() is None, "ringlane-control still running")
    finally:
        if browser:
            browser.close()
        server.terminate()
        server.wait(10)
    if summary():
        print(open(log).read()[-2000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
