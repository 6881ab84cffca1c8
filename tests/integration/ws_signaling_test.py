#!/usr/bin/env python3
"""WebSocket signaling (/ws) of ringlane-control over real sockets: JWT authentication (tokens
signed by this script and by /api/join-token), join/leave with participant events, ping/pong,
and a clear error code for every bad input and limit: malformed JSON, unknown type, missing
fields, binary frames, oversize frames, bad/expired tokens, wrong room, room full, joins per
second, messages per second, connections per address, auth and idle timeouts.

Usage: ws_signaling_test.py --control PATH
"""
import argparse
import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, free_port, http_get, summary, wait_http  # noqa: E402
from wslib import Client, make_jwt  # noqa: E402

SECRET = "signaling-test-secret-0123456789"
KEY = "test-api-key"


async def scenario(port, url):
    # Tokens from the API (ringlane's signer) and from this script (an independent signer).
    status, body = http_get(port, "/api/join-token?room=r1&identity=alice",
                            {"Authorization": f"Bearer {KEY}"})
    check(status == 200, f"/api/join-token answers 200 ({status})")
    issued = json.loads(body) if status == 200 else {}
    check(issued.get("ws_url") == url, f"join token names the ws_url {url}")
    status, body = http_get(port, "/api/join-token?room=r1&identity=alice")
    check(status == 401 and '"unauthorized"' in body, "/api/join-token without key -> 401")
    status, body = http_get(port, "/api/join-token?room=bad%20room&identity=x",
                            {"Authorization": f"Bearer {KEY}"})
    check(status == 400 and '"bad_room"' in body, "/api/join-token with a bad room -> 400 bad_room")

    alice = await Client.open(url, issued.get("token"))
    welcome = await alice.recv()
    check(welcome and welcome.get("type") == "welcome" and welcome.get("participant") == "alice"
          and welcome.get("room") == "r1" and welcome.get("protocol") == 2,
          f"token in the URL -> welcome ({welcome})")
    joined = await alice.request({"type": "join", "room": "r1", "id": 1})
    check(joined and joined.get("type") == "joined" and joined.get("id") == 1
          and joined.get("node", {}).get("id") == "n1" and joined.get("participants") == []
          and isinstance(joined.get("worker"), int),
          f"join -> joined on node n1 with a worker ({joined})")

    # A second participant authenticates with a message instead of the URL.
    # Each participant from its own address: the joins-per-second limit is per address.
    bob = await Client.open(url, source="127.0.0.2")
    early = await bob.request({"type": "join", "id": "x"})
    check(early and early.get("code") == "unauthenticated" and early.get("id") == "x",
          f"join before auth -> unauthenticated, id echoed ({early})")
    w = await bob.request({"type": "auth", "token": make_jwt(SECRET, "bob", "r1"), "id": 2})
    check(w and w.get("type") == "welcome" and w.get("id") == 2, "auth message -> welcome")
    again = await bob.request({"type": "auth", "token": make_jwt(SECRET, "bob", "r1")})
    check(again and again.get("code") == "already_authenticated", "second auth -> already_authenticated")
    bj = await bob.request({"type": "join"})
    check(bj and bj.get("type") == "joined" and bj.get("participants") == ["alice"]
          and bj.get("room") == "r1", f"join without room uses the granted room, lists alice ({bj})")
    ev = await alice.expect("participant_joined")
    check(ev and ev.get("participant") == "bob" and ev.get("room") == "r1",
          "alice hears participant_joined bob")
    dup = await bob.request({"type": "join", "room": "r1"})
    check(dup and dup.get("code") == "already_joined", "second join -> already_joined")

    carol = await Client.open(url, make_jwt(SECRET, "carol", "r1"), source="127.0.0.7")
    await carol.expect("welcome")
    full = await carol.request({"type": "join", "room": "r1", "id": 9})
    check(full and full.get("code") == "room_full" and full.get("retryable") is False
          and full.get("id") == 9, f"third member of a 2-seat room -> room_full ({full})")
    other = await carol.request({"type": "join", "room": "r2"})
    check(other and other.get("code") == "room_not_granted", "join of another room -> room_not_granted")

    pong = await alice.request({"type": "ping", "id": 7})
    check(pong and pong.get("type") == "pong" and pong.get("id") == 7, "ping -> pong with id")
    for payload, code, what in [
        ("{not json", "bad_json", "malformed JSON"),
        ("[1,2]", "bad_message", "a JSON array"),
        ('{"id":3}', "bad_message", "missing type"),
        ('{"type":"dance"}', "unknown_type", "unknown type"),
        ('{"type":"join","room":"has space"}', "bad_message", "bad room name"),
        ('{"type":"join","room":5}', "bad_message", "room of the wrong type"),
        ('{"type":"publish","id":4}', "not_supported", "publish before the SFU"),
        ("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]", "bad_json", "deep nesting"),
    ]:
        r = await carol.request(payload)
        check(r and r.get("type") == "error" and r.get("code") == code and r.get("message"),
              f"{what} -> {code} ({r})")
    r = await carol.request(b'{"type":"ping"}')
    check(r and r.get("code") == "bad_message", "binary frame -> bad_message")
    r = await carol.request({"type": "ping", "id": 11})
    check(r and r.get("type") == "pong", "connection still serves after bad input")

    # The same identity again replaces the older connection (a reconnect).
    bob2 = await Client.open(url, make_jwt(SECRET, "bob", "r1"), source="127.0.0.8")
    await bob2.expect("welcome")
    rj = await bob2.request({"type": "join", "room": "r1"})
    check(rj and rj.get("type") == "joined" and rj.get("participants") == ["alice"],
          f"same identity rejoins ({rj})")
    replaced = await bob.expect("left")
    check(replaced and replaced.get("reason") == "replaced", "older connection told: left, replaced")

    left = await bob2.request({"type": "leave", "id": 5})
    check(left and left.get("type") == "left" and left.get("id") == 5, "leave -> left")
    ev = await alice.expect("participant_left")
    check(ev and ev.get("participant") == "bob", "alice hears participant_left bob")
    nj = await bob2.request({"type": "leave"})
    check(nj and nj.get("code") == "not_joined", "leave outside a room -> not_joined")
    # A disconnect leaves the room too.
    rejoin = await bob2.request({"type": "join"})
    check(rejoin and rejoin.get("type") == "joined", f"rejoin after leave ({rejoin})")
    await alice.expect("participant_joined")
    await bob2.close()
    ev = await alice.expect("participant_left")
    check(ev and ev.get("participant") == "bob", "a closed connection leaves its room")

    # Tokens that must not pass.
    for token, code, what in [
        (make_jwt("another-secret-0123456789", "eve", "r1"), "bad_token", "wrong secret"),
        (make_jwt(SECRET, "eve", "r1", exp_in=-3600), "token_expired", "expired"),
        (make_jwt(SECRET, "eve", "r1", alg="none"), "bad_token", "alg none"),
        (make_jwt(SECRET, "eve", "r1", extra={"nbf": int(time.time()) + 3600}), "bad_token", "not yet valid"),
        ("abc.def", "bad_token", "not a JWS"),
        (make_jwt(SECRET, "", "r1"), "bad_token", "empty sub"),
    ]:
        c = await Client.open(url, token)
        err = await c.recv()
        code_seen = await c.closed_code()
        check(err and err.get("code") == code and code_seen == 4001,
              f"{what} token -> {code}, close 4001 ({err}, {code_seen})")

    # Oversize message: a clear error, then close 1009.
    c = await Client.open(url, make_jwt(SECRET, "big", "r9"))
    await c.expect("welcome")
    await c.send(json.dumps({"type": "ping", "pad": "x" * 2000}))
    err = await c.recv()
    code_seen = await c.closed_code()
    check(err and err.get("code") == "frame_too_large" and code_seen == 1009,
          f"2 KB message over a 1 KB limit -> frame_too_large, close 1009 ({err}, {code_seen})")

    # Messages per second on one connection (limit 20/s, burst 40).
    c = await Client.open(url, make_jwt(SECRET, "chatty", "r9"), source="127.0.0.3")
    await c.expect("welcome")
    for i in range(100):
        await c.send({"type": "ping", "id": i})
    codes = []
    for _ in range(100):
        m = await c.recv(2)
        codes.append(m.get("type") if m.get("type") == "pong" else m.get("code"))
    check(codes.count("rate_limited") >= 40 and codes.count("pong") >= 30,
          f"100 pings at once: {codes.count('pong')} pong, {codes.count('rate_limited')} rate_limited")
    await c.close()

    # Joins per second from one address (limit 2/s, burst 4).
    c = await Client.open(url, make_jwt(SECRET, "hopper", "r5"), source="127.0.0.4")
    await c.expect("welcome")
    results = []
    for _ in range(6):
        j = await c.request({"type": "join"})
        results.append(j.get("type") if j.get("type") == "joined" else j.get("code"))
        if j.get("type") == "joined":
            await c.request({"type": "leave"})
    limited = [r for r in results if r == "rate_limited"]
    check(results[0] == "joined" and len(limited) >= 1, f"6 quick joins: {results}")
    await asyncio.sleep(1.2)
    j = await c.request({"type": "join"})
    check(j and j.get("type") == "joined", "a join succeeds again after the bucket refills")
    await c.close()

    # Connections per address (limit 5).
    conns = []
    for _ in range(5):
        conns.append(await Client.open(url, make_jwt(SECRET, "many", "r6"), source="127.0.0.5"))
    for k in conns:
        await k.expect("welcome")
    extra = await Client.open(url, make_jwt(SECRET, "many", "r6"), source="127.0.0.5")
    err = await extra.recv()
    code_seen = await extra.closed_code()
    check(err and err.get("code") == "too_many_connections" and err.get("retryable") is True
          and code_seen == 1013, f"6th connection from one address -> too_many_connections, 1013 ({err}, {code_seen})")
    other = await Client.open(url, make_jwt(SECRET, "many", "r6"), source="127.0.0.6")
    w = await other.recv()
    check(w and w.get("type") == "welcome", "another address still connects")
    for k in conns + [other]:
        await k.close()

    # Auth timeout (1 s).
    c = await Client.open(url)
    t0 = time.time()
    err = await c.recv(5)
    code_seen = await c.closed_code()
    check(err and err.get("code") == "auth_timeout" and code_seen == 4001 and time.time() - t0 < 4,
          f"no token -> auth_timeout, close 4001 after {time.time() - t0:.1f} s")
    await alice.close()
    await carol.close()


