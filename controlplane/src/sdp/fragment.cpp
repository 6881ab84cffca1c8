// RFC 8840 §9 SDP fragments (application/trickle-ice-sdpfrag): what WHIP/WHEP clients PATCH to
// their resource. The server is ICE-lite and learns the client's addresses from its checks, so
// only the ICE credentials (an ICE restart when they change) matter; candidates are checked and
// counted.
#include <string>
#include <vector>

#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "text.hpp"
#include "writer.hpp"

namespace ringlane::control::sdp {
namespace {

std::optional<IceFragment> fail(ParseError& error, std::size_t line, std::string reason) {
  error.line = line;
  error.reason = line == 0 ? std::move(reason) : "line " + std::to_string(line) + ": " + reason;
  return std::nullopt;
}

// RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/".
bool ice_chars(std::string_view s, std::size_t min_size) {
  if (s.size() < min_size || s.size() > 256) {
    return false;
  }
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
          c == '/')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<IceFragment> parse_ice_fragment(std::string_view sdp, ParseError& error,
                                              const Limits& limits) {
  error = ParseError{};
  if (sdp.size() > limits.max_bytes) {
    return fail(error, 0,
                "SDP fragment of " + std::to_string(sdp.size()) + " bytes is over the limit of " +
                    std::to_string(limits.max_bytes) + " bytes");
  }
  IceFragment out;
  std::vector<std::string_view> tokens;
  std::size_t pos = 0;
  std::size_t n = 0;
  std::size_t lines = 0;
  while (pos < sdp.size()) {
    std::size_t nl = sdp.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? sdp.size() : nl;
    std::string_view l = sdp.substr(pos, end - pos);
    pos = nl == std::string_view::npos ? sdp.size() : nl + 1;
    if (++n > limits.max_lines) {
      return fail(error, n, "more than " + std::to_string(limits.max_lines) + " lines");
    }
    if (!l.empty() && l.back() == '\r') {
      l.remove_suffix(1);
    }
    if (l.empty()) {
      continue;
    }
    if (l.size() > limits.max_line) {
      return fail(error, n, "longer than " + std::to_string(limits.max_line) + " bytes");
    }
    for (char c : l) {
      auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f) {
        return fail(error, n, "control character");
      }
    }
    if (l.size() < 2 || l[1] != '=' || l[0] < 'a' || l[0] > 'z') {
      return fail(error, n, "expected '<letter>=<value>', got " + text::quoted(l));
    }
    ++lines;
    if (l[0] != 'a') {
      continue;  // m= and anything else: where candidates belong, not needed by an ICE-lite server
    }
    std::string_view value = l.substr(2);
    std::size_t colon = value.find(':');
    std::string_view name = value.substr(0, colon);
    std::string_view v =
        colon == std::string_view::npos ? std::string_view{} : text::trim(value.substr(colon + 1));
    if (name == "ice-ufrag" || name == "ice-pwd") {
      bool ufrag = name == "ice-ufrag";
      if (!ice_chars(v, ufrag ? 4 : 22)) {
        return fail(error, n,
                    "a=" + std::string(name) + ": " + text::quoted(v) + " is not " +
                        (ufrag ? "4" : "22") + "-256 ice-chars (RFC 8839 §5.4)");
      }
      (ufrag ? out.ufrag : out.pwd) = std::string(v);
    } else if (name == "candidate") {
      // RFC 8839 §5.1: <foundation> <component> <transport> <priority> <address> <port> typ ...
      text::split(v, tokens);
      std::uint64_t number = 0;
      bool ok = tokens.size() >= 8 && tokens[6] == "typ" &&
                text::to_u64(tokens[1], number) == text::NumberStatus::kOk && number >= 1 &&
                number <= 256 && text::to_u64(tokens[3], number) == text::NumberStatus::kOk &&
                number <= 0xffffffffu &&
                text::to_u64(tokens[5], number) == text::NumberStatus::kOk && number <= 65535;
      if (!ok) {
        return fail(error, n,
                    "a=candidate: expected '<foundation> <component> <transport> <priority> "
                    "<address> <port> typ <type>', got " +
                        text::quoted(v));
      }
      ++out.candidates;
    } else if (name == "end-of-candidates") {
      out.end_of_candidates = true;
    }
  }
  if (lines == 0) {
    return fail(error, 0, "empty SDP fragment");
  }
  return out;
}

std::string write_ice_fragment(const LocalIce& local, std::string_view kind, std::string_view mid) {
  std::string out;
  writer::line(out, {"a=ice-lite"});
  writer::line(out, {"a=ice-ufrag:", local.ufrag});
  writer::line(out, {"a=ice-pwd:", local.pwd});
  // RFC 8840 §9: candidates belong to an m= line and its mid; with BUNDLE, the first one's.
  writer::line(out, {"m=", kind, " 9 UDP/TLS/RTP/SAVPF 0"});
  writer::line(out, {"a=mid:", mid});
  writer::candidates(out, local);
  return out;
}

}  // namespace ringlane::control::sdp
