#!/usr/bin/env python3
"""WHIP (RFC 9725) and WHEP (draft-ietf-wish-whep) end to end, over real HTTP, inside a network
namespace this test makes:

1. Chromium publishes its fake camera and microphone with WHIP (a page script: fetch POST of the
   offer, the answer applied). A python websockets participant sees it join and publish
   (participant_joined, track_published, listed in `joined` of a later join); a demo page that
   joins afterwards auto-subscribes and decodes it. A second Chromium page, later, plays it with
   WHEP (?participant=) and decodes it: its first keyframe needs the keyframe request the data
   plane sends when the viewer's DTLS connects, seen as the publisher's pliCount rising. The
   viewer is announced to nobody.
2. The control plane is killed with -9 and restarted: it adopts the data plane and reads the
   WHIP/WHEP resources back from its state file; the viewer goes on decoding, a PATCH with the
   resource's ETag is still answered 204, and a DELETE after the restart works. Then the viewer
   restarts its ICE (RFC 9725 §4.3.2: an iceRestart offer's credentials PATCHed with If-Match: *,
   the 200's credentials applied): the data plane counts the restart, ICE connects again and the
   viewer goes on decoding; the old ETag is then 412.
3. A GStreamer publisher (webrtcbin, whip_gst_publisher.py: videotestsrc ! vp8enc,
   audiotestsrc ! opusenc) publishes with WHIP and a Chromium page plays it with WHEP (the room's
   most recent publisher, no ?participant=) and decodes its 320x240 frames, still 35 s on (past
   the 30 s consent timeout of RFC 7675: libnice's keepalives must be binding requests, which
   whip_gst_publisher.py asks for); when it DELETEs its resource the signaling participant sees
   its tracks end and it leave.
4. Refusals: no token 401, a bad token 401, a token for another room 403, a wrong Content-Type 415,
   garbage SDP 400 naming the line, an empty body 400, WHEP of an empty room 409, GET 405 with
   Allow, DELETE of an unknown resource 404, an ICE restart PATCH without credentials 400, a stale If-Match 412, the
   CORS preflight (OPTIONS) with Accept-Post, Allow-Methods/Headers and Expose-Headers for the
   page's own origin and no Access-Control-Allow-Origin for another; and the Link header with
   the TURN REST credentials.

Why a veth pair: libnice (GStreamer's ICE agent) gathers no candidate on an interface flagged
loopback, which is all a fresh namespace has. So, inside the namespace, `ip link add rlw0 type
veth peer name rlw1` with 198.18.0.1/32 (RFC 2544's benchmarking range) on rlw0 and both ends
up: an address that exists only inside this namespace, with no route out of it (traffic to a
local address goes over lo). Debian's kernel here has no `dummy` module, hence veth. ringlane
runs with `--media-ip 0.0.0.0` so that its media port answers on 198.18.0.1 too: its ICE host
candidate is then 198.18.0.1 (a non-loopback address exists), which libnice and Chromium both
reach. Without veth (no such kernel support) the GStreamer part is skipped, said as such, and
Chromium uses 127.0.0.1. IPv6 is off on the pair (no link-local candidates).

Skips (77) when Chromium, chromedriver or `ip netns` is missing.

Usage: whip_test.py --ringlane PATH [--io uring|mmsg]
"""
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sfu_browser_test import (Pages, browser_test_args, dataplane_counters, free_port_pair,  # noqa: E402
                              kill_dataplane, netns_main, stop, wait_flowing, wait_until)
from testlib import check, free_port, http_get, wait_http, wait_status  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VETH_IP = "198.18.0.1"
GST_PYTHON = "/usr/bin/python3"  # Debian's python3-gi is for the system interpreter

