// Layers inside one stream through the SFU: VP8 temporal layers (RFC 7741 §4.2 TID and Y) and
// VP9 spatial and temporal layers (RFC 9628 §4.2 SID, TID, U). A subscriber that wants fewer
// layers gets the packets of the others dropped, and still sees one continuous stream: sequence
// numbers without a gap, the VP8 picture id +1 per frame it gets, TL0PICIDX untouched, the
// marker on the last packet of the highest VP9 spatial layer it gets. Upper layers come back
// only where the codec allows. NACKs after drops are answered with the packet the subscriber
// names. Checked on the wire with real SRTP, as each subscriber decrypts it; the other
// subscriber of the same track keeps everything.
#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "ringlane/dataplane/rtp/codec.hpp"
#include "unit/sfu/harness.hpp"
#include "unit/sfu/sfu_test_builders.hpp"

namespace ringlane::sfu::testing {
namespace {

constexpr std::uint8_t kPt = 96;
constexpr std::uint8_t kSubPt = 100;
constexpr std::uint32_t kSubVideoC = 0x5555;
constexpr std::uint32_t kFrameTicks = 3000;

// A packet as a subscriber decrypted it.
struct Got {
  std::uint16_t sequence = 0;
  std::uint32_t timestamp = 0;
  bool marker = false;
  std::uint16_t source = 0;  // the publisher's sequence number, from the payload's tag
  std::vector<std::uint8_t> payload;
  rtp::Vp8Descriptor vp8;
  rtp::Vp9Descriptor vp9;
};

class SvcTest : public EngineTest {
 protected:
  void start(shm::Codec codec) {
    codec_ = codec;
    ASSERT_NO_FATAL_FAILURE(connect(a_));
    shm::TrackAdd t;
    t.session = a_.session;
    t.ssrc = kVideo;
    t.kind = shm::MediaKind::kVideo;
    t.payload_type = kPt;
    t.clock_rate = 90000;
    t.codec = codec;
    ASSERT_TRUE(command(shm::Command::kTrackAdd, shm::encode(t)));
    ASSERT_NO_FATAL_FAILURE(connect(b_));
    ASSERT_NO_FATAL_FAILURE(connect(c_));
    ASSERT_TRUE(subscribe(b_, a_, kVideo, kSubVideo, kSubPt));
    ASSERT_TRUE(subscribe(c_, a_, kVideo, kSubVideoC, kSubPt));
    rtcp_at(a_);
  }

  bool route_layer(std::uint8_t max_spatial, std::uint8_t max_temporal) {
    shm::RouteLayer m{b_.session, kSubVideo, max_spatial, false, max_temporal};
    return command(shm::Command::kRouteLayer, shm::encode(m));
  }

  void send(std::vector<std::uint8_t> payload, bool marker, bool lose = false) {
    std::uint16_t seq = seq_++;
    payload.push_back(static_cast<std::uint8_t>(seq >> 8));
    payload.push_back(static_cast<std::uint8_t>(seq));
    if (lose) {
      lost_ = seq;
      return;  // lost on the way to the SFU
    }
    deliver(a_.address, protect_rtp(a_, build_packet(kVideo, kPt, seq, ts_, marker, {}, payload)));
  }

  // RFC 7741 §4.2: X, I (15 bits), L, T; the §4.3 payload header on a frame's first packet.
  static std::vector<std::uint8_t> vp8(bool start, bool key, std::uint16_t pid, std::uint8_t tl0,
                                       std::uint8_t tid, bool sync) {
    std::vector<std::uint8_t> p = {
        static_cast<std::uint8_t>(0x80 | (start ? 0x10 : 0)),
        0xE0,
        static_cast<std::uint8_t>(0x80 | (pid >> 8)),
        static_cast<std::uint8_t>(pid),
        tl0,
        static_cast<std::uint8_t>((tid << 6) | (sync ? 0x20 : 0)),
    };
    if (start) {
      p.insert(p.end(), {static_cast<std::uint8_t>(key ? 0x00 : 0x01), 0x02, 0x00});
    }
    p.insert(p.end(), 30, 0x5A);
    return p;
  }
  // A VP8 frame of two packets (TL0PICIDX +1 at each TID 0 frame after the first).
  void vp8_frame(std::uint8_t tid, bool sync, bool key = false, int lose = -1) {
    if (frames_ > 0) {
      pid_ = static_cast<std::uint16_t>((pid_ + 1) & 0x7FFF);
      ts_ += kFrameTicks;
      if (tid == 0) {
        ++tl0_;
      }
    }
    ++frames_;
    for (int i = 0; i < 2; ++i) {
      send(vp8(i == 0, key, pid_, tl0_, tid, sync), i == 1, i == lose);
    }
    advance(33);
    timer();
  }
  // libwebrtc's three-layer pattern: TID 0, 2 (sync), 1 (sync), 2.
  void vp8_pattern(int frames) {
    for (int i = 0; i < frames; ++i) {
      int k = (frames_) % 4;
      vp8_frame(k == 0 ? 0 : k == 2 ? 1 : 2, k == 1 || k == 2);
    }
  }

