#!/usr/bin/env python3
"""Opus RED (RFC 2198) through the SFU in real browsers: inside a network namespace whose only
interface is lo, one `ringlane run` and one headless Chromium (fake microphone and camera).

Debian 12's Chromium offers red/48000/2 (fmtp 111/111) beside Opus. Three pages join one room:
`pub` publishes; `keep` and `strip` only watch (?publish=0). `strip` has its browser drop the RED
format from every offer the server makes to it (munged before setRemoteDescription), so its
answer lacks RED and the SFU must strip RED for it (forward the primary block as Opus); `keep`
answers RED as offered and gets RED passed through. Checked from the SDP the pages hold and from
getStats() of every peer connection (wrapped as the page makes them):
  - the server's answer to `pub` lists RED first on the audio m-line (so Chromium sends RED);
  - the server offered RED to both watchers; `keep`'s answer has it, `strip`'s does not;
  - both watchers' inbound audio from `pub` rises (packetsReceived, totalSamplesReceived), with
    no packet lost and most samples decoded rather than concealed over the sampled interval (a
    watcher sent RED it had not negotiated would conceal everything);
  - `keep`'s packets carry the redundant block (about twice the payload bytes a packet of
    `strip`'s, which get the primary alone). Chromium's inbound-rtp codec is audio/opus on both
    (it names what NetEq decodes), so the payload size is what shows RED arrived.
Skips (77) when Chromium, chromedriver or `ip netns` is missing.

Usage: sfu_red_test.py --ringlane PATH [--io uring|mmsg]
"""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import FAILURES, check, free_port, wait_http  # noqa: E402
from webdriver import FAKE_MEDIA_FLAGS, Browser  # noqa: E402
from sfu_browser_test import (Pages, browser_test_args, free_port_pair, netns_main, start_node, stop,  # noqa: E402
                              wait_until)

# Installed before a page joins: every peer connection it makes is kept in window.__pcs (for
# getStats() of all of them), and with arguments[0] true, RED is removed from the offers the page
# is given (the server's offers to its subscriber connection); window.__offeredRed records
# whether the server's offer had it.
INSTALL = r"""
const strip = arguments[0];
const Original = window.RTCPeerConnection;
window.__pcs = [];
window.__offeredRed = false;
function Wrapped(...args) {
  const pc = new Original(...args);
  window.__pcs.push(pc);
  return pc;
}
Wrapped.prototype = Original.prototype;
Object.setPrototypeOf(Wrapped, Original);
window.RTCPeerConnection = Wrapped;
const setRemote = Original.prototype.setRemoteDescription;
Original.prototype.setRemoteDescription = function (desc, ...rest) {
  if (desc && desc.type === 'offer') {
    const red = /a=rtpmap:(\d+) red\/48000\/2/i.exec(desc.sdp)?.[1];
    if (red !== undefined) {
      window.__offeredRed = true;
      if (strip) {
        let sdp = desc.sdp.replace(new RegExp(`a=(rtpmap|fmtp|rtcp-fb):${red} [^\r\n]*\r\n`, 'g'), '');
        sdp = sdp.replace(/(m=audio [^\r\n]*)/g, (line) => line.split(' ').filter((f, i) => i < 3 || f !== red).join(' '));
        desc = { type: desc.type, sdp };
      }
    }
  }
  return setRemote.call(this, desc, ...rest);
};
return true;
"""

# The inbound audio of every peer connection of the page, from getStats().
INBOUND_AUDIO = r"""
return (async () => {
  const out = [];
  for (const pc of window.__pcs) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    for (const s of report.values()) {
      if (s.type !== 'inbound-rtp' || s.kind !== 'audio') continue;
      const codec = report.get(s.codecId);
      out.push({ ssrc: s.ssrc, packetsReceived: s.packetsReceived ?? 0, packetsLost: s.packetsLost ?? 0,
                 bytesReceived: s.bytesReceived ?? 0,
                 totalSamplesReceived: s.totalSamplesReceived ?? 0, concealedSamples: s.concealedSamples ?? 0,
                 mimeType: codec?.mimeType ?? null, payloadType: codec?.payloadType ?? null });
    }
  }
  return out;
})();
"""


def audio_formats(sdp):
    """The first audio m-line's format list and the encoding name of each, or ([], {})."""
    m = re.search(r"m=audio \d+ \S+ ([^\r\n]*)", sdp or "")
    if not m:
        return [], {}
    part = (sdp or "")[m.start():].split("\nm=", 1)[0]
    return m.group(1).split(), dict(re.findall(r"a=rtpmap:(\d+) ([^/\s]+)/", part))


def has_red(sdp):
    formats, names = audio_formats(sdp)
    return any(names.get(f, "").lower() == "red" for f in formats)


