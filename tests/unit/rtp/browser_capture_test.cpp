// Real RTP headers from Chromium (tests/unit/rtp/fixtures/README.md): every packet parses,
// and what it carries agrees with the SDP the browser signaled. The captures are SRTP, so
// they are read with parse_srtp_header(): a padding count is inside the ciphertext.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "ringlane/dataplane/rtp/demux.hpp"
#include "ringlane/dataplane/rtp/packet.hpp"
#include "unit/test_util.hpp"

namespace ringlane::rtp {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream f(std::string(RINGLANE_FIXTURES) + "/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Sdp {
  std::map<std::string, int> extmap;  // URI -> id
  std::set<std::uint32_t> ssrcs;
  std::set<int> payload_types;
  std::map<std::uint32_t, std::string> kind_of_ssrc;
};

Sdp parse_sdp(const std::string& text) {
  Sdp sdp;
  std::istringstream in(text);
  std::string line;
  std::string kind;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.rfind("m=", 0) == 0) {
      std::istringstream m(line.substr(2));
      std::string port, proto;
      m >> kind >> port >> proto;
      for (int pt; m >> pt;)
        sdp.payload_types.insert(pt);
    } else if (line.rfind("a=extmap:", 0) == 0) {
      auto space = line.find(' ');
      sdp.extmap[line.substr(space + 1)] = std::stoi(line.substr(9, space - 9));
    } else if (line.rfind("a=ssrc:", 0) == 0) {
      auto ssrc = static_cast<std::uint32_t>(std::stoul(line.substr(7)));
      sdp.ssrcs.insert(ssrc);
      sdp.kind_of_ssrc[ssrc] = kind;
    }
  }
  return sdp;
}

std::vector<std::vector<std::uint8_t>> packets() {
  std::vector<std::vector<std::uint8_t>> out;
  std::istringstream in(fixture("chrome_rtp.hex"));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty())
      out.push_back(ringlane::testing::from_hex(line));
  }
  return out;
}

TEST(BrowserCapture, EveryChromePacketParsesAndMatchesItsSdp) {
  Sdp sdp = parse_sdp(fixture("chrome_offer.sdp"));
  auto all = packets();
  ASSERT_GE(all.size(), 40u);
  const int tcc =
      sdp.extmap.at("http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01");
  const int abs_send_time =
      sdp.extmap.at("http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time");
  const int audio_level = sdp.extmap.at("urn:ietf:params:rtp-hdrext:ssrc-audio-level");
  const int mid = sdp.extmap.at("urn:ietf:params:rtp-hdrext:sdes:mid");
  std::map<std::uint32_t, std::uint16_t> last_seq;
  std::set<std::uint16_t> tcc_seen;
  int audio = 0, video = 0, with_mid = 0, padded = 0;
  std::int32_t last_tcc = -1;
  for (auto& bytes : all) {
    ASSERT_EQ(classify(bytes), PacketKind::kRtp);
    RtpError e{};
    auto p = RtpPacket::parse_srtp_header(bytes, &e);
    ASSERT_TRUE(p) << to_string(e);
    EXPECT_EQ(p->header_size() + p->payload().size(), bytes.size());
    if (p->padding()) {
      ++padded;  // RTX padding probes; their count byte is encrypted
    }
    ASSERT_TRUE(sdp.ssrcs.count(p->ssrc())) << p->ssrc();
    EXPECT_TRUE(sdp.payload_types.count(p->payload_type())) << int(p->payload_type());
    EXPECT_EQ(p->extension_profile(), RtpPacket::kOneByteProfile);
    // Every packet carries the transport-wide sequence number and abs-send-time.
    auto t = p->extension(static_cast<std::uint8_t>(tcc));
    ASSERT_TRUE(t);
    ASSERT_EQ(t->size(), 2u);
    std::uint16_t tseq = load_be16(t->data());
    EXPECT_TRUE(tcc_seen.insert(tseq).second) << "transport-cc sequence repeated";
    if (last_tcc >= 0) {
      EXPECT_LT(static_cast<std::uint16_t>(tseq - last_tcc), 1000)
          << "transport-cc jumps backwards";
    }
    last_tcc = tseq;
    auto ast = p->extension(static_cast<std::uint8_t>(abs_send_time));
    ASSERT_TRUE(ast);
    EXPECT_EQ(ast->size(), 3u);
    // Per SSRC the RTP sequence number counts up by one in capture order.
    if (auto it = last_seq.find(p->ssrc()); it != last_seq.end()) {
      EXPECT_EQ(static_cast<std::uint16_t>(it->second + 1), p->sequence());
    }
    last_seq[p->ssrc()] = p->sequence();
    if (auto m = p->extension(static_cast<std::uint8_t>(mid))) {
      ++with_mid;
      EXPECT_TRUE(as_string(*m) == "0" || as_string(*m) == "1") << as_string(*m);
    }
    if (sdp.kind_of_ssrc[p->ssrc()] == "audio") {
      ++audio;
      EXPECT_EQ(p->payload_type(), 111);  // Opus, first in the audio m-line
      auto level = p->extension(static_cast<std::uint8_t>(audio_level));
      ASSERT_TRUE(level);
      EXPECT_EQ(level->size(), 1u);
    } else {
      ++video;
    }
  }
  EXPECT_GT(audio, 0);
  EXPECT_GT(video, 0);
  EXPECT_GT(with_mid, 0);
  EXPECT_GT(padded, 0);
}

TEST(BrowserCapture, RewriteTouchesOnlyTheRewrittenBytes) {
  Sdp sdp = parse_sdp(fixture("chrome_offer.sdp"));
  const auto tcc = static_cast<std::uint8_t>(
      sdp.extmap.at("http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"));
  for (const auto& original : packets()) {
    auto bytes = original;
    auto p = RtpPacket::parse_srtp_header(bytes);
    ASSERT_TRUE(p);
    auto t = p->extension(tcc);
    ASSERT_TRUE(t);
    std::size_t tcc_at = static_cast<std::size_t>(t->data() - bytes.data());
    p->set_ssrc(0x01020304);
    p->set_sequence(0x0506);
    p->set_timestamp(0x0708090a);
    p->set_payload_type(100);
    std::uint8_t v[2] = {0xab, 0xcd};
    ASSERT_TRUE(p->set_extension(tcc, v));
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      bool rewritten = (i >= 1 && i < 12) || i == tcc_at || i == tcc_at + 1;
      if (!rewritten) {
        EXPECT_EQ(bytes[i], original[i]) << "byte " << i;
      }
    }
    EXPECT_EQ(bytes[1] & 0x80, original[1] & 0x80);  // the marker bit is kept
    auto q = RtpPacket::parse_srtp_header(bytes);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->ssrc(), 0x01020304u);
    EXPECT_EQ(q->sequence(), 0x0506);
    EXPECT_EQ(q->timestamp(), 0x0708090au);
    EXPECT_EQ(q->payload_type(), 100);
    EXPECT_EQ(load_be16(q->extension(tcc)->data()), 0xabcd);
  }
}

}  // namespace
}  // namespace ringlane::rtp
