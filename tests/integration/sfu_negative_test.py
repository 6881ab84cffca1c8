#!/usr/bin/env python3
"""Bad input at the SFU, over real sockets: `ringlane run` with one worker; a signaling client
(python3-websockets) publishes an offer written here and reads the server's ICE credentials and
media port from the answer; then a UDP client written independently of ringlane's codecs
(stun_client.py: hashlib, hmac, zlib) sends the media port what an attacker or a broken peer
would: garbage, checks for unknown sessions, forged and truncated checks, indications, DTLS and
SRTP from an address no check validated, a DTLS flood, SRTP before the keys. Each must be a
counted drop (read back from `ringlane stats`) with no answer, while valid checks keep being
answered. Over signaling: an SDP of 10,000 lines, one with a 40 KB attribute, a 1 MiB message,
a bad answer, publishing before joining. The node stays ready throughout.

Usage: sfu_negative_test.py --ringlane PATH
"""
import argparse
import asyncio
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stun_client as stun  # noqa: E402
from testlib import FAILURES, check, free_port, http_get, summary, wait_http, wait_status  # noqa: E402
import websockets  # noqa: E402
from wslib import Client  # noqa: E402

A_PRIORITY, A_USE_CANDIDATE, A_CONTROLLED, A_CONTROLLING = 0x24, 0x25, 0x8029, 0x802A


def offer_sdp():
    fp = ":".join(f"{b:02X}" for b in os.urandom(32))
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
             "a=group:BUNDLE 0 1", "a=msid-semantic: WMS s"]
    for mid, kind, pt, codec, ssrc in (("0", "audio", 111, "opus/48000/2", 1111),
                                       ("1", "video", 96, "VP8/90000", 2222)):
        lines += [f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
                  "a=ice-ufrag:negU", "a=ice-pwd:negativetestpassword0123", f"a=fingerprint:sha-256 {fp}",
                  "a=setup:actpass", f"a=mid:{mid}", "a=sendonly", "a=rtcp-mux", f"a=rtpmap:{pt} {codec}",
                  f"a=ssrc:{ssrc} cname:neg", f"a=ssrc:{ssrc} msid:s t{mid}"]
    return "\r\n".join(lines) + "\r\n"


def stats(binary, name):
    out = subprocess.run([binary, "stats", "--name", name], capture_output=True, text=True, timeout=5)
    return json.loads(out.stdout)["workers"][0]


def check_request(ufrag, key, controlled=False, use=True):
    attrs = stun._attr(stun.A_USERNAME, ufrag.encode())
    attrs += stun._attr(A_PRIORITY, struct.pack("!I", 1853824767))
    attrs += stun._attr(A_CONTROLLED if controlled else A_CONTROLLING, os.urandom(8))
    if use:
        attrs += stun._attr(A_USE_CANDIDATE, b"")
    return stun.build(stun.BINDING, attrs, key=key)


def answered(sock, timeout=0.5):
    sock.settimeout(timeout)
    try:
        return sock.recv(2048)
    except socket.timeout:
        return None


async def signaling(a, http_port, room):
    status, body = http_get(http_port, f"/api/dev-token?room={room}&identity=neg")
    grant = json.loads(body)
    c = await Client.open(grant["ws_url"], grant["token"])
    await c.expect("welcome")
    early = await c.request({"type": "publish", "id": 1, "sdp": offer_sdp()})
    check(early and early.get("code") == "not_joined", f"publish before join -> not_joined ({early})")
    joined = await c.request({"type": "join", "id": 2})
    check(joined and joined.get("type") == "joined" and joined.get("protocol") == 2, f"join ({joined})")
    many = "v=0\n" + "a=x\n" * 10000  # LF only: the message stays under the 64 KiB frame limit
    r = await c.request({"type": "publish", "id": 3, "sdp": many})
    check(r and r.get("code") == "bad_sdp" and "2001" in r.get("message", ""),
          f"an SDP of 10,000 lines -> bad_sdp naming line 2001 ({r and r.get('message')})")
    long = offer_sdp().replace("a=sendonly", "a=sendonly\r\na=x-long:" + "z" * 40000, 1)
    r = await c.request({"type": "publish", "id": 4, "sdp": long})
    check(r and r.get("code") == "bad_sdp" and re.search(r"line \d+", r.get("message", "")),
          f"a 40 KB attribute -> bad_sdp naming its line ({r and r.get('message')})")
    r = await c.request({"type": "publish", "id": 5, "sdp": "v=0\r\no=garbage\r\n"})
    check(r and r.get("code") == "bad_sdp", f"a broken o= line -> bad_sdp ({r and r.get('message')})")
    r = await c.request({"type": "answer", "id": 6, "seq": 99, "sdp": "v=0\r\n"})
    check(r and r.get("code") == "bad_message", f"an answer to no offer -> bad_message ({r})")
    answer = await c.request({"type": "publish", "id": 7, "sdp": offer_sdp()})
    check(answer and answer.get("type") == "answer" and len(answer.get("tracks", [])) == 2,
          f"a good offer -> an answer with 2 tracks ({answer and answer.get('tracks')})")
    big = await Client.open(grant["ws_url"], grant["token"])
    await big.expect("welcome")
    try:
        await big.send({"type": "publish", "sdp": "v=0\r\n" + "a=" + "y" * (1 << 20)})
    except websockets.ConnectionClosed:
        pass  # the server may close before the whole message is written: the code still says why
    code = await big.closed_code()
    check(code == 1009, f"a 1 MiB message closes that connection with 1009 ({code})")
    return c, answer["sdp"]


