#!/usr/bin/env python3
"""Every codec the SFU passes through, end to end in real browsers: inside a network namespace
whose only interface is lo, one `ringlane run` and one headless Chromium (fake camera and
microphone).

One round per codec, in turn: the browser's default (VP8), VP9 (profile 0), H264
(packetization-mode 1; one page publishes the profile-level-id Chromium lists first, 42001f
here, the other 42e01f) and AV1. Two windows of the demo page join a room of their own with
?video_codec=<codec> (the browser client's videoCodec option: setCodecPreferences on the publish
transceiver), publish and receive each other. Checked on both pages, from getStats()
(window.ringlaneTest.stats()) and the SDP the browser holds (window.ringlaneTest.descriptions()):
  - the publisher's outbound video uses the codec; the server's answer to its publish accepted
    that codec alone (H264: the first packetization-mode=1 format, as offered), and the server's
    offer to its subscriber connection carries that codec;
  - it receives the other page's video in the codec and bitstream parameters (profile-id,
    profile, packetization-mode, profile-level-id) the other page sends: no transcoding; its
    framesDecoded rises;
  - it receives the other page's audio as audio/opus, packetsReceived rising; the answer to its
    publish keeps useinbandfec=1; one page of each pair offers usedtx=1 (its offer's Opus fmtp
    munged between createOffer and setLocalDescription, which Chromium accepts) and its answer
    keeps that too, while the other page offers no DTX and its answer adds none.
Then one room with a page per codec: every page's subscriber connection carries the three other
codecs at once, each decoded and each as its publisher sends it.

Chromium here encodes VP9 with libvpx, H264 with OpenH264 (Debian's chromium depends on
libopenh264-7) and AV1 with libaom, all in software, headless. A codec the browser cannot send
(RTCRtpSender.getCapabilities) fails its round with that reason; it is not skipped.
Skips (77) when Chromium, chromedriver or `ip netns` is missing.

Usage: sfu_codecs_test.py --ringlane PATH [--io uring|mmsg]
"""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, check, free_port, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402
from sfu_browser_test import (Pages, browser_test_args, free_port_pair, netns_main, start_node, stop,  # noqa: E402
                              wait_flowing, wait_until)

# (option given to the page, the mimeType expected on both ends). None: the browser's default.
CODECS = [(None, "video/VP8"), ("VP9", "video/VP9"), ("H264", "video/H264"), ("AV1", "video/AV1")]

# The fmtp parameters that change the bitstream: they must be the same at both ends.
BITSTREAM_PARAMS = ("profile-id", "profile", "packetization-mode", "profile-level-id")

# Installed in a page before it joins: Chromium's offers get usedtx=1 in their Opus fmtp, munged
# between createOffer and setLocalDescription as ringlane.js calls them (only offers change, not
# the subscriber's answers). RFC 7587 §6.1: usedtx says its author's decoder prefers DTX; an
# answer that keeps it asks the publisher's encoder for DTX (Chromium reads it from the remote
# description).
OFFER_DTX = r"""
const createOffer = RTCPeerConnection.prototype.createOffer;
RTCPeerConnection.prototype.createOffer = async function (...args) {
  const offer = await createOffer.apply(this, args);
  const pt = /a=rtpmap:(\d+) opus\/48000\/2/i.exec(offer.sdp)?.[1];
  if (pt === undefined) return offer;
  const sdp = offer.sdp.replace(new RegExp(`(a=fmtp:${pt} [^\r\n]*)`), '$1;usedtx=1');
  return { type: offer.type, sdp };
};
return true;
"""

# Installed in the second H264 page: the browser lists its H264 formats with the constrained
# baseline profile (profile-level-id 42e01f, Firefox's first choice) before Chromium's first one
# (42001f), so the two pages of the H264 round publish two different profiles, each of which must
# reach the other page as it was offered.
SECOND_H264_PROFILE = "42e01f"
PREFER_PROFILE = r"""
const profile = arguments[0];
const getCapabilities = RTCRtpSender.getCapabilities;
const first = (c) => (/profile-level-id=([0-9a-f]{6})/i.exec(c.sdpFmtpLine ?? '')?.[1] === profile ? 0 : 1);
RTCRtpSender.getCapabilities = function (kind) {
  const caps = getCapabilities.call(this, kind);
  if (kind === 'video') caps.codecs.sort((x, y) => first(x) - first(y));
  return caps;
};
return true;
"""



def sent_video_codec(outbound):
    """The codec a page sends its video with: that of the encoding (one, or a simulcast layer:
    they share it) that encoded the most frames; {} when none has one."""
    coded = [o for o in outbound if o.get("codec")]
    return max(coded, key=lambda o: o["framesEncoded"])["codec"] if coded else {}

def fmtp_params(line):
    """An fmtp line's parameters as a dict (names lower-cased)."""
    out = {}
    for part in (line or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name.lower()] = value
    return out


