// The SDP parser: one pass over the lines, each checked against the limits before it is looked
// at, with per-m-section scratch (a=rtpmap/a=fmtp/a=rtcp-fb may come in any order, Firefox writes
// a=fmtp before a=rtpmap) turned into codecs when the section ends.
#include <bitset>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "parser.hpp"
#include "ringlane/controlplane/sdp/sdp.hpp"
#include "text.hpp"

namespace ringlane::control::sdp {
namespace detail {

using text::quoted;

bool Parser::number(std::string_view where, std::string_view field, std::string_view s,
                    std::uint64_t lo, std::uint64_t hi, std::uint64_t& out) {
  auto status = text::to_u64(s, out);
  if (status == text::NumberStatus::kNotNumber) {
    return fail(std::string(where) + ": " + std::string(field) + " " + quoted(s) +
                " is not a number");
  }
  if (status == text::NumberStatus::kTooBig || out < lo || out > hi) {
    return fail(std::string(where) + ": " + std::string(field) + " " +
                std::string(s.substr(0, 40)) + " out of range (" + std::to_string(lo) + "-" +
                std::to_string(hi) + ")");
  }
  return true;
}

std::optional<Session> Parser::run(std::string_view sdp) {
  // Refused before any work: a 1 MiB attribute never gets split or scanned.
  if (sdp.size() > limits_.max_bytes) {
    fail_whole("SDP of " + std::to_string(sdp.size()) + " bytes is over the limit of " +
               std::to_string(limits_.max_bytes) + " bytes");
    return std::nullopt;
  }
  std::size_t pos = 0;
  std::size_t first_empty = 0;  // an empty line is only allowed at the very end
  while (pos < sdp.size()) {
    std::size_t nl = sdp.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? sdp.size() : nl;
    std::string_view l = sdp.substr(pos, end - pos);
    pos = nl == std::string_view::npos ? sdp.size() : nl + 1;
    ++line_;
    if (line_ > limits_.max_lines) {
      fail("more than " + std::to_string(limits_.max_lines) + " lines");
      return std::nullopt;
    }
    if (!l.empty() && l.back() == '\r') {
      l.remove_suffix(1);
    }
    if (l.size() > limits_.max_line) {
      fail("longer than " + std::to_string(limits_.max_line) + " bytes");
      return std::nullopt;
    }
    if (l.empty()) {
      if (first_empty == 0) {
        first_empty = line_;
      }
      continue;
    }
    if (first_empty != 0) {
      line_ = first_empty;
      fail("empty line");
      return std::nullopt;
    }
    for (char c : l) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        static const char kHex[] = "0123456789abcdef";
        fail(std::string("control character 0x") + kHex[u >> 4] + kHex[u & 0xf]);
        return std::nullopt;
      }
    }
    // RFC 8866 §5: <type>=<value>, the type one lower-case letter.
    if (l.size() < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z') {
      fail("expected '<letter>=<value>', got " + quoted(l));
      return std::nullopt;
    }
    if (!have_version_) {
      if (l != "v=0") {
        fail("the first line must be v=0, got " + quoted(l));
        return std::nullopt;
      }
      have_version_ = true;
      continue;
    }
    if (!line(l[0], l.substr(2))) {
      return std::nullopt;
    }
  }
  if (!have_version_) {
    fail_whole("empty SDP: no v=0 line");
    return std::nullopt;
  }
  if (!have_origin_) {
    fail_whole("no o= line (RFC 8866 §5.2)");
    return std::nullopt;
  }
  if (in_media_) {
    finish_media();
  }
  return std::move(session_);
}

bool Parser::line(char type, std::string_view value) {
  switch (type) {
    case 'v':
      return fail("a second v= line: one SDP holds one session");
    case 'o':
      return origin(value);
    case 's':
    case 't':
    case 'r':
    case 'z':
    case 'u':
    case 'e':
    case 'p':
      if (in_media_) {
        return fail(std::string(1, type) + "= belongs before the first m= line");
      }
      return true;
    case 'm':
      return media_line(value);
    case 'a':
      return attribute(value);
    default:  // c=, b=, i=, k= and unknown types: not needed here
      return true;
  }
}

bool Parser::origin(std::string_view value) {
  if (in_media_) {
    return fail("o= belongs before the first m= line");
  }
  if (have_origin_) {
    return fail("a second o= line");
  }
  // RFC 8866 §5.2: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>
  text::split(value, tokens_);
  if (tokens_.size() != 6) {
    return fail("o=: expected 6 fields, got " + std::to_string(tokens_.size()));
  }
  std::uint64_t version = 0;
  if (!number("o=", "session version", tokens_[2], 0, std::numeric_limits<std::uint64_t>::max(),
              version)) {
    return false;
  }
  session_.origin_session_id = std::string(tokens_[1]);
  session_.origin_version = version;
  have_origin_ = true;
  return true;
}

