// The SDP parser on what browsers and GStreamer really send (tests/fuzz/sdp_corpus/, the fuzz
// seeds), and on broken text: every refusal names its line.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ringlane/controlplane/sdp/sdp.hpp"
#include "unit/controlplane/sdp_test_util.hpp"

namespace ringlane::control::sdp {
namespace {

using fixtures::corpus;
using fixtures::parse_ok;
using fixtures::replaced;

ParseError parse_error(std::string_view text, const Limits& limits = {}) {
  ParseError e;
  auto s = parse(text, e, limits);
  EXPECT_FALSE(s.has_value()) << text.substr(0, 200);
  return e;
}

const std::string kChromeFingerprint =
    "sha-256 3C:4A:96:12:8F:E1:0B:7D:55:A2:C9:30:6E:F4:18:B7:2D:90:4C:E3:71:AA:05:BF:68:D2:13:9E:"
    "C4:57:0A:F1";

TEST(SdpParse, ChromiumOffer) {
  Session s = parse_ok(corpus("chromium_offer.sdp"));
  EXPECT_EQ(s.origin_session_id, "4611731400430051336");
  EXPECT_EQ(s.origin_version, 2u);
  EXPECT_FALSE(s.ice_lite);
  EXPECT_EQ(s.bundle, (std::vector<std::string>{"0", "1", "2"}));
  ASSERT_EQ(s.media.size(), 3u);

  const Media& audio = s.media[0];
  EXPECT_EQ(audio.kind, "audio");
  EXPECT_EQ(audio.port, 9);
  EXPECT_EQ(audio.protocol, "UDP/TLS/RTP/SAVPF");
  EXPECT_EQ(audio.mid, "0");
  EXPECT_EQ(audio.line, 8u);
  EXPECT_EQ(audio.direction, "sendrecv");
  EXPECT_EQ(audio.formats,
            (std::vector<std::string>{"111", "63", "9", "0", "8", "13", "110", "126"}));
  ASSERT_EQ(audio.codecs.size(), 8u);
  EXPECT_EQ(audio.codecs[0].pt, 111);
  EXPECT_EQ(audio.codecs[0].name, "opus");
  EXPECT_EQ(audio.codecs[0].clock, 48000u);
  EXPECT_EQ(audio.codecs[0].channels, 2);
  EXPECT_EQ(audio.codecs[0].fmtp, "minptime=10;useinbandfec=1");
  EXPECT_EQ(audio.codecs[0].rtcp_fb, (std::vector<std::string>{"transport-cc"}));
  EXPECT_EQ(audio.codecs[1].name, "red");
  EXPECT_EQ(audio.codecs[1].fmtp, "111/111");
  EXPECT_EQ(audio.codecs[2].name, "G722");
  EXPECT_EQ(audio.codecs[2].clock, 8000u);
  EXPECT_EQ(audio.codecs[2].channels, 0);
  EXPECT_EQ(audio.codecs[7].name, "telephone-event");
  EXPECT_EQ(audio.codecs[7].clock, 8000u);
  ASSERT_EQ(audio.extensions.size(), 4u);
  EXPECT_EQ(audio.extensions[0].id, 1);
  EXPECT_EQ(audio.extensions[0].uri, "urn:ietf:params:rtp-hdrext:ssrc-audio-level");
  EXPECT_EQ(audio.extensions[3].id, 4);
  EXPECT_EQ(audio.extensions[3].uri, "urn:ietf:params:rtp-hdrext:sdes:mid");
  EXPECT_EQ(audio.ssrcs, (std::vector<std::uint32_t>{3735928559u}));
  EXPECT_TRUE(audio.ssrc_groups.empty());
  EXPECT_EQ(audio.cname, "Yq1vN8x2bC4dE5fG");
  EXPECT_EQ(audio.msid_stream, "7c1e9a3b-4d2f-4e8a-9b61-0f3d5c2a8e47");
  EXPECT_EQ(audio.msid_track, "a5f0c3e2-61b8-4a7d-8e19-3c2b7d4f9a06");
  EXPECT_EQ(audio.ice_ufrag, "Kp2V");
  EXPECT_EQ(audio.ice_pwd, "9uLTvgh0AJQUTi0mA2mPNkSF");
  EXPECT_EQ(audio.fingerprint, kChromeFingerprint);
  EXPECT_EQ(audio.setup, "actpass");
  EXPECT_TRUE(audio.rtcp_mux);
  EXPECT_FALSE(audio.rtcp_rsize);
  EXPECT_TRUE(audio.candidates.empty());

  const Media& video = s.media[1];
  EXPECT_EQ(video.mid, "1");
  EXPECT_EQ(video.formats.size(), 25u);
  ASSERT_EQ(video.codecs.size(), 25u);
  EXPECT_EQ(video.codecs[0].name, "VP8");
  EXPECT_EQ(video.codecs[0].rtcp_fb,
            (std::vector<std::string>{"goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"}));
  EXPECT_FALSE(video.codecs[0].apt.has_value());
  EXPECT_EQ(video.codecs[1].name, "rtx");
  EXPECT_EQ(video.codecs[1].apt, std::optional<std::uint8_t>(96));
  EXPECT_TRUE(video.codecs[1].rtcp_fb.empty());
  EXPECT_EQ(video.codecs[2].pt, 102);
  EXPECT_EQ(video.codecs[2].fmtp,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f");
  EXPECT_EQ(video.codecs[14].pt, 45);
  EXPECT_EQ(video.codecs[14].name, "AV1");
  EXPECT_EQ(video.codecs[24].name, "ulpfec");
  ASSERT_EQ(video.extensions.size(), 11u);
  EXPECT_EQ(video.extensions[0].id, 14);
  EXPECT_EQ(video.extensions[0].uri, "urn:ietf:params:rtp-hdrext:toffset");
  EXPECT_EQ(video.extensions[2].id, 13);
  EXPECT_EQ(video.extensions[2].uri, "urn:3gpp:video-orientation");
  EXPECT_EQ(video.ssrcs, (std::vector<std::uint32_t>{2231627014u, 632943048u}));
  ASSERT_EQ(video.ssrc_groups.size(), 1u);
  EXPECT_EQ(video.ssrc_groups[0].semantics, "FID");
  EXPECT_EQ(video.ssrc_groups[0].ssrcs, (std::vector<std::uint32_t>{2231627014u, 632943048u}));
  EXPECT_EQ(video.msid_track, "e2b9d1c4-7a35-4f08-b6e2-94c1d0a3f758");
  EXPECT_TRUE(video.rtcp_rsize);

  const Media& data = s.media[2];
  EXPECT_EQ(data.kind, "application");
  EXPECT_EQ(data.protocol, "UDP/DTLS/SCTP");
  EXPECT_EQ(data.formats, (std::vector<std::string>{"webrtc-datachannel"}));
  EXPECT_TRUE(data.codecs.empty());
  EXPECT_EQ(data.mid, "2");
  EXPECT_EQ(s.fingerprint_of(2), kChromeFingerprint);
}

TEST(SdpParse, FirefoxOfferWithSessionFingerprintAndFmtpFirst) {
  Session s = parse_ok(corpus("firefox_offer.sdp"));
  EXPECT_EQ(s.origin_session_id, "8291452318633925486");
  EXPECT_EQ(s.origin_version, 0u);
  ASSERT_EQ(s.media.size(), 2u);
  // Firefox writes a=fingerprint once, at session level (RFC 8122 §5 allows either).
  EXPECT_TRUE(s.media[0].fingerprint.empty());
  EXPECT_EQ(s.fingerprint_of(0),
            "sha-256 A9:0F:3B:72:C4:18:5E:D6:21:8A:F7:4C:B3:09:6D:E2:95:1A:C8:7F:40:B6:2E:D3:"
            "58:0C:A1:94:6F:E7:13:BC");
  EXPECT_EQ(s.ufrag_of(1), "5c3f8a21");
  EXPECT_EQ(s.pwd_of(1), "e9a2c1f07b3d4e5f8a6b9c0d1e2f3a4b");
  const Media& audio = s.media[0];
  ASSERT_EQ(audio.codecs.size(), 5u);
  EXPECT_EQ(audio.codecs[0].pt, 109);
  EXPECT_EQ(audio.codecs[0].fmtp, "maxplaybackrate=48000;stereo=1;useinbandfec=1");
  EXPECT_EQ(audio.codecs[1].channels, 1);  // "G722/8000/1"
  EXPECT_EQ(audio.codecs[4].fmtp, "0-15");
  ASSERT_EQ(audio.extensions.size(), 3u);
  EXPECT_EQ(audio.extensions[1].direction, "recvonly");
  EXPECT_EQ(audio.extensions[1].uri, "urn:ietf:params:rtp-hdrext:csrc-audio-level");
  EXPECT_EQ(audio.candidates,
            (std::vector<std::string>{
                "0 1 UDP 2122252543 192.168.1.23 54321 typ host",
                "2 1 TCP 2105524479 192.168.1.23 9 typ host tcptype active",
                "1 1 UDP 1686052863 203.0.113.9 54321 typ srflx raddr 192.168.1.23 rport 54321"}));
  EXPECT_TRUE(audio.end_of_candidates);
  EXPECT_EQ(audio.msid_stream, "{3e1f9c6a-2b47-4d8e-a015-7c9b3d2e6f84}");
  EXPECT_EQ(audio.cname, "{a8c1e3f5-7b29-4d6a-9e04-2f1c8b5d3a70}");
  const Media& video = s.media[1];
  ASSERT_EQ(video.codecs.size(), 11u);
  EXPECT_EQ(video.codecs[0].name, "VP8");
  EXPECT_EQ(video.codecs[0].fmtp, "max-fs=12288;max-fr=60");
  EXPECT_EQ(video.codecs[0].rtcp_fb.size(), 5u);
  EXPECT_EQ(video.codecs[1].apt, std::optional<std::uint8_t>(120));
  EXPECT_EQ(video.codecs[10].pt, 119);
  EXPECT_EQ(video.codecs[10].apt, std::optional<std::uint8_t>(122));
  // The group comes after its a=ssrc lines here.
  EXPECT_EQ(video.ssrcs, (std::vector<std::uint32_t>{3005133376u, 2843575009u}));
  ASSERT_EQ(video.ssrc_groups.size(), 1u);
  EXPECT_EQ(video.ssrc_groups[0].ssrcs, (std::vector<std::uint32_t>{3005133376u, 2843575009u}));
}

TEST(SdpParse, GStreamerOffer) {
  Session s = parse_ok(corpus("gstreamer_offer.sdp"));
  EXPECT_EQ(s.bundle, (std::vector<std::string>{"video0", "audio1"}));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].mid, "video0");
  ASSERT_EQ(s.media[0].codecs.size(), 1u);
  EXPECT_EQ(s.media[0].codecs[0].rtcp_fb, (std::vector<std::string>{"nack", "nack pli"}));
  EXPECT_EQ(s.media[0].ssrcs, (std::vector<std::uint32_t>{3484078950u}));
  EXPECT_EQ(s.media[0].cname, "user3247270427@host-b5e1f2d0");
  EXPECT_TRUE(s.media[0].msid_stream.empty());
  ASSERT_EQ(s.media[1].codecs.size(), 1u);
  EXPECT_EQ(s.media[1].codecs[0].name, "OPUS");
  EXPECT_EQ(s.media[1].codecs[0].pt, 97);
  EXPECT_EQ(s.ufrag_of(1), "ULrz");
  EXPECT_EQ(s.pwd_of(1), "/Hk3X+mp9fLtq5v0cnT1eB");
}

TEST(SdpParse, SimulcastOfferHasRidsAndNoSsrcs) {
  Session s = parse_ok(corpus("chromium_simulcast_offer.sdp"));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[1].rids, (std::vector<std::string>{"q", "h", "f"}));
  EXPECT_EQ(s.media[1].simulcast, "send q;h;f");
  EXPECT_TRUE(s.media[1].ssrcs.empty());
  EXPECT_EQ(s.media[1].direction, "sendonly");
}

