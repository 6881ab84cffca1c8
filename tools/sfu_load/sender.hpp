#pragma once
// A publisher's paced media: Opus-like audio every 20 ms, VP8-like video at 30 fps (frames of
// equal-size packets, a 4x keyframe every 2 s or after a PLI), each packet protected with the
// publisher's SRTP keys and a frame's packets sent in one sendmmsg. Packets sent inside the
// measured window are recorded by their counters, so receivers' loss is exact.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "sfu_load/media.hpp"
#include "sfu_load/participant.hpp"

namespace sfu_load {

class Sender {
 public:
  Sender(unsigned video_kbps, unsigned audio_bytes, unsigned packet_bytes, bool simulcast)
      : plan_(VideoPlan::for_kbps(video_kbps, packet_bytes)),
        video_(video_kbps > 0),
        audio_bytes_(audio_bytes),
        simulcast_(simulcast) {
    // The encodings' bitrates and sizes as a browser's 960x540 camera: 1/16, 1/4 and the whole.
    for (unsigned l = 0; l < kLayers; ++l) {
      unsigned shift = 2 * (kLayers - 1 - l);
      layer_plan_[l] = VideoPlan::for_kbps(std::max(video_kbps >> shift, 1u), packet_bytes);
      layer_size_[l] = {static_cast<std::uint16_t>(960 >> (shift / 2)),
                        static_cast<std::uint16_t>(540 >> (shift / 2))};
    }
  }

  // Sends what is due for `p` at `now`; `window`: the packets count in the measured window.
  void run(Participant& p, std::uint64_t now, bool window) {
    if (!p.publishes || !p.pub->connected()) {
      return;
    }
    window_ = window;
    for (int k = 0; k < 2; ++k) {
      Outgoing& out = p.out[k];
      std::uint64_t period = k == 0 ? kAudioNs : kFrameNs;
      if (out.next_ns == 0) {
        // Spread the publishers' frame times over a period, as independent cameras are.
        out.next_ns = now + (p.index * 7919ull * 1'000'000ull) % period;
      }
      if (now > out.next_ns + 100'000'000) {
        out.next_ns = now;  // stalled over 100 ms: do not burst to catch up
      }
      while (out.next_ns <= now) {
        if (k == 0) {
          audio(p, now);
        } else if (video_) {
          video(p, now);
        }
        out.next_ns += period;
      }
    }
  }

 private:
  void count(Outgoing& o) {
    if (window_) {
      o.window_first = o.window_any ? o.window_first : o.counter;
      o.window_last = o.counter;
      o.window_any = true;
    }
    ++o.counter;
  }

  void audio(Participant& p, std::uint64_t now) {
    Outgoing& a = p.out[0];
    TxBuffer& b = tx_[used_];
    std::size_t h = 0;
    if (simulcast_) {
      std::array<Element, 3> e{Element{kAudioLevelId, 1, {0x80 | 30}}, Element{kTwccId, 2, twcc(p)},
                               Element{kMidId, 1, {'0'}}};
      h = write_rtp_header(b.data.data(), false, kAudioPt, static_cast<std::uint16_t>(a.counter),
                           a.timestamp, a.ssrc, e);
    } else {
      h = write_rtp_header(b.data.data(), false, kAudioPt, static_cast<std::uint16_t>(a.counter),
                           a.timestamp, a.ssrc, true);
    }
    Meta m{p.index,   Kind::kAudio, 0,        static_cast<std::uint16_t>(audio_bytes_),
           a.counter, now,          a.counter};
    write_payload(b.data.data() + h, m);
    if (std::size_t n = p.pub->protect(b.data, h + audio_bytes_)) {
      b.length = n;
      ++used_;
    }
    count(a);
    a.timestamp += 960;  // 20 ms at 48 kHz
    flush(p);
  }

  void video(Participant& p, std::uint64_t now) {
    if (simulcast_) {
      for (unsigned l = 0; l < kLayers; ++l) {
        bool key = p.frame % kKeyframeEvery == 0 || p.layer_keyframe[l];
        p.layer_keyframe[l] = false;
        frame(p, now, l + 1 == kLayers ? p.out[1] : p.lower[l], layer_plan_[l], key, l);
      }
    } else {
      bool key = p.frame % kKeyframeEvery == 0 || p.keyframe_requested;
      p.keyframe_requested = false;
      frame(p, now, p.out[1], plan_, key, 0);
    }
    ++p.frame;
    flush(p);
  }

