// AV1 layers through the SFU, driven by the Dependency Descriptor header extension (AV1 RTP
// payload format, Appendix A) as libwebrtc sends it: L1T3 and L3T3 from one publisher, B limited
// by `layer`, C taking everything. What B gets is one continuous stream (no sequence gap), the
// frames above its limit gone, the marker on the end of the highest spatial layer it gets; upper
// temporal layers come back at a switching point (DTI S), upper spatial layers only at a
// keyframe. The extension reaches B byte for byte under B's id, and C, which did not negotiate
// it, has it blanked. Without the extension AV1 passes through whole.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <vector>

#include "ringlane/dataplane/rtp/dependency_descriptor.hpp"
#include "unit/rtp/dependency_descriptor_builder.hpp"
#include "unit/sfu/harness.hpp"
#include "unit/sfu/sfu_test_builders.hpp"

namespace ringlane::sfu::testing {
namespace {

namespace dd = ringlane::testing::dd;

constexpr std::uint8_t kPt = 45;
constexpr std::uint8_t kSubPt = 45;
constexpr std::uint32_t kSubVideoC = 0x5555;
constexpr std::uint32_t kFrameTicks = 3000;
constexpr std::uint8_t kDdIn = 12;   // the publisher's id
constexpr std::uint8_t kDdOutB = 5;  // B's
constexpr std::uint8_t kTwccIn = 3;  // the transport-wide sequence number, when the test uses it
constexpr std::uint8_t kTwccOutB = 4;

// A packet as a subscriber decrypted it, with the descriptor it carried (read with the
// subscriber's own state, as its browser would).
struct Got {
  std::uint16_t sequence = 0;
  bool marker = false;
  std::uint16_t source = 0;  // the publisher's sequence number, from the payload's tag
  std::vector<std::uint8_t> dd;
  std::optional<rtp::DependencyDescriptor> descriptor;
  std::optional<std::uint16_t> twcc;  // B's transport-wide sequence number
};

// RFC 8285 §4.3: a two-byte header extension block (0x1000), as libwebrtc sends a descriptor
// longer than the 16 bytes a one-byte element holds.
std::vector<std::uint8_t> two_byte_packet(std::uint32_t ssrc, std::uint8_t pt, std::uint16_t seq,
                                          std::uint32_t ts, bool marker, std::uint8_t id,
                                          const std::vector<std::uint8_t>& value,
                                          const std::vector<std::uint8_t>& payload,
                                          std::optional<std::uint16_t> twcc = std::nullopt) {
  std::vector<std::uint8_t> block = {id, static_cast<std::uint8_t>(value.size())};
  block.insert(block.end(), value.begin(), value.end());
  if (twcc) {
    block.insert(block.end(), {kTwccIn, 2, static_cast<std::uint8_t>(*twcc >> 8),
                               static_cast<std::uint8_t>(*twcc)});
  }
  while (block.size() % 4 != 0) {
    block.push_back(0);
  }
  std::vector<std::uint8_t> p(16 + block.size() + payload.size());
  p[0] = 0x90;
  p[1] = static_cast<std::uint8_t>((marker ? 0x80 : 0) | pt);
  store_be16(&p[2], seq);
  store_be32(&p[4], ts);
  store_be32(&p[8], ssrc);
  store_be16(&p[12], 0x1000);
  store_be16(&p[14], static_cast<std::uint16_t>(block.size() / 4));
  std::copy(block.begin(), block.end(), p.begin() + 16);
  std::copy(payload.begin(), payload.end(),
            p.begin() + 16 + static_cast<std::ptrdiff_t>(block.size()));
  return p;
}

class Av1Test : public EngineTest {
 protected:
  void start(bool negotiated = true) {
    ASSERT_NO_FATAL_FAILURE(connect(a_));
    shm::TrackAdd t;
    t.session = a_.session;
    t.ssrc = kVideo;
    t.kind = shm::MediaKind::kVideo;
    t.payload_type = kPt;
    t.clock_rate = 90000;
    t.codec = shm::Codec::kAv1;
    t.dependency_descriptor_extension = negotiated ? kDdIn : 0;
    ASSERT_TRUE(command(shm::Command::kTrackAdd, shm::encode(t)));
    ASSERT_NO_FATAL_FAILURE(connect(b_));
    ASSERT_NO_FATAL_FAILURE(connect(c_));
    for (auto [sub, ssrc, id] :
         {std::tuple{&b_, kSubVideo, kDdOutB}, std::tuple{&c_, kSubVideoC, std::uint8_t{0}}}) {
      shm::Subscribe s;
      s.subscriber = sub->session;
      s.publisher = a_.session;
      s.publisher_ssrc = kVideo;
      s.ssrc = ssrc;
      s.payload_type = kSubPt;
      s.extensions[kDdIn] = id;
      if (twcc_ && sub == &b_) {
        s.extensions[kTwccIn] = kTwccOutB;
        s.transport_cc_extension = kTwccOutB;
      }
      ASSERT_TRUE(command(shm::Command::kSubscribe, shm::encode(s)));
    }
    rtcp_at(a_);
  }

