// Simulcast through the SFU (RFC 8853): a publisher sends three VP8 encodings of one track, each
// its own SSRC named by a rid (RFC 8852); the subscriber receives one of them as one continuous
// stream. Everything is checked on the wire, as the subscriber decrypts it with its own keys:
// which layer a packet came from (a tag at the end of each payload), the renumbering across a
// layer switch (sequence, timestamp, VP8 picture id and TL0PICIDX), the SFU's own transport-wide
// numbering, NACKs and sender reports across the switch, pause, idle layers, and the
// transport-cc feedback the publisher gets.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ringlane/dataplane/rtp/codec.hpp"
#include "unit/sfu/harness.hpp"
#include "unit/sfu/sfu_test_builders.hpp"

namespace ringlane::sfu::testing {
namespace {

constexpr std::uint32_t kTrack = 0x5000;  // the control plane's name for the simulcast track
constexpr std::array<std::uint32_t, 3> kLayerSsrc = {0x1000, 0x2000, 0x3000};
constexpr std::array<std::uint32_t, 3> kLayerRtx = {0x1001, 0x2001, 0x3001};
const std::array<std::string, 3> kRid = {"q", "h", "f"};
const std::string kVideoMid = "v";
const std::string kAudioMid = "a";
// The publisher's extension ids (RFC 8285 one-byte elements).
constexpr std::uint8_t kMidExt = 1;
constexpr std::uint8_t kRidExt = 2;
constexpr std::uint8_t kRepairedRidExt = 3;
constexpr std::uint8_t kTwccExt = 5;
// The subscriber's id of the transport-wide sequence number.
constexpr std::uint8_t kSubTwccExt = 7;
constexpr std::uint8_t kVideoPt = 96;
constexpr std::uint8_t kRtxPt = 97;
constexpr std::uint8_t kOpusPt = 111;
constexpr std::uint8_t kSubPt = 100;
constexpr std::uint8_t kSubRtxPt = 101;
constexpr std::uint32_t kSubAudio = 0x4444;
constexpr std::uint32_t kFrameTicks = 3000;  // 30 frames/s at 90 kHz
constexpr std::uint64_t kStepMs = 33;

// What the publisher sent of one video packet.
struct Published {
  int layer = 0;
  std::uint16_t sequence = 0;
  std::uint32_t timestamp = 0;
  std::uint16_t picture_id = 0;
  std::uint8_t tl0picidx = 0;
  bool start = false;
  bool keyframe = false;
  std::vector<std::uint8_t> payload;
};

// A packet as the subscriber decrypted it.
struct Got {
  std::uint32_t ssrc = 0;
  std::uint8_t payload_type = 0;
  std::uint16_t sequence = 0;
  std::uint32_t timestamp = 0;
  bool marker = false;
  std::optional<std::uint16_t> transport_seq;
  bool has_rid = false;  // any element with the publisher's rid, repaired-rid or mid id
  std::vector<std::uint8_t> payload;  // for RTX, without the OSN
  std::uint16_t osn = 0;              // RTX only
  // Video: the layer and publisher sequence number from the payload's tag, and its descriptor.
  int layer = -1;
  std::uint16_t source_sequence = 0;
  rtp::Vp8Descriptor vp8;
};

class SimulcastTest : public EngineTest {
 protected:
  // The publisher's numbering per layer: far apart, and layer 2's close to every wrap (sequence,
  // timestamp, 15-bit picture id, TL0PICIDX) so the renumbering is seen wrapping too.
  struct Layer {
    std::uint16_t sequence;
    std::uint32_t timestamp;
    std::uint16_t picture_id;
    std::uint8_t tl0picidx;
    std::uint32_t frames = 0;
    int rid_packets = 2;  // the first packets carry the rid (libwebrtc sends it until acked)
  };

  void publish() {
    ASSERT_NO_FATAL_FAILURE(connect(a_));
    shm::TrackAdd t;
    t.session = a_.session;
    t.ssrc = kTrack;
    t.kind = shm::MediaKind::kVideo;
    t.payload_type = kVideoPt;
    t.rtx_payload_type = kRtxPt;
    t.clock_rate = 90000;
    t.codec = shm::Codec::kVp8;
    t.rids = {kRid[0], kRid[1], kRid[2]};
    t.rid_extension = kRidExt;
    t.repaired_rid_extension = kRepairedRidExt;
    t.transport_cc_extension = kTwccExt;
    t.mid_extension = kMidExt;
    t.mid = kVideoMid;
    ASSERT_TRUE(command(shm::Command::kTrackAdd, shm::encode(t)));
    shm::TrackAdd audio;
    audio.session = a_.session;
    audio.ssrc = kAudio;
    audio.kind = shm::MediaKind::kAudio;
    audio.payload_type = kOpusPt;
    audio.clock_rate = 48000;
    audio.codec = shm::Codec::kOpus;
    audio.transport_cc_extension = kTwccExt;
    audio.mid_extension = kMidExt;
    audio.mid = kAudioMid;
    ASSERT_TRUE(command(shm::Command::kTrackAdd, shm::encode(audio)));
  }

  shm::Subscribe subscription(std::uint32_t pub, std::uint32_t ssrc, std::uint8_t pt) {
    shm::Subscribe s;
    s.subscriber = b_.session;
    s.publisher = a_.session;
    s.publisher_ssrc = pub;
    s.ssrc = ssrc;
    s.payload_type = pt;
    // The subscriber negotiated none of mid, rid, repaired-rid; the transport-wide number it has
    // under its own id.
    s.extensions[kTwccExt] = kSubTwccExt;
    s.transport_cc_extension = kSubTwccExt;
    return s;
  }

  // B connects and subscribes to the simulcast video (with an RTX stream when `rtx`) and audio.
  void join(bool rtx = false) {
    ASSERT_NO_FATAL_FAILURE(connect(b_));
    shm::Subscribe v = subscription(kTrack, kSubVideo, kSubPt);
    if (rtx) {
      v.rtx_ssrc = kSubRtx;
      v.rtx_payload_type = kSubRtxPt;
    }
    ASSERT_TRUE(command(shm::Command::kSubscribe, shm::encode(v)));
    ASSERT_TRUE(
        command(shm::Command::kSubscribe, shm::encode(subscription(kAudio, kSubAudio, kOpusPt))));
  }

  bool route_layer(std::uint8_t max_spatial, bool paused = false) {
    return command(shm::Command::kRouteLayer,
                   shm::encode(shm::RouteLayer{b_.session, kSubVideo, max_spatial, paused}));
  }

