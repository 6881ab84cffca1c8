#!/usr/bin/env python3
"""Chromium behind a firewall that lets no UDP out reaches ringlane through TURN over TCP (and
over TLS, `turns:`, with --tls): issue #10's browser proof.

Inside a lo-only network namespace, an nftables rule drops every UDP datagram a socket of the
browser's user (nobody, uid 65534) sends; the node runs as root and keeps its UDP (the relayed
side, RFC 8656: REQUESTED-TRANSPORT 17, and the SFU's media port). Then:
  1. the firewall holds: a peer connection given only the node's UDP TURN URI gathers no relay
     candidate, and the rule counts the datagrams it dropped;
  2. two peer connections with iceTransportPolicy 'relay' and only a `turn:...?transport=tcp`
     (then only a `turns:`) server exchange video: the receiver decodes frames, both ends'
     selected pairs are relay candidates over tcp (tls), and the node counts the connections;
  3. two participants of the demo page with &relay=1 meet in an SFU room of the node's own,
     their media relayed over TCP (TLS) into the SFU's UDP media port, and decode each other.
Skips (77) when Chromium, chromedriver, nft or `ip netns` is missing.
"""
import argparse
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, check, free_port, http_get, wait_http  # noqa: E402
from sfu_browser_test import (Pages, dataplane_counters, free_port_pair, netns_main, stop,  # noqa: E402
                              wait_flowing, wait_until)
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402

NOBODY = 65534
TABLE = "rl_turn_browser"

# Two peer connections of one page through the TURN servers given, relay candidates only: the
# first sends the fake camera, the second decodes it. Non-trickle (the offer and the answer carry
# every candidate). Resolves with what the test checks, or an error string.
PEER_PAIR_JS = r"""
const [servers, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const config = { iceServers: servers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(config);
  const b = new RTCPeerConnection(config);
  window.peerPair = { a, b };
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') resolve();
    });
  });
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 } });
  a.addTrack(stream.getVideoTracks()[0], stream);
  await a.setLocalDescription(await a.createOffer());
  await gathered(a);
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await gathered(b);
  await a.setRemoteDescription(b.localDescription);
  done('started');
})().catch((e) => done(`error: ${e.name}: ${e.message}`));
"""

# What the pair shows now: connection states, frames decoded, each end's selected pair.
PEER_PAIR_STATS_JS = r"""
const done = arguments[arguments.length - 1];
(async () => {
  const { a, b } = window.peerPair;
  const pair = async (pc) => {
    const report = await pc.getStats();
    for (const s of report.values()) {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
      const p = report.get(s.selectedCandidatePairId);
      const local = report.get(p?.localCandidateId);
      if (local) return { type: local.candidateType, relayProtocol: local.relayProtocol ?? null,
                          address: `${local.address}:${local.port}` };
    }
    return null;
  };
  let frames = 0;
  for (const s of (await b.getStats()).values()) {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded ?? 0;
  }
  done({ a: a.connectionState, b: b.connectionState, frames, pairA: await pair(a), pairB: await pair(b) });
})().catch((e) => done({ error: `${e.name}: ${e.message}` }));
"""

# The candidates one connection gathers from `servers` (relay only) in 10 s.
GATHER_JS = r"""
const [servers, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: 'relay' });
  const found = [];
  pc.addEventListener('icecandidate', (e) => { if (e.candidate) found.push(e.candidate.candidate); });
  pc.createDataChannel('probe');
  await pc.setLocalDescription(await pc.createOffer());
  const deadline = Date.now() + 10000;
  while (pc.iceGatheringState !== 'complete' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  pc.close();
  done({ state: pc.iceGatheringState, found });
})().catch((e) => done({ error: `${e.name}: ${e.message}` }));
"""


def run_async(browser, script, *args):
    """Runs an async script (its last argument is the callback) and returns what it passed."""
    return browser._call("POST", f"/session/{browser.session}/execute/async",
                         {"script": script, "args": list(args)})


def nft(script):
    return subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True)