  bool route_layer(std::uint8_t max_spatial, std::uint8_t max_temporal) {
    shm::RouteLayer m{b_.session, kSubVideo, max_spatial, false, max_temporal};
    return command(shm::Command::kRouteLayer, shm::encode(m));
  }

  // One layer frame in two packets: the descriptor on both (the structure on the first packet
  // of a keyframe), the AV1 aggregation header's N bit on a keyframe's first packet.
  void frame(int template_index, bool key, bool last_of_unit) {
    int id = (structure_.offset + template_index) % 64;
    for (int i = 0; i < 2; ++i) {
      dd::Frame f;
      f.start = i == 0;
      f.end = i == 1;
      f.template_id = id;
      f.frame_number = frame_number_;
      f.structure = key && i == 0 ? &structure_ : nullptr;
      std::vector<std::uint8_t> payload = {static_cast<std::uint8_t>(key && i == 0 ? 0x18 : 0x10)};
      payload.insert(payload.end(), 40, 0xA1);
      std::uint16_t seq = seq_++;
      payload.push_back(static_cast<std::uint8_t>(seq >> 8));
      payload.push_back(static_cast<std::uint8_t>(seq));
      auto value = dd::descriptor(f);
      sent_dd_.push_back(value);
      std::optional<std::uint16_t> twcc;
      if (twcc_) {
        twcc = static_cast<std::uint16_t>(0xAB00 + seq);
      }
      deliver(a_.address,
              protect_rtp(a_, two_byte_packet(kVideo, kPt, seq, ts_, last_of_unit && i == 1, kDdIn,
                                              value, payload, twcc)));
    }
    ++frame_number_;
  }
  // L1T3 in libwebrtc's order: TL0, TL2, TL1, TL2 (templates 1, 3, 2, 4; 0 for the keyframe).
  void l1t3_unit(bool key = false) {
    static const int kTemplates[] = {1, 3, 2, 4};
    frame(key ? 0 : kTemplates[units_ % 4], key, true);
    end_unit();
  }
  void l3t3_unit(bool key = false) {
    static const int kTemporal[] = {0, 2, 1, 2};
    int t = key ? 0 : kTemporal[units_ % 4];
    for (int s = 0; s < 3; ++s) {
      frame(dd::l3t3_template(s, t, key), key, s == 2);
    }
    end_unit();
  }
  void end_unit() {
    ++units_;
    ts_ += kFrameTicks;
    advance(33);
    timer();
  }

  std::vector<Got> at(Browser& b, std::uint8_t id) {
    std::vector<Got> out;
    for (auto& bytes : rtp_at(b)) {
      auto p = rtp::RtpPacket::parse(bytes);
      EXPECT_TRUE(p);
      if (!p) {
        continue;
      }
      Got g;
      g.sequence = p->sequence();
      g.marker = p->marker();
      auto payload = p->payload();
      if (payload.size() >= 2) {
        g.source = load_be16(&payload[payload.size() - 2]);
      }
      if (auto t = p->extension(kTwccOutB); t && t->size() == 2) {
        g.twcc = load_be16(t->data());
      }
      if (auto ext = id != 0 ? p->extension(id) : std::nullopt) {
        g.dd.assign(ext->begin(), ext->end());
        rtp::DependencyDescriptor d;
        auto& state = id == kDdOutB ? state_b_ : state_c_;
        if (rtp::parse_dependency_descriptor(*ext, state, d) == rtp::DependencyError::kNone) {
          g.descriptor = d;
        }
      }
      out.push_back(std::move(g));
    }
    return out;
  }
  static void expect_continuous(const std::vector<Got>& v) {
    for (std::size_t i = 1; i < v.size(); ++i) {
      EXPECT_EQ(v[i].sequence, static_cast<std::uint16_t>(v[i - 1].sequence + 1))
          << "packet " << i << " (source " << v[i].source << ")";
    }
  }
  static std::vector<int> layers(const std::vector<Got>& v, bool spatial) {
    std::vector<int> out;
    for (const Got& g : v) {
      EXPECT_TRUE(g.descriptor);
      out.push_back(!g.descriptor ? -1 : spatial ? g.descriptor->spatial : g.descriptor->temporal);
    }
    return out;
  }
  bool pli_at_publisher() {
    bool pli = false;
    for (const auto& r : rtcp_at(a_)) {
      auto fb = r.type == rtcp::kPsfb ? rtcp::parse_feedback(view(r)) : std::nullopt;
      pli = pli || (fb && fb->fmt == rtcp::kFmtPli && fb->media_ssrc == kVideo);
    }
    return pli;
  }