  std::vector<Ext> extensions(const std::string& mid, const std::string* rid,
                              const std::string* repaired) {
    std::vector<Ext> ext;
    ext.push_back({kMidExt, text(mid)});
    if (rid != nullptr) {
      ext.push_back({kRidExt, text(*rid)});
    }
    if (repaired != nullptr) {
      ext.push_back({kRepairedRidExt, text(*repaired)});
    }
    std::uint16_t seq = twcc_next_++;
    ext.push_back(
        {kTwccExt, {static_cast<std::uint8_t>(seq >> 8), static_cast<std::uint8_t>(seq)}});
    return ext;
  }

  // RFC 7741 §4.2 descriptor with I (15-bit picture id), L and T; §4.3 payload header on the
  // first packet of a frame (P = 0 for a key frame); then a body ending in the tag
  // |layer|sequence| that tells the subscriber side where the packet came from.
  static std::vector<std::uint8_t> vp8_payload(int layer, std::uint16_t seq, bool start, bool key,
                                               std::uint16_t pid, std::uint8_t tl0,
                                               std::uint8_t tid) {
    std::vector<std::uint8_t> p = {static_cast<std::uint8_t>(0x80 | (start ? 0x10 : 0)),
                                   0xE0,
                                   static_cast<std::uint8_t>(0x80 | (pid >> 8)),
                                   static_cast<std::uint8_t>(pid),
                                   tl0,
                                   static_cast<std::uint8_t>((tid << 6) | (tid != 0 ? 0x20 : 0))};
    if (start) {
      p.insert(p.end(), {static_cast<std::uint8_t>(key ? 0x00 : 0x01), 0x02, 0x00});
    }
    for (int i = 0; i < 40; ++i) {
      p.push_back(static_cast<std::uint8_t>(i * 13 + seq + layer));
    }
    p.insert(p.end(), {static_cast<std::uint8_t>(layer), static_cast<std::uint8_t>(seq >> 8),
                       static_cast<std::uint8_t>(seq)});
    return p;
  }

  // One frame of layer `l`: a keyframe is two packets, a delta frame one. Temporal layers
  // alternate TID 0/1 on delta frames; TL0PICIDX counts TID 0 frames.
  void frame(int l, bool key) {
    Layer& L = layers_[static_cast<std::size_t>(l)];
    std::uint8_t tid = key ? 0 : (L.frames % 2 == 1 ? 1 : 0);
    if (L.frames > 0) {
      L.picture_id = static_cast<std::uint16_t>((L.picture_id + 1) & 0x7FFF);
      L.timestamp += kFrameTicks;
      if (tid == 0) {
        ++L.tl0picidx;
      }
    }
    ++L.frames;
    int packets = key ? 2 : 1;
    for (int i = 0; i < packets; ++i) {
      Published s;
      s.layer = l;
      s.sequence = L.sequence++;
      s.timestamp = L.timestamp;
      s.picture_id = L.picture_id;
      s.tl0picidx = L.tl0picidx;
      s.start = i == 0;
      s.keyframe = key;
      s.payload = vp8_payload(l, s.sequence, s.start, key, L.picture_id, L.tl0picidx, tid);
      const std::string* rid = nullptr;
      if (L.rid_packets > 0) {
        --L.rid_packets;
        rid = &kRid[static_cast<std::size_t>(l)];
      }
      auto wire =
          build_packet(ssrcs_[static_cast<std::size_t>(l)], kVideoPt, s.sequence, s.timestamp,
                       i == packets - 1, extensions(kVideoMid, rid, nullptr), s.payload);
      deliver(a_.address, protect_rtp(a_, wire));
      sent_[{l, s.sequence}] = std::move(s);
    }
  }

  void audio() {
    std::vector<std::uint8_t> opus(30, 0xA0);
    auto wire = build_packet(kAudio, kOpusPt, audio_seq_++, audio_ts_, false,
                             extensions(kAudioMid, nullptr, nullptr), opus);
    audio_ts_ += 960;
    deliver(a_.address, protect_rtp(a_, wire));
  }

  // One 33 ms step: per layer 'k' a keyframe, 'd' a delta frame, '-' nothing; an audio packet;
  // then the clock moves and the engine's timer runs.
  void step(const char (&what)[4]) {
    for (int l = 0; l < 3; ++l) {
      if (what[l] != '-') {
        frame(l, what[l] == 'k');
      }
    }
    audio();
    advance(kStepMs);
    timer();
  }
  void steps(int n, const char (&what)[4]) {
    for (int i = 0; i < n; ++i) {
      step(what);
    }
  }

  // What B received since the last call, decrypted with its keys; `lose` drops a datagram
  // before B sees it (by its SSRC and sequence number, which SRTP leaves in the clear).
  std::vector<Got> at_b(std::function<bool(std::uint32_t, std::uint16_t)> lose = {}) {
    std::vector<Got> out;
    for (auto& s : take(b_, rtp::PacketKind::kRtp)) {
      if (lose && s.bytes.size() >= 12 && lose(load_be32(&s.bytes[8]), load_be16(&s.bytes[2]))) {
        // Lost on the way: only its transport-wide number is noted (SRTP leaves the header,
        // extensions included, in the clear).
        Got g;
        if (auto h = rtp::RtpPacket::parse_srtp_header(s.bytes)) {
          if (auto e = h->extension(kSubTwccExt); e && e->size() == 2) {
            g.transport_seq = load_be16(e->data());
          }
        }
        all_at_b_.push_back(g);
        continue;
      }
      auto len = b_.rx->unprotect_rtp(s.bytes, s.bytes.size());
      EXPECT_TRUE(len) << "B cannot unprotect what it received";
      if (!len) {
        continue;
      }
      s.bytes.resize(*len);
      auto p = rtp::RtpPacket::parse(s.bytes);
      EXPECT_TRUE(p);
      if (!p) {
        continue;
      }
      Got g;
      g.ssrc = p->ssrc();
      g.payload_type = p->payload_type();
      g.sequence = p->sequence();
      g.timestamp = p->timestamp();
      g.marker = p->marker();
      if (auto e = p->extension(kSubTwccExt)) {
        EXPECT_EQ(e->size(), 2u);
        g.transport_seq = load_be16(e->data());
      }
      g.has_rid = p->extension(kRidExt) || p->extension(kRepairedRidExt) || p->extension(kMidExt);
      auto pay = p->payload();
      g.payload.assign(pay.begin(), pay.end());
      if (g.ssrc == kSubRtx && g.payload.size() >= 2) {
        g.osn = load_be16(g.payload.data());
        g.payload.erase(g.payload.begin(), g.payload.begin() + 2);
      }
      if ((g.ssrc == kSubVideo || g.ssrc == kSubRtx) && g.payload.size() >= 3) {
        std::size_t n = g.payload.size();
        g.layer = g.payload[n - 3];
        g.source_sequence = load_be16(&g.payload[n - 2]);
        auto d = rtp::parse_vp8(g.payload);
        EXPECT_TRUE(d);
        if (d) {
          g.vp8 = *d;
        }
      }
      out.push_back(std::move(g));
      all_at_b_.push_back(out.back());
    }
    return out;
  }
  static std::vector<Got> video(const std::vector<Got>& got) {
    std::vector<Got> out;
    for (const Got& g : got) {
      if (g.ssrc == kSubVideo) {
        out.push_back(g);
      }
    }
    return out;
  }
  std::vector<Got> video_at_b() { return video(at_b()); }

