// Offer/answer on real offers: what answer_publish() answers to Chromium, Firefox and GStreamer,
// that the answer parses back to what was meant, the subscriber offer, and reading Chromium's
// answer to it.
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

const std::string kLocalFingerprint =
    "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:A0:B1:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:7D:"
    "8E:9F";

LocalIce local() {
  LocalIce l;
  l.ufrag = "sfuAbC12";
  l.pwd = "0123456789abcdefghijklmn";
  l.fingerprint = kLocalFingerprint;
  l.candidates = {{"192.0.2.10", 40000}, {"2001:db8::10", 40001}};
  return l;
}

PublishAnswer answer_ok(const std::string& offer_text) {
  ParseError e;
  auto answer = answer_publish(parse_ok(offer_text), local(), e);
  EXPECT_TRUE(answer.has_value()) << e.reason;
  return answer ? *answer : PublishAnswer{};
}

ParseError answer_error(const std::string& offer_text) {
  ParseError e;
  EXPECT_FALSE(answer_publish(parse_ok(offer_text), local(), e).has_value());
  return e;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TEST(SdpAnswer, GStreamerOfferExactText) {
  PublishAnswer a = answer_ok(corpus("gstreamer_offer.sdp"));
  const std::string ice =
      "c=IN IP4 0.0.0.0\r\n"
      "a=rtcp:9 IN IP4 0.0.0.0\r\n"
      "a=ice-ufrag:sfuAbC12\r\n"
      "a=ice-pwd:0123456789abcdefghijklmn\r\n"
      "a=fingerprint:sha-256 " +
      kLocalFingerprint +
      "\r\n"
      "a=setup:passive\r\n";
  const std::string candidates =
      "a=candidate:1 1 udp 2130706431 192.0.2.10 40000 typ host\r\n"
      "a=candidate:2 1 udp 2130640639 2001:db8::10 40001 typ host\r\n"
      "a=end-of-candidates\r\n";
  EXPECT_EQ(a.sdp,
            "v=0\r\n"
            "o=- 654900178539771050 0 IN IP4 0.0.0.0\r\n"
            "s=-\r\n"
            "t=0 0\r\n"
            "a=ice-lite\r\n"
            "a=group:BUNDLE video0 audio1\r\n"
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" +
                ice +
                "a=mid:video0\r\n"
                "a=recvonly\r\n"
                "a=rtcp-mux\r\n"
                "a=rtcp-rsize\r\n"
                "a=rtpmap:96 VP8/90000\r\n"
                "a=rtcp-fb:96 nack\r\n"
                "a=rtcp-fb:96 nack pli\r\n" +
                candidates + "m=audio 9 UDP/TLS/RTP/SAVPF 97\r\n" + ice +
                "a=mid:audio1\r\n"
                "a=recvonly\r\n"
                "a=rtcp-mux\r\n"
                "a=rtcp-rsize\r\n"
                "a=rtpmap:97 OPUS/48000/2\r\n"
                "a=fmtp:97 sprop-maxcapturerate=48000;sprop-stereo=0\r\n" +
                candidates);
  ASSERT_EQ(a.tracks.size(), 2u);
  EXPECT_EQ(a.tracks[0].mid, "video0");
  EXPECT_EQ(a.tracks[0].codec.pt, 96);
  EXPECT_FALSE(a.tracks[0].rtx_pt.has_value());
  EXPECT_EQ(a.tracks[0].ssrc, 3484078950u);
  EXPECT_EQ(a.tracks[0].rtx_ssrc, 0u);
  EXPECT_EQ(a.tracks[0].cname, "user3247270427@host-b5e1f2d0");
  EXPECT_EQ(a.tracks[1].kind, "audio");
  EXPECT_EQ(a.tracks[1].codec.name, "OPUS");
  EXPECT_EQ(a.tracks[1].codec.pt, 97);
  EXPECT_TRUE(a.tracks[1].codec.rtcp_fb.empty());  // no feedback answered for audio
  EXPECT_EQ(a.tracks[1].ssrc, 1067921462u);
  EXPECT_EQ(a.remote_ufrag, "ULrz");
  EXPECT_EQ(a.remote_pwd, "/Hk3X+mp9fLtq5v0cnT1eB");
  EXPECT_EQ(a.remote_fingerprint,
            "5E:C2:81:0D:F4:6A:B9:37:E0:1C:8D:52:A7:F3:64:09:BB:2E:D5:78:1F:C6:4A:93:E8:05:7B:D1:"
            "6C:A0:39:F2");
  EXPECT_EQ(a.remote_setup, "active");
}

TEST(SdpAnswer, ChromiumOffer) {
  PublishAnswer a = answer_ok(corpus("chromium_offer.sdp"));
  ASSERT_EQ(a.tracks.size(), 2u);
  const PublishedTrack& audio = a.tracks[0];
  EXPECT_EQ(audio.mid, "0");
  EXPECT_EQ(audio.codec.pt, 111);
  EXPECT_EQ(audio.codec.fmtp, "minptime=10;useinbandfec=1");
  EXPECT_FALSE(audio.rtx_pt.has_value());
  EXPECT_EQ(audio.ssrc, 3735928559u);
  ASSERT_EQ(audio.extensions.size(), 3u);
  EXPECT_EQ(audio.extensions[0].id, 1);
  EXPECT_EQ(audio.extensions[0].uri, "urn:ietf:params:rtp-hdrext:ssrc-audio-level");
  EXPECT_EQ(audio.extensions[1].id, 3);
  EXPECT_EQ(audio.extensions[1].uri, kTransportCcUri);
  EXPECT_EQ(audio.extensions[2].id, 4);
  EXPECT_EQ(audio.extensions[2].uri, "urn:ietf:params:rtp-hdrext:sdes:mid");
  const PublishedTrack& video = a.tracks[1];
  EXPECT_EQ(video.mid, "1");
  EXPECT_EQ(video.codec.name, "VP8");
  EXPECT_EQ(video.codec.pt, 96);
  EXPECT_EQ(video.codec.rtcp_fb,
            (std::vector<std::string>{"transport-cc", "ccm fir", "nack", "nack pli"}));
  EXPECT_EQ(video.rtx_pt, std::optional<std::uint8_t>(97));
  EXPECT_EQ(video.ssrc, 2231627014u);
  EXPECT_EQ(video.rtx_ssrc, 632943048u);
  EXPECT_TRUE(video.rids.empty());  // rid extensions offered, but no a=simulcast
  std::vector<int> ids;
  for (const auto& e : video.extensions) {
    ids.push_back(e.id);
  }
  // video-orientation, transport-wide cc, mid, rid, repaired rid, in the offer's order.
  EXPECT_EQ(ids, (std::vector<int>{13, 3, 4, 10, 11}));
  EXPECT_EQ(video.msid_stream, "7c1e9a3b-4d2f-4e8a-9b61-0f3d5c2a8e47");
  EXPECT_EQ(video.msid_track, "e2b9d1c4-7a35-4f08-b6e2-94c1d0a3f758");
  EXPECT_EQ(a.remote_ufrag, "Kp2V");
  EXPECT_EQ(a.remote_setup, "active");
  EXPECT_TRUE(contains(a.sdp, "\r\na=group:BUNDLE 0 1\r\n"));
  EXPECT_TRUE(contains(a.sdp, "\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"));
  EXPECT_TRUE(contains(a.sdp, "\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"));
  // The data channel is refused: port 0, its mid, inactive, and last.
  std::string rejected =
      "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n"
      "c=IN IP4 0.0.0.0\r\n"
      "a=mid:2\r\n"
      "a=inactive\r\n";
  ASSERT_GE(a.sdp.size(), rejected.size());
  EXPECT_EQ(a.sdp.substr(a.sdp.size() - rejected.size()), rejected);
  // transport-cc is answered (the SFU sends the feedback); REMB and other codecs are not.
  EXPECT_TRUE(contains(a.sdp, "a=rtcp-fb:96 transport-cc\r\n"));
  EXPECT_TRUE(contains(a.sdp, "a=rtcp-fb:111 transport-cc\r\n"));
  EXPECT_FALSE(contains(a.sdp, "goog-remb"));
  EXPECT_FALSE(contains(a.sdp, "abs-send-time"));
  EXPECT_FALSE(contains(a.sdp, "H264"));
  // RFC 2198 RED over Opus is answered, before Opus (sdp_red_test.cpp).
  EXPECT_TRUE(contains(a.sdp, "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n"));

  // Round trip: the answer parses to what was meant.
  Session back = parse_ok(a.sdp);
  EXPECT_TRUE(back.ice_lite);
  EXPECT_EQ(back.origin_version, 2u);
  EXPECT_EQ(back.bundle, (std::vector<std::string>{"0", "1"}));
  ASSERT_EQ(back.media.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back.media[i].direction, "recvonly");
    EXPECT_EQ(back.media[i].port, 9);
    EXPECT_EQ(back.media[i].setup, "passive");
    EXPECT_EQ(back.media[i].ice_ufrag, "sfuAbC12");
    EXPECT_EQ(sha256_fingerprint(back.media[i].fingerprint), kLocalFingerprint);
    EXPECT_TRUE(back.media[i].rtcp_mux);
    EXPECT_EQ(back.media[i].candidates.size(), 2u);
    EXPECT_TRUE(back.media[i].end_of_candidates);
  }
  EXPECT_FALSE(back.media[0].rtcp_rsize);
  EXPECT_TRUE(back.media[1].rtcp_rsize);
  ASSERT_EQ(back.media[1].codecs.size(), 2u);
  EXPECT_EQ(back.media[1].codecs[0].rtcp_fb, video.codec.rtcp_fb);
  EXPECT_EQ(back.media[1].codecs[1].apt, std::optional<std::uint8_t>(96));
  EXPECT_EQ(back.media[1].extensions.size(), 5u);
  EXPECT_EQ(back.media[2].port, 0);
  EXPECT_EQ(back.media[2].direction, "inactive");
  EXPECT_EQ(back.media[2].mid, "2");
  EXPECT_EQ(back.media[0].candidates[1], "2 1 udp 2130640639 2001:db8::10 40001 typ host");
}

