#pragma once
// The data plane's subcommands of the `ringlane` binary. Declared here so that the control
// plane's dispatcher (controlplane/src/ringlane_main.cpp) includes no data plane header;
// defined in dataplane/src/node.cpp, and the `ringlane` executable links both planes.

namespace ringlane {

// `ringlane dataplane [--region-fd N --doorbells a,b,...] [node options]`: runs the workers
// until SIGINT/SIGTERM. With a region (handed over by the supervising control plane,
// node/handover.hpp), each worker takes commands from its ring and is woken by its doorbell.
int run_dataplane(int argc, char** argv);
// `ringlane stats [--name NAME] [--prometheus]`.
int print_stats(int argc, char** argv);

}  // namespace ringlane