  // Each packet continues the one before as one stream would: sequence +1, the timestamp the
  // same within a frame and later at each new frame, the picture id +1 per frame, TL0PICIDX +1
  // at each TID 0 frame; under B's SSRC and payload type, without the publisher's rid or mid.
  void expect_continuous(const std::vector<Got>& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const Got& g = v[i];
      EXPECT_EQ(g.ssrc, kSubVideo);
      EXPECT_EQ(g.payload_type, kSubPt);
      EXPECT_FALSE(g.has_rid);
      if (i == 0) {
        continue;
      }
      const Got& p = v[i - 1];
      SCOPED_TRACE(::testing::Message() << "packet " << i << " (layer " << g.layer << " seq "
                                        << g.source_sequence << ")");
      EXPECT_EQ(g.sequence, static_cast<std::uint16_t>(p.sequence + 1));
      if (g.vp8.start) {
        EXPECT_GT(static_cast<std::int32_t>(g.timestamp - p.timestamp), 0);
        EXPECT_EQ(g.vp8.picture_id, (p.vp8.picture_id + 1) & 0x7FFF);
        EXPECT_EQ(g.vp8.tl0picidx,
                  static_cast<std::uint8_t>(p.vp8.tl0picidx + (g.vp8.tid == 0 ? 1 : 0)));
      } else {
        EXPECT_EQ(g.timestamp, p.timestamp);
        EXPECT_EQ(g.vp8.picture_id, p.vp8.picture_id);
        EXPECT_EQ(g.vp8.tl0picidx, p.vp8.tl0picidx);
      }
    }
  }
  // The SFU's transport-wide numbers on everything sent to B so far (lost packets included): one
  // each, consecutive.
  void expect_transport_numbered() {
    for (std::size_t i = 0; i < all_at_b_.size(); ++i) {
      ASSERT_TRUE(all_at_b_[i].transport_seq) << "packet " << i;
      if (i > 0) {
        EXPECT_EQ(*all_at_b_[i].transport_seq,
                  static_cast<std::uint16_t>(*all_at_b_[i - 1].transport_seq + 1))
            << "packet " << i;
      }
    }
  }
  static bool all_from(const std::vector<Got>& v, int layer) {
    return std::all_of(v.begin(), v.end(), [&](const Got& g) { return g.layer == layer; });
  }

  // What the SFU sent A: keyframe requests (by media SSRC), NACKs and transport-cc feedback.
  struct AtA {
    std::vector<std::uint32_t> plis;
    std::vector<std::pair<std::uint32_t, std::vector<std::uint16_t>>> nacks;
    std::vector<rtcp::TransportCc> twcc;
    std::vector<std::uint32_t> twcc_media;
  };
  AtA at_a() {
    AtA out;
    for (const auto& r : rtcp_at(a_)) {
      auto fb = r.type == rtcp::kPsfb || r.type == rtcp::kRtpfb ? rtcp::parse_feedback(view(r))
                                                                : std::nullopt;
      if (!fb) {
        continue;
      }
      if (r.type == rtcp::kPsfb && fb->fmt == rtcp::kFmtPli) {
        out.plis.push_back(fb->media_ssrc);
      } else if (r.type == rtcp::kRtpfb && fb->fmt == rtcp::kFmtNack) {
        out.nacks.emplace_back(fb->media_ssrc,
                               rtcp::parse_nack(*fb).value_or(std::vector<std::uint16_t>{}));
      } else if (r.type == rtcp::kRtpfb && fb->fmt == rtcp::kFmtTwcc) {
        auto tcc = rtcp::parse_transport_cc(*fb);
        EXPECT_TRUE(tcc);
        if (tcc) {
          out.twcc.push_back(*tcc);
          out.twcc_media.push_back(fb->media_ssrc);
        }
      }
    }
    return out;
  }

  // A publishes, B joins, every layer has sent its keyframe and B receives layer 2.
  void steady(bool rtx = false) {
    ASSERT_NO_FATAL_FAILURE(publish());
    ASSERT_NO_FATAL_FAILURE(join(rtx));
    step("kkk");
    steps(5, "ddd");
    auto v = video_at_b();
    ASSERT_EQ(v.size(), 2u + 5u);
    ASSERT_TRUE(all_from(v, 2));
    before_ = v;
    at_a();
  }

  std::vector<std::uint8_t> nack(std::uint32_t media, std::vector<std::uint16_t> lost) {
    std::vector<std::uint8_t> p(12 + 4 * lost.size());
    p.resize(rtcp::build_nack(p, 0xB0B0, media, lost));
    EXPECT_FALSE(p.empty());
    return p;
  }
  std::vector<std::uint8_t> pli(std::uint32_t media) {
    std::vector<std::uint8_t> p(12);
    EXPECT_EQ(rtcp::build_pli(p, 0xB0B0, media), 12u);
    return p;
  }