  // RFC 9628 §4.2, non-flexible mode: I (15 bits), L (TID, U, SID, D), TL0PICIDX; the scalability
  // structure (three layers with their sizes) on the keyframe's base layer.
  static std::vector<std::uint8_t> vp9(bool inter, bool begin, bool end, std::uint16_t pid,
                                       std::uint8_t tid, bool up, std::uint8_t sid,
                                       std::uint8_t tl0, bool ss) {
    std::vector<std::uint8_t> p = {
        static_cast<std::uint8_t>(0x80 | (inter ? 0x40 : 0) | 0x20 | (begin ? 0x08 : 0) |
                                  (end ? 0x04 : 0) | (ss ? 0x02 : 0)),
        static_cast<std::uint8_t>(0x80 | (pid >> 8)),
        static_cast<std::uint8_t>(pid),
        static_cast<std::uint8_t>((tid << 5) | (up ? 0x10 : 0) | (sid << 1) | (sid > 0 ? 1 : 0)),
        tl0,
    };
    if (ss) {
      p.push_back(static_cast<std::uint8_t>((2 << 5) | 0x10));  // N_S = 2, Y
      for (int s = 0; s < 3; ++s) {
        std::uint16_t w = static_cast<std::uint16_t>(320 << s);
        std::uint16_t h = static_cast<std::uint16_t>(180 << s);
        p.insert(p.end(), {static_cast<std::uint8_t>(w >> 8), static_cast<std::uint8_t>(w),
                           static_cast<std::uint8_t>(h >> 8), static_cast<std::uint8_t>(h)});
      }
    }
    p.insert(p.end(), 30, 0x9A);
    return p;
  }
  // A VP9 picture: three spatial layers of two packets each; the marker on the last packet of
  // the last layer (libwebrtc's end of a superframe).
  void vp9_picture(std::uint8_t tid, bool up, bool key = false) {
    if (frames_ > 0) {
      pid_ = static_cast<std::uint16_t>((pid_ + 1) & 0x7FFF);
      ts_ += kFrameTicks;
      if (tid == 0) {
        ++tl0_;
      }
    }
    ++frames_;
    for (std::uint8_t sid = 0; sid < 3; ++sid) {
      for (int i = 0; i < 2; ++i) {
        send(vp9(!key, i == 0, i == 1, pid_, tid, up, sid, tl0_, key && sid == 0 && i == 0),
             sid == 2 && i == 1);
      }
    }
    advance(33);
    timer();
  }
  void vp9_pattern(int pictures) {
    for (int i = 0; i < pictures; ++i) {
      int k = frames_ % 4;
      vp9_picture(k == 0 ? 0 : k == 2 ? 1 : 2, k == 1 || k == 2);
    }
  }