def sections(sdp):
    """The m-sections of an SDP: [(kind, {pt: (encoding name, fmtp dict)})]."""
    out = []
    for part in re.split(r"\r?\nm=", sdp or "")[1:]:
        formats = {}
        for pt, name in re.findall(r"a=rtpmap:(\d+) ([^/\s]+)/", part):
            fmtp = re.search(rf"a=fmtp:{pt} ([^\r\n]*)", part)
            formats[pt] = (name, fmtp_params(fmtp.group(1) if fmtp else ""))
        out.append((part.split(" ", 1)[0], formats))
    return out


def opus_fmtp(sdp):
    """The Opus fmtp parameters of the SDP's first audio section, or None."""
    for kind, formats in sections(sdp):
        if kind == "audio":
            for name, fmtp in formats.values():
                if name.lower() == "opus":
                    return fmtp
    return None


def video_formats(sdp):
    """The encoding names (rtx aside) of every video section of the SDP, in order."""
    return [sorted({n for n, _ in f.values() if n.lower() != "rtx"}) for k, f in sections(sdp) if k == "video"]


def bitstream(codec):
    """The bitstream-defining fmtp parameters of a getStats() codec entry."""
    params = fmtp_params((codec or {}).get("sdpFmtpLine"))
    return {k: params[k] for k in BITSTREAM_PARAMS if k in params}


def one_round(pages, http_port, option, mime, tag):
    """Two pages publish `option` to each other in a room of their own and check it end to end."""
    name = mime.split("/")[1]
    a, b = f"{name.lower()}-a", f"{name.lower()}-b"
    room = f"codec-{name.lower()}-{tag}"
    query = f"&video_codec={option}" if option else ""
    for n in (a, b):
        pages.open(n, f"http://127.0.0.1:{http_port}/?room={room}&name={n}{query}")
    sendable = pages.run(a, "return RTCRtpSender.getCapabilities('video').codecs.map((c) => c.mimeType)")
    check(mime in sendable, f"{name}: Chromium can send {mime} here (its video codecs: {sorted(set(sendable))})")
    check(pages.run(a, OFFER_DTX), f"{name}: {a}'s offers will carry usedtx=1 in their Opus fmtp")
    if name == "H264":
        check(pages.run(b, PREFER_PROFILE, SECOND_H264_PROFILE),
              f"{name}: {b} lists profile-level-id={SECOND_H264_PROFILE} first")
    for n in (a, b):
        pages.run(n, "document.getElementById('join').click()")
    try:
        check_pair(pages, name, mime, room, a, b)
    finally:
        for n in (a, b):
            pages.run(n, "document.getElementById('leave').click()")
        for n in (a, b):
            check(wait_until(lambda n=n: not pages.state(n)["joined"], 5), f"{name}: {n} leaves")