TEST(SdpParse, LfOnlyLinesAndTrailingBlankLines) {
  std::string lf = corpus("chromium_audio_only_lf.sdp");
  ASSERT_EQ(lf.find('\r'), std::string::npos);
  Session s = parse_ok(lf);
  ASSERT_EQ(s.media.size(), 1u);
  EXPECT_EQ(s.media[0].ice_pwd, "Lr5tHb2mQc8yNz1kVd4fJs7p");
  EXPECT_EQ(s.media[0].candidates.size(), 2u);
  EXPECT_TRUE(s.media[0].end_of_candidates);
  EXPECT_EQ(s.origin_version, 3u);
  // The same text with CRLF gives the same session; blank lines at the end are tolerated.
  Session crlf = parse_ok(replaced(lf, "\n", "\r\n") + "\r\n\r\n");
  EXPECT_EQ(crlf.media[0].codecs.size(), s.media[0].codecs.size());
  EXPECT_EQ(crlf.media[0].candidates, s.media[0].candidates);
  EXPECT_EQ(crlf.media[0].msid_track, "c7d6e5f4-a3b2-4c10-9d8e-7f6a5b4c3d2e");
}

TEST(SdpParse, CorpusBrokenFilesNameTheirLine) {
  struct Case {
    const char* file;
    std::size_t line;
    const char* reason;
  };
  const Case cases[] = {
      {"broken_rtpmap_pt.sdp", 15, "line 15: a=rtpmap: payload type 300 out of range (0-127)"},
      {"broken_extmap_id.sdp", 20, "line 20: a=extmap: id 0 out of range (1-255)"},
      {"broken_no_version.sdp", 1,
       "line 1: the first line must be v=0, got 'o=- 1811467440785418231 0 IN IP4 0.0.0.0'"},
      {"broken_truncated.sdp", 61,
       "line 61: a=rtpmap: expected '<encoding>/<clock rate>', got 'VP'"},
      {"broken_mline.sdp", 22, "line 22: m=: port 'nine' is not a number"},
      {"broken_duplicate_mid.sdp", 35,
       "line 35: a=mid: mid 'video0' is already used by the m-section at line 7"},
      {"broken_nul.sdp", 10, "line 10: control character 0x00"},
      {"broken_session_rtpmap.sdp", 6, "line 6: a=rtpmap before any m= line"},
  };
  for (const Case& c : cases) {
    ParseError e = parse_error(corpus(c.file));
    EXPECT_EQ(e.line, c.line) << c.file;
    EXPECT_EQ(e.reason, c.reason) << c.file;
  }
}

