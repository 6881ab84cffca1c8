#!/usr/bin/env python3
"""Room placement shared through a real redis-server, with two control planes: `ringlane run`
(node "na", with its data plane relaying TURN) and `ringlane-control` (node "nb").

- Joins of the same room through either instance are answered with the same node and worker
  (a join that reaches the other node is redirected; the client follows the redirect).
- Rooms spread over both nodes (least loaded first).
- Redis stopped mid-test: a TURN flow driven by coturn's turnutils_uclient keeps flowing with
  zero loss, joins of existing rooms still work, joins of new rooms get the retryable
  placement_unavailable; Redis back: the control planes reconnect by themselves and joins
  succeed.
- Heartbeat expiry (node nb frozen with SIGSTOP): new rooms go to na only, nb's rooms are
  placed again at their next join; when nb wakes, its members hear room_moved.

Usage: placement_redis_test.py --ringlane PATH --control PATH
"""
import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, free_port, http_get, summary, wait_http  # noqa: E402
from wslib import Client, make_jwt  # noqa: E402

SECRET = "placement-test-secret-0123456789"


def start_redis(port, log):
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--protected-mode", "yes"],
                         stdout=open(log, "a"), stderr=subprocess.STDOUT)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return p
        except OSError:
            time.sleep(0.05)
    return p


def redis_cmd(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=5)
    return out.stdout.strip()


async def join_following(url, identity, room, source="127.0.0.1"):
    """Joins `room` through `url`; follows one redirect. Returns (first answer, final answer,
    client that holds the membership or None)."""
    c = await Client.open(url, make_jwt(SECRET, identity, room), source=source)
    await c.expect("welcome")
    first = await c.request({"type": "join", "room": room})
    if first and first.get("type") == "redirect":
        await c.close()
        c = await Client.open(first["node"]["ws_url"], make_jwt(SECRET, identity, room), source=source)
        await c.expect("welcome")
        final = await c.request({"type": "join", "room": room})
        return first, final, c
    return first, first, c


def where(answer):
    return (answer or {}).get("node", {}).get("id"), (answer or {}).get("worker")