def check_pair(pages, name, mime, room, a, b):
    """The checks of one round (the module docstring): `a` offered DTX, `b` did not."""
    before = len(FAILURES)
    for n in (a, b):
        s = wait_until(lambda n=n: pages.published(n), 30) or pages.state(n) or {}
        check(s.get("publisher") == "connected" and not s.get("errors"),
              f"{name}: {n} joined {room} and publishes (publisher {s.get('publisher')}, errors {s.get('errors')})")
    if len(FAILURES) > before:
        return

    why, last = wait_flowing(pages, {a: [b], b: [a]}, 30)
    check(not why, f"{name}: each page decodes the other's video and receives its audio ({why or 'all rising'})")
    for me, other in ((a, b), (b, a)):
        mine, theirs = last[me], last[other]
        sent = [o for o in mine["publisher"]["outbound"] if o["kind"] == "video"]
        their_sent = [o for o in theirs["publisher"]["outbound"] if o["kind"] == "video"]
        got = {r["kind"]: r for r in mine["remote"] if r["identity"] == other}
        sent_codec, their_codec = sent_video_codec(sent), sent_video_codec(their_sent)
        in_codec = got.get("video", {}).get("codec") or {}
        check(sent_codec.get("mimeType") == mime,
              f"{name}: {me}'s outbound video is {mime} ({sent_codec.get('mimeType')} "
              f"{sent_codec.get('sdpFmtpLine')}, encoded frames {[o['framesEncoded'] for o in sent]})")
        check(in_codec.get("mimeType") == mime == their_codec.get("mimeType")
              and bitstream(in_codec) == bitstream(their_codec),
              f"{name}: {me} receives {other}'s video as {other} sends it, no transcoding "
              f"(in {in_codec.get('mimeType')} {bitstream(in_codec)}, "
              f"sent {their_codec.get('mimeType')} {bitstream(their_codec)}), "
              f"frames decoded {got.get('video', {}).get('framesDecoded')}")
        audio = got.get("audio", {}).get("codec") or {}
        check(audio.get("mimeType", "").lower() == "audio/opus",
              f"{name}: {me} receives {other}'s audio as audio/opus ({audio.get('mimeType')} "
              f"{audio.get('sdpFmtpLine')}, packets {got.get('audio', {}).get('packetsReceived')})")

        sdp = pages.run(me, "return window.ringlaneTest.descriptions()")
        offer, answer = sdp["publisher"]["local"], sdp["publisher"]["remote"]
        offered, answered = opus_fmtp(offer) or {}, opus_fmtp(answer) or {}
        check(answered.get("useinbandfec") == "1",
              f"{name}: the server's answer to {me}'s publish keeps Opus in-band FEC ({answered})")
        if me == a:
            check(offered.get("usedtx") == "1" and answered.get("usedtx") == "1",
                  f"{name}: {me} offered usedtx=1 and the answer keeps DTX (offer {offered}, answer {answered})")
        else:
            check("usedtx" not in offered and "usedtx" not in answered,
                  f"{name}: {me} offered no DTX and the answer adds none (offer {offered}, answer {answered})")
        want = [[mime.split("/")[1]]]
        check(video_formats(answer) == want,
              f"{name}: the answer to {me}'s publish accepts {mime} alone ({video_formats(answer)})")
        if name == "H264":
            def h264(sdp):
                return [f for k, fs in sections(sdp) if k == "video" for n, f in fs.values() if n == "H264"]
            offered_h264 = [f for f in h264(offer) if f.get("packetization-mode") == "1"]
            first = offered_h264[0].get("profile-level-id") if offered_h264 else None
            check(h264(answer) == offered_h264[:1] and first
                  and (me == a or first == SECOND_H264_PROFILE),
                  f"{name}: the answer to {me}'s publish takes its first packetization-mode=1 format "
                  f"as offered (profile-level-id {first}; answer {h264(answer)})")
            check(bitstream(sent_codec).get("profile-level-id") == first,
                  f"{name}: {me} sends the profile it offered first ({sent_codec.get('sdpFmtpLine')})")
        check(video_formats(sdp["subscriber"]["remote"]) == want,
              f"{name}: the server's offer to {me}'s subscriber sends {mime} "
              f"({video_formats(sdp['subscriber']['remote'])})")


def mixed_round(pages, http_port, tag):
    """One page per codec in one room: every page's subscriber connection carries the three other
    codecs at once (one BUNDLE group, the SFU's fixed payload type per codec), each as its
    publisher sends it."""
    room = f"codec-mixed-{tag}"
    names = {f"mix-{mime.split('/')[1].lower()}": (option, mime) for option, mime in CODECS}
    for n, (option, _) in names.items():
        query = f"&video_codec={option}" if option else ""
        pages.open(n, f"http://127.0.0.1:{http_port}/?room={room}&name={n}&autojoin=1{query}")
    try:
        before = len(FAILURES)
        for n in names:
            s = wait_until(lambda n=n: pages.published(n), 30) or pages.state(n) or {}
            check(s.get("publisher") == "connected" and not s.get("errors"),
                  f"mixed: {n} joined {room} and publishes "
                  f"(publisher {s.get('publisher')}, errors {s.get('errors')})")
        if len(FAILURES) > before:
            return
        everyone = {n: [m for m in names if m != n] for n in names}
        why, last = wait_flowing(pages, everyone, 40)
        check(not why, f"mixed: each of the {len(names)} pages decodes the {len(names) - 1} others' video "
                       f"and receives their audio ({why or 'all rising'})")
        sent = {}
        for n in names:
            sent[n] = sent_video_codec([o for o in last[n]["publisher"]["outbound"] if o["kind"] == "video"])
        for n in names:
            got = {r["identity"]: r.get("codec") or {} for r in last[n]["remote"] if r["kind"] == "video"}
            ok = all(got.get(m, {}).get("mimeType") == names[m][1] == sent[m].get("mimeType")
                     and bitstream(got[m]) == bitstream(sent[m]) for m in everyone[n])
            seen = ", ".join(f"{m} {got.get(m, {}).get('mimeType')} {bitstream(got.get(m))}" for m in everyone[n])
            check(ok, f"mixed: {n} receives each other page's video in the codec it sends ({seen})")
    finally:
        for n in names:
            pages.run(n, "document.getElementById('leave').click()")


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    turn_port = free_port()
    media_port = free_port_pair()
    server = start_node(a, tmp, f"sfu-codecs-{os.getpid()}", log, http_port, turn_port, media_port)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port} (io {a.io})")
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=800,600"])
        pages = Pages(browser)
        for option, mime in CODECS:
            one_round(pages, http_port, option, mime, os.getpid())
        mixed_round(pages, http_port, os.getpid())
        check(server.poll() is None, "ringlane run still running")
    finally:
        stop(server, browser)


def main():
    a = browser_test_args()

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        run(a, tmp, logs[0])

    return netns_main(a, __file__, "rl-codecs", go)


if __name__ == "__main__":
    sys.exit(main())