// A small valid offer to break one line at a time (LF endings).
const std::string kSmall =
    "v=0\n"
    "o=- 1 1 IN IP4 0.0.0.0\n"
    "s=-\n"
    "t=0 0\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\n"
    "a=mid:v\n"
    "a=rtpmap:96 VP8/90000\n"
    "a=rtpmap:97 rtx/90000\n"
    "a=fmtp:97 apt=96\n"
    "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\n"
    "a=ssrc:1 cname:c\n";

TEST(SdpParse, SmallOfferParses) {
  Session s = parse_ok(kSmall);
  ASSERT_EQ(s.media.size(), 1u);
  EXPECT_EQ(s.media[0].codecs.size(), 2u);
  // Static payload types need no a=rtpmap (RFC 3551 §6); dynamic ones without it are dropped.
  Session st = parse_ok(replaced(kSmall, "96 97\n", "96 97 0 8 9 100\n"));
  ASSERT_EQ(st.media[0].codecs.size(), 5u);
  EXPECT_EQ(st.media[0].codecs[2].name, "PCMU");
  EXPECT_EQ(st.media[0].codecs[3].name, "PCMA");
  EXPECT_EQ(st.media[0].codecs[4].name, "G722");
  EXPECT_EQ(st.media[0].formats.size(), 6u);
}

