#pragma once
// What a supervising control plane hands the data plane at exec, as `--region-fd N
// --doorbells a,b,...`: the data plane reads it from its arguments, and a restarted control
// plane reads it back from /proc/PID/cmdline to adopt that data plane.
#include <string>
#include <vector>

namespace ringlane {

struct Handover {
  int region_fd = -1;
  std::vector<int> doorbells;
};

// The handover as arguments for the data plane's command line.
std::vector<std::string> handover_args(const Handover& handover);
// Takes the handover options out of `args` into `out`; returns the other arguments, in order.
std::vector<std::string> take_handover(const std::vector<std::string>& args, Handover& out);

}  // namespace ringlane
