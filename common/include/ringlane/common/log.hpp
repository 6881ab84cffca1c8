#pragma once
// spdlog setup shared by every binary.
#include <string_view>

#include <spdlog/spdlog.h>

namespace ringlane {

// level: trace, debug, info, warn, error, off. json=true prints one JSON object a line.
void init_logging(std::string_view level, bool json);

}  // namespace ringlane