TEST(SdpAnswer, FirefoxOffer) {
  PublishAnswer a = answer_ok(corpus("firefox_offer.sdp"));
  ASSERT_EQ(a.tracks.size(), 2u);
  EXPECT_EQ(a.tracks[0].codec.pt, 109);
  EXPECT_EQ(a.tracks[0].codec.fmtp, "maxplaybackrate=48000;stereo=1;useinbandfec=1");
  // Its a=extmap:2/recvonly is not for a receiver, and not one we take anyway.
  ASSERT_EQ(a.tracks[0].extensions.size(), 2u);
  EXPECT_EQ(a.tracks[0].extensions[1].id, 3);
  EXPECT_EQ(a.tracks[1].codec.name, "VP8");
  EXPECT_EQ(a.tracks[1].codec.pt, 120);
  EXPECT_EQ(a.tracks[1].codec.fmtp, "max-fs=12288;max-fr=60");
  EXPECT_EQ(a.tracks[1].rtx_pt, std::optional<std::uint8_t>(124));
  EXPECT_EQ(a.tracks[1].ssrc, 3005133376u);
  EXPECT_EQ(a.tracks[1].rtx_ssrc, 2843575009u);
  EXPECT_EQ(a.tracks[1].msid_track, "{6f2a8d1c-4e37-4b90-9c58-e1a7d3f0b264}");
  EXPECT_EQ(a.remote_ufrag, "5c3f8a21");
  EXPECT_EQ(a.remote_fingerprint,
            "A9:0F:3B:72:C4:18:5E:D6:21:8A:F7:4C:B3:09:6D:E2:95:1A:C8:7F:40:B6:2E:D3:58:0C:A1:"
            "94:6F:E7:13:BC");
  EXPECT_TRUE(contains(a.sdp, "m=video 9 UDP/TLS/RTP/SAVPF 120 124\r\n"));
  EXPECT_TRUE(contains(a.sdp, "a=fmtp:124 apt=120\r\n"));
  Session back = parse_ok(a.sdp);
  EXPECT_EQ(back.media[1].codecs[0].rtcp_fb,
            (std::vector<std::string>{"nack", "nack pli", "ccm fir", "transport-cc"}));
}

