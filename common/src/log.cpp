#include "ringlane/common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace ringlane {

void init_logging(std::string_view level, bool json) {
  auto logger = spdlog::stderr_color_mt("ringlane");
  if (json) {
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%v"})");
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %v");
  }
  logger->set_level(spdlog::level::from_str(std::string(level)));
  spdlog::set_default_logger(logger);
}

}  // namespace ringlane