def dropped_udp():
    """Datagrams the browser's user sent that the rule dropped."""
    out = subprocess.run(["nft", "-j", "list", "table", "inet", TABLE], capture_output=True, text=True).stdout
    for item in json.loads(out or "{}").get("nftables", []):
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return expr["counter"]["packets"]
    return None


def make_certificate(tmp):
    """A self-signed ECDSA certificate for 127.0.0.1 and its base64 SPKI hash (what
    --ignore-certificate-errors-spki-list takes)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                         capture_output=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der, check=True,
                            capture_output=True).stdout
    spki = subprocess.run(["openssl", "base64", "-A"], input=digest, check=True, capture_output=True).stdout
    return cert, key, spki.decode().strip()


class NobodyBrowser(Browser):
    """The test's Chromium, as the user the firewall rule names."""

    def __init__(self, extra_args):
        super().__init__(extra_args, user=NOBODY)


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    udp_port = free_port()
    tcp_port = free_port(socket.SOCK_STREAM)
    tls_port = free_port(socket.SOCK_STREAM)
    media_port = free_port_pair()
    room = f"r{os.getpid()}"
    made = nft(f"table inet {TABLE} {{\n  chain o {{\n    type filter hook output priority 0; policy accept;\n"
               f"    meta skuid {NOBODY} meta l4proto udp counter drop\n  }}\n}}\n")
    check(made.returncode == 0, f"nftables drops the UDP of uid {NOBODY} ({made.stderr.strip() or 'table made'})")
    if made.returncode != 0:
        return
    extra = []
    transports = ["tcp"]
    spki = None
    if a.tls:
        cert, key, spki = make_certificate(tmp)
        extra += ["--listen-tls", f"127.0.0.1:{tls_port}", "--tls-cert", cert, "--tls-key", key]
        transports.append("tls")
    uris = {"udp": f"turn:127.0.0.1:{udp_port}?transport=udp",
            "tcp": f"turn:127.0.0.1:{tcp_port}?transport=tcp",
            "tls": f"turns:127.0.0.1:{tls_port}?transport=tcp"}
    # The SFU's participants get only the strongest transport, so that their media must go that way.
    sfu_transport = transports[-1]
    env = dict(os.environ, RINGLANE_STATE_DIR=os.path.join(tmp, "state"))
    name = f"turn-browser-{os.getpid()}"
    server = subprocess.Popen(
        [a.ringlane, "run", "--name", name, "--io", a.io, "--workers", "2",
         "--listen", f"127.0.0.1:{udp_port}", "--listen-tcp", f"127.0.0.1:{tcp_port}",
         "--relay-ip", "127.0.0.1", "--allow-peer", "127.0.0.1/32",
         "--media-ip", "127.0.0.1", "--media-port", str(media_port), "--http", f"127.0.0.1:{http_port}",
         "--turn-uri", uris["udp"], "--turn-uri", uris[sfu_transport], *extra],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port} (io {a.io})")
        status, body = http_get(http_port, f"/api/dev-token?room={room}&identity=probe")
        grant = json.loads(body) if status == 200 else {}
        servers = grant.get("ice_servers") or [{}]
        credential = {"username": servers[0].get("username"), "credential": servers[0].get("credential")}
        check(bool(credential["username"]), f"the dev token comes with TURN credentials ({status})")
        flags = FAKE_MEDIA_FLAGS + ["--window-size=1280,800"]
        if spki:
            flags.append(f"--ignore-certificate-errors-spki-list={spki}")
        browser = NobodyBrowser(flags)
        browser.open(f"http://127.0.0.1:{http_port}/?room=none")

        # 1. The firewall holds.
        before = dropped_udp() or 0
        got = run_async(browser, GATHER_JS, [dict(credential, urls=[uris["udp"]])])
        relay = [c for c in got.get("found", []) if " typ relay" in c]
        dropped = (dropped_udp() or 0) - before
        # (Gathering then still waits for the server's answers that never come: 'gathering'.)
        check("error" not in got and not relay and dropped > 0,
              f"with only the UDP TURN URI the browser gathers no relay candidate in 10 s: its UDP is dropped "
              f"({got}, {dropped} datagrams dropped)")
        counters = dataplane_counters(a.ringlane, name)
        check(counters.get("allocations_created", 0) == 0,
              f"and the node made no allocation (allocations_created {counters.get('allocations_created')})")

        # 2. Browser to browser through the relay, one transport at a time.
        for transport in transports:
            key = f"{transport}_accepted"  # tls_accepted: the TLS connections among the TCP ones
            accepted = dataplane_counters(a.ringlane, name).get(key, 0)
            started = run_async(browser, PEER_PAIR_JS, [dict(credential, urls=[uris[transport]])])
            check(started == "started", f"{transport}: two relay-only peer connections start ({started})")
            if started != "started":
                continue

            def decoding():
                s = run_async(browser, PEER_PAIR_STATS_JS)
                return s if s.get("b") == "connected" and s.get("frames", 0) > 10 else None
            s = wait_until(decoding, 30, 0.5) or run_async(browser, PEER_PAIR_STATS_JS)
            check(s.get("a") == "connected" and s.get("frames", 0) > 10,
                  f"{transport}: the receiver decodes the sender's video through ringlane ({s})")
            ends = [s.get("pairA") or {}, s.get("pairB") or {}]
            check(all(p.get("type") == "relay" and p.get("relayProtocol") == transport for p in ends),
                  f"{transport}: both ends' selected pairs are relay candidates allocated over {transport} ({ends})")
            counters = dataplane_counters(a.ringlane, name)
            check(counters.get(key, 0) >= accepted + 2,
                  f"{transport}: the node accepted both peers' connections ({key} {accepted} -> {counters.get(key)})")
            browser.run("window.peerPair.a.close(); window.peerPair.b.close();")

        # 3. An SFU room of the node's own, each participant relayed over the strongest transport.
        pages = Pages(browser)
        pages.handles["p0"] = browser.window()
        for who in ("p1", "p2"):
            pages.open(who, f"http://127.0.0.1:{http_port}/?room={room}&name={who}&autojoin=1&relay=1&simulcast=0")
        for who in ("p1", "p2"):
            s = wait_until(lambda n=who: pages.published(n), 40) or pages.state(who) or {}
            check(s.get("publisher") == "connected" and not s.get("errors"),
                  f"sfu: {who} publishes through the relay ({s.get('publisher')}, errors {s.get('errors')})")
        if FAILURES:
            return
        why, last = wait_flowing(pages, {"p1": ["p2"], "p2": ["p1"]}, 40)
        check(not why, f"sfu: p1 and p2 decode each other's video and receive each other's audio "
                       f"through {sfu_transport} ({why or 'all rising'})")
        for who in ("p1", "p2"):
            pairs = [last[who].get(k, {}).get("pair") for k in ("publisher", "subscriber")]
            pairs = [p or {} for p in pairs]
            check(all(p.get("candidateType") == "relay" and p.get("relayProtocol") == sfu_transport
                      for p in pairs),
                  f"sfu: {who}'s publisher and subscriber connections are relayed over {sfu_transport} ({pairs})")
        shot = os.path.join(tmp, "turn-browser-p1.png")
        browser.switch_to(pages.handles["p1"])
        browser.screenshot(shot)
        print(f"  screenshot of p1's page: {shot}", flush=True)
        check(dropped_udp() > dropped, f"the browser kept trying UDP, all of it dropped ({dropped_udp()} datagrams)")
        check(server.poll() is None, "ringlane run still running")
    finally:
        stop(server, browser)
        subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ringlane", required=True)
    ap.add_argument("--io", choices=["uring", "mmsg"], default="uring")
    ap.add_argument("--tls", action="store_true", help="also TURN over TLS (turns:)")
    ap.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()

    def go(tmp, logs):
        os.chmod(tmp, 0o755)  # the browser's user reads the certificate's folder
        logs.append(os.path.join(tmp, "ringlane.log"))
        run(a, tmp, logs[0])

    return netns_main(a, __file__, "rl-tb", go, timeout=240, needs=("chromedriver", "ip", "nft"))


if __name__ == "__main__":
    sys.exit(main())