  // What `b` received, decrypted; `lose` drops a datagram before it is (by its sequence
  // number, which SRTP leaves in the clear), so a NACK may ask for it again.
  std::vector<Got> at(Browser& b, const std::vector<std::uint16_t>& lose = {}) {
    std::vector<Got> out;
    route();
    for (auto it = b.inbox.begin(); it != b.inbox.end();) {
      bool rtp = rtp::classify(it->bytes) == rtp::PacketKind::kRtp && it->bytes.size() >= 12;
      if (rtp && std::find(lose.begin(), lose.end(), load_be16(&it->bytes[2])) != lose.end()) {
        it = b.inbox.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& bytes : rtp_at(b)) {
      auto p = rtp::RtpPacket::parse(bytes);
      EXPECT_TRUE(p);
      if (!p) {
        continue;
      }
      Got g;
      g.sequence = p->sequence();
      g.timestamp = p->timestamp();
      g.marker = p->marker();
      g.payload.assign(p->payload().begin(), p->payload().end());
      if (g.payload.size() >= 2) {
        g.source = load_be16(&g.payload[g.payload.size() - 2]);
      }
      // What the publisher sent malformed is passed on as it came, and not parsed here.
      if (codec_ == shm::Codec::kVp8) {
        g.vp8 = rtp::parse_vp8(g.payload).value_or(rtp::Vp8Descriptor{});
      } else {
        g.vp9 = rtp::parse_vp9(g.payload).value_or(rtp::Vp9Descriptor{});
      }
      out.push_back(std::move(g));
    }
    return out;
  }

  // Sequence +1 from packet to packet; for VP8 the picture id +1 per frame, TL0PICIDX as the
  // publisher numbered it (+1 per TID 0 frame), the timestamp the same within a frame.
  static void expect_continuous(const std::vector<Got>& v) {
    for (std::size_t i = 1; i < v.size(); ++i) {
      const Got& g = v[i];
      const Got& p = v[i - 1];
      SCOPED_TRACE(::testing::Message() << "packet " << i << " (source " << g.source << ")");
      EXPECT_EQ(g.sequence, static_cast<std::uint16_t>(p.sequence + 1));
      if (g.vp8.has_picture_id) {
        bool new_frame = g.vp8.start && g.vp8.partition == 0;
        EXPECT_EQ(g.vp8.picture_id, (p.vp8.picture_id + (new_frame ? 1 : 0)) & 0x7FFF);
        EXPECT_EQ(g.vp8.tl0picidx,
                  static_cast<std::uint8_t>(p.vp8.tl0picidx + (new_frame && g.vp8.tid == 0)));
        EXPECT_EQ(g.timestamp == p.timestamp, !new_frame);
      }
    }
  }
  static std::vector<std::uint8_t> tids(const std::vector<Got>& v) {
    std::vector<std::uint8_t> out;
    for (const Got& g : v) {
      out.push_back(g.vp8.has_tid ? g.vp8.tid : g.vp9.tid);
    }
    return out;
  }

  shm::Codec codec_ = shm::Codec::kVp8;
  std::uint16_t seq_ = 65'500;  // wraps during the tests
  std::uint32_t ts_ = 4'294'950'000u;
  std::uint16_t pid_ = 0x7FF0;  // the 15-bit picture id wraps too
  std::uint8_t tl0_ = 250;
  int frames_ = 0;
  std::uint16_t lost_ = 0;
};

// VP8 L1T3: B limited to TID 0 gets only the TID 0 frames, numbered as one stream (no sequence
// gap, picture id +1 per frame, TL0PICIDX untouched); C, unlimited, gets every packet.
TEST_F(SvcTest, Vp8UpperTemporalLayersAreDroppedWithoutAGap) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp8));
  vp8_frame(0, false, true);
  vp8_pattern(7);
  auto b = at(b_);
  ASSERT_EQ(b.size(), 16u);
  ASSERT_TRUE(route_layer(2, 0));
  vp8_pattern(12);
  auto more = at(b_);
  // 12 frames from a TID 0 one: 3 of them TID 0, two packets each.
  ASSERT_EQ(more.size(), 6u);
  EXPECT_EQ(tids(more), std::vector<std::uint8_t>(6, 0));
  b.insert(b.end(), more.begin(), more.end());
  expect_continuous(b);
  auto c = at(c_);
  EXPECT_EQ(c.size(), 16u + 24u);
  expect_continuous(c);
  // TID <= 1: TID 2 frames go, TID 1 frames come back at their layer sync (Y).
  ASSERT_TRUE(route_layer(2, 1));
  vp8_pattern(8);
  more = at(b_);
  EXPECT_EQ(tids(more), (std::vector<std::uint8_t>{0, 0, 1, 1, 0, 0, 1, 1}));
  b.insert(b.end(), more.begin(), more.end());
  expect_continuous(b);
}