  std::array<Layer, 3> layers_ = {{{100, 10'000, 0x0100, 10},
                                   {30'000, 2'000'000'000, 0x4000, 128},
                                   {65'520, 4'294'900'000u, 0x7FF8, 253}}};
  std::array<std::uint32_t, 3> ssrcs_ = kLayerSsrc;  // what the layers are sending with now
  std::uint16_t twcc_next_ = 1;
  std::uint16_t audio_seq_ = 500;
  std::uint32_t audio_ts_ = 48'000;
  std::map<std::pair<int, std::uint16_t>, Published> sent_;
  std::vector<Got> all_at_b_;
  std::vector<Got> before_;  // what steady() left B with
};

// RFC 8852: a layer's SSRC is learned from the rid of its first packets, its RTX SSRC from the
// repaired-rid; an SSRC that names no layer is dropped.
TEST_F(SimulcastTest, LayersAreLearnedFromTheirRids) {
  ASSERT_NO_FATAL_FAILURE(publish());
  ASSERT_NO_FATAL_FAILURE(join());
  // The subscription's keyframe request waits for layer 2's SSRC.
  EXPECT_TRUE(at_a().plis.empty());
  auto stray = [&](std::uint32_t ssrc, const std::string& mid, const std::string* rid) {
    deliver(a_.address,
            protect_rtp(a_, build_packet(ssrc, kVideoPt, 1, 1, false, extensions(mid, rid, nullptr),
                                         vp8_payload(0, 1, true, true, 1, 1, 0))));
  };
  stray(0x9999, kVideoMid, nullptr);  // no rid
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 1u);
  const std::string other = "x";
  stray(0x9998, kVideoMid, &other);  // a rid the track does not have
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 2u);
  stray(0x9997, "other-mid", &kRid[0]);  // "q" of another m-section
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 3u);
  EXPECT_EQ(counters().layers_learned, 0u);
  EXPECT_TRUE(at_b().empty());

  frame(0, true);  // two packets, both with the rid: learned once
  EXPECT_EQ(counters().layers_learned, 1u);
  frame(1, true);
  EXPECT_EQ(counters().layers_learned, 2u);
  EXPECT_TRUE(at_a().plis.empty());
  frame(2, true);
  EXPECT_EQ(counters().layers_learned, 3u);
  // The keyframe owed to the subscription goes out now that layer 2 has an SSRC.
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[2]});
  // Packets without the rid are known by their SSRC now.
  std::uint64_t in = counters().rtp_in;
  frame(0, false);
  frame(2, false);
  EXPECT_EQ(counters().rtp_in, in + 2);
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 3u);
  auto v = video_at_b();
  ASSERT_EQ(v.size(), 3u);  // layer 2's keyframe and delta
  EXPECT_TRUE(all_from(v, 2));

  // Layer 2 loses a packet on the way in: the SFU asks for it, and the RTX that repairs it
  // (an SSRC named by its repaired-rid) reaches B as the packet itself.
  std::uint16_t lost = layers_[2].sequence++;
  frame(2, false);
  auto a = at_a();
  ASSERT_EQ(a.nacks.size(), 1u);
  EXPECT_EQ(a.nacks[0].first, kLayerSsrc[2]);
  EXPECT_EQ(a.nacks[0].second, std::vector<std::uint16_t>{lost});
  std::vector<std::uint8_t> rtx_payload = {static_cast<std::uint8_t>(lost >> 8),
                                           static_cast<std::uint8_t>(lost)};
  auto original = vp8_payload(2, lost, true, false, 0x7777, 9, 0);
  rtx_payload.insert(rtx_payload.end(), original.begin(), original.end());
  deliver(a_.address,
          protect_rtp(a_, build_packet(kLayerRtx[2], kRtxPt, 40, layers_[2].timestamp, false,
                                       extensions(kVideoMid, nullptr, &kRid[2]), rtx_payload)));
  EXPECT_EQ(counters().layers_learned, 4u);
  EXPECT_EQ(counters().rtx_received, 1u);
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 3u);
  v = video_at_b();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].layer, 2);
  EXPECT_EQ(v[1].layer, 2);
  EXPECT_EQ(v[1].source_sequence, lost);
  EXPECT_EQ(v[1].sequence, lost);  // the first layer B got: numbered as the publisher did
  EXPECT_EQ(v[1].vp8.picture_id, 0x7777);
  EXPECT_EQ(v[1].payload, original);
  // Its next packet, without the repaired-rid, is known by the RTX SSRC.
  rtx_payload[1] = static_cast<std::uint8_t>(lost - 1);
  deliver(a_.address,
          protect_rtp(a_, build_packet(kLayerRtx[2], kRtxPt, 41, layers_[2].timestamp, false,
                                       extensions(kVideoMid, nullptr, nullptr), rtx_payload)));
  EXPECT_EQ(counters().rtx_received, 2u);
  EXPECT_EQ(counters().layers_learned, 4u);
  EXPECT_EQ(dropped(Drop::kUnknownSsrc), 3u);
}

// With all three layers sending and no RouteLayer, B gets the highest, from its first keyframe
// on, and nothing of the others.
TEST_F(SimulcastTest, SubscriberReceivesOneLayerFromItsKeyframe) {
  ASSERT_NO_FATAL_FAILURE(publish());
  ASSERT_NO_FATAL_FAILURE(join());
  steps(3, "ddd");  // joined mid-stream: deltas first
  step("kkd");      // keyframes of the layers B does not want
  steps(2, "ddd");
  EXPECT_TRUE(video_at_b().empty());
  std::uint16_t key = layers_[2].sequence;
  step("ddk");
  // 1.5 s: the allocation (every 200 ms) and the layer measurements (every 500 ms) run, keyframes
  // of the other layers come, and B stays on layer 2.
  for (int i = 0; i < 45; ++i) {
    step(i % 15 == 7 ? "kkd" : "ddd");
  }
  auto got = at_b();
  auto v = video(got);
  ASSERT_EQ(v.size(), 2u + 45u);
  EXPECT_TRUE(all_from(v, 2));
  EXPECT_EQ(v[0].source_sequence, key);
  EXPECT_TRUE(v[0].vp8.start && v[0].vp8.keyframe);
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i].source_sequence, static_cast<std::uint16_t>(key + i));
    // The first layer: the publisher's own numbering, and its payload byte for byte.
    const Published& s = sent_.at({2, v[i].source_sequence});
    EXPECT_EQ(v[i].sequence, s.sequence);
    EXPECT_EQ(v[i].timestamp, s.timestamp);
    EXPECT_EQ(v[i].payload, s.payload);
  }
  expect_continuous(v);
  expect_transport_numbered();
  EXPECT_EQ(counters().layer_switches, 1u);
  EXPECT_EQ(counters().layer_down, 0u);
  // Audio, a plain track, went to B throughout.
  EXPECT_EQ(got.size() - v.size(), 45u + 1u);
}

