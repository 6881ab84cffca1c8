#include "ringlane/node/handover.hpp"

#include <cstdlib>
#include <string_view>

namespace ringlane {

std::vector<std::string> handover_args(const Handover& handover) {
  std::string doorbells;
  for (std::size_t i = 0; i < handover.doorbells.size(); ++i) {
    doorbells += (i == 0 ? "" : ",") + std::to_string(handover.doorbells[i]);
  }
  return {"--region-fd", std::to_string(handover.region_fd), "--doorbells", doorbells};
}

std::vector<std::string> take_handover(const std::vector<std::string>& args, Handover& out) {
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--region-fd" && i + 1 < args.size()) {
      out.region_fd = std::atoi(args[++i].c_str());
    } else if (args[i] == "--doorbells" && i + 1 < args.size()) {
      std::string_view list = args[++i];
      while (!list.empty()) {
        auto comma = list.find(',');
        out.doorbells.push_back(std::atoi(std::string(list.substr(0, comma)).c_str()));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      }
    } else {
      rest.push_back(args[i]);
    }
  }
  return rest;
}

}  // namespace ringlane