TEST(SdpParse, RefusesMalformedFieldsNamingTheLine) {
  struct Case {
    std::string from, to;
    std::string reason;
  };
  const Case cases[] = {
      {"a=rtpmap:96 VP8/90000", "a=rtpmap:128 VP8/90000",
       "line 7: a=rtpmap: payload type 128 out of range (0-127)"},
      {"a=rtpmap:96 VP8/90000", "a=rtpmap:x VP8/90000",
       "line 7: a=rtpmap: payload type 'x' is not a number"},
      {"a=rtpmap:96 VP8/90000", "a=rtpmap:96",
       "line 7: a=rtpmap: expected '<payload type> "
       "<encoding>/<clock rate>', got '96'"},
      {"a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8/",
       "line 7: a=rtpmap: clock rate '' is not a number"},
      {"a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8/90000/0",
       "line 7: a=rtpmap: channels 0 out of range (1-255)"},
      {"a=rtpmap:97 rtx/90000", "a=rtpmap:96 rtx/90000",
       "line 8: a=rtpmap: payload type 96 mapped twice"},
      {"a=fmtp:97 apt=96", "a=fmtp:97 apt=200", "line 9: a=fmtp: apt 200 out of range (0-127)"},
      {"a=fmtp:97 apt=96", "a=fmtp:97",
       "line 9: a=fmtp: expected '<payload type> <parameters>', "
       "got '97'"},
      {"a=extmap:3 urn", "a=extmap:256 urn", "line 10: a=extmap: id 256 out of range (1-255)"},
      {"a=extmap:3 urn", "a=extmap:3/sideways urn", "line 10: a=extmap: bad direction 'sideways'"},
      {"a=ssrc:1 cname:c", "a=ssrc:4294967296 cname:c",
       "line 11: a=ssrc: ssrc 4294967296 out of range (0-4294967295)"},
      {"a=ssrc:1 cname:c", "a=ssrc:1",
       "line 11: a=ssrc: expected '<ssrc> <attribute>[:<value>]', "
       "got '1'"},
      {"a=mid:v", "a=mid:", "line 6: a=mid: bad identification tag ''"},
      {"m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9 UDP/TLS/RTP/SAVPF 96 96",
       "line 5: m=: payload type 96 listed twice"},
      {"m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 9 UDP/TLS/RTP/SAVPF",
       "line 5: m=: expected '<media> <port> <proto> <fmt> ...', got 'video 9 UDP/TLS/RTP/SAVPF'"},
      {"m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video 65536 UDP/TLS/RTP/SAVPF 96 97",
       "line 5: m=: port 65536 out of range (0-65535)"},
      {"o=- 1 1 IN IP4 0.0.0.0", "o=- 1 one IN IP4 0.0.0.0",
       "line 2: o=: session version 'one' is not a number"},
      {"a=mid:v", "a=mid:v\na=setup:maybe",
       "line 7: a=setup: expected actpass, active, passive or holdconn, got 'maybe'"},
      {"a=mid:v", "a=mid:v\na=ice-ufrag:abc",
       "line 7: a=ice-ufrag: 'abc' is not 4-256 ice-chars (RFC 8839 §5.4)"},
      {"a=mid:v", "a=mid:v\na=fingerprint:sha-256",
       "line 7: a=fingerprint: expected '<hash function> <fingerprint>', got 'sha-256'"},
      {"a=mid:v", "a=mid:v\na=rid:h sideways",
       "line 7: a=rid: expected '<id> send|recv ...', "
       "got 'h sideways'"},
      {"a=mid:v", "a=mid:v\na=candidate:1 1 udp 5 192.0.2.1 70000 typ host",
       "line 7: a=candidate: port 70000 out of range (0-65535)"},
      {"a=mid:v", "a=mid:v\na=mid:w", "line 7: a=mid: a second a=mid in one m-section"},
      {"a=mid:v", "a=mid:v\na=group:BUNDLE v", "line 7: a=group: belongs before the first m= line"},
      {"s=-", "s=-\na=ssrc:1 cname:x", "line 4: a=ssrc before any m= line"},
      {"a=mid:v", "a=mid:v\r\r", "line 6: control character 0x0d"},
      {"a=mid:v", "a=mid:v\n\na=rtcp-mux", "line 7: empty line"},
      {"a=mid:v", "hello", "line 6: expected '<letter>=<value>', got 'hello'"},
      {"a=mid:v", "A=mid:v", "line 6: expected '<letter>=<value>', got 'A=mid:v'"},
      {"t=0 0", "t=0 0\nv=0", "line 5: a second v= line: one SDP holds one session"},
      {"a=mid:v", "a=mid:v\ns=late", "line 7: s= belongs before the first m= line"},
  };
  for (const Case& c : cases) {
    ParseError e = parse_error(replaced(kSmall, c.from, c.to));
    EXPECT_EQ(e.reason, c.reason) << c.to;
    EXPECT_EQ(e.reason.substr(0, 5 + std::to_string(e.line).size() + 1),
              "line " + std::to_string(e.line) + ":")
        << c.to;
  }
  EXPECT_EQ(parse_error("").reason, "empty SDP: no v=0 line");
  EXPECT_EQ(parse_error("v=0\r\ns=-\r\n").reason, "no o= line (RFC 8866 §5.2)");
  EXPECT_EQ(parse_error("v=0\r\ns=-\r\n").line, 0u);
}