def run(a, tmp, log):
    http_port = free_port(socket.SOCK_STREAM)
    turn_port = free_port()
    media_port = free_port_pair()
    server = start_node(a, tmp, f"sfu-red-{os.getpid()}", log, http_port, turn_port, media_port)
    browser = None
    try:
        check(wait_http(http_port), f"ringlane run answers HTTP on 127.0.0.1:{http_port} (io {a.io})")
        browser = Browser(FAKE_MEDIA_FLAGS + ["--window-size=800,600"])
        pages = Pages(browser)
        room = f"red-{os.getpid()}"
        for name, query, strip in (("keep", "&publish=0", False), ("strip", "&publish=0", True), ("pub", "", False)):
            pages.open(name, f"http://127.0.0.1:{http_port}/?room={room}&name={name}{query}")
            check(pages.run(name, INSTALL, strip), f"{name}: peer connections recorded (strip RED: {strip})")
            pages.run(name, "document.getElementById('join').click()")
        s = wait_until(lambda: pages.published("pub"), 30) or pages.state("pub") or {}
        check(s.get("publisher") == "connected" and not s.get("errors"),
              f"pub publishes (publisher {s.get('publisher')}, errors {s.get('errors')})")
        if FAILURES:
            return
        offer_text = pages.run("pub", "return window.ringlaneTest.descriptions()")["publisher"]
        offered, offered_names = audio_formats(offer_text["local"])
        answered, answered_names = audio_formats(offer_text["remote"])
        check(has_red(offer_text["local"]),
              f"Chromium offers RED ({[(f, offered_names.get(f)) for f in offered]})")
        check(bool(answered) and answered_names.get(answered[0], "").lower() == "red"
              and any(answered_names.get(f, "").lower() == "opus" for f in answered),
              f"the server's answer to pub lists RED first, then Opus ({[(f, answered_names.get(f)) for f in answered]})")

        def sample(name):
            return pages.run(name, INBOUND_AUDIO)

        def flowing():
            first = {n: sample(n) for n in ("keep", "strip")}
            time.sleep(2.0)  # the sampling interval; the proof is the counters across it
            second = {n: sample(n) for n in ("keep", "strip")}
            return first, second

        deadline = time.time() + 30
        while True:
            first, second = flowing()
            ok = all(len(second[n]) == 1 and len(first[n]) == 1
                     and second[n][0]["totalSamplesReceived"] > first[n][0]["totalSamplesReceived"] > 0
                     for n in ("keep", "strip"))
            if ok or time.time() > deadline:
                break
        for n in ("keep", "strip"):
            sdp = pages.run(n, "return window.ringlaneTest.descriptions()")["subscriber"]
            check(pages.run(n, "return window.__offeredRed"), f"{n}: the server's offer to it has RED")
            want = n == "keep"
            check(has_red(sdp["local"]) == want,
                  f"{n}: its answer {'keeps' if want else 'lacks'} RED ({audio_formats(sdp['local'])})")
            check(len(first[n]) == 1 and len(second[n]) == 1,
                  f"{n}: receives one audio stream ({second[n]})")
            if len(first[n]) != 1 or len(second[n]) != 1:
                continue
            x, y = first[n][0], second[n][0]
            samples = y["totalSamplesReceived"] - x["totalSamplesReceived"]
            concealed = y["concealedSamples"] - x["concealedSamples"]
            check(y["packetsReceived"] > x["packetsReceived"] > 0 and samples > 0,
                  f"{n}: pub's audio arrives and is played out (packets {x['packetsReceived']} -> "
                  f"{y['packetsReceived']}, samples +{samples})")
            check(concealed * 2 < samples,
                  f"{n}: most of those samples are decoded, not concealed (+{concealed} of +{samples})")
            check(y["packetsLost"] == 0, f"{n}: no audio packet lost ({y['packetsLost']})")
            print(f"{n}: inbound audio codec {y['mimeType']} pt {y['payloadType']}, "
                  f"{(y['bytesReceived'] - x['bytesReceived']) / max(1, y['packetsReceived'] - x['packetsReceived']):.1f} "
                  "payload bytes a packet")
        # Chromium's inbound-rtp names the codec NetEq decoded (Opus, RED's inner encoding) on
        # both watchers; what tells them apart is the payload: RED carries the previous frame
        # again (RFC 2198), so `keep`'s packets are about twice the size of `strip`'s, which get
        # the primary block alone. Same publisher stream, same interval.
        if all(len(first[n]) == 1 and len(second[n]) == 1 for n in ("keep", "strip")):
            def per_packet(n):
                x, y = first[n][0], second[n][0]
                return (y["bytesReceived"] - x["bytesReceived"]) / max(1, y["packetsReceived"] - x["packetsReceived"])
            keep, strip = per_packet("keep"), per_packet("strip")
            check(strip > 0 and keep > 1.5 * strip,
                  f"keep gets RED (its packets carry a redundant block: {keep:.1f} payload bytes a packet), "
                  f"strip the primary alone ({strip:.1f})")
            check((second["strip"][0]["mimeType"] or "").lower() == "audio/opus",
                  f"strip decodes Opus ({second['strip'][0]['mimeType']})")
        check(server.poll() is None, "ringlane run still running")
    finally:
        stop(server, browser)


def main():
    a = browser_test_args()

    def go(tmp, logs):
        logs.append(os.path.join(tmp, "ringlane.log"))
        run(a, tmp, logs[0])

    return netns_main(a, __file__, "rl-red", go)


if __name__ == "__main__":
    sys.exit(main())
