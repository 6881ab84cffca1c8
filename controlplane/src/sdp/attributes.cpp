// The a= lines the SFU negotiates with, each checked against its RFC's grammar; the rest are
// ignored (RFC 8866 §5.13).
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "parser.hpp"
#include "ringlane/controlplane/sdp/sdp.hpp"
#include "text.hpp"

namespace ringlane::control::sdp::detail {
namespace {

using text::quoted;

constexpr std::uint64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

bool is_direction(std::string_view s) {
  return s == "sendrecv" || s == "sendonly" || s == "recvonly" || s == "inactive";
}

// RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/"; ufrag 4-256 chars, pwd 22-256 chars.
bool valid_ice_value(std::string_view s, std::size_t min_size) {
  if (s.size() < min_size || s.size() > 256) {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// RFC 8851 §10: rid-id = 1*(alpha-numeric / "-" / "_").
bool valid_rid(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool Parser::attribute(std::string_view value) {
  std::size_t colon = value.find(':');
  std::string_view name = value.substr(0, colon);
  std::string_view v =
      colon == std::string_view::npos ? std::string_view{} : text::trim(value.substr(colon + 1));
  if (name.empty() || text::has_space(name)) {
    return fail("a=: bad attribute name " + quoted(name));
  }
  // Attributes of one m-section only (RFC 8866 §6, RFC 5576, RFC 8830, RFC 8851, RFC 8839).
  static constexpr std::string_view kMediaOnly[] = {"rtpmap",     "fmtp",     "rtcp-fb", "ssrc",
                                                    "ssrc-group", "mid",      "msid",    "rid",
                                                    "simulcast",  "candidate"};
  if (!in_media_) {
    for (std::string_view only : kMediaOnly) {
      if (name == only) {
        return fail("a=" + std::string(name) + " before any m= line");
      }
    }
  }
  if (is_direction(name)) {
    (in_media_ ? media().direction : session_direction_) = std::string(name);
    return true;
  }
  if (name == "rtpmap") {
    return !rtp_media() || rtpmap(v);
  }
  if (name == "fmtp") {
    return !rtp_media() || fmtp(v);
  }
  if (name == "rtcp-fb") {
    return !rtp_media() || rtcp_fb(v);
  }
  if (name == "extmap") {
    return extmap(v);
  }
  if (name == "ssrc") {
    return ssrc(v);
  }
  if (name == "ssrc-group") {
    return ssrc_group(v);
  }
  if (name == "mid") {
    return mid(v);
  }
  if (name == "msid") {
    return msid(v);
  }
  if (name == "fingerprint") {
    return fingerprint(v);
  }
  if (name == "group") {
    return group(v);
  }
  if (name == "rid") {
    return rid(v);
  }
  if (name == "simulcast") {
    return simulcast(v);
  }
  if (name == "candidate") {
    return candidate(v);
  }
  if (name == "setup") {
    // RFC 4145 §4.
    if (v != "actpass" && v != "active" && v != "passive" && v != "holdconn") {
      return fail("a=setup: expected actpass, active, passive or holdconn, got " + quoted(v));
    }
    (in_media_ ? media().setup : session_.setup) = std::string(v);
    return true;
  }
  if (name == "ice-ufrag" || name == "ice-pwd") {
    bool ufrag = name == "ice-ufrag";
    if (!valid_ice_value(v, ufrag ? 4 : 22)) {
      return fail("a=" + std::string(name) + ": " + quoted(v) + " is not " + (ufrag ? "4" : "22") +
                  "-256 ice-chars (RFC 8839 §5.4)");
    }
    std::string& out = ufrag ? (in_media_ ? media().ice_ufrag : session_.ice_ufrag)
                             : (in_media_ ? media().ice_pwd : session_.ice_pwd);
    out = std::string(v);
    return true;
  }
  if (name == "ice-lite") {
    if (!in_media_) {
      session_.ice_lite = true;
    }
    return true;
  }
  if (name == "extmap-allow-mixed") {
    session_.extmap_allow_mixed = true;
    return true;
  }
  if (in_media_) {
    if (name == "rtcp-mux") {
      media().rtcp_mux = true;
    } else if (name == "rtcp-rsize") {
      media().rtcp_rsize = true;
    } else if (name == "bundle-only") {
      media().bundle_only = true;
    } else if (name == "end-of-candidates") {
      media().end_of_candidates = true;
    }
  }
  return true;  // unknown attributes are ignored (RFC 8866 §5.13)
}

bool Parser::rtpmap(std::string_view value) {
  // RFC 8866 §6.6: a=rtpmap:<payload type> <encoding name>/<clock rate>[/<parameters>]
  std::size_t sp = value.find(' ');
  if (sp == std::string_view::npos) {
    return fail("a=rtpmap: expected '<payload type> <encoding>/<clock rate>', got " +
                quoted(value));
  }
  std::uint64_t pt = 0;
  if (!number("a=rtpmap", "payload type", value.substr(0, sp), 0, 127, pt)) {
    return false;
  }
  std::string_view rest = text::trim(value.substr(sp + 1));
  std::size_t s1 = rest.find('/');
  if (s1 == std::string_view::npos) {
    return fail("a=rtpmap: expected '<encoding>/<clock rate>', got " + quoted(rest));
  }
  std::string_view name = rest.substr(0, s1);
  std::string_view after = rest.substr(s1 + 1);
  std::size_t s2 = after.find('/');
  std::string_view clock_text = after.substr(0, s2);
  if (name.empty() || text::has_space(name)) {
    return fail("a=rtpmap: bad encoding name " + quoted(name));
  }
  std::uint64_t clock = 0;
  std::uint64_t channels = 0;
  if (!number("a=rtpmap", "clock rate", clock_text, 1, kMaxU32, clock)) {
    return false;
  }
  if (s2 != std::string_view::npos &&
      !number("a=rtpmap", "channels", after.substr(s2 + 1), 1, 255, channels)) {
    return false;
  }
  PtInfo& info = pending_.pts[pt];
  if (info.has_rtpmap) {
    return fail("a=rtpmap: payload type " + std::to_string(pt) + " mapped twice");
  }
  info.has_rtpmap = true;
  info.name = std::string(name);
  info.clock = static_cast<std::uint32_t>(clock);
  info.channels = static_cast<std::uint8_t>(channels);
  return true;
}

bool Parser::fmtp(std::string_view value) {
  // RFC 8866 §6.15: a=fmtp:<format> <format specific parameters>
  std::size_t sp = value.find(' ');
  if (sp == std::string_view::npos) {
    return fail("a=fmtp: expected '<payload type> <parameters>', got " + quoted(value));
  }
  std::uint64_t pt = 0;
  if (!number("a=fmtp", "payload type", value.substr(0, sp), 0, 127, pt)) {
    return false;
  }
  std::string_view params = text::trim(value.substr(sp + 1));
  std::optional<std::uint8_t> apt;
  if (auto a = fmtp_parameter(params, "apt")) {
    // RFC 4588 §8.1: apt names the payload type this rtx format retransmits.
    std::uint64_t n = 0;
    if (!number("a=fmtp", "apt", *a, 0, 127, n)) {
      return false;
    }
    apt = static_cast<std::uint8_t>(n);
  }
  PtInfo& info = pending_.pts[pt];
  if (info.has_fmtp) {
    return fail("a=fmtp: payload type " + std::to_string(pt) + " has a second a=fmtp");
  }
  info.has_fmtp = true;
  info.fmtp = std::string(params);
  info.apt = apt;
  return true;
}

bool Parser::rtcp_fb(std::string_view value) {
  // RFC 4585 §4.2: a=rtcp-fb:<payload type or *> <type> [<parameters>]
  std::size_t sp = value.find(' ');
  std::string_view fb =
      sp == std::string_view::npos ? std::string_view{} : text::trim(value.substr(sp + 1));
  if (fb.empty()) {
    return fail("a=rtcp-fb: expected '<payload type> <feedback>', got " + quoted(value));
  }
  int pt = -1;
  std::string_view pt_text = value.substr(0, sp);
  if (pt_text != "*") {
    std::uint64_t n = 0;
    if (!number("a=rtcp-fb", "payload type", pt_text, 0, 127, n)) {
      return false;
    }
    pt = static_cast<int>(n);
  }
  pending_.feedback.emplace_back(pt, std::string(fb));
  return true;
}

bool Parser::extmap(std::string_view value) {
  // RFC 8285 §5: a=extmap:<id>[/<direction>] <URI> [<extension attributes>]
  text::split(value, tokens_);
  if (tokens_.size() < 2) {
    return fail("a=extmap: expected '<id> <uri>', got " + quoted(value));
  }
  std::string_view id_text = tokens_[0];
  std::size_t slash = id_text.find('/');
  std::string_view direction;
  if (slash != std::string_view::npos) {
    direction = id_text.substr(slash + 1);
    id_text = id_text.substr(0, slash);
    if (!is_direction(direction)) {
      return fail("a=extmap: bad direction " + quoted(direction));
    }
  }
  // RFC 8285 §4.2-4.3: 1-14 with one-byte headers, 1-255 with two-byte headers.
  std::uint64_t id = 0;
  if (!number("a=extmap", "id", id_text, 1, 255, id)) {
    return false;
  }
  std::vector<Extension>& list = in_media_ ? media().extensions : session_extensions_;
  for (const Extension& e : list) {
    if (e.id == id) {
      if (e.uri == tokens_[1]) {
        return true;  // the session-level line repeated in the section
      }
      return fail("a=extmap: id " + std::to_string(id) + " used twice");
    }
  }
  list.push_back(
      Extension{static_cast<std::uint8_t>(id), std::string(tokens_[1]), std::string(direction)});
  return true;
}

bool Parser::add_ssrc(std::uint32_t id) {
  Media& m = media();
  for (std::uint32_t s : m.ssrcs) {
    if (s == id) {
      return true;
    }
  }
  if (m.ssrcs.size() >= limits_.max_ssrcs) {
    return fail("more than " + std::to_string(limits_.max_ssrcs) + " SSRCs in one m-section");
  }
  m.ssrcs.push_back(id);
  return true;
}

bool Parser::ssrc(std::string_view value) {
  // RFC 5576 §4.1: a=ssrc:<ssrc-id> <attribute>[:<value>]
  std::size_t sp = value.find(' ');
  std::string_view attr =
      sp == std::string_view::npos ? std::string_view{} : text::trim(value.substr(sp + 1));
  if (attr.empty()) {
    return fail("a=ssrc: expected '<ssrc> <attribute>[:<value>]', got " + quoted(value));
  }
  std::uint64_t id = 0;
  if (!number("a=ssrc", "ssrc", value.substr(0, sp), 0, kMaxU32, id) ||
      !add_ssrc(static_cast<std::uint32_t>(id))) {
    return false;
  }
  std::size_t colon = attr.find(':');
  std::string_view name = attr.substr(0, colon);
  std::string_view v =
      colon == std::string_view::npos ? std::string_view{} : text::trim(attr.substr(colon + 1));
  Media& m = media();
  if (name == "cname") {
    if (v.empty()) {
      return fail("a=ssrc: empty cname");
    }
    if (m.cname.empty()) {
      m.cname = std::string(v);
    }
  } else if (name == "msid") {
    text::split(v, tokens_);
    if (tokens_.empty() || tokens_.size() > 2) {
      return fail("a=ssrc: expected 'msid:<stream> [<track>]', got " + quoted(v));
    }
    if (!pending_.msid_from_attribute && m.msid_stream.empty()) {
      m.msid_stream = std::string(tokens_[0]);
      m.msid_track = tokens_.size() > 1 ? std::string(tokens_[1]) : std::string();
    }
  }
  return true;
}

bool Parser::ssrc_group(std::string_view value) {
  // RFC 5576 §4.2: a=ssrc-group:<semantics> <ssrc-id> ...
  text::split(value, tokens_);
  if (tokens_.size() < 2) {
    return fail("a=ssrc-group: expected '<semantics> <ssrc> ...', got " + quoted(value));
  }
  if (tokens_.size() - 1 > limits_.max_ssrcs || media().ssrc_groups.size() >= limits_.max_ssrcs) {
    return fail("a=ssrc-group: more than " + std::to_string(limits_.max_ssrcs) +
                " SSRCs or groups");
  }
  SsrcGroup g;
  g.semantics = std::string(tokens_[0]);
  for (std::size_t i = 1; i < tokens_.size(); ++i) {
    std::uint64_t id = 0;
    if (!number("a=ssrc-group", "ssrc", tokens_[i], 0, kMaxU32, id)) {
      return false;
    }
    g.ssrcs.push_back(static_cast<std::uint32_t>(id));
  }
  media().ssrc_groups.push_back(std::move(g));
  return true;
}

bool Parser::mid(std::string_view value) {
  // RFC 5888 §4: identification-tag = token, unique within the session.
  if (value.empty() || text::has_space(value)) {
    return fail("a=mid: bad identification tag " + quoted(value));
  }
  if (!media().mid.empty()) {
    return fail("a=mid: a second a=mid in one m-section");
  }
  for (std::size_t i = 0; i + 1 < session_.media.size(); ++i) {
    if (session_.media[i].mid == value) {
      return fail("a=mid: mid " + quoted(value) + " is already used by the m-section at line " +
                  std::to_string(session_.media[i].line));
    }
  }
  media().mid = std::string(value);
  return true;
}

bool Parser::msid(std::string_view value) {
  // RFC 8830 §2: a=msid:<id> [<appdata>]; the first a=msid names the stream.
  text::split(value, tokens_);
  if (tokens_.empty() || tokens_.size() > 2) {
    return fail("a=msid: expected '<stream> [<track>]', got " + quoted(value));
  }
  if (!pending_.msid_from_attribute) {
    pending_.msid_from_attribute = true;
    media().msid_stream = std::string(tokens_[0]);
    media().msid_track = tokens_.size() > 1 ? std::string(tokens_[1]) : std::string();
  }
  return true;
}

bool Parser::fingerprint(std::string_view value) {
  // RFC 8122 §5: a=fingerprint:<hash-func> <fingerprint>
  text::split(value, tokens_);
  if (tokens_.size() != 2) {
    return fail("a=fingerprint: expected '<hash function> <fingerprint>', got " + quoted(value));
  }
  std::string& out = in_media_ ? media().fingerprint : session_.fingerprint;
  // Several may be given (one per hash): keep the first, or the first sha-256 one.
  bool is_sha256 = iequals(tokens_[0], "sha-256");
  if (out.empty() || (is_sha256 && !iequals(std::string_view(out).substr(0, 8), "sha-256 "))) {
    out = std::string(tokens_[0]) + " " + std::string(tokens_[1]);
  }
  return true;
}

bool Parser::group(std::string_view value) {
  // RFC 5888 §5: a=group is a session-level attribute.
  if (in_media_) {
    return fail("a=group: belongs before the first m= line");
  }
  text::split(value, tokens_);
  if (tokens_.empty()) {
    return fail("a=group: no semantics");
  }
  if (tokens_.size() - 1 > limits_.max_media) {
    return fail("a=group: more than " + std::to_string(limits_.max_media) + " mids");
  }
  if (tokens_[0] == "BUNDLE" && !have_bundle_) {
    have_bundle_ = true;
    for (std::size_t i = 1; i < tokens_.size(); ++i) {
      session_.bundle.emplace_back(tokens_[i]);
    }
  }
  return true;
}

bool Parser::rid(std::string_view value) {
  // RFC 8851 §10: a=rid:<rid-id> <send|recv> [<restrictions>]
  text::split(value, tokens_);
  if (tokens_.size() < 2 || !valid_rid(tokens_[0]) ||
      (tokens_[1] != "send" && tokens_[1] != "recv")) {
    return fail("a=rid: expected '<id> send|recv ...', got " + quoted(value));
  }
  Media& m = media();
  if (m.rids.size() + m.recv_rids.size() >= limits_.max_rids) {
    return fail("a=rid: more than " + std::to_string(limits_.max_rids) + " rids");
  }
  (tokens_[1] == "send" ? m.rids : m.recv_rids).emplace_back(tokens_[0]);
  return true;
}

bool Parser::simulcast(std::string_view value) {
  // RFC 8853 §5.1: a=simulcast:<send|recv> <rid list> [<recv|send> <rid list>]
  text::split(value, tokens_);
  if (tokens_.size() < 2 || (tokens_[0] != "send" && tokens_[0] != "recv")) {
    return fail("a=simulcast: expected 'send|recv <rids>', got " + quoted(value));
  }
  media().simulcast = std::string(value);
  return true;
}

bool Parser::candidate(std::string_view value) {
  // RFC 8839 §5.1: <foundation> <component> <transport> <priority> <address> <port> typ <type>
  text::split(value, tokens_);
  if (tokens_.size() < 8 || tokens_[6] != "typ") {
    return fail(
        "a=candidate: expected '<foundation> <component> <transport> <priority> "
        "<address> <port> typ <type>', got " +
        quoted(value));
  }
  std::uint64_t n = 0;
  if (!number("a=candidate", "component", tokens_[1], 1, 256, n) ||
      !number("a=candidate", "priority", tokens_[3], 0, kMaxU32, n) ||
      !number("a=candidate", "port", tokens_[5], 0, 65535, n)) {
    return false;
  }
  media().candidates.emplace_back(value);
  return true;
}

}  // namespace ringlane::control::sdp::detail