TEST(SdpParse, ExtmapIdRanges) {
  // RFC 8285 §4.2-4.3: 15 is valid with two-byte headers; 1-255 are all accepted.
  Session s = parse_ok(replaced(kSmall, "a=extmap:3 urn", "a=extmap:15 urn") + "a=extmap:255 x\n");
  ASSERT_EQ(s.media[0].extensions.size(), 2u);
  EXPECT_EQ(s.media[0].extensions[0].id, 15);
  EXPECT_EQ(s.media[0].extensions[1].id, 255);
  // The same id twice for different URIs is refused; repeated identically it is kept once.
  EXPECT_EQ(parse_error(kSmall + "a=extmap:3 urn:other\n").reason,
            "line 12: a=extmap: id 3 used twice");
  EXPECT_EQ(parse_ok(kSmall + "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\n")
                .media[0]
                .extensions.size(),
            1u);
}

TEST(SdpParse, LimitsAreErrorsBeforeWork) {
  // 10,000 short lines: refused at the first line past the limit.
  std::string many = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
  for (int i = 0; i < 9996; ++i) {
    many += "a=x\r\n";
  }
  ParseError e = parse_error(many);
  EXPECT_EQ(e.line, 2001u);
  EXPECT_EQ(e.reason, "line 2001: more than 2000 lines");

  // A 1 MiB attribute: refused by size before a line is read; with a larger byte limit, by the
  // line limit.
  std::string huge = kSmall + "a=fmtp:96 " + std::string(1 << 20, 'x') + "\n";
  e = parse_error(huge);
  EXPECT_EQ(e.line, 0u);
  EXPECT_EQ(e.reason,
            "SDP of " + std::to_string(huge.size()) + " bytes is over the limit of 65536 bytes");
  Limits roomy;
  roomy.max_bytes = 2 << 20;
  e = parse_error(huge, roomy);
  EXPECT_EQ(e.reason, "line 12: longer than 4096 bytes");

  std::string media_heavy = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\n";
  for (int i = 0; i < 65; ++i) {
    media_heavy += "m=audio 9 UDP/TLS/RTP/SAVPF 0\n";
  }
  EXPECT_EQ(parse_error(media_heavy).reason, "line 69: more than 64 m-sections");

  std::string formats = "m=video 9 UDP/TLS/RTP/SAVPF";
  for (int pt = 0; pt < 65; ++pt) {
    formats += " " + std::to_string(pt);
  }
  EXPECT_EQ(parse_error(replaced(kSmall, "m=video 9 UDP/TLS/RTP/SAVPF 96 97", formats)).reason,
            "line 5: m=: more than 64 formats");

  std::string ssrcs = kSmall;
  for (int i = 2; i <= 33; ++i) {
    ssrcs += "a=ssrc:" + std::to_string(i) + " cname:c\n";
  }
  EXPECT_EQ(parse_error(ssrcs).reason, "line 43: more than 32 SSRCs in one m-section");
}