  bool twcc_ = false;
  dd::StructureSpec structure_;
  rtp::DependencyState state_b_;
  rtp::DependencyState state_c_;
  std::vector<std::vector<std::uint8_t>> sent_dd_;
  std::uint16_t seq_ = 65'510;  // wraps during the tests
  std::uint32_t ts_ = 90'000;
  int frame_number_ = 65'530;  // the descriptor's 16-bit frame number wraps too
  int units_ = 0;
};

// L1T3: B limited to temporal layer 0 gets the TL0 frames only, renumbered without a gap, the
// descriptor as the publisher wrote it under B's id; back to all three at the first switching
// point (the TL1 frame is one of decode target 2), not at the TL2 frame before it.
TEST_F(Av1Test, L1t3UpperTemporalLayersAreDroppedWithoutAGap) {
  structure_ = dd::l1t3();
  ASSERT_NO_FATAL_FAILURE(start());
  l1t3_unit(true);
  for (int i = 0; i < 7; ++i) {
    l1t3_unit();
  }
  auto b = at(b_, kDdOutB);
  ASSERT_EQ(b.size(), 16u);
  for (std::size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].dd, sent_dd_[i]) << i;  // unchanged, id rewritten
  }
  ASSERT_TRUE(route_layer(2, 0));
  for (int i = 0; i < 13; ++i) {
    l1t3_unit();  // units 8-20: TL0 at 8, 12, 16, 20
  }
  auto v = at(b_, kDdOutB);
  ASSERT_EQ(v.size(), 4u * 2u);
  EXPECT_EQ(layers(v, false), std::vector<int>(8, 0));
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i].marker, i % 2 == 1) << i;
  }
  b.insert(b.end(), v.begin(), v.end());
  ASSERT_TRUE(route_layer(2, 7));
  for (int i = 0; i < 7; ++i) {
    l1t3_unit();  // units 21-27: TL2 TL1 TL2 TL0 TL2 TL1 TL2
  }
  v = at(b_, kDdOutB);
  EXPECT_EQ(layers(v, false), (std::vector<int>{1, 1, 2, 2, 0, 0, 2, 2, 1, 1, 2, 2}));
  b.insert(b.end(), v.begin(), v.end());
  expect_continuous(b);
  // C got all 28 frames; it did not negotiate the descriptor, which is blanked for it.
  auto c = at(c_, kDdIn);
  EXPECT_EQ(c.size(), 28u * 2u);
  expect_continuous(c);
  for (const Got& g : c) {
    EXPECT_TRUE(g.dd.empty());
  }
}

// L3T3: B limited to spatial layer 0 gets SID 0 only, the marker on its end of frame; C gets all
// three with the marker where the publisher put it. Back up to three spatial layers only at the
// keyframe the SFU asks for; temporal 0 and spatial 0 together leave the S0 TL0 frames.
TEST_F(Av1Test, L3t3UpperSpatialLayersAreDroppedAndTheMarkerMoves) {
  structure_ = dd::l3t3();
  ASSERT_NO_FATAL_FAILURE(start());
  l3t3_unit(true);
  for (int i = 0; i < 3; ++i) {
    l3t3_unit();
  }
  auto b = at(b_, kDdOutB);
  ASSERT_EQ(b.size(), 4u * 6u);
  ASSERT_TRUE(route_layer(0, 7));
  for (int i = 0; i < 4; ++i) {
    l3t3_unit();
  }
  auto v = at(b_, kDdOutB);
  ASSERT_EQ(v.size(), 4u * 2u);
  EXPECT_EQ(layers(v, true), std::vector<int>(8, 0));
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i].marker, i % 2 == 1) << i;
  }
  b.insert(b.end(), v.begin(), v.end());
  auto c = at(c_, 0);
  ASSERT_EQ(c.size(), 8u * 6u);
  for (std::size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c[i].marker, i % 6 == 5) << i;
  }
  expect_continuous(c);
  // All three again: asked for with a PLI at once (or, when one went out less than 200 ms ago, as
  // soon as the interval is over), taken at the keyframe, not before.
  rtcp_at(a_);
  ASSERT_TRUE(route_layer(2, 7));
  advance(200);
  timer();
  EXPECT_TRUE(pli_at_publisher());
  l3t3_unit();
  l3t3_unit();
  v = at(b_, kDdOutB);
  ASSERT_EQ(v.size(), 2u * 2u);
  EXPECT_EQ(layers(v, true), std::vector<int>(4, 0));
  b.insert(b.end(), v.begin(), v.end());
  l3t3_unit(true);
  l3t3_unit();
  v = at(b_, kDdOutB);
  ASSERT_EQ(v.size(), 2u * 6u);
  EXPECT_EQ(layers(v, true), (std::vector<int>{0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2}));
  EXPECT_FALSE(v[1].marker);
  EXPECT_TRUE(v[5].marker);
  EXPECT_TRUE(v[11].marker);
  b.insert(b.end(), v.begin(), v.end());
  // Spatial 0 and temporal 0: from the next temporal unit on, the S0 TL0 frames only.
  ASSERT_TRUE(route_layer(0, 0));
  for (int i = 0; i < 8; ++i) {
    l3t3_unit();
  }
  v = at(b_, kDdOutB);
  ASSERT_EQ(v.size(), 2u * 2u);
  EXPECT_EQ(layers(v, true), std::vector<int>(4, 0));
  EXPECT_EQ(layers(v, false), std::vector<int>(4, 0));
  EXPECT_TRUE(v[1].marker && v[3].marker);
  b.insert(b.end(), v.begin(), v.end());
  expect_continuous(b);
}

