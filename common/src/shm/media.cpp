#include "ringlane/shm/media.hpp"

#include <algorithm>
#include <cstring>

#include "ringlane/common/bytes.hpp"

namespace ringlane::shm {
namespace {

class Writer {
 public:
  Writer& u8(std::uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  Writer& u32(std::uint32_t v) {
    std::uint8_t b[4];
    store_be32(b, v);
    out_.insert(out_.end(), b, b + 4);
    return *this;
  }
  Writer& bytes(std::span<const std::uint8_t> b) {
    out_.insert(out_.end(), b.begin(), b.end());
    return *this;
  }
  // A length byte, then the text.
  Writer& text(const std::string& s) {
    u8(static_cast<std::uint8_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
    return *this;
  }
  std::vector<std::uint8_t> take() { return std::move(out_); }

 private:
  std::vector<std::uint8_t> out_;
};

// Reads fields in order; once a read runs past the end every later read fails too.
class Reader {
 public:
  explicit Reader(Payload p) : p_(p) {}
  bool u8(std::uint8_t& v) {
    if (!need(1)) {
      return false;
    }
    v = p_[at_++];
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (!need(4)) {
      return false;
    }
    v = load_be32(p_.data() + at_);
    at_ += 4;
    return true;
  }
  bool flag(bool& v) {
    std::uint8_t b = 0;
    if (!u8(b) || b > 1) {
      return ok_ = false;
    }
    v = b == 1;
    return true;
  }
  template <std::size_t N>
  bool bytes(std::array<std::uint8_t, N>& out) {
    if (!need(N)) {
      return false;
    }
    std::memcpy(out.data(), p_.data() + at_, N);
    at_ += N;
    return true;
  }
  bool text(std::string& s, std::size_t max) {
    std::uint8_t n = 0;
    if (!u8(n) || n > max || !need(n)) {
      return ok_ = false;
    }
    s.assign(reinterpret_cast<const char*>(p_.data() + at_), n);
    at_ += n;
    return true;
  }
  bool session(SessionId& id) { return u32(id.value); }
  // Every field read and nothing left over.
  bool done() const { return ok_ && at_ == p_.size(); }

 private:
  bool need(std::size_t n) {
    if (!ok_ || p_.size() - at_ < n) {
      ok_ = false;
    }
    return ok_;
  }
  Payload p_;
  std::size_t at_ = 0;
  bool ok_ = true;
};

template <typename T>
std::optional<T> finish(const Reader& r, T value) {
  return r.done() ? std::optional<T>(std::move(value)) : std::nullopt;
}

}  // namespace

std::vector<std::uint8_t> encode(const SessionCreate& m) {
  return Writer()
      .u32(m.session.value)
      .u8(m.dtls_client ? 1 : 0)
      .text(m.ice_ufrag.substr(0, kMaxIceUfrag))
      .text(m.ice_pwd.substr(0, kMaxIcePwd))
      .bytes(m.remote_fingerprint)
      .take();
}
std::optional<SessionCreate> decode_session_create(Payload p) {
  Reader r(p);
  SessionCreate m;
  r.session(m.session) && r.flag(m.dtls_client) && r.text(m.ice_ufrag, kMaxIceUfrag) &&
      r.text(m.ice_pwd, kMaxIcePwd) && r.bytes(m.remote_fingerprint);
  if (m.ice_ufrag.empty() || m.ice_pwd.empty()) {
    return std::nullopt;
  }
  return finish(r, std::move(m));
}

std::vector<std::uint8_t> encode(const SessionRemote& m) {
  return Writer().u32(m.session.value).u8(m.dtls_client ? 1 : 0).bytes(m.remote_fingerprint).take();
}
std::optional<SessionRemote> decode_session_remote(Payload p) {
  Reader r(p);
  SessionRemote m;
  r.session(m.session) && r.flag(m.dtls_client) && r.bytes(m.remote_fingerprint);
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const SessionIceRestart& m) {
  return Writer()
      .u32(m.session.value)
      .text(m.ice_ufrag.substr(0, kMaxIceUfrag))
      .text(m.ice_pwd.substr(0, kMaxIcePwd))
      .take();
}
std::optional<SessionIceRestart> decode_session_ice_restart(Payload p) {
  Reader r(p);
  SessionIceRestart m;
  r.session(m.session) && r.text(m.ice_ufrag, kMaxIceUfrag) && r.text(m.ice_pwd, kMaxIcePwd);
  if (m.ice_ufrag.empty() || m.ice_pwd.empty()) {
    return std::nullopt;
  }
  return finish(r, std::move(m));
}

std::vector<std::uint8_t> encode(const TrackAdd& m) {
  Writer w;
  w.u32(m.session.value)
      .u32(m.ssrc)
      .u32(m.rtx_ssrc)
      .u8(static_cast<std::uint8_t>(m.kind))
      .u8(m.payload_type)
      .u8(m.rtx_payload_type)
      .u32(m.clock_rate)
      .u8(static_cast<std::uint8_t>(m.codec))
      .u8(m.rid_extension)
      .u8(m.repaired_rid_extension)
      .u8(m.transport_cc_extension)
      .u8(m.mid_extension)
      .text(m.mid)
      .u8(m.audio_level_extension);
  w.u8(static_cast<std::uint8_t>(m.rids.size()));
  for (const auto& rid : m.rids) {
    w.text(rid);
  }
  w.u8(m.red_payload_type).u8(m.remb ? 1 : 0).u8(m.dependency_descriptor_extension);
  return w.take();
}
std::optional<TrackAdd> decode_track_add(Payload p) {
  Reader r(p);
  TrackAdd m;
  std::uint8_t kind = 0;
  std::uint8_t codec = 0;
  std::uint8_t rids = 0;
  r.session(m.session) && r.u32(m.ssrc) && r.u32(m.rtx_ssrc) && r.u8(kind) &&
      r.u8(m.payload_type) && r.u8(m.rtx_payload_type) && r.u32(m.clock_rate) && r.u8(codec) &&
      r.u8(m.rid_extension) && r.u8(m.repaired_rid_extension) && r.u8(m.transport_cc_extension) &&
      r.u8(m.mid_extension) && r.text(m.mid, kMaxMid) && r.u8(m.audio_level_extension) &&
      r.u8(rids);
  if (kind > 1 || m.payload_type > 127 || m.rtx_payload_type > 127 || m.ssrc == 0 ||
      codec > static_cast<std::uint8_t>(Codec::kAv1) || rids > kMaxLayers || m.rid_extension > 14 ||
      m.repaired_rid_extension > 14 || m.transport_cc_extension > 14 || m.mid_extension > 14 ||
      m.audio_level_extension > 14) {
    return std::nullopt;
  }
  m.rids.resize(rids);
  for (auto& rid : m.rids) {
    if (!r.text(rid, kMaxRid) || rid.empty()) {
      return std::nullopt;
    }
  }
  std::uint8_t remb = 0;
  r.u8(m.red_payload_type) && r.u8(remb) && r.u8(m.dependency_descriptor_extension);
  if (m.red_payload_type > 127 || remb > 1 || m.dependency_descriptor_extension > 14) {
    return std::nullopt;
  }
  m.remb = remb != 0;
  m.kind = static_cast<MediaKind>(kind);
  m.codec = static_cast<Codec>(codec);
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const TrackRemove& m) {
  return Writer().u32(m.session.value).u32(m.ssrc).take();
}
std::optional<TrackRemove> decode_track_remove(Payload p) {
  Reader r(p);
  TrackRemove m;
  r.session(m.session) && r.u32(m.ssrc);
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const Subscribe& m) {
  return Writer()
      .u32(m.subscriber.value)
      .u32(m.publisher.value)
      .u32(m.publisher_ssrc)
      .u32(m.ssrc)
      .u32(m.rtx_ssrc)
      .u8(m.payload_type)
      .u8(m.rtx_payload_type)
      .bytes(m.extensions)
      .u8(m.transport_cc_extension)
      .u8(m.red_payload_type)
      .take();
}
std::optional<Subscribe> decode_subscribe(Payload p) {
  Reader r(p);
  Subscribe m;
  r.session(m.subscriber) && r.session(m.publisher) && r.u32(m.publisher_ssrc) && r.u32(m.ssrc) &&
      r.u32(m.rtx_ssrc) && r.u8(m.payload_type) && r.u8(m.rtx_payload_type) &&
      r.bytes(m.extensions) && r.u8(m.transport_cc_extension) && r.u8(m.red_payload_type);
  if (m.payload_type > 127 || m.rtx_payload_type > 127 || m.ssrc == 0 ||
      m.transport_cc_extension > 14 || m.red_payload_type > 127) {
    return std::nullopt;
  }
  for (auto id : m.extensions) {
    if (id > 14) {
      return std::nullopt;
    }
  }
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const RouteReport& m) {
  return Writer()
      .u32(m.subscriber.value)
      .u32(m.ssrc)
      .u8(static_cast<std::uint8_t>(m.kind))
      .u8(m.layer)
      .u8(m.target)
      .u32(m.bitrate_bps)
      .u32(m.frame_rate_milli)
      .u32(m.layer_ups)
      .u32(m.layer_downs)
      .u32(m.freezes)
      .u8(m.fraction_lost)
      .u32(m.jitter_ms)
      .u32(m.estimate_bps)
      .u32(m.rtt_ms)
      .u8(m.temporal)
      .u8(m.temporal_target)
      .u32(m.preference_changes)
      .u32(m.keyframe_switches)
      .take();
}
std::optional<RouteReport> decode_route_report(Payload p) {
  // With the trailing layer fields, or without them (an older data plane: not reported).
  for (bool layers : {true, false}) {
    Reader r(p);
    RouteReport m;
    std::uint8_t kind = 0;
    r.session(m.subscriber) && r.u32(m.ssrc) && r.u8(kind) && r.u8(m.layer) && r.u8(m.target) &&
        r.u32(m.bitrate_bps) && r.u32(m.frame_rate_milli) && r.u32(m.layer_ups) &&
        r.u32(m.layer_downs) && r.u32(m.freezes) && r.u8(m.fraction_lost) && r.u32(m.jitter_ms) &&
        r.u32(m.estimate_bps) && r.u32(m.rtt_ms) &&
        (!layers || (r.u8(m.temporal) && r.u8(m.temporal_target) && r.u32(m.preference_changes) &&
                     r.u32(m.keyframe_switches)));
    if (!r.done()) {
      continue;
    }
    if (kind > 1) {
      return std::nullopt;
    }
    m.kind = static_cast<MediaKind>(kind);
    return m;
  }
  return std::nullopt;
}

std::vector<std::uint8_t> encode(const TrackPriority& m) {
  return Writer().u32(m.publisher.value).u32(m.ssrc).u8(m.priority).take();
}
std::optional<TrackPriority> decode_track_priority(Payload p) {
  Reader r(p);
  TrackPriority m;
  r.session(m.publisher) && r.u32(m.ssrc) && r.u8(m.priority);
  if (m.ssrc == 0) {
    return std::nullopt;
  }
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const LayersActive& m) {
  return Writer().u32(m.publisher.value).u32(m.ssrc).u8(m.mask).take();
}
std::optional<LayersActive> decode_layers_active(Payload p) {
  Reader r(p);
  LayersActive m;
  r.session(m.publisher) && r.u32(m.ssrc) && r.u8(m.mask);
  if (m.ssrc == 0 || m.mask >= (1u << kMaxLayers)) {
    return std::nullopt;
  }
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const AudioLevels& m) {
  Writer w;
  w.u8(static_cast<std::uint8_t>(std::min(m.tracks.size(), AudioLevels::kMax)));
  for (std::size_t i = 0; i < m.tracks.size() && i < AudioLevels::kMax; ++i) {
    w.u32(m.tracks[i].publisher.value).u32(m.tracks[i].ssrc).u8(m.tracks[i].level);
  }
  return w.take();
}
std::optional<AudioLevels> decode_audio_levels(Payload p) {
  Reader r(p);
  AudioLevels m;
  std::uint8_t n = 0;
  if (!r.u8(n) || n > AudioLevels::kMax) {
    return std::nullopt;
  }
  m.tracks.resize(n);
  for (auto& t : m.tracks) {
    if (!(r.session(t.publisher) && r.u32(t.ssrc) && r.u8(t.level)) || t.level > 127) {
      return std::nullopt;
    }
  }
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const RouteLayer& m) {
  return Writer()
      .u32(m.subscriber.value)
      .u32(m.ssrc)
      .u8(m.max_spatial)
      .u8(m.paused ? 1 : 0)
      .u8(m.max_temporal)
      .take();
}
std::optional<RouteLayer> decode_route_layer(Payload p) {
  // With the trailing max_temporal, or without it (an older encoder: all temporal layers).
  for (bool temporal : {true, false}) {
    Reader r(p);
    RouteLayer m;
    r.session(m.subscriber) && r.u32(m.ssrc) && r.u8(m.max_spatial) && r.flag(m.paused) &&
        (!temporal || r.u8(m.max_temporal));
    if (!r.done()) {
      continue;
    }
    if (m.ssrc == 0 || m.max_spatial >= kMaxLayers || m.max_temporal > RouteLayer::kAllTemporal) {
      return std::nullopt;
    }
    return m;
  }
  return std::nullopt;
}

std::vector<std::uint8_t> encode(const Unsubscribe& m) {
  return Writer().u32(m.subscriber.value).u32(m.ssrc).take();
}
std::optional<Unsubscribe> decode_unsubscribe(Payload p) {
  Reader r(p);
  Unsubscribe m;
  r.session(m.subscriber) && r.u32(m.ssrc);
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const SessionClose& m) {
  return Writer().u32(m.session.value).take();
}
std::optional<SessionClose> decode_session_close(Payload p) {
  Reader r(p);
  SessionClose m;
  r.session(m.session);
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const KeyframeRequest& m) {
  return Writer().u32(m.publisher.value).u32(m.ssrc).take();
}
std::optional<KeyframeRequest> decode_keyframe_request(Payload p) {
  Reader r(p);
  KeyframeRequest m;
  r.session(m.publisher) && r.u32(m.ssrc);
  return finish(r, m);
}

std::vector<std::uint8_t> encode(const SessionEvent& m) {
  return Writer()
      .u32(m.session.value)
      .u8(static_cast<std::uint8_t>(m.state))
      .u32(m.elapsed_ms)
      .take();
}
std::optional<SessionEvent> decode_session_event(Payload p) {
  Reader r(p);
  SessionEvent m;
  std::uint8_t state = 0;
  r.session(m.session) && r.u8(state) && r.u32(m.elapsed_ms);
  if (state < 1 || state > 4) {
    return std::nullopt;
  }
  m.state = static_cast<SessionState>(state);
  return finish(r, m);
}

std::optional<std::array<std::uint8_t, kFingerprintBytes>> fingerprint_bytes(
    std::string_view text) {
  // 32 pairs of hex digits separated by 31 colons.
  if (text.size() != kFingerprintBytes * 3 - 1) {
    return std::nullopt;
  }
  std::array<std::uint8_t, kFingerprintBytes> out{};
  for (std::size_t i = 0; i < kFingerprintBytes; ++i) {
    int hi = hex_digit(text[i * 3]);
    int lo = hex_digit(text[i * 3 + 1]);
    if (hi < 0 || lo < 0 || (i + 1 < kFingerprintBytes && text[i * 3 + 2] != ':')) {
      return std::nullopt;
    }
    out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return out;
}

}  // namespace ringlane::shm