// Up only at a layer sync: a TID 2 frame without Y after the limit is lifted stays dropped (it
// refers to a TID 2 frame B never got); the next TID 2 frame with Y starts layer 2. Going down
// takes effect at the next frame start, never inside a frame.
TEST_F(SvcTest, Vp8TemporalLayerComesBackOnlyAtALayerSync) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp8));
  vp8_frame(0, false, true);
  ASSERT_TRUE(route_layer(2, 0));
  vp8_frame(2, true);
  vp8_frame(1, true);
  EXPECT_EQ(tids(at(b_)), (std::vector<std::uint8_t>{0, 0}));
  ASSERT_TRUE(route_layer(2, 2));
  vp8_frame(2, false);  // not a sync point: dropped
  vp8_frame(0, false);
  vp8_frame(2, false);  // still no sync for layer 2 (nor 1)
  vp8_frame(1, true);   // layer 1 may start
  vp8_frame(2, false);  // layer 2 may not
  vp8_frame(0, false);
  vp8_frame(2, true);  // layer 2 starts
  vp8_frame(1, false);
  vp8_frame(2, false);
  auto v = at(b_);
  EXPECT_EQ(tids(v), (std::vector<std::uint8_t>{0, 0, 1, 1, 0, 0, 2, 2, 1, 1, 2, 2}));
  expect_continuous(v);
  // A keyframe starts every layer the route may have at once.
  ASSERT_TRUE(route_layer(2, 0));
  vp8_frame(0, false);
  vp8_frame(2, false);
  ASSERT_TRUE(route_layer(2, 2));
  vp8_frame(2, false);
  vp8_frame(0, false, true);
  vp8_frame(2, false);
  EXPECT_EQ(tids(at(b_)), (std::vector<std::uint8_t>{0, 0, 0, 0, 2, 2}));
}

// B loses a packet sent after drops and NACKs it by the number it saw: the SFU resends the very
// packet (by its source tag), under that number and picture id; a NACK of a packet from before
// the drops began is numbered as then.
TEST_F(SvcTest, NackAfterDropsNamesThePacketTheSubscriberSaw) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp8));
  vp8_frame(0, false, true);
  vp8_pattern(3);
  auto early = at(c_);  // C gets what B gets until the limit, numbered the same
  ASSERT_EQ(early.size(), 8u);
  at(b_, {early[3].sequence});
  ASSERT_TRUE(route_layer(2, 0));
  vp8_pattern(8);
  // B's numbers after the drops: the TID 0 frames, consecutive from early's last.
  auto c = at(c_);
  ASSERT_EQ(c.size(), 16u);
  std::vector<Got> v = {c[0], c[1], c[8], c[9]};
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i].sequence = static_cast<std::uint16_t>(early.back().sequence + 1 + i);
    v[i].vp8.picture_id =
        static_cast<std::uint16_t>((early.back().vp8.picture_id + 1 + i / 2) & 0x7FFF);
  }
  auto got = at(b_, {v[1].sequence, v[2].sequence});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].source, v[0].source);
  EXPECT_EQ(got[0].sequence, v[0].sequence);
  EXPECT_EQ(got[1].source, v[3].source);
  EXPECT_EQ(got[1].sequence, v[3].sequence);
  EXPECT_EQ(got[1].vp8.picture_id, v[3].vp8.picture_id);
  for (const Got& want : {v[2], v[1], early[3]}) {
    SCOPED_TRACE(::testing::Message() << "NACK of " << want.sequence);
    std::vector<std::uint8_t> nack(16);
    std::vector<std::uint16_t> lost = {want.sequence};
    nack.resize(rtcp::build_nack(nack, 0xB0B0, kSubVideo, lost));
    send_rtcp(b_, nack);
    auto resent = at(b_);
    ASSERT_EQ(resent.size(), 1u);
    EXPECT_EQ(resent[0].sequence, want.sequence);
    EXPECT_EQ(resent[0].source, want.source);
    EXPECT_EQ(resent[0].vp8.picture_id, want.vp8.picture_id);
    EXPECT_EQ(resent[0].vp8.tl0picidx, want.vp8.tl0picidx);
    EXPECT_EQ(resent[0].timestamp, want.timestamp);
    EXPECT_TRUE(at(c_).empty());
  }
}

