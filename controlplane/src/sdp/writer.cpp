#include "writer.hpp"

#include <algorithm>
#include <string>

namespace ringlane::control::sdp::writer {

void line(std::string& out, std::initializer_list<std::string_view> parts) {
  for (std::string_view p : parts) {
    out.append(p);
  }
  out.append("\r\n");
}

void session_head(std::string& out, std::string_view session_id, std::uint64_t version) {
  std::string v = std::to_string(version);
  line(out, {"v=0"});
  // RFC 8829 §5.2.1: username "-", address 0.0.0.0 (it is not used).
  line(out, {"o=- ", session_id, " ", v, " IN IP4 0.0.0.0"});
  line(out, {"s=-"});
  line(out, {"t=0 0"});
  line(out, {"a=ice-lite"});
}

void transport(std::string& out, const LocalIce& local, std::string_view setup) {
  // RFC 8829 §5.2.1: port 9 and 0.0.0.0 until candidates say where media goes.
  line(out, {"c=IN IP4 0.0.0.0"});
  line(out, {"a=rtcp:9 IN IP4 0.0.0.0"});
  line(out, {"a=ice-ufrag:", local.ufrag});
  line(out, {"a=ice-pwd:", local.pwd});
  line(out, {"a=fingerprint:sha-256 ", local.fingerprint});
  line(out, {"a=setup:", setup});
}

void candidates(std::string& out, const LocalIce& local) {
  // RFC 8445 §5.1.2.1: priority = 2^24 * type preference (126 for host) + 2^8 * local
  // preference + (256 - component). Each address its own local preference, IPv6 below IPv4.
  std::uint32_t index = 0;
  for (const auto& [ip, port] : local.candidates) {
    bool v6 = ip.find(':') != std::string::npos;
    std::uint32_t local_pref = (v6 ? 65535u - 256u : 65535u) - index;
    std::uint32_t priority = (126u << 24) + (local_pref << 8) + 255u;
    ++index;
    line(out, {"a=candidate:", std::to_string(index), " 1 udp ", std::to_string(priority), " ", ip,
               " ", std::to_string(port), " typ host"});
  }
  line(out, {"a=end-of-candidates"});
}

void codec(std::string& out, const Codec& c, std::optional<std::uint8_t> rtx_pt) {
  std::string pt = std::to_string(c.pt);
  std::string rtpmap = c.name + "/" + std::to_string(c.clock);
  if (c.channels != 0) {
    rtpmap += "/" + std::to_string(c.channels);
  }
  line(out, {"a=rtpmap:", pt, " ", rtpmap});
  for (const std::string& fb : c.rtcp_fb) {
    line(out, {"a=rtcp-fb:", pt, " ", fb});
  }
  if (!c.fmtp.empty()) {
    line(out, {"a=fmtp:", pt, " ", c.fmtp});
  }
  if (rtx_pt) {
    std::string rtx = std::to_string(*rtx_pt);
    line(out, {"a=rtpmap:", rtx, " rtx/", std::to_string(c.clock)});
    line(out, {"a=fmtp:", rtx, " apt=", pt});
  }
}

const Codec* red_for(const std::vector<Codec>& codecs, std::uint8_t opus_pt) {
  for (const Codec& c : codecs) {
    if (!iequals(c.name, "red") || c.clock != 48000 || c.channels != 2 || c.fmtp.empty()) {
      continue;
    }
    std::string_view v = c.fmtp;
    bool only_opus = true;
    while (!v.empty() && only_opus) {
      std::string_view pt = v.substr(0, v.find('/'));
      v.remove_prefix(std::min(v.size(), pt.size() + 1));
      only_opus = pt == std::to_string(opus_pt);
    }
    if (only_opus) {
      return &c;
    }
  }
  return nullptr;
}

void red_codec(std::string& out, std::uint8_t red_pt, std::uint8_t opus_pt) {
  std::string red = std::to_string(red_pt);
  std::string opus = std::to_string(opus_pt);
  line(out, {"a=rtpmap:", red, " red/48000/2"});
  line(out, {"a=fmtp:", red, " ", opus, "/", opus});
}

std::string local_problem(const LocalIce& local) {
  auto printable = [](const std::string& s) {
    for (char c : s) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        return false;
      }
    }
    return !s.empty();
  };
  if (!printable(local.ufrag) || !printable(local.pwd)) {
    return "local ICE: empty ufrag or pwd, or one with spaces";
  }
  if (!sha256_fingerprint("sha-256 " + local.fingerprint)) {
    return "local ICE: the fingerprint is not 32 hex pairs (SHA-256)";
  }
  // Bounds the local preferences used for candidate priorities.
  constexpr std::size_t kMaxCandidates = 32;
  if (local.candidates.size() > kMaxCandidates) {
    return "local ICE: more than 32 candidates";
  }
  for (const auto& candidate : local.candidates) {
    if (!printable(candidate.first)) {
      return "local ICE: a candidate address is empty or has spaces";
    }
  }
  return {};
}

