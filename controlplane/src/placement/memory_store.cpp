#include "ringlane/controlplane/placement/memory_store.hpp"

#include <algorithm>
#include <tuple>

namespace ringlane::control::placement {

bool less_loaded(const NodeInfo& a, const NodeInfo& b) {
  auto load = [](const NodeInfo& n) {
    return static_cast<double>(n.participants + n.allocations) / std::max(1u, n.workers);
  };
  return std::tuple(load(a), a.cpu, a.rooms, a.id) < std::tuple(load(b), b.cpu, b.rooms, b.id);
}

bool MemoryStore::heartbeat(const NodeInfo& self) {
  Node& n = nodes_[self.id];
  n.info = self;
  n.expires = std::chrono::steady_clock::now() + node_ttl_;
  n.worker_rooms.resize(std::max(1u, self.workers));
  return true;
}

std::optional<Placement> MemoryStore::place(std::string_view room, PlaceError& error) {
  error = PlaceError::kNone;
  if (auto it = rooms_.find(room); it != rooms_.end()) {
    auto node = nodes_.find(it->second.node_id);
    if (node != nodes_.end() && alive(node->second)) {
      return Placement{node->first, node->second.info.ws_url, it->second.worker, false};
    }
    rooms_.erase(it);  // its node's heartbeat expired: place it again
  }
  Node* best = nullptr;
  for (auto& [id, n] : nodes_) {
    std::uint64_t hosted = 0;
    for (unsigned c : n.worker_rooms) {
      hosted += c;
    }
    if (!alive(n) || hosted >= n.info.max_rooms) {
      continue;
    }
    if (best == nullptr || less_loaded(n.info, best->info)) {
      best = &n;
    }
  }
  if (best == nullptr) {
    error = PlaceError::kNoCapacity;
    return std::nullopt;
  }
  auto least = std::min_element(best->worker_rooms.begin(), best->worker_rooms.end());
  auto worker = static_cast<unsigned>(least - best->worker_rooms.begin());
  ++*least;
  rooms_[std::string(room)] = Room{best->info.id, worker};
  return Placement{best->info.id, best->info.ws_url, worker, true};
}

std::vector<std::string> MemoryStore::keep(std::string_view node_id,
                                           const std::vector<HostedRoom>& rooms) {
  std::vector<std::string> lost;
  for (const auto& r : rooms) {
    auto it = rooms_.find(r.room);
    if (it != rooms_.end() && it->second.node_id != node_id) {
      lost.push_back(r.room);
    }
  }
  return lost;
}

void MemoryStore::release(std::string_view room, std::string_view node_id) {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || it->second.node_id != node_id) {
    return;
  }
  if (auto node = nodes_.find(node_id); node != nodes_.end()) {
    auto& counts = node->second.worker_rooms;
    if (it->second.worker < counts.size() && counts[it->second.worker] > 0) {
      --counts[it->second.worker];
    }
  }
  rooms_.erase(it);
}

void MemoryStore::deregister(std::string_view node_id, const std::vector<HostedRoom>& rooms) {
  for (const auto& r : rooms) {
    release(r.room, node_id);
  }
  if (auto it = nodes_.find(node_id); it != nodes_.end()) {
    nodes_.erase(it);
  }
}

}  // namespace ringlane::control::placement