# The page side of WHIP and WHEP: a peer connection, its offer POSTed with fetch, the answer
# applied; and its stats. window.rl.state says how far it got.
PAGE_JS = r"""
window.rl = {state: {}, pc: null, stats: null};
window.rlPost = async (url, token, whep) => {
  const s = window.rl.state;
  try {
    const pc = new RTCPeerConnection();
    window.rl.pc = pc;
    pc.onconnectionstatechange = () => { s.connection = pc.connectionState; };
    if (whep) {
      pc.addTransceiver('video', {direction: 'recvonly'});
      pc.addTransceiver('audio', {direction: 'recvonly'});
      const v = document.createElement('video');
      v.autoplay = true; v.muted = true; v.playsInline = true;
      document.body.appendChild(v);
      pc.ontrack = (e) => {
        v.srcObject = e.streams[0] || new MediaStream([e.track]);
        s.stream = e.streams[0] ? e.streams[0].id : '';
      };
    } else {
      const media = await navigator.mediaDevices.getUserMedia(
          {audio: true, video: {width: 320, height: 240}});
      for (const t of media.getTracks()) pc.addTransceiver(t, {direction: 'sendonly'});
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const r = await fetch(url, {method: 'POST', body: offer.sdp,
        headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}});
    s.status = r.status;
    s.location = r.headers.get('Location');
    s.etag = r.headers.get('ETag');
    s.link = r.headers.get('Link');
    const text = await r.text();
    if (r.status !== 201) { s.error = text; return; }
    s.answer = text;
    await pc.setRemoteDescription({type: 'answer', sdp: text});
    s.applied = true;
  } catch (e) {
    s.error = String(e);
  }
};
// A WHIP/WHEP client's ICE restart (RFC 9725 §4.3.2): an offer with new credentials, PATCHed
// with If-Match: *, and the server's new credentials from the 200 put into the first answer.
window.rlRestart = async (location, token) => {
  const s = window.rl.state;
  const pc = window.rl.pc;
  const cred = (text, name) => (new RegExp('a=' + name + ':([^\\r\\n]+)').exec(text) || [])[1];
  try {
    const offer = await pc.createOffer({iceRestart: true});
    await pc.setLocalDescription(offer);
    const mid = cred(offer.sdp, 'mid');
    const frag = 'a=ice-ufrag:' + cred(offer.sdp, 'ice-ufrag') + '\r\na=ice-pwd:' +
        cred(offer.sdp, 'ice-pwd') + '\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:' + mid + '\r\n';
    const r = await fetch(location, {method: 'PATCH', body: frag, headers: {
        'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*',
        'Authorization': 'Bearer ' + token}});
    s.restartStatus = r.status;
    s.restartType = r.headers.get('Content-Type');
    s.restartEtag = r.headers.get('ETag');
    s.restartBody = await r.text();
    if (r.status !== 200) return;
    const ufrag = cred(s.restartBody, 'ice-ufrag');
    const pwd = cred(s.restartBody, 'ice-pwd');
    const answer = s.answer.replace(/a=ice-ufrag:[^\r\n]+/g, 'a=ice-ufrag:' + ufrag)
                           .replace(/a=ice-pwd:[^\r\n]+/g, 'a=ice-pwd:' + pwd);
    await pc.setRemoteDescription({type: 'answer', sdp: answer});
    s.restarted = true;
  } catch (e) {
    s.restartError = String(e);
  }
};
window.rlStats = async () => {
  const out = {inbound: [], outbound: [], pair: null, connection: window.rl.pc.connectionState};
  const report = await window.rl.pc.getStats();
  const byId = new Map();
  report.forEach((r) => byId.set(r.id, r));
  report.forEach((r) => {
    if (r.type === 'inbound-rtp') {
      out.inbound.push({kind: r.kind, framesDecoded: r.framesDecoded || 0,
                        packetsReceived: r.packetsReceived || 0, frameWidth: r.frameWidth || 0,
                        frameHeight: r.frameHeight || 0});
    } else if (r.type === 'outbound-rtp') {
      out.outbound.push({kind: r.kind, pliCount: r.pliCount || 0, packetsSent: r.packetsSent || 0});
    } else if (r.type === 'transport' && r.selectedCandidatePairId) {
      const p = byId.get(r.selectedCandidatePairId);
      const l = byId.get(p.localCandidateId);
      const m = byId.get(p.remoteCandidateId);
      out.pair = {local: l.address + ':' + l.port, remote: m.address + ':' + m.port};
    }
  });
  return out;
};
"""