// RouteLayer down to layer 0: the switch waits for layer 0's keyframe (asked for at once), layer 2
// flows until then, and B's stream continues across it.
TEST_F(SimulcastTest, RouteLayerSwitchesAtTheNewLayersKeyframe) {
  ASSERT_NO_FATAL_FAILURE(steady());
  ASSERT_TRUE(route_layer(0));
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[0]});
  EXPECT_EQ(counters().layer_preference, 1u);  // the subscriber's wish, not its bandwidth
  EXPECT_EQ(counters().layer_down, 0u);
  steps(4, "ddd");
  auto v = video_at_b();
  ASSERT_EQ(v.size(), 4u);
  EXPECT_TRUE(all_from(v, 2));  // layer 0's deltas are not forwarded
  std::uint16_t key = layers_[0].sequence;
  step("kdd");  // layer 0's keyframe comes before layer 2's delta in this step
  steps(10, "ddd");
  auto after = video_at_b();
  ASSERT_EQ(after.size(), 2u + 10u);
  EXPECT_TRUE(all_from(after, 0));
  EXPECT_EQ(after[0].source_sequence, key);
  EXPECT_TRUE(after[0].vp8.keyframe);
  std::vector<Got> stream = before_;
  stream.insert(stream.end(), v.begin(), v.end());
  stream.insert(stream.end(), after.begin(), after.end());
  expect_continuous(stream);
  // The new layer's picture ids and TL0PICIDX go on from the old layer's: the keyframe's are the
  // last ones + 1, whatever layer 0 itself numbered them.
  EXPECT_EQ(after[0].vp8.picture_id, (v.back().vp8.picture_id + 1) & 0x7FFF);
  EXPECT_NE(after[0].vp8.picture_id, sent_.at({0, key}).picture_id);
  // The keyframe's timestamp is placed after the last packet's by the time between them.
  EXPECT_EQ(after[0].timestamp - v.back().timestamp, kStepMs * 90);
  // Audio went through too, numbered on the same transport.
  expect_transport_numbered();
  EXPECT_EQ(all_at_b_.size(), before_.size() + v.size() + after.size() + 6u + 4u + 11u);
  EXPECT_EQ(counters().layer_switches, 2u);
  EXPECT_EQ(counters().layer_keyframe_waits, 1u);  // 2 -> 0 at its keyframe; the first is no switch
}

// A subscriber's PLI asks the publisher for a keyframe of the layer the route is going to.
TEST_F(SimulcastTest, PliFromTheSubscriberAsksForTheTargetLayer) {
  ASSERT_NO_FATAL_FAILURE(steady());
  steps(7, "ddd");  // past the keyframe request throttle
  at_a();
  send_rtcp(b_, pli(kSubVideo));
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[2]});
  ASSERT_TRUE(route_layer(1));
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[1]});  // the allocation's own
  steps(7, "ddd");
  ASSERT_TRUE(all_from(video_at_b(), 2));  // still on layer 2, going to 1
  send_rtcp(b_, pli(kSubVideo));
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[1]});
  step("dkd");
  steps(7, "ddd");
  auto v = video_at_b();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.back().layer, 1);
  send_rtcp(b_, pli(kSubVideo));
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[1]});
  EXPECT_EQ(counters().pli_received, 3u);
}

// B lost one packet before the switch and one after: each is resent from the layer it came from,
// numbered as it was the first time.
TEST_F(SimulcastTest, NackIsAnsweredFromTheLayerThePacketCameFrom) {
  ASSERT_NO_FATAL_FAILURE(steady());
  std::uint16_t lost_before = 0;
  step("ddd");
  auto v = video(at_b([&](std::uint32_t ssrc, std::uint16_t seq) {
    if (ssrc != kSubVideo) {
      return false;
    }
    lost_before = seq;
    return true;
  }));
  ASSERT_TRUE(v.empty());
  steps(2, "ddd");
  ASSERT_TRUE(route_layer(0));
  steps(2, "ddd");
  step("kdd");
  std::uint16_t lost_after = 0;
  step("ddd");
  v = video(at_b([&](std::uint32_t ssrc, std::uint16_t seq) {
    if (ssrc == kSubVideo && seq == static_cast<std::uint16_t>(before_.back().sequence + 8)) {
      lost_after = seq;  // the delta after layer 0's keyframe (two packets)
      return true;
    }
    return false;
  }));
  ASSERT_EQ(v.size(), 2u + 2u + 2u);  // layer 2's, then layer 0's keyframe
  ASSERT_EQ(lost_before, static_cast<std::uint16_t>(before_.back().sequence + 1));
  ASSERT_EQ(lost_after, static_cast<std::uint16_t>(v.back().sequence + 1));
  steps(2, "ddd");
  auto tail = video_at_b();
  ASSERT_EQ(tail.size(), 2u);
  ASSERT_TRUE(all_from(tail, 0));

  send_rtcp(b_, nack(kSubVideo, {lost_before, lost_after}));
  auto resent = video_at_b();
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(counters().retransmitted, 2u);
  // Layer 2's packet: numbered as layer 2's packets around it were.
  EXPECT_EQ(resent[0].sequence, lost_before);
  EXPECT_EQ(resent[0].layer, 2);
  const Got& prev2 = before_.back();
  const Published& s2 = sent_.at({2, resent[0].source_sequence});
  EXPECT_EQ(s2.sequence, static_cast<std::uint16_t>(prev2.source_sequence + 1));
  EXPECT_EQ(resent[0].timestamp, prev2.timestamp + kFrameTicks);
  EXPECT_EQ(resent[0].vp8.picture_id, (prev2.vp8.picture_id + 1) & 0x7FFF);
  EXPECT_EQ(resent[0].vp8.tl0picidx,
            static_cast<std::uint8_t>(prev2.vp8.tl0picidx + (resent[0].vp8.tid == 0 ? 1 : 0)));
  // Only the renumbered fields differ from what the publisher sent.
  auto expect_payload = [](const Got& g, const Published& s) {
    ASSERT_EQ(g.payload.size(), s.payload.size());
    EXPECT_TRUE(std::equal(g.payload.begin() + 6, g.payload.end(), s.payload.begin() + 6));
    EXPECT_EQ(g.payload[0], s.payload[0]);
    EXPECT_EQ(g.payload[1], s.payload[1]);
    EXPECT_EQ(g.payload[5], s.payload[5]);  // TID
  };
  expect_payload(resent[0], s2);
  // Layer 0's packet: numbered as the keyframe before it and the packet after it.
  EXPECT_EQ(resent[1].sequence, lost_after);
  EXPECT_EQ(resent[1].layer, 0);
  const Got& key = v.back();
  EXPECT_EQ(resent[1].source_sequence, static_cast<std::uint16_t>(key.source_sequence + 1));
  EXPECT_EQ(resent[1].timestamp, key.timestamp + kFrameTicks);
  EXPECT_EQ(resent[1].vp8.picture_id, (key.vp8.picture_id + 1) & 0x7FFF);
  EXPECT_EQ(tail[0].vp8.picture_id, (resent[1].vp8.picture_id + 1) & 0x7FFF);
  EXPECT_EQ(tail[0].timestamp, resent[1].timestamp + kFrameTicks);
  expect_payload(resent[1], sent_.at({0, resent[1].source_sequence}));
  // The resends are numbered on B's transport like everything else.
  expect_transport_numbered();
}

