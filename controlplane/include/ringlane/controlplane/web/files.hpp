#pragma once
// The demo page and the browser client (controlplane/web/), embedded in the binaries at build
// time (src/web/embed.cmake), so `ringlane run` serves them from any working directory.
#include <span>
#include <string_view>

namespace ringlane::control::web {

struct WebFile {
  std::string_view path;  // "/index.html"
  std::string_view body;
};

// Generated: every file of controlplane/web/.
std::span<const WebFile> embedded_files();

// The file a request path names ("/" is "/index.html"), or nullptr.
const WebFile* find_file(std::string_view path);

// The Content-Type for a file's path, by its extension.
std::string_view content_type(std::string_view path);

}  // namespace ringlane::control::web
