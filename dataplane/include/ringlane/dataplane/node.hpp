#pragma once
// Entry points of the data plane process, for the `ringlane` binary's subcommands.
#include <optional>
#include <vector>

#include <string>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/node_options.hpp"

namespace ringlane {

// The relay address of a family: the given one, else the listener's, else the host's first
// (non-loopback preferred) address when listening on the any-address.
std::optional<IpAddress> relay_for(Family family, const std::optional<IpAddress>& given,
                                   const std::vector<Endpoint>& listen);

// With no users and no REST secret, adds a development secret (`secret`, or one generated here;
// printed with an example credential when `announce`) so the node is usable at once. Returns
// it, or "" when not needed.
std::string add_dev_secret_if_unconfigured(NodeOptions& o, std::string secret = {},
                                           bool announce = true);

// What a supervising control plane hands the data plane at exec, as `--region-fd N
// --doorbells a,b,...`: the data plane reads it from its arguments, and a restarted control
// plane reads it back from /proc/PID/cmdline to adopt that data plane.
struct Handover {
  int region_fd = -1;
  std::vector<int> doorbells;
};
// Takes the handover options out of `args` into `out`; returns the other arguments, in order.
std::vector<std::string> take_handover(const std::vector<std::string>& args, Handover& out);

// `ringlane dataplane [--region-fd N --doorbells a,b,...] [node options]`: runs the workers
// until SIGINT/SIGTERM. With a region (handed over by the supervising control plane), each
// worker takes commands from its ring and is woken by its doorbell.
int run_dataplane(int argc, char** argv);
// `ringlane stats [--name NAME] [--prometheus]`.
int print_stats(int argc, char** argv);

}  // namespace ringlane
