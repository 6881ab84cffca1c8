#pragma once
// The secrets `ringlane run` makes up when it is given none (TURN REST secret, API key, JWT
// secret), kept in a file only this user can read, so that a restarted control plane — which
// adopts the data plane still running — goes on accepting the credentials and tokens clients
// already hold. Where: $RINGLANE_STATE_DIR, else /var/lib/ringlane for root, else
// $XDG_STATE_HOME/ringlane or ~/.local/state/ringlane; one file per node name.
#include <string>

namespace ringlane::control {

struct DevSecrets {
  std::string rest_secret;
  std::string api_key;
  std::string jwt_secret;
  std::string path;     // where they are kept ("" if they could not be)
  bool reused = false;  // read back from `path` rather than made now
};

DevSecrets load_or_create_dev_secrets(const std::string& node_name);

// A file of this node in the same state directory (created 0700 if missing), e.g. the media
// state a restarted control plane reads back; "" when the directory cannot be made.
std::string state_file_path(const std::string& node_name, const std::string& suffix);

}  // namespace ringlane::control