  // The next transport-wide sequence number of p's publisher transport, big-endian.
  static std::array<std::uint8_t, 4> twcc(Participant& p) {
    std::uint16_t s = p.twcc_seq++;
    return {static_cast<std::uint8_t>(s >> 8), static_cast<std::uint8_t>(s & 0xFF)};
  }

  // One video frame on `v` (equal-size packets, the marker on the last). With --simulcast it is
  // layer l's (0: q, the lowest), as a browser sends an encoding: its own SSRC, sequence and
  // picture id, mid and rid on every packet, the transport-wide sequence, a VP8 prefix.
  void frame(Participant& p, std::uint64_t now, Outgoing& v, const VideoPlan& plan, bool key,
             unsigned l) {
    std::uint16_t picture = simulcast_ ? p.picture_id[l]++ : 0;
    std::size_t bytes = key ? plan.key_bytes : plan.delta_bytes;
    std::size_t n = VideoPlan::packets(bytes, plan.packet_bytes);
    for (std::size_t i = 0; i < n; ++i) {
      if (used_ == tx_.size()) {
        flush(p);
      }
      bool last = i + 1 == n;
      auto size = static_cast<std::uint16_t>(VideoPlan::packet_size(bytes, plan.packet_bytes, i));
      TxBuffer& b = tx_[used_];
      std::size_t h = 0;
      if (simulcast_) {
        std::array<Element, 3> e{Element{kMidId, 1, {'1'}},
                                 Element{kRidId, 1, {static_cast<std::uint8_t>(kRids[l][0])}},
                                 Element{kTwccId, 2, twcc(p)}};
        h = write_rtp_header(b.data.data(), last, kVideoPt, static_cast<std::uint16_t>(v.counter),
                             v.timestamp, v.ssrc, e);
        std::size_t prefix = write_vp8_prefix(b.data.data() + h, i == 0, key, picture,
                                              layer_size_[l][0], layer_size_[l][1]);
        h += prefix;
        // The VP8 payload header is the frame's own first bytes: the first packet is as long as
        // the others (a packetizer's equal sizes, which let the server batch them with GSO).
        if (n > 1 && !last && prefix > 4) {
          size = static_cast<std::uint16_t>(std::max(kMetaBytes, size - (prefix - 4)));
        }
      } else {
        h = write_rtp_header(b.data.data(), last, kVideoPt, static_cast<std::uint16_t>(v.counter),
                             v.timestamp, v.ssrc, false);
      }
      Meta m{p.index,
             Kind::kVideo,
             static_cast<std::uint8_t>((last ? kFlagLast : 0) | (key ? kFlagKey : 0) | (l << 2)),
             size,
             v.counter,
             now,
             p.frame};
      write_payload(b.data.data() + h, m);
      if (std::size_t len = p.pub->protect(b.data, h + size)) {
        b.length = len;
        ++used_;
      }
      count(v);
    }
    v.timestamp += 3000;  // 1/30 s at 90 kHz
  }

  void flush(Participant& p) {
    std::array<mmsghdr, kTx> msgs{};
    std::array<iovec, kTx> iov{};
    for (std::size_t i = 0; i < used_; ++i) {
      iov[i] = {tx_[i].data.data(), tx_[i].length};
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr_in6*>(&p.pub->remote_sockaddr());
      msgs[i].msg_hdr.msg_namelen = p.pub->remote_sockaddr_len();
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    std::size_t done = 0;
    while (done < used_) {
      int n = sendmmsg(p.pub->fd(), msgs.data() + done, static_cast<unsigned>(used_ - done), 0);
      if (n <= 0) {
        p.pub->count_send_error();
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    p.pub->count_sent(done);
    used_ = 0;
  }

  static constexpr std::size_t kTx = 64;
  VideoPlan plan_;
  bool video_;
  unsigned audio_bytes_;
  bool simulcast_;
  std::array<VideoPlan, kLayers> layer_plan_{};
  std::array<std::array<std::uint16_t, 2>, kLayers> layer_size_{};
  bool window_ = false;
  std::vector<TxBuffer> tx_ = std::vector<TxBuffer>(kTx);
  std::size_t used_ = 0;
};

}  // namespace sfu_load
