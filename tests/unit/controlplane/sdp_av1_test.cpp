// The AV1 Dependency Descriptor in offer/answer: taken from an AV1 publisher with
// a=extmap-allow-mixed answered (libwebrtc sends no descriptor without two-byte headers), never
// for another codec; offered to subscribers of such a track under Chromium's id 12, again with
// a=extmap-allow-mixed, as a WHEP viewer's answer has it when its offer did.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "ringlane/controlplane/sdp/sdp.hpp"
#include "unit/controlplane/sdp_test_util.hpp"

namespace ringlane::control::sdp {
namespace {

using fixtures::parse_ok;

const std::string kFingerprint =
    "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:A0:B1:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:7D:"
    "8E:9F";
const std::string kDd =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

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

// One video section sending `codec` at pt 45 with the descriptor as extension 12.
std::string offer(const std::string& codec, bool allow_mixed, const std::string& direction) {
  return std::string("v=0\no=- 5 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE v\n") +
         (allow_mixed ? "a=extmap-allow-mixed\n" : "") +
         "m=video 9 UDP/TLS/RTP/SAVPF 45\n"
         "a=ice-ufrag:abcd\na=ice-pwd:0123456789012345678901\n"
         "a=fingerprint:sha-256 " +
         kFingerprint + "\na=setup:actpass\na=mid:v\na=rtcp-mux\na=" + direction +
         "\na=extmap:12 " + kDd + "\na=rtpmap:45 " + codec + "/90000\n";
}

PublishAnswer answer(const std::string& text) {
  ParseError e;
  auto a = answer_publish(parse_ok(text), local(), e);
  EXPECT_TRUE(a.has_value()) << e.reason;
  return a ? *a : PublishAnswer{};
}

TEST(SdpAv1, PublisherAnswerTakesTheDescriptorWithMixedHeaders) {
  PublishAnswer a = answer(offer("AV1", true, "sendonly"));
  ASSERT_EQ(a.tracks.size(), 1u);
  ASSERT_EQ(a.tracks[0].extensions.size(), 1u);
  EXPECT_EQ(a.tracks[0].extensions[0].id, 12);
  EXPECT_EQ(a.tracks[0].extensions[0].uri, kDd);
  EXPECT_TRUE(contains(a.sdp, "\r\na=extmap:12 " + kDd + "\r\n"));
  // At the session level, before the first m= line (RFC 8285 §6).
  std::size_t mixed = a.sdp.find("a=extmap-allow-mixed\r\n");
  ASSERT_NE(mixed, std::string::npos);
  EXPECT_LT(mixed, a.sdp.find("m=video"));
  Session back = parse_ok(a.sdp);
  EXPECT_TRUE(back.extmap_allow_mixed);
  ASSERT_EQ(back.media.size(), 1u);
  EXPECT_EQ(back.media[0].extensions.size(), 1u);
  // Without the offer's allow-mixed: the descriptor answered, allow-mixed not (the publisher
  // then sends none, and AV1 is forwarded whole).
  PublishAnswer b = answer(offer("AV1", false, "sendonly"));
  EXPECT_EQ(b.tracks[0].extensions.size(), 1u);
  EXPECT_FALSE(contains(b.sdp, "extmap-allow-mixed"));
}

TEST(SdpAv1, OtherCodecsDoNotGetTheDescriptor) {
  for (const char* codec : {"VP8", "VP9"}) {
    PublishAnswer a = answer(offer(codec, true, "sendonly"));
    ASSERT_EQ(a.tracks.size(), 1u) << codec;
    EXPECT_TRUE(a.tracks[0].extensions.empty()) << codec;
    EXPECT_FALSE(contains(a.sdp, kDd)) << codec;
    EXPECT_FALSE(contains(a.sdp, "extmap-allow-mixed")) << codec;
  }
}

OfferedTrack av1_track(bool with_dd) {
  OfferedTrack t;
  t.mid = "0";
  t.kind = "video";
  t.codec = *subscriber_codec(Codec{35, "AV1", 90000, 0, "", {}, {}});
  t.ssrc = 4242;
  t.msid_stream = "pub";
  t.msid_track = "v";
  if (with_dd) {
    t.extensions.push_back(Extension{*subscriber_extension_id(kDd), kDd, {}});
  }
  return t;
}

TEST(SdpAv1, SubscriberOfferCarriesTheDescriptor) {
  EXPECT_EQ(subscriber_extension_id(kDd), std::optional<std::uint8_t>(12));
  std::string text = offer_subscribe({av1_track(true)}, local(), 1, "9");
  EXPECT_TRUE(contains(text, "\r\na=extmap:12 " + kDd + "\r\n"));
  EXPECT_LT(text.find("a=extmap-allow-mixed\r\n"), text.find("m=video"));
  EXPECT_TRUE(parse_ok(text).extmap_allow_mixed);
  EXPECT_FALSE(contains(offer_subscribe({av1_track(false)}, local(), 1, "9"), "allow-mixed"));
}

TEST(SdpAv1, ViewerAnswerKeepsTheDescriptorItOffered) {
  ParseError e;
  auto v =
      answer_subscribe(parse_ok(offer("AV1", true, "recvonly")), {av1_track(true)}, local(), e);
  ASSERT_TRUE(v.has_value()) << e.reason;
  ASSERT_EQ(v->sent.size(), 1u);
  ASSERT_EQ(v->sent[0].second.extensions.size(), 1u);
  EXPECT_EQ(v->sent[0].second.extensions[0].id, 12);
  EXPECT_TRUE(contains(v->sdp, "a=extmap-allow-mixed\r\n"));
  v = answer_subscribe(parse_ok(offer("AV1", false, "recvonly")), {av1_track(true)}, local(), e);
  ASSERT_TRUE(v.has_value()) << e.reason;
  EXPECT_FALSE(contains(v->sdp, "allow-mixed"));
}

}  // namespace
}  // namespace ringlane::control::sdp