// With RTX negotiated the resends go on B's RTX stream (RFC 4588): the OSN is the sequence number
// B had, and the rest is byte for byte the packet B received, whichever layer it came from. Here
// from layer 1 (renumbered, B's second layer) after a switch on to layer 0.
TEST_F(SimulcastTest, NackOverRtxCarriesThePacketAsFirstSent) {
  ASSERT_NO_FATAL_FAILURE(steady(true));
  ASSERT_TRUE(route_layer(1));
  step("dkd");
  steps(2, "ddd");
  auto middle = video_at_b();
  ASSERT_EQ(middle.size(), 2u + 2u);
  ASSERT_TRUE(all_from(middle, 1));
  ASSERT_NE(middle[2].sequence, middle[2].source_sequence);  // layer 1 is renumbered
  const Got old = middle[2];
  ASSERT_TRUE(route_layer(0));
  steps(2, "ddd");
  step("kdd");
  steps(3, "ddd");
  auto v = video_at_b();
  ASSERT_EQ(v.size(), 2u + 2u + 3u);
  ASSERT_TRUE(all_from({v.begin(), v.begin() + 2}, 1));
  ASSERT_TRUE(all_from({v.begin() + 2, v.end()}, 0));
  const Got young = v[5];  // sent from layer 0
  send_rtcp(b_, nack(kSubVideo, {old.sequence, young.sequence}));
  auto got = at_b();
  ASSERT_EQ(got.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const Got& want = i == 0 ? old : young;
    EXPECT_EQ(got[i].ssrc, kSubRtx);
    EXPECT_EQ(got[i].payload_type, kSubRtxPt);
    EXPECT_EQ(got[i].sequence, static_cast<std::uint16_t>(i));  // the RTX stream's own
    EXPECT_EQ(got[i].osn, want.sequence);
    EXPECT_EQ(got[i].timestamp, want.timestamp);
    EXPECT_EQ(got[i].marker, want.marker);
    EXPECT_EQ(got[i].layer, want.layer);
    EXPECT_EQ(got[i].source_sequence, want.source_sequence);
    EXPECT_EQ(got[i].payload, want.payload);
  }
  EXPECT_EQ(counters().retransmitted, 2u);
  std::vector<Got> stream = before_;
  stream.insert(stream.end(), middle.begin(), middle.end());
  stream.insert(stream.end(), v.begin(), v.end());
  expect_continuous(stream);
  expect_transport_numbered();
}

// RFC 3550 §6.4.1: the sender report of the layer B receives reaches B under B's SSRC, its RTP
// time renumbered as B's packets are; the other layers' reports do not.
TEST_F(SimulcastTest, SenderReportOfTheReceivedLayerIsRenumbered) {
  ASSERT_NO_FATAL_FAILURE(steady());
  const std::uint64_t ntp = 0xE1234567'89ABCDEFull;
  auto srs_at_b = [&] {
    std::vector<rtcp::SenderReport> out;
    for (const auto& r : rtcp_at(b_)) {
      EXPECT_EQ(r.type, rtcp::kSr);
      if (auto sr = rtcp::parse_sr(view(r))) {
        out.push_back(*sr);
      }
    }
    return out;
  };
  // On layer 2 (the first B got: no renumbering yet).
  send_rtcp(a_, build_sr(kLayerSsrc[0], ntp, 111, 10, 1000));
  send_rtcp(a_, build_sr(kLayerSsrc[1], ntp, 222, 20, 2000));
  EXPECT_TRUE(srs_at_b().empty());
  send_rtcp(a_, build_sr(kLayerSsrc[2], ntp, 333, 30, 3000));
  auto srs = srs_at_b();
  ASSERT_EQ(srs.size(), 1u);
  EXPECT_EQ(srs[0].ssrc, kSubVideo);
  EXPECT_EQ(srs[0].rtp_timestamp, 333u);
  // Now to layer 0.
  ASSERT_TRUE(route_layer(0));
  step("kdd");
  steps(2, "ddd");
  auto v = video_at_b();
  ASSERT_EQ(v.size(), 4u);
  ASSERT_TRUE(all_from(v, 0));
  std::uint32_t offset = v[0].timestamp - sent_.at({0, v[0].source_sequence}).timestamp;
  ASSERT_NE(offset, 0u);
  send_rtcp(a_, build_sr(kLayerSsrc[2], ntp + 1, 444, 40, 4000));
  send_rtcp(a_, build_sr(kLayerSsrc[1], ntp + 1, 555, 50, 5000));
  EXPECT_TRUE(srs_at_b().empty());
  const std::uint32_t rtp_time = layers_[0].timestamp + 1234;
  send_rtcp(a_, build_sr(kLayerSsrc[0], ntp + 2, rtp_time, 60, 6000));
  srs = srs_at_b();
  ASSERT_EQ(srs.size(), 1u);
  EXPECT_EQ(srs[0].ssrc, kSubVideo);
  EXPECT_EQ(srs[0].ntp, ntp + 2);
  EXPECT_EQ(srs[0].rtp_timestamp, rtp_time + offset);
  EXPECT_EQ(srs[0].packet_count, 60u);
  EXPECT_EQ(srs[0].octet_count, 6000u);
  EXPECT_TRUE(srs[0].blocks.empty());  // the publisher's report blocks are not B's business
  EXPECT_EQ(counters().sr_forwarded, 2u);
}