// A packet lost upstream in a frame B gets keeps its number, though packets around it were
// dropped: B sees the gap, NACKs that number, and the SFU asks the publisher for that very packet.
TEST_F(SvcTest, NackOfAPacketLostUpstreamAfterDropsAsksThePublisherForIt) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp8));
  vp8_frame(0, false, true);
  ASSERT_TRUE(route_layer(2, 0));
  vp8_frame(2, true);
  vp8_frame(1, true);
  vp8_frame(2, false);
  vp8_frame(0, false, false, 0);  // forwarded to B, its first packet lost upstream
  std::uint16_t lost = lost_;
  vp8_frame(2, true);
  vp8_frame(0, false);
  auto v = at(b_);
  ASSERT_EQ(v.size(), 2u + 1u + 2u);
  EXPECT_EQ(v[2].sequence, static_cast<std::uint16_t>(v[1].sequence + 2));
  EXPECT_EQ(v[3].sequence, static_cast<std::uint16_t>(v[2].sequence + 1));
  EXPECT_EQ(v[2].vp8.picture_id, (v[1].vp8.picture_id + 1) & 0x7FFF);
  EXPECT_EQ(v[3].vp8.picture_id, (v[2].vp8.picture_id + 1) & 0x7FFF);
  rtcp_at(a_);
  std::vector<std::uint8_t> nack(16);
  std::vector<std::uint16_t> missing = {static_cast<std::uint16_t>(v[1].sequence + 1)};
  nack.resize(rtcp::build_nack(nack, 0xB0B0, kSubVideo, missing));
  send_rtcp(b_, nack);
  std::vector<std::uint16_t> asked;
  for (const auto& r : rtcp_at(a_)) {
    auto fb = r.type == rtcp::kRtpfb ? rtcp::parse_feedback(view(r)) : std::nullopt;
    if (fb && fb->fmt == rtcp::kFmtNack && fb->media_ssrc == kVideo) {
      for (std::uint16_t x : rtcp::parse_nack(*fb).value_or(std::vector<std::uint16_t>{})) {
        asked.push_back(x);
      }
    }
  }
  EXPECT_EQ(asked, std::vector<std::uint16_t>{lost});
  EXPECT_TRUE(at(b_).empty());
}

// VP9 SVC (L3T3_KEY): B limited to spatial layer 0 gets only SID 0, with the marker on its last
// packet of each picture, numbered without gaps; C gets all three layers with the marker where
// the publisher put it. Spatial layers come back only at a keyframe, which the SFU asks for.
TEST_F(SvcTest, Vp9UpperSpatialLayersAreDroppedAndTheMarkerMoves) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp9));
  vp9_picture(0, false, true);
  vp9_pattern(3);
  auto b = at(b_);
  ASSERT_EQ(b.size(), 4u * 6u);
  ASSERT_TRUE(route_layer(0, 7));
  vp9_pattern(4);
  auto v = at(b_);
  ASSERT_EQ(v.size(), 4u * 2u);
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i].vp9.sid, 0);
    EXPECT_EQ(v[i].marker, i % 2 == 1) << i;
  }
  b.insert(b.end(), v.begin(), v.end());
  expect_continuous(b);
  auto c = at(c_);
  ASSERT_EQ(c.size(), 8u * 6u);
  for (std::size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(c[i].marker, i % 6 == 5) << i;
  }
  expect_continuous(c);
  // Back up to all three: not before a keyframe, asked for at once (or, when one went out less
  // than 200 ms ago, as soon as the interval is over).
  rtcp_at(a_);
  ASSERT_TRUE(route_layer(2, 7));
  advance(200);
  timer();
  bool pli = false;
  for (const auto& r : rtcp_at(a_)) {
    auto fb = r.type == rtcp::kPsfb ? rtcp::parse_feedback(view(r)) : std::nullopt;
    pli = pli || (fb && fb->fmt == rtcp::kFmtPli && fb->media_ssrc == kVideo);
  }
  EXPECT_TRUE(pli);
  vp9_pattern(2);
  v = at(b_);
  ASSERT_EQ(v.size(), 2u * 2u);
  vp9_picture(0, false, true);
  vp9_picture(2, true);
  auto after = at(b_);
  ASSERT_EQ(after.size(), 2u * 6u);
  EXPECT_EQ(after[5].vp9.sid, 2);
  EXPECT_TRUE(after[11].marker);
  EXPECT_FALSE(after[1].marker);
  b.insert(b.end(), v.begin(), v.end());
  b.insert(b.end(), after.begin(), after.end());
  expect_continuous(b);
}