bool forwardable(const Codec& c, std::string_view kind) {
  if (kind == "audio") {
    return iequals(c.name, "opus") && c.clock == 48000 && c.channels == 2;
  }
  if (kind != "video" || c.clock != 90000) {
    return false;
  }
  if (iequals(c.name, "VP8") || iequals(c.name, "AV1")) {
    return true;
  }
  if (iequals(c.name, "VP9")) {
    // RFC 9628 (VP9 payload format): profile-id absent means 0.
    auto profile = fmtp_parameter(c.fmtp, "profile-id");
    return !profile || *profile == "0";
  }
  if (iequals(c.name, "H264")) {
    // RFC 6184 §8.1: packetization-mode absent means 0 (single NAL unit), not what we take.
    auto mode = fmtp_parameter(c.fmtp, "packetization-mode");
    return mode && *mode == "1";
  }
  return false;
}

bool forwarded_feedback(std::string_view fb) {
  return fb == "nack" || fb == "nack pli" || fb == "ccm fir";
}

bool has_extension(const std::vector<Extension>& extensions, std::string_view uri) {
  return std::any_of(extensions.begin(), extensions.end(),
                     [&](const Extension& e) { return e.uri == uri; });
}

std::string section_name(const Media& m) {
  return "the " + m.kind + " m-section (mid " + m.mid + ")";
}

std::optional<std::string> answer_setup(const std::string& offered) {
  // No a=setup in the offer means the offerer is active (RFC 4145 §4.1).
  if (offered.empty() || offered == "actpass" || offered == "active") {
    return "passive";
  }
  if (offered == "passive") {
    return "active";
  }
  return std::nullopt;  // holdconn
}

std::string session_id(const std::string& ufrag) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (char c : ufrag) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return std::to_string(h & 0x7fffffffffffffffull);
}

std::string transport_problem(const Session& offer, std::size_t i, bool bundled,
                              std::string& setup) {
  const Media& m = offer.media[i];
  if (!m.rtcp_mux) {
    return section_name(m) + " has no a=rtcp-mux; RTP and RTCP must share one port (RFC 5761)";
  }
  if (offer.ufrag_of(i).empty() || offer.pwd_of(i).empty()) {
    return section_name(m) + " has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)";
  }
  if (!sha256_fingerprint(offer.fingerprint_of(i))) {
    return section_name(m) + " has no sha-256 a=fingerprint (RFC 8122, RFC 8827)";
  }
  auto answered = answer_setup(offer.setup_of(i));
  if (!answered) {
    return section_name(m) + ": a=setup:holdconn is not supported";
  }
  setup = *answered;
  // RFC 8843: everything goes over one transport, so every accepted section is bundled.
  if (bundled && std::find(offer.bundle.begin(), offer.bundle.end(), m.mid) == offer.bundle.end()) {
    return section_name(m) + " is not in the offer's a=group:BUNDLE; we receive all media on " +
           "one transport (RFC 8843)";
  }
  return {};
}

void rejected(std::string& out, const Media& m) {
  std::string_view format = m.formats.empty() ? std::string_view("0") : m.formats.front();
  line(out, {"m=", m.kind, " 0 ", m.protocol, " ", format});
  line(out, {"c=IN IP4 0.0.0.0"});
  line(out, {"a=mid:", m.mid});
  line(out, {"a=inactive"});
}

}  // namespace ringlane::control::sdp::writer