// Paused: nothing of the track reaches B, keyframes included; resumed: B waits for a keyframe
// (asked for at once, though the last request for that layer was recent) and its stream
// continues where it stopped. A NACK while paused is still answered from before the pause.
TEST_F(SimulcastTest, PausedRouteResumesAtAKeyframe) {
  ASSERT_NO_FATAL_FAILURE(steady());
  ASSERT_TRUE(route_layer(1));
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[1]});
  step("dkd");
  auto first = video_at_b();
  ASSERT_EQ(first.size(), 2u);
  ASSERT_TRUE(all_from(first, 1));
  // B loses the last two packets before the pause, and asks for one while paused and for the
  // other after the resume.
  std::vector<std::uint16_t> lost;
  steps(2, "ddd");
  auto v = video(at_b([&](std::uint32_t ssrc, std::uint16_t seq) {
    if (ssrc != kSubVideo) {
      return false;
    }
    lost.push_back(seq);
    return true;
  }));
  ASSERT_TRUE(v.empty());
  ASSERT_EQ(lost,
            (std::vector<std::uint16_t>{static_cast<std::uint16_t>(first.back().sequence + 1),
                                        static_cast<std::uint16_t>(first.back().sequence + 2)}));
  ASSERT_TRUE(route_layer(1, true));
  steps(3, "ddd");
  step("kkk");
  steps(3, "ddd");
  auto got = at_b();
  EXPECT_TRUE(video(got).empty());
  EXPECT_EQ(got.size(), 7u);  // audio is another track: not paused
  // Sender reports of the paused layer stay away too.
  send_rtcp(a_, build_sr(kLayerSsrc[1], 1, 1, 1, 1));
  EXPECT_TRUE(rtcp_at(b_).empty());
  // What was sent before the pause is still resent as it was.
  send_rtcp(b_, nack(kSubVideo, {lost[0]}));
  auto resent = video_at_b();
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].sequence, lost[0]);
  EXPECT_EQ(resent[0].layer, 1);
  EXPECT_EQ(resent[0].source_sequence,
            static_cast<std::uint16_t>(first.back().source_sequence + 1));
  at_a();
  ASSERT_TRUE(route_layer(1, false));
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[1]});
  steps(3, "ddd");
  EXPECT_TRUE(video_at_b().empty());  // deltas B could not decode
  std::uint16_t key = layers_[1].sequence;
  step("dkd");
  steps(3, "ddd");
  v = video_at_b();
  ASSERT_EQ(v.size(), 2u + 3u);
  EXPECT_TRUE(all_from(v, 1));
  EXPECT_EQ(v[0].source_sequence, key);
  // The resume renumbered the stream; the packet from before the pause is still found.
  send_rtcp(b_, nack(kSubVideo, {lost[1]}));
  auto late = video_at_b();
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].sequence, lost[1]);
  EXPECT_EQ(late[0].layer, 1);
  EXPECT_EQ(late[0].source_sequence, static_cast<std::uint16_t>(first.back().source_sequence + 2));
  std::vector<Got> stream = before_;
  stream.insert(stream.end(), first.begin(), first.end());
  stream.push_back(resent[0]);
  stream.push_back(late[0]);
  stream.insert(stream.end(), v.begin(), v.end());
  expect_continuous(stream);
  expect_transport_numbered();
}

// Transport-wide feedback to the publisher (draft-holmer-rmcat-transport-wide-cc-extensions-01
// §3.1): every transport-wide number A sent, of every layer and the audio, reported received at
// the time it arrived; a number A skipped reported not received.
TEST_F(SimulcastTest, TransportFeedbackReportsWhatThePublisherSent) {
  ASSERT_NO_FATAL_FAILURE(publish());
  twcc_next_ = 65533;  // across the 16-bit wrap
  frame(0, false);     // 65533
  advance(5);
  frame(1, false);  // 65534
  advance(5);
  ++twcc_next_;     // 65535 is lost
  frame(2, false);  // 0
  advance(20);
  audio();  // 1
  advance(1);
  frame(2, false);  // 2
  EXPECT_EQ(counters().twcc_sent, 0u);
  timer();
  EXPECT_EQ(counters().twcc_sent, 1u);
  auto a = at_a();
  ASSERT_EQ(a.twcc.size(), 1u);
  const rtcp::TransportCc& fb = a.twcc[0];
  EXPECT_EQ(fb.base_sequence, 65533);
  EXPECT_EQ(fb.feedback_count, 0);
  ASSERT_EQ(fb.packets.size(), 6u);
  const std::vector<bool> received = {true, true, false, true, true, true};
  const std::vector<std::int64_t> gaps_us = {5000, 5000, 20000, 1000};  // between receptions
  std::vector<std::int64_t> deltas;
  for (std::size_t i = 0; i < fb.packets.size(); ++i) {
    EXPECT_EQ(fb.packets[i].sequence, static_cast<std::uint16_t>(65533 + i));
    EXPECT_EQ(fb.packets[i].received, received[i]) << i;
    if (fb.packets[i].received && i > 0) {
      deltas.push_back(fb.packets[i].delta_us);
    }
  }
  EXPECT_EQ(deltas, gaps_us);
  EXPECT_EQ(a.twcc_media[0], kLayerSsrc[0]);  // some stream A sends
  // Nothing new: no feedback.
  advance(50);
  timer();
  EXPECT_TRUE(at_a().twcc.empty());
  EXPECT_EQ(counters().twcc_sent, 1u);
  // The next ones start where the last feedback ended.
  frame(0, false);  // 3
  timer();
  a = at_a();
  ASSERT_EQ(a.twcc.size(), 1u);
  EXPECT_EQ(a.twcc[0].base_sequence, 3);
  EXPECT_EQ(a.twcc[0].feedback_count, 1);
  ASSERT_EQ(a.twcc[0].packets.size(), 1u);
  EXPECT_TRUE(a.twcc[0].packets[0].received);
  EXPECT_EQ(counters().twcc_sent, 2u);
}

