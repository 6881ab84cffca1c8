#!/usr/bin/env python3
"""Captures real RTP from Chromium for test fixtures. Run as root; creates its own network
namespace whose only interface is lo, runs tools/browser/loopback_call.js inside it, and
records the UDP datagrams seen on lo with an AF_PACKET socket. SRTP leaves the RTP header and
its extensions in the clear, so the fixtures are real browser headers (payloads encrypted).

  tools/browser/capture_rtp.py OUT_DIR     (writes chrome_rtp.hex and chrome_offer.sdp)
"""
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def inside(out_dir):
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.ntohs(0x0003))
    sock.bind(("lo", 0))
    sock.settimeout(0.2)
    packets, stop = [], threading.Event()

    def capture():
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except socket.timeout:
                continue
            # On lo every packet is seen going out and coming in: keep the incoming copy.
            if addr[2] != socket.PACKET_HOST or addr[1] != 0x0800 or len(data) < 28 or data[9] != 17:
                continue
            ihl = (data[0] & 15) * 4
            payload = data[ihl + 8:]
            if payload and 128 <= payload[0] <= 191 and len(payload) >= 2 and not 192 <= payload[1] <= 223:
                packets.append(payload)

    t = threading.Thread(target=capture)
    t.start()
    run = subprocess.run(["node", os.path.join(HERE, "loopback_call.js"), "4"], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, HOME=out_dir, NODE_PATH=os.path.join(HERE, "node_modules")))
    stop.set()
    t.join()
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return 1
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in result.items() if k != "offer"}), file=sys.stderr)
    # Keep the first packets of each SSRC so audio and video both appear.
    per_ssrc, keep = {}, []
    for p in packets:
        ssrc = struct.unpack("!I", p[8:12])[0]
        if per_ssrc.get(ssrc, 0) < 20:
            per_ssrc[ssrc] = per_ssrc.get(ssrc, 0) + 1
            keep.append(p)
    with open(os.path.join(out_dir, "chrome_rtp.hex"), "w") as f:
        for p in keep:
            f.write(p.hex() + "\n")
    with open(os.path.join(out_dir, "chrome_offer.sdp"), "w") as f:
        f.write(result["offer"])
    print(f"captured {len(packets)} RTP packets, kept {len(keep)} from {len(per_ssrc)} SSRCs", file=sys.stderr)
    return 0 if result["state"] == "connected" and keep else 1


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--inside":
        return inside(sys.argv[2])
    out_dir = os.path.abspath(sys.argv[1])
    ns = f"rlcap-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        return subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--inside",
                               out_dir]).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    sys.exit(main())
