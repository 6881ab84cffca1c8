#include "ringlane/controlplane/web/files.hpp"

namespace ringlane::control::web {

const WebFile* find_file(std::string_view path) {
  if (path == "/") {
    path = "/index.html";
  }
  for (const WebFile& f : embedded_files()) {
    if (f.path == path) {
      return &f;
    }
  }
  return nullptr;
}

std::string_view content_type(std::string_view path) {
  // Module scripts are refused without a JavaScript MIME type (HTML §4.12.1.1).
  const std::pair<std::string_view, std::string_view> types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript"},  // module scripts are always UTF-8
      {".css", "text/css"},
  };
  for (const auto& [ext, type] : types) {
    if (path.ends_with(ext)) {
      return type;
    }
  }
  return "application/octet-stream";
}

}  // namespace ringlane::control::web