// VP9 temporal: B limited to TID 0 and spatial 1 gets SID 0-1 of TID 0 pictures only; TID 1
// returns at a switching-up point (U) or at the next TID 0 picture.
TEST_F(SvcTest, Vp9TemporalAndSpatialLimitsTogether) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp9));
  vp9_picture(0, false, true);
  at(b_);
  ASSERT_TRUE(route_layer(1, 0));
  vp9_pattern(7);  // TIDs 2 1 2 0 2 1 2
  auto v = at(b_);
  ASSERT_EQ(v.size(), 4u);  // the TID 0 picture, SID 0 and 1
  EXPECT_EQ(tids(v), (std::vector<std::uint8_t>(4, 0)));
  EXPECT_EQ(v[1].vp9.sid, 0);
  EXPECT_EQ(v[3].vp9.sid, 1);
  EXPECT_FALSE(v[1].marker);
  EXPECT_TRUE(v[3].marker);
  expect_continuous(v);
  ASSERT_TRUE(route_layer(1, 1));
  vp9_picture(1, false);  // no U: dropped
  vp9_picture(0, false);  // a TL0 picture: layer 1 may follow
  vp9_picture(1, false);
  vp9_picture(2, true);  // above the limit
  v = at(b_);
  EXPECT_EQ(tids(v), (std::vector<std::uint8_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  expect_continuous(v);
  EXPECT_EQ(at(c_).size(), 12u * 6u);
}

// RFC 9628 §4.2 parsing: every field where the descriptor says, and every truncation refused.
TEST(Vp9Descriptor, ParsesEveryFieldAndRefusesEveryTruncation) {
  // I (15 bits), L, non-flexible, B, V: SS with three sizes and a group of two pictures.
  std::vector<std::uint8_t> p = {0xAA, 0x81,           0x23, (5 << 5) | 0x10 | (2 << 1) | 1,
                                 77,   (2 << 5) | 0x18};
  for (int i = 0; i < 12; ++i) {
    p.push_back(static_cast<std::uint8_t>(i));
  }
  p.insert(p.end(), {2, (0 << 5) | (1 << 2), 4, (1 << 5) | 0x10 | (2 << 2), 1, 2});
  std::size_t size = p.size();
  p.push_back(0xEE);  // the VP9 payload
  auto d = rtp::parse_vp9(p);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, size);
  EXPECT_TRUE(d->has_picture_id && d->long_picture_id);
  EXPECT_EQ(d->picture_id, 0x0123);
  EXPECT_FALSE(d->inter);
  EXPECT_TRUE(d->begin);
  EXPECT_FALSE(d->end);
  EXPECT_EQ(d->tid, 5);
  EXPECT_TRUE(d->switching_up);
  EXPECT_EQ(d->sid, 2);
  EXPECT_TRUE(d->inter_layer);
  EXPECT_EQ(d->tl0picidx, 77);
  EXPECT_EQ(d->ss_spatial_layers, 3);
  for (std::size_t n = 0; n < size; ++n) {
    EXPECT_FALSE(rtp::parse_vp9(Bytes(p.data(), n))) << n;
  }
  // Flexible mode with three references (N on all but the last), 7-bit picture id, E, no L.
  std::vector<std::uint8_t> f = {0xD4, 0x05, 0x03, 0x05, 0x06, 0xEE};
  d = rtp::parse_vp9(f);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->size, 5u);
  EXPECT_TRUE(d->flexible && d->inter && d->end);
  EXPECT_EQ(d->picture_id, 5);
  EXPECT_FALSE(d->has_layers);
  for (std::size_t n = 0; n < 5; ++n) {
    EXPECT_FALSE(rtp::parse_vp9(Bytes(f.data(), n))) << n;
  }
  // Four references: more than §4.2 allows.
  std::vector<std::uint8_t> four = {0xD0, 0x05, 0x03, 0x05, 0x07, 0x08, 0xEE};
  EXPECT_FALSE(rtp::parse_vp9(four));
}