TEST(SdpParse, AttributesInAnyOrderAndSessionLevelValues) {
  // a=fmtp and a=rtcp-fb before a=rtpmap, "*" feedback, session-level direction and extmap.
  Session s = parse_ok(
      "v=0\r\no=- 1 7 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "a=sendonly\r\na=extmap:5 urn:3gpp:video-orientation\r\n"
      "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=setup:passive\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 100 101\r\n"
      "a=fmtp:101 apt=100\r\na=rtcp-fb:* nack\r\na=rtcp-fb:100 nack pli\r\n"
      "a=rtpmap:101 RTX/90000\r\na=rtpmap:100 VP9/90000\r\n"
      "a=ssrc:5 msid:stream track\r\na=msid:s2 t2\r\n");
  const Media& m = s.media[0];
  EXPECT_EQ(m.direction, "sendonly");
  ASSERT_EQ(m.extensions.size(), 1u);
  EXPECT_EQ(m.extensions[0].id, 5);
  ASSERT_EQ(m.codecs.size(), 2u);
  EXPECT_EQ(m.codecs[0].rtcp_fb, (std::vector<std::string>{"nack", "nack pli"}));
  EXPECT_EQ(m.codecs[1].rtcp_fb, (std::vector<std::string>{"nack"}));
  EXPECT_EQ(m.codecs[1].apt, std::optional<std::uint8_t>(100));  // "RTX": any case
  // a=msid wins over the a=ssrc msid: form.
  EXPECT_EQ(m.msid_stream, "s2");
  EXPECT_EQ(m.msid_track, "t2");
  EXPECT_EQ(s.ufrag_of(0), "abcd");
  EXPECT_EQ(s.setup_of(0), "passive");
  EXPECT_EQ(s.setup_of(5), "passive");
  // Only the a=ssrc form: it is used.
  Session only_ssrc = parse_ok(kSmall + "a=ssrc:1 msid:st tr\n");
  EXPECT_EQ(only_ssrc.media[0].msid_stream, "st");
  EXPECT_EQ(only_ssrc.media[0].msid_track, "tr");
}

