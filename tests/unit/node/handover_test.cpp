// The handover a supervising control plane writes on the data plane's command line, read back
// as the data plane (and an adopting control plane, from /proc/PID/cmdline) reads it.
#include "ringlane/node/handover.hpp"

#include <gtest/gtest.h>

namespace ringlane {

TEST(Handover, RoundTripsThroughTheCommandLine) {
  // As Supervisor::start writes it: the handover first, then the node options passed through.
  std::vector<std::string> args = handover_args(Handover{7, {9, 10, 11}});
  for (const char* a : {"--name", "n1", "--workers", "3"}) {
    args.push_back(a);
  }
  EXPECT_EQ(args[0], "--region-fd");

  Handover got;
  auto rest = take_handover(args, got);
  EXPECT_EQ(got.region_fd, 7);
  EXPECT_EQ(got.doorbells, (std::vector<int>{9, 10, 11}));
  EXPECT_EQ(rest, (std::vector<std::string>{"--name", "n1", "--workers", "3"}));
}

TEST(Handover, AbsentLeavesArgumentsAlone) {
  std::vector<std::string> args = {"--listen", "127.0.0.1:3478", "--doorbells"};
  Handover got;
  auto rest = take_handover(args, got);
  EXPECT_EQ(got.region_fd, -1);
  EXPECT_TRUE(got.doorbells.empty());
  EXPECT_EQ(rest, args);  // a trailing option without its value is not a handover
}

}  // namespace ringlane
