#pragma once
// The SDP parser's state (private to src/sdp/): parse.cpp reads lines and m= sections,
// attributes.cpp the a= lines.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringlane/controlplane/sdp/sdp.hpp"

namespace ringlane::control::sdp::detail {

class Parser {
 public:
  Parser(const Limits& limits, ParseError& error) : limits_(limits), error_(error) {}

  std::optional<Session> run(std::string_view sdp);

 private:
  // What one m-section's a=rtpmap/a=fmtp lines said about one payload type.
  struct PtInfo {
    bool has_rtpmap = false;
    bool has_fmtp = false;
    std::string name;
    std::uint32_t clock = 0;
    std::uint8_t channels = 0;
    std::string fmtp;
    std::optional<std::uint8_t> apt;
  };
  struct Pending {
    std::array<PtInfo, 128> pts;
    std::vector<std::uint8_t> format_pts;               // the m= line's PTs, in order
    std::vector<std::pair<int, std::string>> feedback;  // (PT or -1 for "*", value)
    bool msid_from_attribute = false;
  };

  bool fail(std::string message) {
    error_.line = line_;
    error_.reason = "line " + std::to_string(line_) + ": " + std::move(message);
    return false;
  }
  bool fail_whole(std::string message) {
    error_.line = 0;
    error_.reason = std::move(message);
    return false;
  }
  // Reads a bounded decimal field; on failure the message names the attribute and field.
  bool number(std::string_view where, std::string_view field, std::string_view s, std::uint64_t lo,
              std::uint64_t hi, std::uint64_t& out);

  bool line(char type, std::string_view value);
  bool origin(std::string_view value);
  bool media_line(std::string_view value);
  bool attribute(std::string_view value);
  void finish_media();

  bool rtpmap(std::string_view value);
  bool fmtp(std::string_view value);
  bool rtcp_fb(std::string_view value);
  bool extmap(std::string_view value);
  bool ssrc(std::string_view value);
  bool ssrc_group(std::string_view value);
  bool mid(std::string_view value);
  bool msid(std::string_view value);
  bool fingerprint(std::string_view value);
  bool group(std::string_view value);
  bool rid(std::string_view value);
  bool simulcast(std::string_view value);
  bool candidate(std::string_view value);
  bool add_ssrc(std::uint32_t id);

  Media& media() { return session_.media.back(); }
  bool rtp_media() const { return in_media_ && is_rtp_; }

  const Limits& limits_;
  ParseError& error_;
  std::size_t line_ = 0;
  Session session_;
  bool have_version_ = false;
  bool have_origin_ = false;
  bool have_bundle_ = false;
  bool in_media_ = false;
  bool is_rtp_ = false;
  std::string session_direction_ = "sendrecv";
  std::vector<Extension> session_extensions_;
  Pending pending_;
  std::vector<std::string_view> tokens_;  // scratch for split()
};

}  // namespace ringlane::control::sdp::detail
