#include "ringlane/dataplane/rtp/codec.hpp"

namespace ringlane::rtp {
namespace {

// RFC 6184 §5.4: NAL unit types that make a keyframe.
bool h264_key_nal(std::uint8_t type) {
  return type == 5 /* IDR slice */ || type == 7 /* SPS */;
}

bool h264_keyframe(Bytes p) {
  if (p.empty()) {
    return false;
  }
  std::uint8_t type = p[0] & 0x1F;
  if (type >= 1 && type <= 23) {
    return h264_key_nal(type);
  }
  if (type == 24) {
    // §5.7.1 STAP-A: 16-bit sizes, each followed by a NAL unit.
    std::size_t at = 1;
    while (at + 2 < p.size()) {
      std::size_t size = load_be16(p.data() + at);
      at += 2;
      if (size == 0 || at + size > p.size()) {
        return false;
      }
      if (h264_key_nal(p[at] & 0x1F)) {
        return true;
      }
      at += size;
    }
    return false;
  }
  if (type == 28) {
    // §5.8 FU-A: the FU header's S bit marks the fragment that starts the NAL unit.
    return p.size() >= 2 && (p[1] & 0x80) != 0 && h264_key_nal(p[1] & 0x1F);
  }
  return false;
}

// RFC 9628 §4.2: |I|P|L|F|B|E|V|Z|; with L, the layer indices |TID|U|SID|D| follow the picture id.
bool vp9_keyframe(Bytes p) {
  if (p.empty()) {
    return false;
  }
  std::uint8_t b = p[0];
  bool inter = (b & 0x40) != 0;
  bool begin = (b & 0x08) != 0;
  if (inter || !begin) {
    return false;
  }
  if ((b & 0x20) == 0) {
    return true;  // no layer indices: a single layer
  }
  std::size_t at = 1;
  if ((b & 0x80) != 0) {
    if (at >= p.size()) {
      return false;
    }
    at += (p[at] & 0x80) != 0 ? 2 : 1;
  }
  if (at >= p.size()) {
    return false;
  }
  return ((p[at] >> 1) & 0x07) == 0;  // the base spatial layer
}

// AV1 RTP payload format §4.4: aggregation header |Z|Y|W|W|N|-|-|-|; N starts a new coded video
// sequence (a keyframe), Z says the first element continues an earlier packet's OBU.
bool av1_keyframe(Bytes p) {
  return !p.empty() && (p[0] & 0x08) != 0 && (p[0] & 0x80) == 0;
}

}  // namespace

std::optional<Vp8Descriptor> parse_vp8(Bytes p) {
  if (p.empty()) {
    return std::nullopt;
  }
  Vp8Descriptor d;
  std::uint8_t b = p[0];
  d.start = (b & 0x10) != 0;
  d.partition = b & 0x07;
  std::size_t at = 1;
  if ((b & 0x80) != 0) {
    if (at >= p.size()) {
      return std::nullopt;
    }
    std::uint8_t x = p[at++];
    if ((x & 0x80) != 0) {
      if (at >= p.size()) {
        return std::nullopt;
      }
      d.has_picture_id = true;
      d.picture_id_at = at;
      if ((p[at] & 0x80) != 0) {
        if (at + 1 >= p.size()) {
          return std::nullopt;
        }
        d.long_picture_id = true;
        d.picture_id = static_cast<std::uint16_t>(((p[at] & 0x7F) << 8) | p[at + 1]);
        at += 2;
      } else {
        d.picture_id = p[at] & 0x7F;
        at += 1;
      }
    }
    if ((x & 0x40) != 0) {
      if (at >= p.size()) {
        return std::nullopt;
      }
      d.has_tl0picidx = true;
      d.tl0picidx_at = at;
      d.tl0picidx = p[at++];
    }
    if ((x & 0x30) != 0) {
      if (at >= p.size()) {
        return std::nullopt;
      }
      d.has_tid = (x & 0x20) != 0;
      d.has_keyidx = (x & 0x10) != 0;
      d.tid = static_cast<std::uint8_t>(p[at] >> 6);
      d.layer_sync = (p[at] & 0x20) != 0;
      d.keyidx = p[at] & 0x1F;
      d.keyidx_at = at;
      ++at;
    }
  }
  d.size = at;
  if (d.start && d.partition == 0 && at < p.size()) {
    d.keyframe = (p[at] & 0x01) == 0;  // §4.3: P, the inverse key frame flag
  }
  return d;
}

std::optional<Vp9Descriptor> parse_vp9(Bytes p) {
  if (p.empty()) {
    return std::nullopt;
  }
  Vp9Descriptor d;
  std::uint8_t b = p[0];
  d.inter = (b & 0x40) != 0;
  d.has_layers = (b & 0x20) != 0;
  d.flexible = (b & 0x10) != 0;
  d.begin = (b & 0x08) != 0;
  d.end = (b & 0x04) != 0;
  d.has_ss = (b & 0x02) != 0;
  d.not_reference = (b & 0x01) != 0;
  std::size_t at = 1;
  if ((b & 0x80) != 0) {
    if (at >= p.size()) {
      return std::nullopt;
    }
    d.has_picture_id = true;
    if ((p[at] & 0x80) != 0) {
      if (at + 1 >= p.size()) {
        return std::nullopt;
      }
      d.long_picture_id = true;
      d.picture_id = static_cast<std::uint16_t>(((p[at] & 0x7F) << 8) | p[at + 1]);
      at += 2;
    } else {
      d.picture_id = p[at] & 0x7F;
      at += 1;
    }
  }
  if (d.has_layers) {
    if (at >= p.size()) {
      return std::nullopt;
    }
    std::uint8_t l = p[at++];
    d.tid = static_cast<std::uint8_t>(l >> 5);
    d.switching_up = (l & 0x10) != 0;
    d.sid = static_cast<std::uint8_t>((l >> 1) & 0x07);
    d.inter_layer = (l & 0x01) != 0;
    if (!d.flexible) {
      if (at >= p.size()) {
        return std::nullopt;
      }
      d.has_tl0picidx = true;
      d.tl0picidx = p[at++];
    }
  }
  if (d.flexible && d.inter) {
    // §4.2: up to 3 P_DIFF bytes, N set on all but the last.
    for (int i = 0;; ++i) {
      if (i == 3 || at >= p.size()) {
        return std::nullopt;
      }
      bool more = (p[at++] & 0x01) != 0;
      if (!more) {
        break;
      }
    }
  }
  if (d.has_ss) {
    // §4.2.1: |N_S|Y|G|-|-|-|, (N_S + 1) x (WIDTH, HEIGHT) when Y, N_G and the pictures when G.
    if (at >= p.size()) {
      return std::nullopt;
    }
    std::uint8_t ss = p[at++];
    d.ss_spatial_layers = static_cast<std::uint8_t>((ss >> 5) + 1);
    if ((ss & 0x10) != 0) {
      at += 4u * d.ss_spatial_layers;
    }
    if ((ss & 0x08) != 0) {
      if (at >= p.size()) {
        return std::nullopt;
      }
      std::size_t pictures = p[at++];
      for (std::size_t i = 0; i < pictures; ++i) {
        if (at >= p.size()) {
          return std::nullopt;
        }
        std::size_t references = (p[at++] >> 2) & 0x03;
        at += references;
      }
    }
    if (at > p.size()) {
      return std::nullopt;
    }
  }
  d.size = at;
  return d;
}

void rewrite_vp8(MutableBytes p, const Vp8Descriptor& d, std::uint16_t picture_id,
                 std::uint8_t tl0picidx, std::uint8_t keyidx) {
  if (d.size > p.size()) {
    return;
  }
  if (d.has_picture_id) {
    if (d.long_picture_id) {
      p[d.picture_id_at] = static_cast<std::uint8_t>(0x80 | ((picture_id >> 8) & 0x7F));
      p[d.picture_id_at + 1] = static_cast<std::uint8_t>(picture_id & 0xFF);
    } else {
      p[d.picture_id_at] = static_cast<std::uint8_t>(picture_id & 0x7F);
    }
  }
  if (d.has_tl0picidx) {
    p[d.tl0picidx_at] = tl0picidx;
  }
  if (d.has_keyidx) {
    p[d.keyidx_at] = static_cast<std::uint8_t>((p[d.keyidx_at] & 0xE0) | (keyidx & 0x1F));
  }
}

bool starts_keyframe(shm::Codec codec, Bytes payload) {
  switch (codec) {
    case shm::Codec::kVp8: {
      auto d = parse_vp8(payload);
      return d && d->keyframe;
    }
    case shm::Codec::kVp9:
      return vp9_keyframe(payload);
    case shm::Codec::kH264:
      return h264_keyframe(payload);
    case shm::Codec::kAv1:
      return av1_keyframe(payload);
    default:
      return false;
  }
}

}  // namespace ringlane::rtp