async def scenario(a, redis_port, redis_log, url_a, url_b, b_proc, turn):
    members = []
    placed = {}
    for i in range(6):
        room = f"room{i}"
        first, final, c = await join_following(url_a, f"u{i}a", room, source=f"127.0.1.{i + 1}")
        members.append(c)
        b_first, b_final, c2 = await join_following(url_b, f"u{i}b", room, source=f"127.0.2.{i + 1}")
        members.append(c2)
        check(final and final.get("type") == "joined" and b_final and b_final.get("type") == "joined"
              and where(first) == where(b_first) == where(final) == where(b_final),
              f"{room}: through na {first.get('type')} {where(first)}, through nb {b_first.get('type')} "
              f"{where(b_first)} -> same node and worker")
        placed[room] = where(final)
        await asyncio.sleep(0.5)  # a heartbeat passes: the registry sees the new participants
    nodes = {n for n, _ in placed.values()}
    check(nodes == {"na", "nb"}, f"rooms spread over both nodes ({placed})")
    workers_na = {w for n, w in placed.values() if n == "na"}
    check(len(workers_na) == 2 or sum(1 for n, _ in placed.values() if n == "na") < 2,
          f"na's rooms spread over its 2 workers ({workers_na})")
    na_room = next(r for r, (n, _) in placed.items() if n == "na")
    nb_rooms = [r for r, (n, _) in placed.items() if n == "nb"]

    # --- Redis frozen (SIGSTOP: connections accepted, nothing answered): a join that needs it
    # waits for the store's timeout on the store's thread; the signaling thread goes on serving.
    redis_proc = turn["redis"]
    os.kill(redis_proc.pid, signal.SIGSTOP)
    try:
        slow = await Client.open(url_a, make_jwt(SECRET, "slow", "frozen-room"), source="127.0.3.9")
        await slow.expect("welcome")
        await slow.send({"type": "join", "room": "frozen-room"})
        await members[0].send({"type": "ping", "id": "during-freeze"})
        order = []

        async def wait_for(client, kind, tag):
            m = await client.expect(kind, timeout=10)
            order.append((tag, m))

        await asyncio.gather(wait_for(slow, "error", "join"), wait_for(members[0], "pong", "ping"))
        check([t for t, _ in order] == ["ping", "join"] and order[1][1]
              and order[1][1].get("code") == "placement_unavailable",
              f"Redis frozen: another connection's ping is answered before the join that waits "
              f"for Redis, which then gets placement_unavailable ({order})")
        await slow.close()
    finally:
        os.kill(redis_proc.pid, signal.SIGCONT)
    deadline = time.time() + 10
    while time.time() < deadline:
        status, metrics = http_get(a.http_port, "/metrics")
        if 'ringlane_placement_store_up{store="redis"} 1' in metrics:
            break
        await asyncio.sleep(0.2)
    check('ringlane_placement_store_up{store="redis"} 1' in metrics, "Redis thawed: na reconnected")

    # --- Redis stops during a TURN flow.
    status, body = http_get(a.http_port, "/api/turn-credentials?username=flow",
                            {"Authorization": "Bearer k-1"})
    creds = json.loads(body) if status == 200 else {}
    flow = subprocess.Popen(["turnutils_uclient", "-p", str(turn["port"]), "-e", "127.0.0.1", "-r",
                             str(turn["peer"]), "-u", creds.get("username", "x"), "-w",
                             creds.get("password", "x"), "-c", "-n", "300", "-z", "20", "-m", "2",
                             "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    await asyncio.sleep(1.0)
    redis_proc = turn["redis"]
    redis_proc.terminate()
    redis_proc.wait(10)
    await asyncio.sleep(0.5)
    first, _, c = await join_following(url_a, "late", "brand-new", source="127.0.3.1")
    check(first and first.get("code") == "placement_unavailable" and first.get("retryable") is True,
          f"Redis down: a new room -> placement_unavailable, retryable ({first})")
    await c.close()
    first, final, c = await join_following(url_a, "late2", na_room, source="127.0.3.2")
    check(final and final.get("type") == "joined",
          f"Redis down: joining a room this node already hosts still works ({final})")
    members.append(c)
    await members[0].send({"type": "ping"})
    pong = await members[0].expect("pong")
    check(pong and pong.get("type") == "pong", "Redis down: established signaling keeps working")
    await asyncio.sleep(1.0)
    turn["redis"] = start_redis(redis_port, redis_log)
    ok = None
    deadline = time.time() + 15
    while time.time() < deadline:
        first, final, c = await join_following(url_a, "back", "after-redis", source="127.0.3.3")
        await c.close() if c else None
        if final and final.get("type") == "joined":
            ok = final
            break
        await asyncio.sleep(0.3)
    check(ok is not None, f"Redis back: the control planes reconnect and a new room is placed ({ok})")
    out, _ = flow.communicate(timeout=60)
    lost = re.findall(r"Total lost packets \d+", out)
    received = re.findall(r"tot_recv_msgs=\d+", out)
    check("Total lost packets 0 " in out and "tot_recv_msgs=600" in out,
          f"TURN flow through na while Redis was down: 600/600 relayed, lost 0 ({lost}, {received})")
    await asyncio.sleep(1.0)  # a heartbeat: both nodes and their room locks are back in Redis
    check(set(redis_cmd(redis_port, "SMEMBERS", "ringlane:nodes").split()) == {"na", "nb"},
          "both nodes registered again in the restarted Redis")
    check(redis_cmd(redis_port, "GET", f"ringlane:room:{na_room}").startswith("na|"),
          f"na took back the lock of its room {na_room}")

    # --- Heartbeat expiry: nb freezes.
    nb_member = next((m for m, r in zip(members[1::2], placed) if placed[r][0] == "nb"), None)
    os.kill(b_proc.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(2.5)  # node TTL is 1.5 s
        check(redis_cmd(redis_port, "EXISTS", "ringlane:node:nb") == "0", "frozen nb's registry entry expired")
        for k in range(3):
            first, final, c = await join_following(url_a, f"fresh{k}", f"fresh{k}", source=f"127.0.4.{k + 1}")
            check(where(final)[0] == "na", f"new room fresh{k} goes to na while nb is silent ({where(final)})")
            await c.close()
        moved = nb_rooms[0]
        first, final, c = await join_following(url_a, "mover", moved, source="127.0.4.9")
        check(first and first.get("type") == "joined" and where(first)[0] == "na",
              f"nb's room {moved} is placed again on na at its next join ({first})")
        members.append(c)
    finally:
        os.kill(b_proc.pid, signal.SIGCONT)
    if nb_member is not None:
        m = await nb_member.expect("error", timeout=5)
        check(m and m.get("code") == "room_moved" and m.get("retryable") is True,
              f"nb wakes: its member of {moved} hears room_moved ({m})")
    await asyncio.sleep(1.0)
    check(redis_cmd(redis_port, "EXISTS", "ringlane:node:nb") == "1", "nb registers again after waking")
    first, final, c = await join_following(url_b, "again", moved, source="127.0.4.10")
    check(where(first) == where(final) and where(final)[0] == "na",
          f"through nb, {moved} now answers na ({first.get('type')}, {where(final)})")

    # --- nb leaves on purpose (SIGTERM): out of the registry and its rooms' locks released at
    # once, not a TTL later.
    held = [r for r in nb_rooms if redis_cmd(redis_port, "GET", f"ringlane:room:{r}").startswith("nb|")]
    check(len(held) >= 1, f"nb still hosts {held}")
    b_proc.terminate()
    b_proc.wait(10)
    check(redis_cmd(redis_port, "EXISTS", "ringlane:node:nb") == "0"
          and "nb" not in redis_cmd(redis_port, "SMEMBERS", "ringlane:nodes").split(),
          "nb stopped: its registry entry is gone immediately")
    check(all(redis_cmd(redis_port, "EXISTS", f"ringlane:room:{r}") == "0" for r in held),
          f"nb stopped: the locks of its rooms {held} are released")
    if held:
        first, final, c = await join_following(url_a, "after-nb", held[0], source="127.0.4.11")
        check(first and first.get("type") == "joined" and where(first)[0] == "na",
              f"{held[0]} is placed on na at the next join ({first})")
        await c.close()
    for m in members:
        if m:
            await m.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--control", required=True)
    a = ap.parse_args()
    redis_port = free_port(socket.SOCK_STREAM)
    a.http_port = free_port(socket.SOCK_STREAM)
    b_port = free_port(socket.SOCK_STREAM)
    turn_port, peer_port = free_port(), free_port()
    relay_lo = 25000 + (os.getpid() % 50) * 100
    logs = {k: tempfile.NamedTemporaryFile(prefix=f"{k}-", suffix=".log", delete=False).name
            for k in ("redis", "na", "nb")}
    redis = start_redis(redis_port, logs["redis"])
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    common = ["--redis", f"redis://127.0.0.1:{redis_port}", "--jwt-secret", SECRET, "--node-ttl-ms", "1500",
              "--placement-heartbeat-ms", "300", "--ws-joins-per-s", "100"]
    na = subprocess.Popen([a.ringlane, "run", "--name", f"pl-{os.getpid()}", "--media-port", "0", "--listen", f"127.0.0.1:{turn_port}",
                           "--http", f"127.0.0.1:{a.http_port}", "--api-key", "k-1", "--rest-secret", "s3",
                           "--allow-peer", "127.0.0.0/8", "--workers", "2",
                           "--relay-ports", f"{relay_lo}-{relay_lo + 99}", "--node-id", "na", *common],
                          stdout=open(logs["na"], "w"), stderr=subprocess.STDOUT)
    nb = subprocess.Popen([a.control, "--listen", f"127.0.0.1:{b_port}", "--stats-name", f"none-{os.getpid()}",
                           "--node-id", "nb", *common], stdout=open(logs["nb"], "w"), stderr=subprocess.STDOUT)
    turn = {"port": turn_port, "peer": peer_port, "redis": redis}
    try:
        check(wait_http(a.http_port) and wait_http(b_port), "both control planes answer HTTP")
        deadline = time.time() + 10
        while time.time() < deadline and set(redis_cmd(redis_port, "SMEMBERS", "ringlane:nodes").split()) != {"na", "nb"}:
            time.sleep(0.1)
        check(set(redis_cmd(redis_port, "SMEMBERS", "ringlane:nodes").split()) == {"na", "nb"},
              "both nodes registered in Redis")
        check(redis_cmd(redis_port, "HGET", "ringlane:node:na", "workers") == "2", "na registered its 2 workers")
        asyncio.run(asyncio.wait_for(scenario(a, redis_port, logs["redis"], f"ws://127.0.0.1:{a.http_port}/ws",
                                              f"ws://127.0.0.1:{b_port}/ws", nb, turn), 150))
        status, metrics = http_get(a.http_port, "/metrics")
        check('ringlane_placement_store_up{store="redis"} 1' in metrics, "/metrics: redis store up on na")
        check(re.search(r"ringlane_join_redirects_total [1-9]", metrics) is not None, "/metrics counts redirects")
        check(na.poll() is None, "na still running")
    finally:
        for p in (na, nb):
            p.terminate()
        for p in (na, nb):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        turn["redis"].terminate()
        peer.terminate()
    if summary():
        for k, path in logs.items():
            print(f"--- {k} log (tail)")
            print(open(path).read()[-2500:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
