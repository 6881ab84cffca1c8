// WHEP's answer to a viewer's offer (answer_subscribe) on real Chromium and GStreamer offers made
// receive-only, and the trickle ICE fragments of WHIP/WHEP PATCH requests (parse_ice_fragment).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "ringlane/controlplane/sdp/sdp.hpp"
#include "unit/controlplane/sdp_test_util.hpp"

namespace ringlane::control::sdp {
namespace {

using fixtures::corpus;
using fixtures::parse_ok;
using fixtures::replaced;

LocalIce local() {
  LocalIce l;
  l.ufrag = "sfuAbC12";
  l.pwd = "0123456789abcdefghijklmn";
  l.fingerprint =
      "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:A0:B1:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:7D:"
      "8E:9F";
  l.candidates = {{"192.0.2.10", 40000}};
  return l;
}

// What a WHEP player offers: Chromium's offer with its sections made recvonly (no SSRCs).
std::string chromium_viewer_offer() {
  std::string text = replaced(corpus("chromium_offer.sdp"), "a=sendrecv", "a=recvonly");
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl + 1 - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.rfind("a=ssrc", 0) != 0 && line.rfind("a=msid:", 0) != 0) {
      out += line;
    }
  }
  return out;
}

// As the orchestrator builds them (subscriber_codec() numbering, our SSRCs): what the room has.
OfferedTrack audio_track() {
  OfferedTrack t;
  t.kind = "audio";
  t.codec = *subscriber_codec(Codec{111, "opus", 48000, 2, "minptime=10;useinbandfec=1", {}, {}});
  t.ssrc = 1001;
  t.cname = t.msid_stream = "alice";
  t.msid_track = "TR_a";
  t.extensions = {Extension{1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level", {}}};
  return t;
}

OfferedTrack video_track(const std::string& name = "VP8", const std::string& fmtp = "") {
  OfferedTrack t;
  t.kind = "video";
  t.codec = *subscriber_codec(Codec{100, name, 90000, 0, fmtp, {}, {}});
  t.rtx_pt = subscriber_rtx_pt(name);
  t.ssrc = 2001;
  t.rtx_ssrc = 2002;
  t.cname = t.msid_stream = "alice";
  t.msid_track = "TR_v";
  t.extensions = {Extension{13, "urn:3gpp:video-orientation", {}}};
  return t;
}

ViewAnswer answer_ok(const std::string& offer, const std::vector<OfferedTrack>& tracks) {
  ParseError e;
  auto a = answer_subscribe(parse_ok(offer), tracks, local(), e);
  EXPECT_TRUE(a.has_value()) << e.reason;
  return a ? *a : ViewAnswer{};
}

TEST(SdpWhep, AnswersChromiumInItsOwnNumbering) {
  // Video first in the list: each section still gets a track of its own kind.
  ViewAnswer a = answer_ok(chromium_viewer_offer(), {video_track(), audio_track()});
  ASSERT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(a.sent[0].first, 1u);  // the audio section (mid 0) sends tracks[1]
  EXPECT_EQ(a.sent[1].first, 0u);
  const OfferedTrack& audio = a.sent[0].second;
  const OfferedTrack& video = a.sent[1].second;
  EXPECT_EQ(audio.mid, "0");
  EXPECT_EQ(audio.codec.pt, 111);
  EXPECT_EQ(video.mid, "1");
  // Chromium numbers VP8 96 and its rtx 97 (apt=96), as the offer says.
  EXPECT_EQ(video.codec.pt, 96);
  EXPECT_EQ(video.rtx_pt, std::optional<std::uint8_t>(97));
  EXPECT_EQ(video.rtx_ssrc, 2002u);
  EXPECT_EQ(video.codec.rtcp_fb,
            (std::vector<std::string>{"transport-cc", "ccm fir", "nack", "nack pli"}));
  ASSERT_EQ(audio.extensions.size(), 1u);
  EXPECT_EQ(audio.extensions[0].id, 1);
  ASSERT_EQ(video.extensions.size(), 1u);
  EXPECT_EQ(video.extensions[0].id, 13);
  EXPECT_EQ(a.remote_setup, "active");  // it offered actpass: we answered passive
  EXPECT_EQ(a.remote_ufrag, "Kp2V");
  EXPECT_EQ(a.remote_fingerprint.substr(0, 5), "3C:4A");

  // The text parses back: both sections sendonly in the offer's mids and PTs, the data channel
  // rejected, one BUNDLE group, our SSRCs and msid.
  Session s = parse_ok(a.sdp);
  ASSERT_EQ(s.media.size(), 3u);
  EXPECT_TRUE(s.ice_lite);
  EXPECT_EQ(s.bundle, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(s.media[0].direction, "sendonly");
  EXPECT_EQ(s.media[0].formats, (std::vector<std::string>{"111"}));
  EXPECT_FALSE(s.media[0].rtcp_rsize);  // Chromium offers reduced-size RTCP on video only
  EXPECT_EQ(s.media[1].direction, "sendonly");
  EXPECT_EQ(s.media[1].formats, (std::vector<std::string>{"96", "97"}));
  EXPECT_TRUE(s.media[1].rtcp_rsize);
  EXPECT_EQ(s.media[1].ssrcs, (std::vector<std::uint32_t>{2001, 2002}));
  EXPECT_EQ(s.media[1].msid_stream, "alice");
  EXPECT_EQ(s.media[1].setup, "passive");
  EXPECT_EQ(s.media[2].port, 0);
  EXPECT_EQ(s.media[2].kind, "application");
}

TEST(SdpWhep, TakesTheFirstTrackOfEachKindInOrder) {
  OfferedTrack newer = video_track();
  newer.ssrc = 3001;
  ViewAnswer a = answer_ok(chromium_viewer_offer(), {newer, video_track(), audio_track()});
  ASSERT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(a.sent[1].first, 0u);
  EXPECT_EQ(a.sent[1].second.ssrc, 3001u);
}

TEST(SdpWhep, GStreamerNumbersAndNoRtx) {
  // GStreamer offers OPUS 97 and VP8 96 without rtx: the answer follows, without rtx.
  std::string offer = replaced(corpus("gstreamer_offer.sdp"), "a=sendrecv", "a=recvonly");
  ViewAnswer a = answer_ok(offer, {audio_track(), video_track()});
  ASSERT_EQ(a.sent.size(), 2u);
  EXPECT_EQ(a.sent[0].second.mid, "video0");
  EXPECT_EQ(a.sent[0].second.codec.pt, 96);
  EXPECT_FALSE(a.sent[0].second.rtx_pt);
  EXPECT_EQ(a.sent[0].second.rtx_ssrc, 0u);
  EXPECT_EQ(a.sent[1].second.mid, "audio1");
  EXPECT_EQ(a.sent[1].second.codec.pt, 97);
  EXPECT_TRUE(a.sent[1].second.extensions.empty());  // it offered none
  Session s = parse_ok(a.sdp);
  EXPECT_EQ(s.media[0].formats, (std::vector<std::string>{"96"}));
  EXPECT_EQ(s.media[0].ssrcs, (std::vector<std::uint32_t>{2001}));
}

TEST(SdpWhep, SectionsWithoutATrackAreRejected) {
  // Only audio in the room: the video section is rejected, out of the group.
  ViewAnswer a = answer_ok(chromium_viewer_offer(), {audio_track()});
  ASSERT_EQ(a.sent.size(), 1u);
  Session s = parse_ok(a.sdp);
  EXPECT_EQ(s.media[1].port, 0);
  EXPECT_EQ(s.media[1].direction, "inactive");
  EXPECT_EQ(s.bundle, (std::vector<std::string>{"0"}));
  // A codec the viewer does not offer (H264 with another profile), or a section that sends:
  // nothing to answer with.
  OfferedTrack high = video_track("H264", "packetization-mode=1;profile-level-id=640c1f");
  EXPECT_TRUE(answer_ok(chromium_viewer_offer(), {high}).sent.empty());
  EXPECT_TRUE(answer_ok(corpus("chromium_offer.sdp"), {audio_track()}).sent.size() == 1);
  std::string sending = replaced(chromium_viewer_offer(), "a=recvonly", "a=sendonly");
  EXPECT_TRUE(answer_ok(sending, {audio_track(), video_track()}).sent.empty());
}

TEST(SdpWhep, CodecParametersMustAgree) {
  // Chromium offers H264 42e01f with packetization-mode 1 (and 0): the first matching PT wins.
  OfferedTrack h264 = video_track("H264",
                                  "level-asymmetry-allowed=1;packetization-mode=1;"
                                  "profile-level-id=42e01f");
  ViewAnswer a = answer_ok(chromium_viewer_offer(), {h264});
  ASSERT_EQ(a.sent.size(), 1u);
  Session offer = parse_ok(chromium_viewer_offer());
  const Codec* offered = nullptr;
  for (const Codec& c : offer.media[1].codecs) {
    if (c.pt == a.sent[0].second.codec.pt) {
      offered = &c;
    }
  }
  ASSERT_NE(offered, nullptr);
  EXPECT_EQ(offered->name, "H264");
  EXPECT_EQ(fmtp_parameter(offered->fmtp, "packetization-mode"),
            std::optional<std::string_view>("1"));
  EXPECT_EQ(fmtp_parameter(offered->fmtp, "profile-level-id")->substr(0, 4), "42e0");
  // VP9 profile 2 is not profile 0.
  OfferedTrack vp9 = video_track("VP9", "profile-id=0");
  std::string offer_p2 = replaced(chromium_viewer_offer(), "profile-id=0", "profile-id=2");
  EXPECT_TRUE(answer_ok(offer_p2, {vp9}).sent.empty());
}

TEST(SdpWhep, DtlsRoleFollowsTheOffer) {
  std::string passive = replaced(chromium_viewer_offer(), "a=setup:actpass", "a=setup:passive");
  ViewAnswer a = answer_ok(passive, {audio_track(), video_track()});
  EXPECT_EQ(a.remote_setup, "passive");  // we connect (DTLS client)
  EXPECT_EQ(parse_ok(a.sdp).media[0].setup, "active");
}

TEST(SdpWhep, TransportProblemsNameTheLine) {
  ParseError e;
  std::string no_mux = replaced(chromium_viewer_offer(), "a=rtcp-mux\r\n", "");
  EXPECT_FALSE(answer_subscribe(parse_ok(no_mux), {audio_track()}, local(), e));
  EXPECT_EQ(e.line, 8u);
  EXPECT_EQ(e.reason,
            "line 8: the audio m-section (mid 0) has no a=rtcp-mux; RTP and RTCP must share one "
            "port (RFC 5761)");
  std::string unbundled =
      replaced(chromium_viewer_offer(), "a=group:BUNDLE 0 1 2", "a=group:BUNDLE 0");
  EXPECT_FALSE(answer_subscribe(parse_ok(unbundled), {audio_track(), video_track()}, local(), e));
  EXPECT_NE(e.reason.find("is not in the offer's a=group:BUNDLE"), std::string::npos);
  std::string no_mid = replaced(chromium_viewer_offer(), "a=mid:0\r\n", "");
  EXPECT_FALSE(answer_subscribe(parse_ok(no_mid), {audio_track()}, local(), e));
  EXPECT_EQ(e.reason, "line 8: the audio m-section has no a=mid");
  LocalIce bad = local();
  bad.fingerprint = "nope";
  EXPECT_FALSE(answer_subscribe(parse_ok(chromium_viewer_offer()), {audio_track()}, bad, e));
  EXPECT_EQ(e.line, 0u);
}

TEST(SdpIceFragment, TrickleAndRestart) {
  ParseError e;
  // RFC 8840 §9 / RFC 9725 §4.3.1: what a WHIP client PATCHes.
  auto f = parse_ice_fragment(
      "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\n"
      "a=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 "
      "ufrag EsAw network-id 1\r\na=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ "
      "host generation 0 ufrag EsAw network-id 2\r\na=end-of-candidates\r\n",
      e);
  ASSERT_TRUE(f) << e.reason;
  EXPECT_EQ(f->ufrag, "EsAw");
  EXPECT_EQ(f->pwd, "P2uYro0UCOQ4zxjKXaWCBui1");
  EXPECT_EQ(f->candidates, 2u);
  EXPECT_TRUE(f->end_of_candidates);
  // LF line ends, candidates only.
  f = parse_ice_fragment("a=candidate:1 1 udp 1 203.0.113.9 5000 typ host\n", e);
  ASSERT_TRUE(f) << e.reason;
  EXPECT_TRUE(f->ufrag.empty());
}

TEST(SdpIceFragment, MalformedNamesTheLine) {
  ParseError e;
  EXPECT_FALSE(parse_ice_fragment("a=ice-ufrag:EsAw\r\na=ice-pwd:short\r\n", e));
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(e.reason, "line 2: a=ice-pwd: 'short' is not 22-256 ice-chars (RFC 8839 §5.4)");
  EXPECT_FALSE(parse_ice_fragment("a=mid:0\r\na=candidate:1 1 udp x 192.0.2.1 1 typ host\r\n", e));
  EXPECT_EQ(e.line, 2u);
  EXPECT_FALSE(parse_ice_fragment("hello\r\n", e));
  EXPECT_EQ(e.reason, "line 1: expected '<letter>=<value>', got 'hello'");
  EXPECT_FALSE(parse_ice_fragment("", e));
  EXPECT_EQ(e.reason, "empty SDP fragment");
  EXPECT_FALSE(parse_ice_fragment(std::string("a=mid:0\r\na=x\0y\r\n", 17), e));
  EXPECT_EQ(e.line, 2u);
  EXPECT_FALSE(parse_ice_fragment(std::string(70000, 'a'), e));
  EXPECT_EQ(e.line, 0u);
}

}  // namespace
}  // namespace ringlane::control::sdp
