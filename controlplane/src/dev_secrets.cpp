#include "ringlane/controlplane/dev_secrets.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string_view>

#include "ringlane/common/log.hpp"
#include "ringlane/crypto/digest.hpp"

namespace ringlane::control {
namespace {

std::string state_dir() {
  if (const char* d = std::getenv("RINGLANE_STATE_DIR"); d != nullptr && *d != '\0') {
    return d;
  }
  if (getuid() == 0) {
    return "/var/lib/ringlane";
  }
  if (const char* x = std::getenv("XDG_STATE_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/ringlane";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/tmp") + "/.local/state/ringlane";
}

bool make_dirs(const std::string& dir) {
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      std::string part = dir.substr(0, i);
      if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

std::string state_file_path(const std::string& node_name, const std::string& suffix) {
  std::string dir = state_dir();
  return make_dirs(dir) ? dir + "/" + node_name + suffix : std::string();
}

DevSecrets load_or_create_dev_secrets(const std::string& node_name) {
  DevSecrets s;
  std::string dir = state_dir();
  s.path = dir + "/" + node_name + ".secrets";
  std::ifstream in(s.path);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      continue;
    }
    std::string_view key(line.data(), eq);
    std::string value = line.substr(eq + 1);
    if (key == "rest_secret") {
      s.rest_secret = value;
    } else if (key == "api_key") {
      s.api_key = value;
    } else if (key == "jwt_secret") {
      s.jwt_secret = value;
    }
  }
  if (!s.rest_secret.empty() && !s.api_key.empty() && s.jwt_secret.size() >= 16) {
    s.reused = true;
    return s;
  }
  s.rest_secret = crypto::random_token(18);
  s.api_key = crypto::random_token(18);
  s.jwt_secret = crypto::random_token(32);
  std::string tmp = s.path + ".tmp";
  int fd = make_dirs(dir) ? open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  std::string text = "rest_secret=" + s.rest_secret + "\napi_key=" + s.api_key +
                     "\njwt_secret=" + s.jwt_secret + "\n";
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      fsync(fd) != 0 || close(fd) != 0 || rename(tmp.c_str(), s.path.c_str()) != 0) {
    spdlog::warn("cannot keep the generated secrets in {}: a restart will make new ones", s.path);
    s.path.clear();
  }
  return s;
}

}  // namespace ringlane::control