// A VP8 descriptor cut short anywhere is refused (the forwarder passes such a packet on as it
// came, without layer decisions; the subscriber's decoder drops it).
TEST(Vp8Descriptor, RefusesEveryTruncation) {
  auto p = std::vector<std::uint8_t>{0x90, 0xE0, 0x81, 0x23, 9, 0x60, 0x00};
  auto d = rtp::parse_vp8(p);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->has_tid);
  EXPECT_EQ(d->tid, 1);
  EXPECT_TRUE(d->layer_sync);
  for (std::size_t n = 0; n < 6; ++n) {
    EXPECT_FALSE(rtp::parse_vp8(Bytes(p.data(), n))) << n;
  }
}

// Malformed VP9 descriptors from the publisher are forwarded without layer decisions (no crash,
// no change to the route's numbering): the next well-formed packets continue the stream.
TEST_F(SvcTest, TruncatedVp9DescriptorsDoNotBreakTheNumbering) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp9));
  vp9_picture(0, false, true);
  ASSERT_TRUE(route_layer(0, 7));
  std::uint64_t in = counters().rtp_in;
  for (std::size_t n = 1; n <= 4; ++n) {
    // I + L + non-flexible cut before its TL0PICIDX (the tag's bytes would be read as fields:
    // sizes 1..4 of the bare descriptor, without the tag).
    std::vector<std::uint8_t> bad = {0xA8, 0x80, 0x01, 0x04};
    bad.resize(n);
    std::uint16_t seq = seq_++;
    deliver(a_.address, protect_rtp(a_, build_packet(kVideo, kPt, seq, ts_, false, {}, bad)));
  }
  EXPECT_EQ(counters().rtp_in, in + 4);
  vp9_pattern(4);
  auto v = at(b_);
  // The whole keyframe (before the limit), the four passed on, then SID 0 of the four pictures.
  EXPECT_EQ(v.size(), 6u + 4u + 4u * 2u);
  expect_continuous(v);
}

// The ring's RouteLayer carries max_temporal as a trailing byte: an encoder from before it (no
// such byte) means every temporal layer; a value past the last layer index is refused.
// A NACK of a packet sent before more drops than the route's numbering history holds (a link
// that delays NACKs for a second, a route limited to TID 0): the SFU no longer knows which packet
// that number was, so it resends none (another packet under that number would break B's
// decoder) and asks for a keyframe instead; a packet within the history is still resent.
TEST_F(SvcTest, NackOlderThanTheNumberingHistoryGetsAKeyframeNotAnotherPacket) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp8));
  vp8_frame(0, false, true);
  ASSERT_TRUE(route_layer(2, 0));
  // Frames at 200 a second (within the store's second), TID 0 and 1 in turn: each TID 1 frame is
  // a drop, and a new numbering after it.
  auto fast = [&](std::uint8_t tid) {
    pid_ = static_cast<std::uint16_t>((pid_ + 1) & 0x7FFF);
    ts_ += kFrameTicks;
    tl0_ = static_cast<std::uint8_t>(tl0_ + (tid == 0 ? 1 : 0));
    for (int i = 0; i < 2; ++i) {
      send(vp8(i == 0, false, pid_, tl0_, tid, tid == 1), i == 1);
    }
    advance(5);
  };
  fast(0);
  auto old = at(b_);
  ASSERT_FALSE(old.empty());
  constexpr std::size_t kRuns = 64 + 8;  // Route::kNumberings, and more
  for (std::size_t i = 0; i < kRuns; ++i) {
    fast(1);
    fast(0);
  }
  // B loses the second packet of the last frame but one (numbered on from `old`, no gaps).
  auto lost = static_cast<std::uint16_t>(old.back().sequence + 2 * kRuns - 2);
  auto recent = at(b_, {lost});
  ASSERT_EQ(recent.size(), 2 * kRuns - 1);
  std::uint16_t lost_source = recent[recent.size() - 3].source + 1;  // its frame's first, + 1
  rtcp_at(a_);
  auto nack = [&](std::uint16_t seq) {
    std::vector<std::uint8_t> fb(16);
    std::vector<std::uint16_t> names = {seq};
    fb.resize(rtcp::build_nack(fb, 0xB0B0, kSubVideo, names));
    send_rtcp(b_, fb);
  };
  nack(old.back().sequence);
  EXPECT_TRUE(at(b_).empty()) << "another packet under the number B asked for";
  bool pli = false;
  for (const auto& r : rtcp_at(a_)) {
    auto fb = r.type == rtcp::kPsfb ? rtcp::parse_feedback(view(r)) : std::nullopt;
    pli = pli || (fb && fb->fmt == rtcp::kFmtPli && fb->media_ssrc == kVideo);
  }
  EXPECT_TRUE(pli);
  EXPECT_EQ(counters().repair_keyframes, 1u);
  nack(lost);
  auto resent = at(b_);
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].source, lost_source);
  EXPECT_EQ(resent[0].sequence, lost);
}