// A layer that stops is left once it has been silent for a second: B moves to the highest layer
// still sending, at its keyframe. When the layer comes back, B goes up again only after the
// last change has held for 3 s.
TEST_F(SimulcastTest, IdleLayerIsLeftForAnActiveOne) {
  ASSERT_NO_FATAL_FAILURE(steady());
  steps(29, "dd-");  // 0.96 s without layer 2: not yet gone
  EXPECT_TRUE(video_at_b().empty());
  EXPECT_TRUE(at_a().plis.empty());
  EXPECT_EQ(counters().layer_down, 0u);
  std::vector<std::uint32_t> plis;
  for (int i = 0; i < 10 && plis.empty(); ++i) {
    step("dd-");
    plis = at_a().plis;
  }
  EXPECT_EQ(plis, std::vector<std::uint32_t>{kLayerSsrc[1]});
  EXPECT_EQ(counters().layer_down, 1u);
  const std::uint64_t changed_ms = now_.mono_ms;
  steps(2, "dd-");
  EXPECT_TRUE(video_at_b().empty());  // layer 1's deltas: not before its keyframe
  std::uint16_t key = layers_[1].sequence;
  step("dk-");
  steps(2, "dd-");
  auto v = video_at_b();
  ASSERT_EQ(v.size(), 2u + 2u);
  EXPECT_TRUE(all_from(v, 1));
  EXPECT_EQ(v[0].source_sequence, key);
  std::vector<Got> stream = before_;
  stream.insert(stream.end(), v.begin(), v.end());
  expect_continuous(stream);

  // Layer 2 is back, with a keyframe every 10 steps; B stays on layer 1 until the hold is over.
  std::vector<Got> later;
  int i = 0;
  while (now_.mono_ms < changed_ms + 2900) {
    step(i++ % 10 == 0 ? "ddk" : "ddd");
    auto got = video_at_b();
    EXPECT_TRUE(all_from(got, 1)) << "up " << now_.mono_ms - changed_ms << " ms after the change";
    later.insert(later.end(), got.begin(), got.end());
  }
  EXPECT_EQ(counters().layer_up, 0u);
  while (now_.mono_ms < changed_ms + 4500) {
    step(i++ % 10 == 0 ? "ddk" : "ddd");
    auto got = video_at_b();
    later.insert(later.end(), got.begin(), got.end());
  }
  EXPECT_EQ(counters().layer_up, 1u);
  ASSERT_FALSE(later.empty());
  EXPECT_EQ(later.back().layer, 2);
  stream.insert(stream.end(), later.begin(), later.end());
  expect_continuous(stream);
  expect_transport_numbered();
  EXPECT_EQ(counters().layer_switches, 3u);
}

// A wish down and up again (a tile made small, then large again): the way up is not held as after
// a fall of the estimate (kUpHoldMs, 3 s): B's keyframe request for layer 2 goes out at once and
// B takes layer 2 at that keyframe (sfu_load --switch-every measured 1.7 s ups before).
TEST_F(SimulcastTest, WishUpSoonAfterAWishDownIsNotHeld) {
  ASSERT_NO_FATAL_FAILURE(steady());
  ASSERT_TRUE(route_layer(0));
  step("kdd");
  steps(2, "ddd");
  auto v = video_at_b();
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(all_from(v, 0));
  std::vector<Got> stream = before_;
  stream.insert(stream.end(), v.begin(), v.end());
  at_a();
  const std::uint64_t asked_ms = now_.mono_ms;
  ASSERT_TRUE(route_layer(2));
  step("ddd");
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[2]});
  v = video_at_b();
  EXPECT_TRUE(all_from(v, 0));  // layer 0 until layer 2's keyframe
  stream.insert(stream.end(), v.begin(), v.end());
  step("ddk");
  steps(2, "ddd");
  v = video_at_b();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.back().layer, 2) << "still on layer " << v.back().layer << " "
                               << now_.mono_ms - asked_ms << " ms after the wish";
  stream.insert(stream.end(), v.begin(), v.end());
  expect_continuous(stream);
  EXPECT_EQ(counters().layer_up, 0u);  // the wish's, not the bandwidth's
}

// The publisher restarts layer 2 under a new SSRC (RFC 8852: the rid says which layer it is):
// B, on layer 2, waits for the new stream's keyframe, and its own stream goes on across it.
TEST_F(SimulcastTest, LayerRestartedUnderANewSsrcIsTakenAtItsKeyframe) {
  ASSERT_NO_FATAL_FAILURE(steady());
  ssrcs_[2] = 0x3100;
  layers_[2] = Layer{7'000, 123'456, 0x0042, 7};
  at_a();
  steps(3, "ddd");
  EXPECT_EQ(counters().layers_learned, 4u);
  EXPECT_TRUE(video_at_b().empty());  // deltas of a stream B has no reference for
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{0x3100u});
  std::uint16_t key = layers_[2].sequence;
  step("ddk");
  steps(3, "ddd");
  auto v = video_at_b();
  ASSERT_EQ(v.size(), 2u + 3u);
  EXPECT_TRUE(all_from(v, 2));
  EXPECT_EQ(v[0].source_sequence, key);
  std::vector<Got> stream = before_;
  stream.insert(stream.end(), v.begin(), v.end());
  expect_continuous(stream);
  expect_transport_numbered();
}

// A route remembers one switch back (Route::previous, previous_from): a NACK of a packet two
// layers ago must not be mapped through the wrong layer's renumbering (B would get a packet of
// layer 1 it never received under that number and its decoder would break). It is not resent.
TEST_F(SimulcastTest, NackOfAPacketTwoSwitchesAgoIsNotAnsweredWithAnother) {
  ASSERT_NO_FATAL_FAILURE(steady());
  std::uint16_t lost = 0;
  step("ddd");
  ASSERT_TRUE(video(at_b([&](std::uint32_t ssrc, std::uint16_t seq) {
                if (ssrc != kSubVideo) {
                  return false;
                }
                lost = seq;
                return true;
              })).empty());
  const std::uint16_t lost_source = static_cast<std::uint16_t>(before_.back().source_sequence + 1);
  ASSERT_TRUE(route_layer(1));
  step("dkd");
  steps(2, "ddd");
  ASSERT_TRUE(route_layer(0));
  step("kdd");
  steps(2, "ddd");
  ASSERT_EQ(video_at_b().size(), 8u);
  at_a();
  advance(250);  // past the 200 ms between keyframe requests of one layer
  std::uint64_t missed = counters().retransmit_missed;
  send_rtcp(b_, nack(kSubVideo, {lost}));
  for (const Got& g : video_at_b()) {
    EXPECT_EQ(g.layer, 2);
    EXPECT_EQ(g.source_sequence, lost_source);
  }
  // Past repair: B's decoder gets a keyframe of the layer it is on now, not a wait for its own
  // keyframe request.
  EXPECT_EQ(counters().retransmit_missed, missed + 1);
  EXPECT_EQ(counters().repair_keyframes, 1u);
  EXPECT_EQ(at_a().plis, std::vector<std::uint32_t>{kLayerSsrc[0]});
}

}  // namespace
}  // namespace ringlane::sfu::testing