def request(port, method, target, body=None, headers=None):
    """(status, headers, body text) of one request to the node's HTTP port."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, target, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    c.close()
    return r.status, r.headers, data


def metric(port, name):
    status, body = http_get(port, "/metrics")
    for line in body.splitlines() if status == 200 else []:
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def dev_token(port, room, identity):
    status, body = http_get(port, f"/api/dev-token?room={room}&identity={identity}")
    return json.loads(body)["token"] if status == 200 else None


def add_veth():
    """Inside the namespace: 198.18.0.1 on one end of a veth pair (see the docstring). Returns
    '' when done, else why not."""
    for cmd in (["ip", "link", "add", "rlw0", "type", "veth", "peer", "name", "rlw1"],
                ["sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/rlw0/disable_ipv6; "
                             "echo 1 > /proc/sys/net/ipv6/conf/rlw1/disable_ipv6"],
                ["ip", "addr", "add", f"{VETH_IP}/32", "dev", "rlw0"],
                ["ip", "link", "set", "rlw0", "up"], ["ip", "link", "set", "rlw1", "up"]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return f"{' '.join(cmd)}: {done.stderr.strip()}"
    return ""


def gst_missing():
    """Why the GStreamer publisher cannot run here ('' when it can)."""
    probe = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstWebRTC','1.0');"
             "from gi.repository import Gst; Gst.init(None);"
             "missing=[e for e in ('webrtcbin','vp8enc','opusenc','nicesrc','videotestsrc',"
             "'audiotestsrc','rtpvp8pay','rtpopuspay') if not Gst.ElementFactory.find(e)];"
             "print(' '.join(missing))")
    if not os.path.exists(GST_PYTHON):
        return f"{GST_PYTHON} is missing"
    done = subprocess.run([GST_PYTHON, "-c", probe], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return "python3-gi with GStreamer 1.0 is missing (" + done.stderr.strip().splitlines()[-1] + ")"
    if done.stdout.strip():
        return "GStreamer elements missing: " + done.stdout.strip()
    return ""


class Watcher:
    """A signaling participant over python websockets (no media: auto_subscribe false) that keeps
    every message it gets, on a thread of its own."""

    def __init__(self, port, token, room):
        self.messages = []
        self.lock = threading.Lock()
        self.joined = None
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.stop_event = None
        self.thread = threading.Thread(target=self._run, args=(port, token, room), daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self, port, token, room):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main(port, token, room))

    async def _main(self, port, token, room):
        from wslib import Client
        self.stop_event = asyncio.Event()
        try:
            client = await Client.open(f"ws://127.0.0.1:{port}/ws", token)
            await client.send({"type": "join", "id": 1, "room": room, "auto_subscribe": False})
            while not self.stop_event.is_set():
                try:
                    m = await client.recv(0.2)
                except asyncio.TimeoutError:
                    continue
                if m is None:
                    break
                with self.lock:
                    self.messages.append(m)
                if m.get("type") == "joined":
                    self.joined = m
                    self.ready.set()
            await client.close()
        except Exception as e:  # the node went away (kill -9): the messages so far stay
            with self.lock:
                self.messages.append({"type": "watcher_error", "message": str(e)})
        finally:
            self.ready.set()

    def events(self, type_, **match):
        with self.lock:
            return [m for m in self.messages
                    if m.get("type") == type_ and all(m.get(k) == v for k, v in match.items())]

    def close(self):
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(5)


def page_state(pages, name):
    return pages.run(name, "return window.rl.state")


def page_post(pages, name, url, token, whep):
    """Has the page POST its offer; its state once the answer is applied or it failed."""
    pages.run(name, "window.rlPost(arguments[0], arguments[1], arguments[2]); return true",
              url, token, whep)
    return wait_until(lambda: (lambda s: s if s.get("applied") or s.get("error") else None)(
        page_state(pages, name)), 20) or page_state(pages, name)


def page_stats(pages, name):
    pages.run(name, "window.rl.stats = null; "
                    "window.rlStats().then((s) => { window.rl.stats = s; }); return null")
    return wait_until(lambda: pages.run(name, "return window.rl.stats"), 5)


def inbound(stats, kind):
    return [r for r in stats["inbound"] if r["kind"] == kind]


def rising(before, after):
    """Why a WHEP page's media is not flowing between two samples ('' when it is): one video
    stream with frames decoded rising, one audio stream with packets received rising."""
    for kind, counter in (("video", "framesDecoded"), ("audio", "packetsReceived")):
        a, b = inbound(before, kind), inbound(after, kind)
        if len(b) != 1:
            return f"{len(b)} {kind} streams"
        if not (a and b[0][counter] > a[0][counter] > 0):
            return f"{kind} {counter} not rising ({a[0][counter] if a else None} -> {b[0][counter]})"
    return ""


def wait_receiving(pages, name, timeout):
    """Samples the page's stats 1.2 s apart until its media flows; (why not, last sample)."""
    deadline = time.time() + timeout
    while True:
        first = page_stats(pages, name)
        time.sleep(1.2)
        second = page_stats(pages, name)
        why = rising(first, second) if first and second else "no stats"
        if not why or time.time() > deadline:
            return why, second