bool Parser::media_line(std::string_view value) {
  if (session_.media.size() >= limits_.max_media) {
    return fail("more than " + std::to_string(limits_.max_media) + " m-sections");
  }
  if (in_media_) {
    finish_media();
  }
  // RFC 8866 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
  text::split(value, tokens_);
  if (tokens_.size() < 4) {
    return fail("m=: expected '<media> <port> <proto> <fmt> ...', got " + quoted(value));
  }
  if (tokens_.size() - 3 > limits_.max_codecs) {
    return fail("m=: more than " + std::to_string(limits_.max_codecs) + " formats");
  }
  std::string_view port_text = tokens_[1];
  std::size_t slash = port_text.find('/');
  std::uint64_t port = 0;
  std::uint64_t count = 0;
  if (!number("m=", "port", port_text.substr(0, slash), 0, 65535, port)) {
    return false;
  }
  if (slash != std::string_view::npos &&
      !number("m=", "number of ports", port_text.substr(slash + 1), 1, 65535, count)) {
    return false;
  }
  Media m;
  m.kind = std::string(tokens_[0]);
  m.port = static_cast<std::uint16_t>(port);
  m.protocol = std::string(tokens_[2]);
  m.direction = session_direction_;
  m.extensions = session_extensions_;
  m.line = line_;
  pending_ = Pending{};
  is_rtp_ = m.protocol.find("RTP/") != std::string::npos;
  std::bitset<128> seen;
  for (std::size_t i = 3; i < tokens_.size(); ++i) {
    if (is_rtp_) {
      // RFC 3550 §5.1: the payload type is 7 bits.
      std::uint64_t pt = 0;
      if (!number("m=", "payload type", tokens_[i], 0, 127, pt)) {
        return false;
      }
      if (seen.test(pt)) {
        return fail("m=: payload type " + std::to_string(pt) + " listed twice");
      }
      seen.set(pt);
      pending_.format_pts.push_back(static_cast<std::uint8_t>(pt));
    }
    m.formats.emplace_back(tokens_[i]);
  }
  session_.media.push_back(std::move(m));
  in_media_ = true;
  return true;
}

void Parser::finish_media() {
  Media& m = media();
  for (std::uint8_t pt : pending_.format_pts) {
    const PtInfo& info = pending_.pts[pt];
    Codec c;
    c.pt = pt;
    if (info.has_rtpmap) {
      c.name = info.name;
      c.clock = info.clock;
      c.channels = info.channels;
    } else if (pt == 0 || pt == 8 || pt == 9) {
      // RFC 3551 §6: static payload types may come without a=rtpmap (G722's RTP clock is 8000).
      c.name = pt == 0 ? "PCMU" : pt == 8 ? "PCMA" : "G722";
      c.clock = 8000;
    } else {
      continue;
    }
    c.fmtp = info.fmtp;
    if (iequals(c.name, "rtx")) {
      c.apt = info.apt;
    }
    for (const auto& [fb_pt, fb] : pending_.feedback) {
      if (fb_pt < 0 || fb_pt == pt) {
        c.rtcp_fb.push_back(fb);
      }
    }
    m.codecs.push_back(std::move(c));
  }
}

}  // namespace detail

namespace {

std::string effective(const Session& s, std::size_t i, std::string Media::*field,
                      const std::string& session_value) {
  if (i < s.media.size() && !(s.media[i].*field).empty()) {
    return s.media[i].*field;
  }
  return session_value;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

std::optional<Session> parse(std::string_view text, ParseError& error, const Limits& limits) {
  error = ParseError{};
  return detail::Parser(limits, error).run(text);
}

std::string Session::ufrag_of(std::size_t i) const {
  return effective(*this, i, &Media::ice_ufrag, ice_ufrag);
}
std::string Session::pwd_of(std::size_t i) const {
  return effective(*this, i, &Media::ice_pwd, ice_pwd);
}
std::string Session::fingerprint_of(std::size_t i) const {
  return effective(*this, i, &Media::fingerprint, fingerprint);
}
std::string Session::setup_of(std::size_t i) const {
  return effective(*this, i, &Media::setup, setup);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x - 'A' + 'a');
    }
    if (y >= 'A' && y <= 'Z') {
      y = static_cast<char>(y - 'A' + 'a');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> sha256_fingerprint(std::string_view value) {
  std::vector<std::string_view> tokens;
  text::split(value, tokens);
  // 32 hex pairs joined by 31 colons (RFC 8122 §5, upper-case in the grammar, any case read).
  constexpr std::size_t kChars = 32 * 3 - 1;
  if (tokens.size() != 2 || !iequals(tokens[0], "sha-256") || tokens[1].size() != kChars) {
    return std::nullopt;
  }
  std::string out(tokens[1]);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i % 3 == 2) {
      if (out[i] != ':') {
        return std::nullopt;
      }
    } else {
      if (hex_value(out[i]) < 0) {
        return std::nullopt;
      }
      if (out[i] >= 'a' && out[i] <= 'f') {
        out[i] = static_cast<char>(out[i] - 'a' + 'A');
      }
    }
  }
  return out;
}

std::optional<std::string_view> fmtp_parameter(std::string_view fmtp, std::string_view name) {
  while (!fmtp.empty()) {
    std::size_t semi = fmtp.find(';');
    std::string_view param = text::trim(fmtp.substr(0, semi));
    fmtp = semi == std::string_view::npos ? std::string_view{} : fmtp.substr(semi + 1);
    std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && iequals(text::trim(param.substr(0, eq)), name)) {
      return text::trim(param.substr(eq + 1));
    }
  }
  return std::nullopt;
}

}  // namespace ringlane::control::sdp
