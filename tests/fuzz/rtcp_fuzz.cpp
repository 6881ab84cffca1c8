// RTCP compound parser and every typed view: refused or fully bounded, never half-read.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringlane/dataplane/rtp/rtcp.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringlane;
  auto c = rtcp::Compound::parse(Bytes(data, size));
  if (!c) {
    return 0;
  }
  for (const auto& p : c->packets()) {
    (void)rtcp::parse_sr(p);
    (void)rtcp::parse_rr(p);
    std::vector<rtcp::SdesItem> items;
    (void)rtcp::parse_sdes(p, items);
    (void)rtcp::parse_bye(p);
    (void)rtcp::parse_app(p);
    if (auto f = rtcp::parse_feedback(p)) {
      (void)rtcp::parse_nack(*f);
      (void)rtcp::parse_fir(*f);
      (void)rtcp::parse_remb(*f);
      (void)rtcp::parse_transport_cc(*f);
    }
  }
  // Builders fed from the input must never write out of bounds.
  std::vector<std::uint16_t> lost;
  for (std::size_t i = 0; i + 1 < size && lost.size() < 64; i += 2) {
    lost.push_back(static_cast<std::uint16_t>(data[i] << 8 | data[i + 1]));
  }
  std::uint8_t out[128];
  (void)rtcp::build_nack(out, 1, 2, lost);
  (void)rtcp::build_remb(out, 1, size * 1000003ull, {});
  return 0;
}