def idle_timeout_check(port):
    """A raw client that completes the handshake and then goes silent: the server pings it,
    then closes the connection when the idle timeout passes (1.5 s here)."""
    token = make_jwt(SECRET, "sleepy", "r7")
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"GET /ws?access_token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    t0 = time.time()
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    elapsed = time.time() - t0
    head, _, frames = data.partition(b"\r\n\r\n")
    opcodes = []
    i = 0
    while i + 2 <= len(frames):
        op, ln = frames[i] & 0x0F, frames[i + 1] & 0x7F
        i += 2
        if ln == 126:
            ln = int.from_bytes(frames[i:i + 2], "big")
            i += 2
        opcodes.append(op)
        i += ln
    check(head.startswith(b"HTTP/1.1 101"), "raw handshake -> 101")
    # Beast drops the TCP connection of a peer that ignored the ping (no close handshake with a
    # peer that does not answer).
    check(0x9 in opcodes and 1.0 < elapsed < 8,
          f"silent client: pinged, then closed after {elapsed:.1f} s (opcodes {opcodes})")
    s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", required=True)
    a = ap.parse_args()
    port = free_port(socket.SOCK_STREAM)
    log = tempfile.NamedTemporaryFile(prefix="signaling-", suffix=".log", delete=False).name
    proc = subprocess.Popen([a.control, "--listen", f"127.0.0.1:{port}", "--api-key", KEY,
                             "--stats-name", f"none-{os.getpid()}", "--jwt-secret", SECRET,
                             "--node-id", "n1", "--ws-max-room", "2", "--ws-max-frame", "1024",
                             "--ws-max-conns-per-ip", "5", "--ws-joins-per-s", "2",
                             "--ws-messages-per-s", "20", "--ws-auth-timeout-ms", "1000",
                             "--ws-idle-timeout-ms", "1500"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        check(wait_http(port), "ringlane-control answers HTTP")
        url = f"ws://127.0.0.1:{port}/ws"
        asyncio.run(asyncio.wait_for(scenario(port, url), 120))
        idle_timeout_check(port)
        status, metrics = http_get(port, "/metrics")
        values = dict(re.findall(r'^(ringlane_(?:ws|rooms|participants|joins|signaling|placement)\S*) (\d+)$',
                                 metrics, re.M))
        check(int(values.get('ringlane_signaling_errors_total{code="bad_json"}', 0)) >= 2,
              "/metrics counts errors by code")
        check(int(values.get("ringlane_joins_total", 0)) >= 4, f"/metrics counts joins ({values.get('ringlane_joins_total')})")
        check(values.get('ringlane_placement_store_up{store="memory"}') == "1", "/metrics: memory store up")
        deadline = time.time() + 5
        while time.time() < deadline and values.get("ringlane_ws_connections") != "0":
            time.sleep(0.1)
            status, metrics = http_get(port, "/metrics")
            values = dict(re.findall(r'^(ringlane_ws_connections) (\d+)$', metrics, re.M))
        check(values.get("ringlane_ws_connections") == "0", "every connection closed is released")
        check(proc.poll() is None, "ringlane-control still running")
    finally:
        proc.terminate()
        proc.wait(10)
    if summary():
        print(open(log).read()[-3000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