TEST(SdpAnswer, SimulcastOfferWithoutSsrcs) {
  PublishAnswer a = answer_ok(corpus("chromium_simulcast_offer.sdp"));
  ASSERT_EQ(a.tracks.size(), 2u);
  EXPECT_EQ(a.tracks[1].ssrc, 0u);
  EXPECT_EQ(a.tracks[1].rtx_ssrc, 0u);
  EXPECT_EQ(a.tracks[1].rids, (std::vector<std::string>{"q", "h", "f"}));
  EXPECT_EQ(a.tracks[1].codec.pt, 96);
  EXPECT_EQ(a.tracks[0].ssrc, 1293847561u);
  Session back = parse_ok(a.sdp);
  EXPECT_EQ(back.media[0].direction, "recvonly");
  EXPECT_EQ(back.media[1].direction, "recvonly");
  // RFC 8853 §5.3: the answer receives the three streams, in the offer's order.
  EXPECT_EQ(back.media[1].recv_rids, (std::vector<std::string>{"q", "h", "f"}));
  EXPECT_EQ(back.media[1].simulcast, "recv q;h;f");
  EXPECT_TRUE(back.media[0].recv_rids.empty());
  // The extensions that name the layers and number the transport are kept, with the offer's ids.
  auto has = [](const Media& m, int id, std::string_view uri) {
    return std::any_of(m.extensions.begin(), m.extensions.end(),
                       [&](const Extension& e) { return e.id == id && e.uri == uri; });
  };
  EXPECT_TRUE(has(back.media[1], 10, kRidUri));
  EXPECT_TRUE(has(back.media[1], 11, kRepairedRidUri));
  EXPECT_TRUE(has(back.media[1], 3, kTransportCcUri));
  EXPECT_TRUE(has(back.media[0], 3, kTransportCcUri));
  EXPECT_FALSE(has(back.media[0], 10, kRidUri));
  EXPECT_EQ(back.media[1].codecs[0].rtcp_fb,
            (std::vector<std::string>{"transport-cc", "ccm fir", "nack", "nack pli"}));
  // codecs[0] is RED, answered first (sdp_red_test.cpp).
  EXPECT_EQ(back.media[0].codecs[1].rtcp_fb, (std::vector<std::string>{"transport-cc"}));
}

