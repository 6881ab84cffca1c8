#pragma once
// The embedded store: one control plane, its own node only. No persistence: rooms live in the
// process that hosts their members, so losing this map loses nothing a restart must restore.
#include <chrono>
#include <map>

#include "ringlane/controlplane/placement/store.hpp"

namespace ringlane::control::placement {

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(std::chrono::milliseconds node_ttl) : node_ttl_(node_ttl) {}
  bool heartbeat(const NodeInfo& self) override;
  std::optional<Placement> place(std::string_view room, PlaceError& error) override;
  std::vector<std::string> keep(std::string_view node_id,
                                const std::vector<HostedRoom>& rooms) override;
  void release(std::string_view room, std::string_view node_id) override;
  void deregister(std::string_view node_id, const std::vector<HostedRoom>& rooms) override;
  bool connected() const override { return true; }
  std::string_view kind() const override { return "memory"; }

 private:
  struct Node {
    NodeInfo info;
    std::chrono::steady_clock::time_point expires;
    std::vector<unsigned> worker_rooms;
  };
  struct Room {
    std::string node_id;
    unsigned worker = 0;
  };
  bool alive(const Node& n) const { return std::chrono::steady_clock::now() < n.expires; }

  std::chrono::milliseconds node_ttl_;
  std::map<std::string, Node, std::less<>> nodes_;
  std::map<std::string, Room, std::less<>> rooms_;
};

}  // namespace ringlane::control::placement
