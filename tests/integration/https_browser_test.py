#!/usr/bin/env python3
"""The demo page over HTTPS in a real browser: inside a network namespace with only lo,
`ringlane run --http-tls` serves a certificate made here, and two windows of headless Chromium
(trusting exactly that certificate through --ignore-certificate-errors-spki-list, fake camera and
microphone) open https://127.0.0.1:PORT/?autojoin=1: a secure context, so getUserMedia works; the
join token names wss://, the pages join over WSS (the node's ringlane_wss_upgrades_total counts
them) and publish, and each decodes the other's video. A screenshot of one page is saved.
Skips (77) when Chromium, chromedriver, openssl or `ip netns` is missing.

Usage: https_browser_test.py --ringlane PATH [--screenshot PATH]
"""
import argparse
import base64
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, check, free_port, http_get, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402
from sfu_browser_test import Pages, free_port_pair, netns_main, start_node, stop, wait_flowing, wait_until  # noqa: E402

NAMES = ["p1", "p2"]
API_KEY = "https-browser-key"


def make_cert(directory):
    cert, key = os.path.join(directory, "https.crt"), os.path.join(directory, "https.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def spki_sha256_b64(cert):
    """base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (what Chromium pins)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                         capture_output=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def counter(http_port, name):
    status, body = http_get(http_port, "/metrics", {"Authorization": f"Bearer {API_KEY}"})
    m = re.search(rf"^{name} (\d+)$", body, re.M) if status == 200 else None
    return int(m.group(1)) if m else None


def run(a, tmp, log):
    http_port, tls_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    turn_port = free_port()
    media_port = free_port_pair()
    room = f"r{os.getpid()}"
    cert, key = make_cert(tmp)
    server = start_node(a, tmp, f"https-browser-{os.getpid()}", log, http_port, turn_port, media_port,
                        ["--http-tls", f"127.0.0.1:{tls_port}", "--tls-cert", cert, "--tls-key", key,
                         "--api-key", API_KEY])
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port}")
        deadline = time.time() + 10
        while f"HTTPS and WSS on 127.0.0.1:{tls_port}" not in open(log).read() and time.time() < deadline:
            time.sleep(0.1)
        check(f"HTTPS and WSS on 127.0.0.1:{tls_port}" in open(log).read(), "the node serves HTTPS and WSS")
        check(counter(http_port, "ringlane_wss_upgrades_total") == 0, "no WSS connection yet")

        spki = spki_sha256_b64(cert)
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=1280,800",
                                              f"--ignore-certificate-errors-spki-list={spki}"])
        pages = Pages(browser)
        for name in NAMES:
            pages.open(name, f"https://127.0.0.1:{tls_port}/?room={room}&name={name}&autojoin=1")
        secure = pages.run("p1", "return [location.protocol, window.isSecureContext]")
        check(secure == ["https:", True], f"the page is loaded over HTTPS, a secure context ({secure})")
        for name in NAMES:
            wait_until(lambda n=name: (pages.state(n) or {}).get("joined"), 20)
            s = pages.state(name) or {}
            check(s.get("joined"), f"{name}'s page joined {room} (participants {s.get('participants')}, "
                                   f"errors {s.get('errors')})")
        wss = counter(http_port, "ringlane_wss_upgrades_total")
        check(wss is not None and wss >= len(NAMES), f"the pages' signaling runs over WSS (upgrades over TLS: {wss})")
        for name in NAMES:
            s = wait_until(lambda n=name: pages.published(n), 30) or pages.state(name)
            check(s["publisher"] == "connected" and not s["errors"],
                  f"{name} publishes: its publisher connection is connected, no errors "
                  f"({s['publisher']}, errors {s['errors']})")
        if FAILURES:
            return
        why, last = wait_flowing(pages, {"p1": ["p2"], "p2": ["p1"]}, 60)
        check(not why, f"each page decodes the other's video (framesDecoded rising) and receives its audio "
                       f"({why or 'all rising'})")
        frames = [r["framesDecoded"] for r in last["p2"]["remote"] if r["kind"] == "video"]
        print(f"  p2 decoded {frames} frames of p1's video", flush=True)
        check(frames and frames[0] > 0, "p2 decodes p1's video")
        shot = a.screenshot or os.path.join(tmp, "https-browser-p2.png")
        widths = wait_until(lambda: pages.videos("p2"), 10)
        check(widths and len(widths) == 2, f"p2's grid shows two playing videos (widths {widths})")
        browser.switch_to(pages.handles["p2"])
        browser.screenshot(shot)
        print(f"  screenshot of p2's page: {shot}", flush=True)
        check(server.poll() is None, "ringlane run still running")
    finally:
        stop(server, browser)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--io", choices=["uring", "mmsg"], default="uring")
    ap.add_argument("--screenshot")
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not shutil.which("openssl"):
        print("skip: the openssl command is needed to make the test's certificate")
        return 77

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        run(a, tmp, logs[0])

    return netns_main(a, __file__, "rl-https", go)


if __name__ == "__main__":
    sys.exit(main())
