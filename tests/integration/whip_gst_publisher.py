#!/usr/bin/python3
"""A WHIP client around GStreamer's webrtcbin (PyGObject), for whip_test.py: publishes a test
pattern (videotestsrc ! vp8enc) and a tone (audiotestsrc ! opusenc) to a WHIP endpoint with
urllib, until --seconds pass or SIGTERM/SIGINT, then DELETEs its resource. Debian 12's
simple-whip-client aborts at start as packaged (libsoup2 against libsoup3), hence this script.

It prints one JSON object a line, for the caller to follow:
  {"event": "posted", "status": 201, "location": ..., "etag": ..., "link": [...]}
  {"event": "ice", "state": "connected"}   (each ICE connection state change)
  {"event": "deleted", "status": 200}
  {"event": "error", "message": ...}        (and exit code 1)

libnice gathers no candidate on an interface flagged loopback: run it where the host has another
interface (whip_test.py gives it a veth address in a network namespace of its own).

Usage: whip_gst_publisher.py --url http://HOST:PORT/whip/ROOM --token JWT [--seconds N]
Needs python3-gi, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-plugins-{base,good,bad},
gstreamer1.0-nice.
"""
import argparse
import json
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

PIPELINE = """
webrtcbin name=send bundle-policy=max-bundle
videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1
  ! videoconvert ! vp8enc deadline=1 cpu-used=8 keyframe-max-dist=150 target-bitrate=300000
  ! rtpvp8pay pt=96 ! application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000
  ! send.
audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! opusenc
  ! rtpopuspay pt=97 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=97,clock-rate=48000
  ! send.
"""


def say(**event):
    print(json.dumps(event), flush=True)


class Publisher:
    def __init__(self, url, token):
        self.url = url
        self.token = token
        self.location = None
        self.code = 0
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(PIPELINE)
        self.webrtc = self.pipe.get_by_name("send")
        # RFC 7675: a WebRTC server (ringlane's data plane) ends a session after 30 s without a
        # valid ICE check. libnice's keepalives are binding indications, which prove nothing;
        # with keepalive-conncheck they are binding requests (every 25 s), which refresh
        # consent. (consent-freshness, every ~5 s, is a construct-only property webrtcbin does
        # not set.)
        # Both objects stay referenced here: PyGObject would otherwise drop a reference it did
        # not take, and free webrtcbin's agent.
        self.ice = self.webrtc.get_property("ice-agent")
        self.nice = self.ice.get_property("agent")
        self.nice.set_property("keepalive-conncheck", True)
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::ice-connection-state", self.on_ice)
        self.offered = False
        self.negotiating = False
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    def run(self, seconds):
        # A WHIP client only sends: every transceiver sendonly (RFC 9725 §4.2).
        self.pipe.set_state(Gst.State.READY)
        i = 0
        while True:
            t = self.webrtc.emit("get-transceiver", i)
            if t is None:
                break
            t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            i += 1
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add_seconds(seconds, self.stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self.stop)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return self.code

    def fail(self, message):
        say(event="error", message=message)
        self.code = 1
        self.loop.quit()

    def on_error(self, _bus, msg):
        err, debug = msg.parse_error()
        self.fail(f"{err.message} ({debug})")

    def on_negotiation_needed(self, element):
        # WHIP negotiates once (no renegotiation, RFC 9725 §4.2): one offer, however many times
        # webrtcbin asks.
        if self.negotiating:
            return
        self.negotiating = True
        promise = Gst.Promise.new_with_change_func(self.on_offer, element, None)
        element.emit("create-offer", None, promise)

    def on_offer(self, promise, element, _):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if offer is None:
            self.fail(f"create-offer failed: {reply.to_string() if reply is not None else 'no reply'}")
            return
        element.emit("set-local-description", offer, Gst.Promise.new())
        # The server is ICE-lite and learns our address from our checks: the offer need not wait
        # for candidates, but it is sent once gathering is done so that it carries them.
        GLib.timeout_add_seconds(3, self.post)

    def on_gathering(self, element, _):
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(self.post)

    def on_ice(self, element, _):
        state = element.get_property("ice-connection-state")
        say(event="ice", state=state.value_nick)

    def post(self):
        if self.offered:
            return False
        self.offered = True
        local = self.webrtc.get_property("local-description")
        if local is None:
            self.fail("webrtcbin has no local description to offer")
            return False
        sdp = local.sdp.as_text()
        req = urllib.request.Request(self.url, data=sdp.encode(), method="POST", headers={
            "Content-Type": "application/sdp", "Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, headers, body = r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            self.fail(f"POST {self.url}: {e.code} {e.read().decode(errors='replace')}")
            return False
        except OSError as e:
            self.fail(f"POST {self.url}: {e}")
            return False
        self.location = urllib.parse.urljoin(self.url, headers.get("Location") or "")
        say(event="posted", status=status, location=headers.get("Location"), etag=headers.get("ETag"),
            link=headers.get_all("Link") or [])
        ok, message = GstSdp.SDPMessage.new_from_text(body)
        if ok != GstSdp.SDPResult.OK:
            self.fail("the answer does not parse as SDP")
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, message)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        return False

    def stop(self):
        if self.location:
            req = urllib.request.Request(self.location, method="DELETE",
                                         headers={"Authorization": "Bearer " + self.token})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    say(event="deleted", status=r.status)
            except urllib.error.HTTPError as e:
                say(event="deleted", status=e.code)
            except OSError as e:
                say(event="error", message=f"DELETE: {e}")
        self.loop.quit()
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    a = ap.parse_args()
    Gst.init(None)
    for element in ("webrtcbin", "vp8enc", "opusenc", "nicesrc", "videotestsrc", "audiotestsrc"):
        if Gst.ElementFactory.find(element) is None:
            say(event="error", message=f"GStreamer element {element} is missing")
            return 77
    return Publisher(a.url, a.token).run(a.seconds)


if __name__ == "__main__":
    sys.exit(main())