// Without the extension negotiated (or before any structure) AV1 goes to every route whole: a
// `layer` limit cannot be applied to what the SFU cannot read.
TEST_F(Av1Test, WithoutTheExtensionEverythingPasses) {
  structure_ = dd::l1t3();
  ASSERT_NO_FATAL_FAILURE(start(false));
  ASSERT_TRUE(route_layer(0, 0));
  l1t3_unit(true);
  for (int i = 0; i < 7; ++i) {
    l1t3_unit();
  }
  auto v = at(b_, 0);
  EXPECT_EQ(v.size(), 16u);
  expect_continuous(v);
}

// Malformed descriptors (cut short, or naming no template) are passed on without layer
// decisions, and the stream's numbering continues across them.
TEST_F(Av1Test, MalformedDescriptorsPassWithoutBreakingTheNumbering) {
  structure_ = dd::l1t3();
  ASSERT_NO_FATAL_FAILURE(start());
  l1t3_unit(true);
  ASSERT_TRUE(route_layer(2, 0));
  std::uint64_t in = counters().rtp_in;
  for (const auto& bad :
       std::vector<std::vector<std::uint8_t>>{{0x80}, {0xC0, 0x00}, {0xFF, 0, 1}}) {
    std::uint16_t seq = seq_++;
    std::vector<std::uint8_t> payload = {0x10, 0x00, static_cast<std::uint8_t>(seq >> 8),
                                         static_cast<std::uint8_t>(seq)};
    deliver(a_.address,
            protect_rtp(a_, two_byte_packet(kVideo, kPt, seq, ts_, true, kDdIn, bad, payload)));
  }
  EXPECT_EQ(counters().rtp_in, in + 3);
  EXPECT_EQ(counters().dependency_malformed, 3u);
  for (int i = 0; i < 8; ++i) {
    l1t3_unit();
  }
  auto v = at(b_, kDdOutB);
  // The keyframe, the three passed on, the TL0 frames of units 4 and 8.
  EXPECT_EQ(v.size(), 2u + 3u + 2u * 2u);
  expect_continuous(v);
}

// The SFU numbers B's transport itself in two-byte header blocks too (a keyframe's descriptor
// needs one): consecutive from packet to packet, none of the publisher's numbers.
TEST_F(Av1Test, TransportSequenceIsRewrittenInTwoByteHeaders) {
  structure_ = dd::l1t3();
  twcc_ = true;
  ASSERT_NO_FATAL_FAILURE(start());
  l1t3_unit(true);
  for (int i = 0; i < 3; ++i) {
    l1t3_unit();
  }
  auto v = at(b_, kDdOutB);
  ASSERT_EQ(v.size(), 8u);
  for (std::size_t i = 0; i < v.size(); ++i) {
    ASSERT_TRUE(v[i].twcc) << i;
    EXPECT_EQ(*v[i].twcc, static_cast<std::uint16_t>(*v[0].twcc + i)) << i;
    EXPECT_NE(*v[i].twcc, static_cast<std::uint16_t>(0xAB00 + v[i].source)) << i;
    EXPECT_EQ(v[i].dd, sent_dd_[i]) << i;
  }
}

// The ring's TrackAdd carries the descriptor's id (one-byte header ids only).
TEST(TrackAddCommand, CarriesTheDependencyDescriptorId) {
  shm::TrackAdd m;
  m.session = shm::SessionId{3};
  m.ssrc = 0x1234;
  m.kind = shm::MediaKind::kVideo;
  m.codec = shm::Codec::kAv1;
  m.dependency_descriptor_extension = 12;
  auto back = shm::decode_track_add(shm::encode(m));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->dependency_descriptor_extension, 12);
  m.dependency_descriptor_extension = 15;
  EXPECT_FALSE(shm::decode_track_add(shm::encode(m)));
}

}  // namespace
}  // namespace ringlane::sfu::testing