TEST(SdpAnswer, SimulcastNeedsTheRidExtensionAndDeclaredRids) {
  std::string offer = corpus("chromium_simulcast_offer.sdp");
  // ~f: paused at first, still a layer; an undeclared rid is not.
  std::string paused = offer;
  paused.replace(paused.find("a=simulcast:send q;h;f"), 22, "a=simulcast:send q;~f;x");
  PublishAnswer a = answer_ok(paused);
  EXPECT_EQ(a.tracks[1].rids, (std::vector<std::string>{"q", "f"}));
  EXPECT_TRUE(contains(a.sdp, "a=simulcast:recv q;f\r\n"));
  // Without the rid extension nothing names a layer: not simulcast.
  std::string no_rid = offer;
  no_rid.erase(no_rid.find("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
               std::string("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n").size());
  PublishAnswer b = answer_ok(no_rid);
  EXPECT_TRUE(b.tracks[1].rids.empty());
  EXPECT_FALSE(contains(b.sdp, "a=simulcast"));
}

// One video m-section with the given m= formats and codec lines.
std::string video_offer(const std::string& pts, const std::string& codec_lines,
                        const std::string& extra = "a=sendonly\n") {
  return "v=0\no=- 5 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=group:BUNDLE v\n"
         "m=video 9 UDP/TLS/RTP/SAVPF " +
         pts +
         "\n"
         "a=ice-ufrag:abcd\na=ice-pwd:0123456789012345678901\n"
         "a=fingerprint:sha-256 " +
         kLocalFingerprint + "\na=mid:v\na=rtcp-mux\n" + extra + codec_lines;
}

TEST(SdpAnswer, VideoCodecPreferenceFollowsTheOffer) {
  // H264 packetization-mode 0 and VP9 profile 2 are skipped; the first H264 mode 1 wins, with
  // its own rtx (not the rtx of the skipped H264).
  std::string lines =
      "a=rtpmap:104 H264/90000\na=fmtp:104 packetization-mode=0;profile-level-id=42e01f\n"
      "a=rtpmap:105 rtx/90000\na=fmtp:105 apt=104\n"
      "a=rtpmap:100 VP9/90000\na=fmtp:100 profile-id=2\n"
      "a=rtpmap:106 H264/90000\na=fmtp:106 packetization-mode=1;profile-level-id=42e01f\n"
      "a=rtcp-fb:106 nack\na=rtcp-fb:106 transport-cc\n"
      "a=rtpmap:107 rtx/90000\na=fmtp:107 apt=106\n"
      "a=rtpmap:96 VP8/90000\n";
  PublishAnswer a = answer_ok(video_offer("104 105 100 106 107 96", lines));
  ASSERT_EQ(a.tracks.size(), 1u);
  EXPECT_EQ(a.tracks[0].codec.pt, 106);
  EXPECT_EQ(a.tracks[0].codec.fmtp, "packetization-mode=1;profile-level-id=42e01f");
  EXPECT_EQ(a.tracks[0].codec.rtcp_fb, (std::vector<std::string>{"nack", "transport-cc"}));
  EXPECT_EQ(a.tracks[0].rtx_pt, std::optional<std::uint8_t>(107));
  EXPECT_TRUE(contains(a.sdp, "m=video 9 UDP/TLS/RTP/SAVPF 106 107\r\n"));
  // A single m-section outside any group: no group in the answer (RFC 8843 §7.3).
  PublishAnswer alone =
      answer_ok(replaced(video_offer("96", "a=rtpmap:96 VP8/90000\n"), "a=group:BUNDLE v\n", ""));
  EXPECT_FALSE(contains(alone.sdp, "a=group"));
  // VP9 with profile-id absent is profile 0; AV1 is taken too.
  EXPECT_EQ(answer_ok(video_offer("98", "a=rtpmap:98 VP9/90000\n")).tracks[0].codec.name, "VP9");
  EXPECT_EQ(answer_ok(video_offer("45", "a=rtpmap:45 AV1/90000\n")).tracks[0].codec.name, "AV1");
}

TEST(SdpAnswer, ExtensionsAnsweredByKindAndDirection) {
  std::string exts =
      "a=extmap:16 urn:3gpp:video-orientation\n"
      "a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:sdes:mid\n"
      "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\n"
      "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\n"
      "a=rtpmap:96 VP8/90000\n";
  // Id 16 needs two-byte headers; a recvonly extension is not sent to us; audio level is
  // audio's: nothing is answered.
  PublishAnswer a = answer_ok(video_offer("96", exts));
  EXPECT_TRUE(a.tracks[0].extensions.empty());
  EXPECT_FALSE(contains(a.sdp, "a=extmap"));
  PublishAnswer b = answer_ok(video_offer(
      "96", "a=extmap:5/sendonly urn:ietf:params:rtp-hdrext:sdes:mid\na=rtpmap:96 VP8/90000\n"));
  ASSERT_EQ(b.tracks[0].extensions.size(), 1u);
  EXPECT_EQ(b.tracks[0].extensions[0].id, 5);
  EXPECT_TRUE(contains(b.sdp, "\r\na=extmap:5/recvonly urn:ietf:params:rtp-hdrext:sdes:mid\r\n"));
}

TEST(SdpAnswer, SetupRoles) {
  std::string lines = "a=rtpmap:96 VP8/90000\n";
  // RFC 5763 §5: actpass or active -> passive; passive -> active.
  PublishAnswer passive = answer_ok(video_offer("96", lines, "a=setup:passive\n"));
  EXPECT_TRUE(contains(passive.sdp, "a=setup:active\r\n"));
  EXPECT_EQ(passive.remote_setup, "passive");
  PublishAnswer active = answer_ok(video_offer("96", lines, "a=setup:active\n"));
  EXPECT_TRUE(contains(active.sdp, "a=setup:passive\r\n"));
  EXPECT_EQ(active.remote_setup, "active");
  ParseError e = answer_error(video_offer("96", lines, "a=setup:holdconn\n"));
  EXPECT_EQ(e.reason, "line 6: the video m-section (mid v): a=setup:holdconn is not supported");
}

TEST(SdpAnswer, RefusesWhatCannotBeAnswered) {
  std::string g = corpus("gstreamer_offer.sdp");
  ParseError e = answer_error(replaced(g, "a=ice-ufrag:ULrz\r\n", ""));
  EXPECT_EQ(e.line, 7u);
  EXPECT_EQ(
      e.reason,
      "line 7: the video m-section (mid video0) has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)");
  e = answer_error(corpus("broken_no_fingerprint.sdp"));
  EXPECT_EQ(e.reason,
            "line 7: the video m-section (mid video0) has no sha-256 a=fingerprint (RFC 8122, "
            "RFC 8827)");
  e = answer_error(
      replaced(g,
               "a=fingerprint:sha-256 "
               "5E:C2:81:0D:F4:6A:B9:37:E0:1C:8D:52:A7:F3:64:09:BB:2E:D5:78:1F:C6:4A:93:E8:05:7B:"
               "D1:6C:A0:39:F2",
               "a=fingerprint:sha-1 5E:C2:81:0D:F4:6A:B9:37:E0:1C:8D:52:A7:F3:64:09:BB:2E:D5:78"));
  EXPECT_EQ(e.line, 7u);
  e = answer_error(replaced(g, "a=rtcp-mux\r\n", ""));
  EXPECT_EQ(e.reason,
            "line 7: the video m-section (mid video0) has no a=rtcp-mux; RTP and RTCP must share "
            "one port (RFC 5761)");
  e = answer_error(replaced(g, "a=group:BUNDLE video0 audio1\r\n", ""));
  EXPECT_EQ(e.line, 6u);
  EXPECT_EQ(e.reason,
            "line 6: the video m-section (mid video0) is not in the offer's a=group:BUNDLE; we "
            "receive all media on one transport (RFC 8843)");
  e = answer_error(replaced(g, "a=sendrecv", "a=recvonly"));
  EXPECT_EQ(e.line, 0u);
  EXPECT_EQ(e.reason, "offer has no audio or video we can receive");
  e = answer_error(replaced(g, "a=mid:audio1\r\n", ""));
  EXPECT_EQ(e.reason, "line 22: the audio m-section has no a=mid");
  LocalIce bad = local();
  bad.fingerprint = "AA:BB";
  EXPECT_FALSE(answer_publish(parse_ok(g), bad, e).has_value());
  EXPECT_EQ(e.reason, "local ICE: the fingerprint is not 32 hex pairs (SHA-256)");
}

TEST(SdpAnswer, RejectsSectionsItCannotReceive) {
  // recvonly audio, a port-0 (stopped) section and a PCMU-only one are answered with port 0.
  std::string g = corpus("gstreamer_offer.sdp");
  PublishAnswer a = answer_ok(replaced(g, "a=rtpmap:97 OPUS/48000/2", "a=rtpmap:97 PCMA/8000"));
  ASSERT_EQ(a.tracks.size(), 1u);
  EXPECT_TRUE(contains(a.sdp, "a=group:BUNDLE video0\r\n"));
  EXPECT_TRUE(contains(a.sdp,
                       "m=audio 0 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\n"
                       "a=mid:audio1\r\na=inactive\r\n"));
  // Only a section of the group is taken when another is stopped (port 0).
  PublishAnswer stopped = answer_ok(replaced(g, "m=video 9 ", "m=video 0 "));
  ASSERT_EQ(stopped.tracks.size(), 1u);
  EXPECT_EQ(stopped.tracks[0].mid, "audio1");
  EXPECT_TRUE(contains(stopped.sdp, "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n"));
}

// What the subscriber tests offer: one audio, one video with rtx, and one whose publisher left.
std::vector<OfferedTrack> subscriber_tracks() {
  OfferedTrack audio;
  audio.mid = "0";
  audio.kind = "audio";
  audio.codec = Codec{111, "opus", 48000, 2, "minptime=10;useinbandfec=1", {}, {}};
  audio.ssrc = 1001;
  audio.cname = "pub1";
  audio.msid_stream = "s1";
  audio.msid_track = "a1";
  audio.extensions = {Extension{1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level", ""}};
  OfferedTrack video;
  video.mid = "1";
  video.kind = "video";
  video.codec = Codec{96, "VP8", 90000, 0, "", {"nack", "nack pli", "ccm fir"}, {}};
  video.rtx_pt = 97;
  video.ssrc = 2001;
  video.rtx_ssrc = 2002;
  video.cname = "pub1";
  video.msid_stream = "s1";
  video.msid_track = "v1";
  video.extensions = {Extension{13, "urn:3gpp:video-orientation", ""}};
  OfferedTrack gone = video;
  gone.mid = "2";
  gone.active = false;
  gone.ssrc = 3001;
  gone.rtx_ssrc = 3002;
  return {audio, video, gone};
}

TEST(SdpSubscribe, OfferParsesBack) {
  std::string text = offer_subscribe(subscriber_tracks(), local(), 4, "777");
  Session s = parse_ok(text);
  EXPECT_EQ(s.origin_session_id, "777");
  EXPECT_EQ(s.origin_version, 4u);
  EXPECT_TRUE(s.ice_lite);
  EXPECT_EQ(s.bundle, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(s.media.size(), 3u);
  EXPECT_TRUE(contains(text, "\r\na=msid-semantic: WMS s1\r\n"));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(s.media[i].port, 9);
    EXPECT_EQ(s.setup_of(i), "actpass");
    EXPECT_TRUE(s.media[i].rtcp_mux);
    EXPECT_EQ(s.ufrag_of(i), "sfuAbC12");
    EXPECT_EQ(s.media[i].candidates.size(), 2u);
  }
  EXPECT_EQ(s.media[0].direction, "sendonly");
  EXPECT_FALSE(s.media[0].rtcp_rsize);
  ASSERT_EQ(s.media[0].codecs.size(), 1u);
  EXPECT_EQ(s.media[0].codecs[0].fmtp, "minptime=10;useinbandfec=1");
  EXPECT_EQ(s.media[0].ssrcs, (std::vector<std::uint32_t>{1001}));
  EXPECT_EQ(s.media[0].cname, "pub1");
  EXPECT_EQ(s.media[0].msid_track, "a1");
  EXPECT_EQ(s.media[0].extensions[0].id, 1);
  const Media& v = s.media[1];
  EXPECT_EQ(v.direction, "sendonly");
  EXPECT_TRUE(v.rtcp_rsize);
  ASSERT_EQ(v.codecs.size(), 2u);
  EXPECT_EQ(v.codecs[0].rtcp_fb, (std::vector<std::string>{"nack", "nack pli", "ccm fir"}));
  EXPECT_EQ(v.codecs[1].apt, std::optional<std::uint8_t>(96));
  EXPECT_EQ(v.ssrcs, (std::vector<std::uint32_t>{2001, 2002}));
  ASSERT_EQ(v.ssrc_groups.size(), 1u);
  EXPECT_EQ(v.ssrc_groups[0].semantics, "FID");
  EXPECT_EQ(v.ssrc_groups[0].ssrcs, (std::vector<std::uint32_t>{2001, 2002}));
  EXPECT_EQ(v.msid_stream, "s1");
  // The departed publisher's section stays (same mid, in the group), inactive and without SSRCs.
  EXPECT_EQ(s.media[2].direction, "inactive");
  EXPECT_EQ(s.media[2].mid, "2");
  EXPECT_TRUE(s.media[2].ssrcs.empty());
  EXPECT_TRUE(s.media[2].msid_stream.empty());
  EXPECT_EQ(s.media[2].codecs.size(), 2u);
}

TEST(SdpSubscribe, OneTrackExactText) {
  std::vector<OfferedTrack> tracks = {subscriber_tracks()[0]};
  tracks[0].cname.clear();
  LocalIce l = local();
  l.candidates.resize(1);
  EXPECT_EQ(offer_subscribe(tracks, l, 1, "42"),
            "v=0\r\no=- 42 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n"
            "a=group:BUNDLE 0\r\na=msid-semantic: WMS s1\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
            "a=ice-ufrag:sfuAbC12\r\na=ice-pwd:0123456789abcdefghijklmn\r\n"
            "a=fingerprint:sha-256 " +
                kLocalFingerprint +
                "\r\na=setup:actpass\r\na=mid:0\r\n"
                "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
                "a=sendonly\r\na=msid:s1 a1\r\na=rtcp-mux\r\n"
                "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
                "a=ssrc:1001 cname:ringlane\r\na=ssrc:1001 msid:s1 a1\r\n"
                "a=candidate:1 1 udp 2130706431 192.0.2.10 40000 typ host\r\n"
                "a=end-of-candidates\r\n");
}

TEST(SdpSubscribe, Numbering) {
  Codec vp8{120, "VP8", 90000, 0, "max-fs=12288", {"goog-remb"}, {}};
  auto c = subscriber_codec(vp8);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->pt, 96);
  EXPECT_EQ(c->fmtp, "max-fs=12288");
  // goog-remb is not passed on; transport-cc is the SFU's own (it estimates each subscriber).
  EXPECT_EQ(c->rtcp_fb, (std::vector<std::string>{"nack", "nack pli", "ccm fir", "transport-cc"}));
  auto opus = subscriber_codec(Codec{109, "opus", 48000, 2, "stereo=1", {"nack"}, {}});
  ASSERT_TRUE(opus.has_value());
  EXPECT_EQ(opus->pt, 111);
  EXPECT_EQ(opus->fmtp, "stereo=1");
  EXPECT_EQ(opus->rtcp_fb, (std::vector<std::string>{"transport-cc"}));
  EXPECT_EQ(subscriber_codec(Codec{97, "H264", 90000, 0, "packetization-mode=1", {}, {}})->pt, 102);
  EXPECT_EQ(subscriber_codec(Codec{35, "av1", 90000, 0, "", {}, {}})->pt, 45);
  EXPECT_EQ(subscriber_codec(Codec{100, "VP9", 90000, 0, "profile-id=0", {}, {}})->pt, 98);
  EXPECT_FALSE(subscriber_codec(Codec{100, "VP9", 90000, 0, "profile-id=2", {}, {}}));
  EXPECT_FALSE(subscriber_codec(Codec{104, "H264", 90000, 0, "packetization-mode=0", {}, {}}));
  EXPECT_FALSE(subscriber_codec(Codec{97, "rtx", 90000, 0, "apt=96", {}, 96}));
  EXPECT_FALSE(subscriber_codec(Codec{9, "G722", 8000, 0, "", {}, {}}));
  EXPECT_EQ(subscriber_rtx_pt("VP8"), std::optional<std::uint8_t>(97));
  EXPECT_EQ(subscriber_rtx_pt("VP9"), std::optional<std::uint8_t>(99));
  EXPECT_EQ(subscriber_rtx_pt("h264"), std::optional<std::uint8_t>(103));
  EXPECT_EQ(subscriber_rtx_pt("AV1"), std::optional<std::uint8_t>(46));
  EXPECT_FALSE(subscriber_rtx_pt("opus"));
  EXPECT_EQ(subscriber_extension_id("urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            std::optional<std::uint8_t>(1));
  EXPECT_EQ(subscriber_extension_id("urn:3gpp:video-orientation"), std::optional<std::uint8_t>(13));
  EXPECT_FALSE(subscriber_extension_id("urn:ietf:params:rtp-hdrext:sdes:mid"));
}

TEST(SdpSubscribe, PublishToSubscribeToParse) {
  // A Chromium publisher's tracks renumbered for a subscriber, offered, parsed back.
  PublishAnswer a = answer_ok(corpus("chromium_offer.sdp"));
  std::vector<OfferedTrack> tracks;
  for (const PublishedTrack& t : a.tracks) {
    OfferedTrack o;
    o.mid = std::to_string(tracks.size());
    o.kind = t.kind;
    auto codec = subscriber_codec(t.codec);
    ASSERT_TRUE(codec.has_value()) << t.codec.name;
    o.codec = *codec;
    if (t.rtx_pt) {
      o.rtx_pt = subscriber_rtx_pt(t.codec.name);
    }
    o.ssrc = 5000 + static_cast<std::uint32_t>(tracks.size()) * 2;
    o.rtx_ssrc = o.rtx_pt ? o.ssrc + 1 : 0;
    o.cname = t.cname;
    o.msid_stream = t.msid_stream;
    o.msid_track = t.msid_track;
    for (const Extension& e : t.extensions) {
      if (auto id = subscriber_extension_id(e.uri)) {
        o.extensions.push_back(Extension{*id, e.uri, ""});
      }
    }
    tracks.push_back(o);
  }
  Session s = parse_ok(offer_subscribe(tracks, local(), 1, "9"));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].codecs[0].pt, 111);
  EXPECT_EQ(s.media[1].codecs[0].pt, 96);
  EXPECT_EQ(s.media[1].codecs[1].pt, 97);
  EXPECT_EQ(s.media[1].cname, "Yq1vN8x2bC4dE5fG");
  // video-orientation and the SFU's own transport-wide numbering (id 3, as Chromium numbers it).
  ASSERT_EQ(s.media[1].extensions.size(), 2u);
  EXPECT_EQ(s.media[1].extensions[1].id, 3);
  EXPECT_EQ(s.media[1].extensions[1].uri, kTransportCcUri);
}

std::vector<OfferedTrack> two_tracks() {
  auto t = subscriber_tracks();
  t.pop_back();
  return t;
}

TEST(SdpSubscribe, ReadsChromiumAnswer) {
  ParseError e;
  auto a = read_subscribe_answer(parse_ok(corpus("chromium_answer.sdp")), two_tracks(), e);
  ASSERT_TRUE(a.has_value()) << e.reason;
  EXPECT_EQ(a->remote_ufrag, "R8o+");
  EXPECT_EQ(a->remote_pwd, "Gq2xN0mY7vTk4pLc9sWb1eZu");
  EXPECT_EQ(a->remote_fingerprint,
            "7B:E4:19:C0:5D:A2:8F:36:D9:71:0E:B5:4C:F8:23:9A:E6:11:C7:8D:42:F0:5B:A9:3E:D4:76:0F:"
            "B2:68:C1:9D");
  EXPECT_EQ(a->remote_setup, "active");
  EXPECT_EQ(a->accepted_mids, (std::vector<std::string>{"0", "1"}));
  ASSERT_EQ(a->extensions.size(), 2u);
  EXPECT_EQ(a->extensions[0].first, "0");
  ASSERT_EQ(a->extensions[0].second.size(), 1u);
  EXPECT_EQ(a->extensions[0].second[0].id, 1);
  EXPECT_EQ(a->extensions[1].first, "1");
  ASSERT_EQ(a->extensions[1].second.size(), 1u);
  EXPECT_EQ(a->extensions[1].second[0].uri, "urn:3gpp:video-orientation");

  // The video section refused (port 0, out of the group): only audio is accepted.
  std::string refused = replaced(replaced(corpus("chromium_answer.sdp"), "BUNDLE 0 1", "BUNDLE 0"),
                                 "m=video 9", "m=video 0");
  a = read_subscribe_answer(parse_ok(refused), two_tracks(), e);
  ASSERT_TRUE(a.has_value()) << e.reason;
  EXPECT_EQ(a->accepted_mids, (std::vector<std::string>{"0"}));
  // Bundled with port 0 (RFC 8843 §7.3.1 allows it): still accepted.
  a = read_subscribe_answer(
      parse_ok(replaced(corpus("chromium_answer.sdp"), "m=video 9", "m=video 0")), two_tracks(), e);
  ASSERT_TRUE(a.has_value()) << e.reason;
  EXPECT_EQ(a->accepted_mids, (std::vector<std::string>{"0", "1"}));
}

TEST(SdpSubscribe, RefusesBadAnswers) {
  std::string c = corpus("chromium_answer.sdp");
  ParseError e;
  EXPECT_FALSE(read_subscribe_answer(parse_ok(c), subscriber_tracks(), e));
  EXPECT_EQ(e.reason, "the answer has 2 m-sections where the offer had 3");
  auto swapped = two_tracks();
  std::swap(swapped[0].mid, swapped[1].mid);
  EXPECT_FALSE(read_subscribe_answer(parse_ok(c), swapped, e));
  EXPECT_EQ(e.line, 7u);
  EXPECT_EQ(e.reason, "line 7: m-section 1 is audio mid '0' where the offer had audio mid '1'");
  EXPECT_FALSE(read_subscribe_answer(parse_ok(replaced(c, "a=setup:active", "a=setup:actpass")),
                                     two_tracks(), e));
  EXPECT_EQ(e.reason,
            "the answer's a=setup is 'actpass'; an answer to actpass must say active or passive "
            "(RFC 5763 §5)");
  EXPECT_FALSE(
      read_subscribe_answer(parse_ok(replaced(c, "a=setup:active\r\n", "")), two_tracks(), e));
  EXPECT_FALSE(read_subscribe_answer(
      parse_ok(replaced(c, "a=ice-pwd:Gq2xN0mY7vTk4pLc9sWb1eZu\r\n", "")), two_tracks(), e));
  EXPECT_EQ(e.reason, "the answer has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)");
  std::string no_fp = c;
  for (std::size_t at; (at = no_fp.find("a=fingerprint:")) != std::string::npos;) {
    no_fp.erase(at, no_fp.find("\r\n", at) + 2 - at);
  }
  EXPECT_FALSE(read_subscribe_answer(parse_ok(no_fp), two_tracks(), e));
  EXPECT_EQ(e.reason, "the answer has no sha-256 a=fingerprint (RFC 8122, RFC 8827)");
}

}  // namespace
}  // namespace ringlane::control::sdp