TEST(SdpFingerprint, Sha256Only) {
  EXPECT_EQ(sha256_fingerprint("sha-256 3c:4a:96:12:8f:e1:0b:7d:55:a2:c9:30:6e:f4:18:b7:2d:90:4c:"
                               "e3:71:aa:05:bf:68:d2:13:9e:c4:57:0a:f1"),
            std::optional<std::string>(kChromeFingerprint.substr(8)));
  EXPECT_EQ(sha256_fingerprint(kChromeFingerprint), kChromeFingerprint.substr(8));
  EXPECT_EQ(sha256_fingerprint("SHA-256 " + kChromeFingerprint.substr(8)),
            kChromeFingerprint.substr(8));
  EXPECT_FALSE(
      sha256_fingerprint("sha-1 3C:4A:96:12:8F:E1:0B:7D:55:A2:C9:30:6E:F4:18:B7:2D:90:4C:E3"));
  EXPECT_FALSE(sha256_fingerprint(kChromeFingerprint.substr(0, kChromeFingerprint.size() - 3)));
  EXPECT_FALSE(sha256_fingerprint(replaced(kChromeFingerprint, "3C:", "3G:")));
  EXPECT_FALSE(sha256_fingerprint(replaced(kChromeFingerprint, "3C:4A", "3C-4A")));
  EXPECT_FALSE(sha256_fingerprint(""));
}

TEST(SdpFmtp, Parameters) {
  std::string_view f = "level-asymmetry-allowed=1; packetization-mode=1;profile-level-id=42e01f";
  EXPECT_EQ(fmtp_parameter(f, "packetization-mode"), std::optional<std::string_view>("1"));
  EXPECT_EQ(fmtp_parameter(f, "Profile-Level-Id"), std::optional<std::string_view>("42e01f"));
  EXPECT_FALSE(fmtp_parameter(f, "profile").has_value());
  EXPECT_FALSE(fmtp_parameter("111/111", "apt").has_value());
}

}  // namespace
}  // namespace ringlane::control::sdp