def outbound_pli(pages, name):
    s = page_stats(pages, name)
    return sum(r["pliCount"] for r in s["outbound"] if r["kind"] == "video") if s else None


def refusals(port, room, token, other_token):
    """Part 4 (before anything is published in `room`)."""
    sdp_headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
    offer = open(os.path.join(HERE, "..", "fuzz", "sdp_corpus", "gstreamer_offer.sdp")).read()
    status, headers, body = request(port, "POST", f"/whip/{room}", offer,
                                    {"Content-Type": "application/sdp"})
    check(status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"),
          f"POST /whip without a token: 401 with WWW-Authenticate: Bearer ({status} {body})")
    status, _, body = request(port, "POST", f"/whip/{room}", offer,
                              {"Content-Type": "application/sdp", "Authorization": "Bearer x.y.z"})
    check(status == 401 and "bad_token" in body, f"a bad token: 401 bad_token ({status} {body})")
    status, _, body = request(port, "POST", f"/whip/{room}", offer,
                              {"Content-Type": "application/sdp", "Authorization": f"Bearer {other_token}"})
    check(status == 403 and "room_not_granted" in body,
          f"a token for another room: 403 room_not_granted ({status} {body})")
    status, headers, body = request(port, "POST", f"/whip/{room}", offer,
                                    dict(sdp_headers, **{"Content-Type": "text/plain"}))
    check(status == 415 and headers.get("Accept-Post") == "application/sdp",
          f"Content-Type text/plain: 415 with Accept-Post: application/sdp ({status} {body})")
    garbage = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n" \
              "a=rtpmap:300 VP8/90000\r\n"
    status, _, body = request(port, "POST", f"/whip/{room}", garbage, sdp_headers)
    reason = json.loads(body).get("error", {}) if status == 400 else {}
    check(status == 400 and reason.get("code") == "bad_sdp" and reason.get("message", "").startswith("line 6:"),
          f"garbage SDP: 400 bad_sdp naming line 6 ({status} {body})")
    status, _, body = request(port, "POST", f"/whip/{room}", "", sdp_headers)
    check(status == 400 and "bad_sdp" in body, f"an empty offer: 400 bad_sdp ({status} {body})")
    status, _, body = request(port, "POST", f"/whep/{room}", offer, sdp_headers)
    check(status == 409 and "nothing_published" in body,
          f"WHEP of a room where nothing is published: 409 nothing_published ({status} {body})")
    status, headers, _ = request(port, "GET", f"/whip/{room}")
    check(status == 405 and headers.get("Allow") == "OPTIONS, POST",
          f"GET /whip/ROOM: 405 with Allow: OPTIONS, POST ({status}, {headers.get('Allow')})")
    status, _, body = request(port, "DELETE", f"/whip/{room}/nosuchresource",
                              headers={"Authorization": f"Bearer {token}"})
    check(status == 404, f"DELETE of an unknown resource: 404 ({status} {body})")
    origin = f"http://127.0.0.1:{port}"
    status, headers, _ = request(port, "OPTIONS", f"/whip/{room}", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    allow_headers = headers.get("Access-Control-Allow-Headers", "")
    expose = headers.get("Access-Control-Expose-Headers", "")
    check(status == 204 and headers.get("Access-Control-Allow-Origin") == origin
          and "POST" in headers.get("Access-Control-Allow-Methods", "")
          and all(h in allow_headers for h in ("Authorization", "Content-Type", "If-Match"))
          and all(h in expose for h in ("Location", "ETag", "Link"))
          and headers.get("Accept-Post") == "application/sdp",
          f"OPTIONS preflight from the page's own origin: 204, Allow-Origin, Allow-Methods, "
          f"Allow-Headers, Expose-Headers, Accept-Post ({status} {dict(headers)})")
    status, headers, _ = request(port, "OPTIONS", f"/whep/{room}", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    check(status == 204 and "Access-Control-Allow-Origin" not in headers,
          f"OPTIONS from another origin: no Access-Control-Allow-Origin ({status} {dict(headers)})")


def run(a, tmp, logs):
    veth_why = add_veth()
    if veth_why:
        print(f"  note  no veth in the namespace ({veth_why}): Chromium only, over 127.0.0.1", flush=True)
    http_port = free_port(socket.SOCK_STREAM)
    turn_port = free_port()
    media_port = free_port_pair()
    room = f"w{os.getpid()}"
    name = f"whip-{os.getpid()}"
    env = dict(os.environ, RINGLANE_STATE_DIR=os.path.join(tmp, "state"))
    args = [a.ringlane, "run", "--name", name, "--io", a.io, "--workers", "2",
            "--listen", f"127.0.0.1:{turn_port}", "--media-ip", "0.0.0.0",
            "--media-port", str(media_port), "--http", f"127.0.0.1:{http_port}"]

    # Not sfu_browser_test.start_node: that one binds the media ports to 127.0.0.1 only.
    def start(i):
        logs.insert(0, os.path.join(tmp, f"ringlane-{i}.log"))
        return subprocess.Popen(args, stdout=open(logs[0], "w"), stderr=subprocess.STDOUT, env=env)

    def log():
        with open(logs[0]) as f:
            return f.read()

    server = start(1)
    browser = None
    watchers = []
    gst = None
    gst_up = 0.0
    gst_view = events = reader = None
    dataplane = None
    base = f"http://127.0.0.1:{http_port}"
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port} (io {a.io})")
        # The offers below need the data plane: HTTP answers before it is up (/readyz says when).
        check(wait_status(http_port, "/readyz", 200, 15), "its data plane is ready (/readyz 200)")
        tokens = {who: dev_token(http_port, room, who) for who in ("whip-cam", "viewer", "watcher", "gst", "late")}
        other = dev_token(http_port, "elsewhere", "x")
        check(all(tokens.values()) and other, "dev tokens for the room and for another room")
        refusals(http_port, room, tokens["viewer"], other)

        watcher = Watcher(http_port, tokens["watcher"], room)
        watchers.append(watcher)
        check(watcher.joined is not None, f"a python websockets participant joins {room}")

        # 1. Chromium publishes over WHIP.
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=800,600"])
        pages = Pages(browser)
        for who in ("pub", "view"):
            pages.open(who, f"{base}/healthz")
            pages.run(who, PAGE_JS)
        s = page_post(pages, "pub", f"{base}/whip/{room}", tokens["whip-cam"], False)
        check(s.get("status") == 201 and s.get("applied") and (s.get("location") or "").startswith(f"/whip/{room}/")
              and (s.get("etag") or "").startswith('"'),
              f"Chromium POSTs its offer to /whip/{room}: 201, Location, ETag, answer applied "
              f"({ {k: s.get(k) for k in ('status', 'location', 'etag', 'error')} })")
        link = s.get("link") or ""
        check(f'<turn:127.0.0.1:{turn_port}?transport=udp>; rel="ice-server"; username="' in link
              and ':whip-cam"; credential="' in link and 'credential-type="password"' in link,
              f"the Link header names the TURN server with REST credentials ({link})")
        pub_location = s.get("location")
        connected = wait_until(lambda: page_state(pages, "pub").get("connection") == "connected", 15)
        check(bool(connected), f"the WHIP publisher's peer connection connects ({page_state(pages, 'pub').get('connection')})")
        published = wait_until(lambda: len(watcher.events("track_published", participant="whip-cam")) == 2, 5)
        check(watcher.events("participant_joined", participant="whip-cam") and published,
              "the signaling participant hears whip-cam join and publish two tracks "
              f"({[(m['type'], m.get('kind')) for m in watcher.messages if m.get('participant') == 'whip-cam']})")
        late = Watcher(http_port, tokens["late"], room)
        watchers.append(late)
        listed = late.joined or {}
        check("whip-cam" in listed.get("participants", [])
              and sorted(t["kind"] for t in listed.get("tracks", []) if t["participant"] == "whip-cam") == ["audio", "video"],
              f"a later join lists whip-cam and its tracks ({listed.get('participants')}, {listed.get('tracks')})")
        late.close()

        # A demo page joins over signaling and auto-subscribes to the WHIP publisher.
        pages.open("p1", f"{base}/?room={room}&name=p1&autojoin=1")
        s1 = wait_until(lambda: pages.published("p1"), 30) or pages.state("p1")
        check(s1 and s1["publisher"] == "connected" and not s1["errors"],
              f"a demo page joins the room and publishes ({s1 and s1['errors']})")
        why, _ = wait_flowing(pages, {"p1": ["whip-cam"]}, 40)
        check(not why, f"the demo page auto-subscribes to whip-cam and decodes it ({why or 'rising'})")

        # Later, a WHEP viewer of whip-cam (p1 published after it: ?participant= picks).
        pli_before = outbound_pli(pages, "pub")
        v = page_post(pages, "view", f"{base}/whep/{room}?participant=whip-cam", tokens["viewer"], True)
        check(v.get("status") == 201 and v.get("applied") and (v.get("location") or "").startswith(f"/whep/{room}/"),
              f"Chromium POSTs a recvonly offer to /whep/{room}: 201 and the answer applied "
              f"({ {k: v.get(k) for k in ('status', 'location', 'error')} })")
        answer = v.get("answer") or ""
        check(answer.count("a=sendonly") == 2 and "a=msid:whip-cam " in answer,
              "the WHEP answer sends two sections, both whip-cam's")
        why, last = wait_receiving(pages, "view", 30)
        check(not why, f"the WHEP viewer decodes whip-cam's video and receives its audio ({why or 'rising'})")
        if last:
            print(f"  viewer: {last['inbound']} over {last['pair']}", flush=True)
            check(last["pair"] and last["pair"]["remote"].split(":")[0] in (VETH_IP, "127.0.0.1"),
                  f"the viewer's media runs inside the namespace ({last['pair']})")
        pli_after = outbound_pli(pages, "pub")
        check(pli_before is not None and pli_after is not None and pli_after > pli_before,
              f"the viewer's first keyframe was asked of the publisher: its pliCount rose ({pli_before} -> {pli_after})")
        announced = [m for m in watcher.messages if str(m.get("participant", "")).startswith("whep/")]
        check(not announced and not any(p.startswith("whep/") for p in pages.state("p1")["participants"]),
              f"the WHEP viewer is announced to nobody ({announced})")
        view_location, view_etag = v.get("location"), v.get("etag")

        # 2. kill -9 of the control plane; the resources survive it.
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        dataplane = int(children[0]) if children else None
        watcher.close()
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        server = start(2)
        check(wait_http(http_port), "a new ringlane run of the same name answers HTTP")
        adopted = wait_until(lambda: "adopt" in log() and "media state restored" in log(), 10)
        check(bool(adopted), "it adopts the data plane and restores the media state")
        restored = (metric(http_port, "ringlane_sfu_whip_resources"), metric(http_port, "ringlane_sfu_whep_resources"))
        check(restored == (1.0, 1.0), f"the WHIP and the WHEP resource are restored ({restored})")
        restart_at = time.time()
        why, _ = wait_receiving(pages, "view", 15)
        check(not why, f"after the restart the WHEP viewer still decodes ({why or 'rising'})")
        frag = "a=ice-ufrag:{u}\r\na=ice-pwd:{p}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" \
               "a=candidate:1 1 udp 2122260223 198.18.0.1 50000 typ host\r\n"
        offer_ice = dict(line.split(":", 1) for line in
                         pages.run("view", "return window.rl.pc.localDescription.sdp").split("\r\n")
                         if line.startswith("a=ice-ufrag:") or line.startswith("a=ice-pwd:"))
        trickle = frag.format(u=offer_ice.get("a=ice-ufrag"), p=offer_ice.get("a=ice-pwd"))
        patch = {"Content-Type": "application/trickle-ice-sdpfrag", "Authorization": f"Bearer {tokens['viewer']}"}
        status, _, body = request(http_port, "PATCH", view_location, trickle, dict(patch, **{"If-Match": view_etag}))
        check(status == 204, f"after the restart, a trickle PATCH with the ETag: 204 ({status} {body})")
        status, _, body = request(http_port, "PATCH", view_location, trickle, dict(patch, **{"If-Match": '"old"'}))
        check(status == 412, f"a PATCH for another ICE session (If-Match): 412 ({status} {body})")
        status, _, body = request(http_port, "PATCH", view_location, frag.format(u="Zz9y", p=""),
                                  dict(patch, **{"If-Match": "*"}))
        check(status == 400 and "bad_sdpfrag" in body,
              f"an ICE restart PATCH without the new a=ice-pwd: 400 bad_sdpfrag ({status} {body})")
        # The viewer restarts its ICE for real (after the control plane restart: the state file
        # kept what it needs): new credentials both ways, same DTLS keys, media goes on.
        restarts_before = dataplane_counters(a.ringlane, name)["sfu_ice_restarts"]
        local_ufrag = ("const r = await window.rl.pc.getStats(); let u = null; r.forEach((x) => "
                       "{ if (x.type === 'transport') u = [x.iceLocalUsernameFragment, x.iceState]; }); return u;")
        local_before = pages.run("view", local_ufrag)
        old_server_ufrag = view_etag.strip('"')
        pages.run("view", "window.rlRestart(arguments[0], arguments[1]); return true;",
                  view_location, tokens["viewer"])
        def restart_done(st):
            # Applied, failed, or refused (any status but 200 ends it too).
            finished = st.get("restarted") or st.get("restartError") or st.get("restartStatus") not in (None, 200)
            return st if finished else None
        done = wait_until(lambda: restart_done(page_state(pages, "view")), 10) or page_state(pages, "view")
        body = done.get("restartBody") or ""
        new_ufrag = next((l.split(":", 1)[1] for l in body.split("\r\n") if l.startswith("a=ice-ufrag:")), "")
        check(done.get("restartStatus") == 200 and (done.get("restartType") or "").startswith("application/trickle-ice-sdpfrag")
              and new_ufrag and new_ufrag != old_server_ufrag and done.get("restartEtag") == f'"{new_ufrag}"'
              and "a=ice-pwd:" in body and "a=candidate:" in body and "a=end-of-candidates" in body,
              f"an ICE restart PATCH (If-Match: *): 200 with the server's new credentials, candidates and "
              f"ETag ({ {k: done.get(k) for k in ('restartStatus', 'restartType', 'restartEtag', 'restartError')} } {body!r})")
        check(done.get("restarted"), f"the viewer applies them ({done.get('restartError')})")
        used = wait_until(lambda: dataplane_counters(a.ringlane, name)["sfu_ice_restarts"] > restarts_before and
                          (lambda u: u and u[0] != local_before[0] and u[1] == "connected")(pages.run("view", local_ufrag)), 15)
        check(bool(used), f"the data plane took the restart and the viewer's ICE transport restarted ({local_before} -> "
              f"{pages.run('view', local_ufrag)}) and is connected "
              f"({pages.run('view', 'return window.rl.pc.iceConnectionState')})")
        why, _ = wait_receiving(pages, "view", 15)
        check(not why, f"after the ICE restart the WHEP viewer still decodes ({why or 'rising'})")
        status, _, body = request(http_port, "PATCH", view_location, trickle, dict(patch, **{"If-Match": view_etag}))
        check(status == 412, f"the ETag of the ICE session before the restart: 412 ({status} {body})")
        view_etag = done.get("restartEtag")
        watcher = Watcher(http_port, tokens["watcher"], room)
        watchers.append(watcher)

        # 3. GStreamer publishes over WHIP; Chromium plays it over WHEP.
        missing = veth_why or gst_missing()
        if missing:
            print(f"  skip  the GStreamer publisher: {missing}", flush=True)
        else:
            logs.append(os.path.join(tmp, "gst.log"))
            gst = subprocess.Popen([GST_PYTHON, os.path.join(HERE, "whip_gst_publisher.py"),
                                    "--url", f"{base}/whip/{room}", "--token", tokens["gst"], "--seconds", "90"],
                                   stdout=subprocess.PIPE, stderr=open(logs[-1], "w"),
                                   text=True, env=dict(os.environ, HOME=tmp))
            events = []
            reader = threading.Thread(target=lambda: events.extend(json.loads(l) for l in gst.stdout), daemon=True)
            reader.start()
            posted = wait_until(lambda: [e for e in events if e["event"] in ("posted", "error")], 30)
            check(posted and posted[0].get("status") == 201,
                  f"GStreamer (webrtcbin) POSTs its offer to /whip/{room}: 201 ({posted})")
            ice = wait_until(lambda: [e for e in events if e.get("state") in ("connected", "completed")], 20)
            check(bool(ice), f"GStreamer's ICE connects ({[e.get('state') for e in events if e['event'] == 'ice']})")
            heard = wait_until(lambda: len(watcher.events("track_published", participant="gst")) == 2, 10)
            check(bool(heard), "the signaling participant hears gst publish two tracks")
            pages.open("gview", f"{base}/healthz")
            pages.run("gview", PAGE_JS)
            g = page_post(pages, "gview", f"{base}/whep/{room}", tokens["viewer"], True)
            check(g.get("status") == 201 and g.get("applied") and "a=msid:gst " in (g.get("answer") or ""),
                  f"a WHEP viewer with no ?participant= gets the most recent publisher, gst "
                  f"({ {k: g.get(k) for k in ('status', 'error')} })")
            why, last = wait_receiving(pages, "gview", 30)
            video = inbound(last, "video") if last else []
            check(not why and video and (video[0]["frameWidth"], video[0]["frameHeight"]) == (320, 240),
                  f"Chromium decodes GStreamer's 320x240 test pattern and receives its audio "
                  f"({why or 'rising'}, {video})")
            gst_up = time.time()
            gst_view = g.get("location") or "/whep/x/y"

        # 4. DELETE after the restart (and past the resume grace: never expired).
        time.sleep(max(0.0, 21 - (time.time() - restart_at)))
        auth = {"Authorization": f"Bearer {tokens['whip-cam']}"}
        status, _, body = request(http_port, "DELETE", pub_location, headers=auth)
        check(status == 200, f"DELETE of the WHIP resource after the restart, >20 s later: 200 ({status} {body})")
        ended = wait_until(lambda: len(watcher.events("track_unpublished", participant="whip-cam")) == 2
                           and watcher.events("participant_left", participant="whip-cam"), 5)
        check(bool(ended), "the signaling participant sees whip-cam's two tracks end and whip-cam leave "
                           f"({[m['type'] for m in watcher.messages if m.get('participant') == 'whip-cam']})")
        gone = wait_until(lambda: pages.saw_leave("p1", "whip-cam"), 5)
        check(bool(gone), "the demo page sees whip-cam's audio and video end and whip-cam leave")
        status, _, _ = request(http_port, "DELETE", pub_location, headers=auth)
        check(status == 404, f"a second DELETE: 404 ({status})")
        status, _, _ = request(http_port, "DELETE", view_location, headers={"Authorization": f"Bearer {tokens['viewer']}"})
        check(status == 200, f"DELETE of the restored WHEP viewer: 200 ({status})")

        if gst:
            # RFC 7675: the data plane ends a session 30 s after its last valid check. libnice's
            # keepalives, binding requests here (keepalive-conncheck), must refresh consent.
            time.sleep(max(0.0, 35 - (time.time() - gst_up)))
            why, _ = wait_receiving(pages, "gview", 10)
            check(not why and gst.poll() is None and metric(http_port, "ringlane_sfu_whip_resources") == 1,
                  f"35 s on, past the consent timeout, GStreamer still publishes and Chromium decodes it "
                  f"({why or 'rising'})")
            gst.send_signal(signal.SIGTERM)
            gst.wait(15)
            reader.join(5)
            deleted = [e for e in events if e["event"] == "deleted"]
            check(deleted and deleted[0]["status"] == 200, f"GStreamer DELETEs its resource: 200 ({deleted})")
            ended = wait_until(lambda: len(watcher.events("track_unpublished", participant="gst")) == 2
                               and watcher.events("participant_left", participant="gst"), 5)
            check(bool(ended), "the signaling participant sees gst's two tracks end and gst leave")
            status, _, _ = request(http_port, "DELETE", gst_view,
                                   headers={"Authorization": f"Bearer {tokens['viewer']}"})
            check(status == 200, f"DELETE of the second WHEP viewer: 200 ({status})")
        left = (metric(http_port, "ringlane_sfu_whip_resources"), metric(http_port, "ringlane_sfu_whep_resources"))
        check(left == (0.0, 0.0), f"no WHIP/WHEP resources are left ({left})")
        check(server.poll() is None, "ringlane run still running")
    finally:
        for w in watchers:
            w.close()
        if gst and gst.poll() is None:
            gst.kill()
        stop(server, browser)
        kill_dataplane(dataplane)


def main():
    a = browser_test_args()
    return netns_main(a, __file__, "rl-whip", lambda tmp, logs: run(a, tmp, logs), timeout=225)


if __name__ == "__main__":
    sys.exit(main())
