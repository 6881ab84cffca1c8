#pragma once
// Shared by the SDP tests: the fuzz seed corpus as test input, and small text edits.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "ringlane/controlplane/sdp/sdp.hpp"

#ifndef RINGLANE_SDP_CORPUS
#define RINGLANE_SDP_CORPUS "tests/fuzz/sdp_corpus"
#endif

namespace ringlane::control::sdp::fixtures {

inline std::string corpus(const std::string& name) {
  std::ifstream in(std::string(RINGLANE_SDP_CORPUS) + "/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  EXPECT_FALSE(text.str().empty()) << "cannot read " << RINGLANE_SDP_CORPUS << "/" << name;
  return text.str();
}

// `text` with every `from` replaced by `to`; `from` must occur.
inline std::string replaced(std::string text, std::string_view from, std::string_view to) {
  std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << "no '" << from << "' to replace";
  while (at != std::string::npos) {
    text.replace(at, from.size(), to);
    at = text.find(from, at + to.size());
  }
  return text;
}

inline Session parse_ok(std::string_view text) {
  ParseError e;
  auto s = parse(text, e);
  EXPECT_TRUE(s.has_value()) << e.reason;
  return s ? *s : Session{};
}

}  // namespace ringlane::control::sdp::fixtures