def media(a, name, sdp):
    ufrag = re.search(r"a=ice-ufrag:(\S+)", sdp).group(1)
    pwd = re.search(r"a=ice-pwd:(\S+)", sdp).group(1).encode()
    cand = re.search(r"a=candidate:\S+ 1 udp \d+ (127\.0\.0\.1) (\d+) typ host", sdp)
    check(cand is not None, f"the answer has a 127.0.0.1 host candidate ({cand and cand.groups()})")
    target = ("127.0.0.1", int(cand.group(2)))
    good = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good.bind(("127.0.0.1", 0))
    evil = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    evil.bind(("127.0.0.1", 0))
    base = stats(a.ringlane, name)

    def delta(key, want=None):
        # The stats page is published every 100 ms: wait (bounded) for a wanted value.
        deadline = time.time() + 2
        got = stats(a.ringlane, name)[key] - base[key]
        while want is not None and got < want and time.time() < deadline:
            time.sleep(0.05)
            got = stats(a.ringlane, name)[key] - base[key]
        return got

    evil.sendto(b"\xff" * 40, target)
    evil.sendto(check_request(f"nosuch:{ufrag}", pwd)[0], target)
    evil.sendto(check_request(f"{ufrag}:negU", b"wrong password")[0], target)
    evil.sendto(stun.build(stun.BINDING, cls=1)[0], target)  # an indication
    msg, _ = check_request(f"{ufrag}:negU", pwd)
    evil.sendto(msg[:-3], target)  # truncated
    evil.sendto(b"\x16\xfe\xfd" + os.urandom(60), target)  # DTLS from an unchecked address
    evil.sendto(b"\x80\x60" + os.urandom(100), target)  # SRTP from an unchecked address
    check(answered(evil) is None, "none of the bad datagrams gets an answer")
    for key, n in (("sfu_drop_unknown_kind", 1), ("sfu_drop_unknown_ufrag", 1),
                   ("sfu_drop_bad_integrity", 1), ("sfu_drop_stun_not_request", 1),
                   ("sfu_drop_stun_malformed", 1), ("sfu_drop_no_session", 2)):
        got = delta(key, n)
        check(got == n, f"{key} counts {n} ({got})")

    req, tid = check_request(f"{ufrag}:negU", pwd)
    good.sendto(req, target)
    reply = answered(good, 2)
    check(reply is not None, "a valid check is answered")
    if reply is None:
        return
    cls, code, attrs = stun.parse(reply)
    mapped = attrs.get(stun.A_MAPPED)
    port = struct.unpack("!H", mapped[2:4])[0] ^ (stun.COOKIE >> 16) if mapped else None
    check(cls == 2 and reply[8:20] == tid and port == good.getsockname()[1],
          f"success response, same transaction, XOR-MAPPED-ADDRESS is our port ({cls}, {port})")
    req, _ = check_request(f"{ufrag}:negU", pwd, controlled=True)
    good.sendto(req, target)
    reply = answered(good, 2)
    check(reply is not None and stun.parse(reply)[1] == 487, "a check claiming ICE-CONTROLLED gets 487")

    before = delta("sfu_drop_srtp_not_ready")
    good.sendto(b"\x80\x60" + os.urandom(100), target)
    good.sendto(b"\x81\xc9" + os.urandom(30), target)
    for _ in range(500):  # a flood of DTLS garbage on the validated address
        good.sendto(b"\x16\xfe\xfd" + os.urandom(80), target)
    check(delta("sfu_drop_srtp_not_ready", before + 2) - before == 2,
          "SRTP and SRTCP before DTLS finished are counted (srtp_not_ready)")
    req, _ = check_request(f"{ufrag}:negU", pwd)
    good.sendto(req, target)
    got = None
    for _ in range(600):  # skip what the flood may have provoked (DTLS alerts)
        got = answered(good, 2)
        if got is None or got[0] < 4:
            break
    check(got is not None and got[0] < 4 and stun.parse(got)[0] == 2,
          "after the DTLS flood, checks are still answered")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sfu-neg-")
    http_port = free_port(socket.SOCK_STREAM)
    media_port = free_port()
    name = f"sfu-neg-{os.getpid()}"
    log = os.path.join(tmp, "ringlane.log")
    env = dict(os.environ, RINGLANE_STATE_DIR=os.path.join(tmp, "state"))
    node = subprocess.Popen([a.ringlane, "run", "--name", name, "--workers", "1",
                             "--listen", f"127.0.0.1:{free_port()}", "--media-ip", "127.0.0.1",
                             "--media-port", str(media_port), "--http", f"127.0.0.1:{http_port}"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    try:
        check(wait_http(http_port), "ringlane run is up")
        # The offers below need the data plane: HTTP answers before it is up (/readyz says when).
        check(wait_status(http_port, "/readyz", 200, 30), "its data plane is ready (/readyz 200)")
        c, sdp = asyncio.run(asyncio.wait_for(signaling(a, http_port, f"neg{os.getpid()}"), 60))
        if not FAILURES:
            media(a, name, sdp)
        status, _ = http_get(http_port, "/readyz")
        check(status == 200 and node.poll() is None, f"the node is still ready ({status})")
    except Exception as e:
        check(False, f"{type(e).__name__}: {e}")
    finally:
        node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
    if summary():
        print(open(log).read()[-3000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