TEST(RouteLayerCommand, TemporalIsATrailingByteOlderEncodersLeaveOut) {
  shm::RouteLayer m{shm::SessionId{7}, 0x2222, 1, false, 0};
  auto bytes = shm::encode(m);
  auto back = shm::decode_route_layer(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->max_spatial, 1);
  EXPECT_EQ(back->max_temporal, 0);
  bytes.pop_back();
  back = shm::decode_route_layer(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->max_temporal, shm::RouteLayer::kAllTemporal);
  m.max_temporal = 8;
  EXPECT_FALSE(shm::decode_route_layer(shm::encode(m)));
  bytes.push_back(0);
  bytes.push_back(0);
  EXPECT_FALSE(shm::decode_route_layer(bytes));
}

// Dynacast of the spatial layers inside one stream: when no route's subscriber wants more than
// spatial layer 0 for 5 s, the publisher is told to encode only it (mask 1); a subscriber that
// wants all again turns them on at once (mask 7).
TEST_F(SvcTest, Vp9SpatialLayersNobodyWantsAreTurnedOffAtThePublisher) {
  ASSERT_NO_FATAL_FAILURE(start(shm::Codec::kVp9));
  vp9_picture(0, false, true);
  auto run = [&](std::uint64_t ms) {
    for (std::uint64_t end = now_.mono_ms + ms; now_.mono_ms < end;) {
      vp9_pattern(1);  // 33 ms on
      timer();
    }
  };
  run(2000);  // the layers measured: all three spatial layers flow
  EXPECT_TRUE(out_.layers_active.empty()) << "everyone wants everything: nothing to tell";
  ASSERT_TRUE(route_layer(0, 7));
  ASSERT_TRUE(command(shm::Command::kRouteLayer,
                      shm::encode(shm::RouteLayer{c_.session, kSubVideoC, 1, false, 7})));
  run(3000);
  EXPECT_TRUE(out_.layers_active.empty()) << "layer 2 unwanted for 3 s only";
  ASSERT_TRUE(command(shm::Command::kRouteLayer,
                      shm::encode(shm::RouteLayer{c_.session, kSubVideoC, 0, false, 7})));
  run(3000);
  // Layer 2 has gone unwanted for 6 s: off; layer 1 for 3 s: it stays.
  ASSERT_EQ(out_.layers_active.size(), 1u);
  EXPECT_EQ(out_.layers_active[0].publisher, a_.session);
  EXPECT_EQ(out_.layers_active[0].ssrc, kVideo);
  EXPECT_EQ(out_.layers_active[0].mask, 0b011);
  run(2500);
  ASSERT_EQ(out_.layers_active.size(), 2u) << "layer 1 off 5 s after nobody wanted it";
  EXPECT_EQ(out_.layers_active[1].mask, 0b001);
  run(2000);
  EXPECT_EQ(out_.layers_active.size(), 2u) << "told once";
  ASSERT_TRUE(route_layer(2, 7));
  run(1100);
  ASSERT_EQ(out_.layers_active.size(), 3u) << "back on at the next dynacast turn";
  EXPECT_EQ(out_.layers_active[2].mask, 0b111);
  EXPECT_EQ(counters().dynacast_changes, 3u);
}

}  // namespace
}  // namespace ringlane::sfu::testing
