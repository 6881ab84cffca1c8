// RFC 2198 RED over Opus in the SFU's SDP: answered first to a publisher that offers it (so
// libwebrtc sends RED), offered to subscribers after Opus, and read back from their answers (RED
// where the answer kept it, plain Opus where it did not); WHEP viewers get RED when their offer
// has it. REMB (goog-remb) is answered only to a publisher without transport-cc.
#include <gtest/gtest.h>

#include <algorithm>
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

const std::string kFingerprint =
    "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:A0:B1:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:7D:"
    "8E:9F";

LocalIce local() {
  LocalIce l;
  l.ufrag = "sfuAbC12";
  l.pwd = "0123456789abcdefghijklmn";
  l.fingerprint = kFingerprint;
  l.candidates = {{"192.0.2.10", 40000}};
  return l;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

PublishAnswer answer_ok(const std::string& offer) {
  ParseError e;
  auto a = answer_publish(parse_ok(offer), local(), e);
  EXPECT_TRUE(a.has_value()) << e.reason;
  return a ? *a : PublishAnswer{};
}

TEST(SdpRed, ChromiumOfferIsAnsweredRedFirst) {
  PublishAnswer a = answer_ok(corpus("chromium_audio_only_lf.sdp"));
  ASSERT_EQ(a.tracks.size(), 1u);
  EXPECT_EQ(a.tracks[0].codec.pt, 111);
  EXPECT_EQ(a.tracks[0].red_pt, std::optional<std::uint8_t>(63));
  // libwebrtc sends RED only when it precedes Opus in the answer.
  EXPECT_TRUE(contains(a.sdp, "m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n")) << a.sdp;
  EXPECT_TRUE(contains(a.sdp, "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n")) << a.sdp;
  Session back = parse_ok(a.sdp);
  ASSERT_EQ(back.media.size(), 1u);
  ASSERT_EQ(back.media[0].codecs.size(), 2u);
  EXPECT_EQ(back.media[0].codecs[0].name, "red");
  EXPECT_EQ(back.media[0].codecs[0].fmtp, "111/111");
  EXPECT_EQ(back.media[0].codecs[1].name, "opus");
}

TEST(SdpRed, RedOfAnotherCodecIsNotAnswered) {
  // RFC 2198 §5: the fmtp names the redundant encodings; RED over telephone-event is not ours.
  PublishAnswer a = answer_ok(
      replaced(corpus("chromium_audio_only_lf.sdp"), "a=fmtp:63 111/111", "a=fmtp:63 110/111"));
  ASSERT_EQ(a.tracks.size(), 1u);
  EXPECT_FALSE(a.tracks[0].red_pt);
  EXPECT_TRUE(contains(a.sdp, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")) << a.sdp;
  EXPECT_FALSE(contains(a.sdp, "red/48000"));
}

TEST(SdpRed, OfferWithoutRedGetsOpusOnly) {
  PublishAnswer a = answer_ok(corpus("gstreamer_offer.sdp"));
  for (const PublishedTrack& t : a.tracks) {
    EXPECT_FALSE(t.red_pt);
  }
  EXPECT_FALSE(contains(a.sdp, "red/48000"));
}

OfferedTrack red_audio() {
  OfferedTrack t;
  t.mid = "0";
  t.kind = "audio";
  t.codec = *subscriber_codec(Codec{111, "opus", 48000, 2, "minptime=10;useinbandfec=1", {}, {}});
  t.red_pt = kSubscriberRedPt;
  t.ssrc = 1001;
  t.cname = t.msid_stream = "alice";
  t.msid_track = "TR_a";
  return t;
}

std::string subscriber_answer(const std::string& formats, const std::string& red_lines) {
  return "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
         "m=audio 9 UDP/TLS/RTP/SAVPF " +
         formats +
         "\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:cliX\r\na=ice-pwd:clientpassword0123456789\r\n"
         "a=fingerprint:sha-256 " +
         kFingerprint +
         "\r\na=setup:active\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n"
         "a=rtpmap:111 opus/48000/2\r\n" +
         red_lines;
}

TEST(SdpRed, SubscriberOfferAndAnswers) {
  std::vector<OfferedTrack> offered = {red_audio()};
  std::string offer = offer_subscribe(offered, local(), 1, "5");
  EXPECT_TRUE(contains(offer, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n")) << offer;
  EXPECT_TRUE(contains(offer, "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n")) << offer;
  Session parsed = parse_ok(offer);
  ASSERT_EQ(parsed.media[0].codecs.size(), 2u);

  ParseError e;
  auto kept = read_subscribe_answer(
      parse_ok(subscriber_answer("111 63", "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n")),
      offered, e);
  ASSERT_TRUE(kept) << e.reason;
  EXPECT_EQ(kept->accepted_mids, (std::vector<std::string>{"0"}));
  EXPECT_EQ(kept->red_mids, (std::vector<std::string>{"0"}));

  auto dropped = read_subscribe_answer(parse_ok(subscriber_answer("111", "")), offered, e);
  ASSERT_TRUE(dropped) << e.reason;
  EXPECT_EQ(dropped->accepted_mids, (std::vector<std::string>{"0"}));
  EXPECT_TRUE(dropped->red_mids.empty());

  // A track without RED offers none, and an answer's stray red format does not turn it on.
  offered[0].red_pt.reset();
  EXPECT_FALSE(contains(offer_subscribe(offered, local(), 2, "5"), "red/48000"));
  auto stray = read_subscribe_answer(
      parse_ok(subscriber_answer("111 63", "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n")),
      offered, e);
  ASSERT_TRUE(stray) << e.reason;
  EXPECT_TRUE(stray->red_mids.empty());
}

TEST(SdpRed, WhepViewerGetsRedOnlyWhenItOffersIt) {
  std::string viewer =
      replaced(corpus("chromium_audio_only_lf.sdp"), "a=sendonly\n", "a=recvonly\n");
  ParseError e;
  auto a = answer_subscribe(parse_ok(viewer), {red_audio()}, local(), e);
  ASSERT_TRUE(a) << e.reason;
  ASSERT_EQ(a->sent.size(), 1u);
  EXPECT_EQ(a->sent[0].second.red_pt, std::optional<std::uint8_t>(63));
  EXPECT_TRUE(contains(a->sdp, "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n")) << a->sdp;

  std::string plain = replaced(replaced(viewer, " 111 63 ", " 111 "),
                               "a=rtpmap:63 red/48000/2\na=fmtp:63 111/111\n", "");
  a = answer_subscribe(parse_ok(plain), {red_audio()}, local(), e);
  ASSERT_TRUE(a) << e.reason;
  ASSERT_EQ(a->sent.size(), 1u);
  EXPECT_FALSE(a->sent[0].second.red_pt);
  EXPECT_FALSE(contains(a->sdp, "red/48000"));
}

TEST(SdpRemb, AnsweredOnlyWithoutTransportCc) {
  // GStreamer-shaped: VP8 with goog-remb and no transport-cc.
  std::string gst = replaced(corpus("gstreamer_offer.sdp"), "a=rtcp-fb:96 nack pli\r\n",
                             "a=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 goog-remb\r\n");
  PublishAnswer a = answer_ok(gst);
  EXPECT_TRUE(contains(a.sdp, "a=rtcp-fb:96 goog-remb\r\n")) << a.sdp;
  bool video_remb = false;
  for (const PublishedTrack& t : a.tracks) {
    if (t.kind == "video") {
      video_remb = std::find(t.codec.rtcp_fb.begin(), t.codec.rtcp_fb.end(), "goog-remb") !=
                   t.codec.rtcp_fb.end();
    }
  }
  EXPECT_TRUE(video_remb);
  // Firefox and Chromium offer both: transport-cc wins, REMB is not answered.
  EXPECT_FALSE(contains(answer_ok(corpus("firefox_offer.sdp")).sdp, "goog-remb"));
  EXPECT_FALSE(contains(answer_ok(corpus("chromium_offer.sdp")).sdp, "goog-remb"));
}

}  // namespace
}  // namespace ringlane::control::sdp
