#pragma once
// Room placement (DESIGN.md "Placement"): a registry of nodes refreshed by heartbeat, and a map
// room -> (node, worker) that every control plane sharing the store answers the same way.
// A room goes to the least-loaded live node that has room for it, then to that node's worker
// with the fewest rooms, and stays there while it lives. Two implementations: in memory (one
// node, the default) and Redis (several control planes; placement/redis_store.hpp).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringlane::control::placement {

struct NodeInfo {
  std::string id;
  std::string ws_url;  // where clients of rooms placed here connect
  unsigned workers = 1;
  unsigned max_rooms = 10000;
  // Load, refreshed by each heartbeat.
  std::uint64_t rooms = 0;
  std::uint64_t participants = 0;
  std::uint64_t allocations = 0;
  std::uint64_t packets_per_s = 0;
  double cpu = 0;  // data plane CPU, fraction of its cores (0..1)
};

struct Placement {
  std::string node_id;
  std::string ws_url;
  unsigned worker = 0;
  bool created = false;  // this call placed the room (it was not placed before)
};

struct HostedRoom {
  std::string room;
  unsigned worker = 0;
};

enum class PlaceError {
  kNone,
  kUnavailable,  // the store cannot be reached: retry later
  kNoCapacity,   // no live node has room
};

// Orders nodes for new rooms: load per worker first (participants + allocations), then CPU,
// then rooms, then id so that every control plane picks the same node from the same registry.
bool less_loaded(const NodeInfo& a, const NodeInfo& b);

class Store {
 public:
  virtual ~Store() = default;
  // Registers this node or refreshes its entry and load; false when the store is unreachable.
  virtual bool heartbeat(const NodeInfo& self) = 0;
  // The room's placement: the existing one if its node is alive, else a new one.
  virtual std::optional<Placement> place(std::string_view room, PlaceError& error) = 0;
  // Renews the locks of rooms this node hosts (taking back one that lapsed); returns the rooms
  // another node now holds (placed again elsewhere while this node was away).
  virtual std::vector<std::string> keep(std::string_view node_id,
                                        const std::vector<HostedRoom>& rooms) = 0;
  // The room emptied on `node_id`: forget its placement (only if that node still holds it).
  virtual void release(std::string_view room, std::string_view node_id) = 0;
  // Leaving on purpose (shutdown): out of the registry now, and the locks of `rooms` released,
  // so the next joins place them elsewhere without waiting for the node's entry to expire.
  virtual void deregister(std::string_view node_id, const std::vector<HostedRoom>& rooms) = 0;
  virtual bool connected() const = 0;
  virtual std::string_view kind() const = 0;
};

}  // namespace ringlane::control::placement
