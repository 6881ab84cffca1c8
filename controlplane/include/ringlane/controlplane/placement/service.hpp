#pragma once
// Runs a placement store for the signaling thread without ever blocking it: a store that does
// network round trips (Redis) gets a thread of its own and answers through callbacks posted
// back to the caller's io_context; the in-memory store answers inline. A slow or blackholed
// Redis then delays only the joins that need it, never the other connections' messages.
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ringlane/controlplane/placement/store.hpp"

namespace ringlane::control::placement {

class Service {
 public:
  using PlaceDone = std::function<void(std::optional<Placement>, PlaceError)>;
  using HeartbeatDone = std::function<void(bool ok, std::vector<std::string> lost)>;

  // A store that talks to a server (anything but the in-memory one) gets its own thread.
  Service(boost::asio::io_context& io, std::unique_ptr<Store> store);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void place(std::string room, PlaceDone done);
  // heartbeat + keep (renew the hosted rooms' locks) in one go.
  void heartbeat(NodeInfo self, std::vector<HostedRoom> hosted, HeartbeatDone done);
  void release(std::string room, std::string node_id);
  // Runs Store::deregister and waits for it (at most `timeout`): for shutdown.
  void deregister(std::string node_id, std::vector<HostedRoom> rooms,
                  std::chrono::milliseconds timeout);

  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  std::string_view kind() const { return store_->kind(); }

 private:
  template <typename Work>
  void run(Work&& work);

  boost::asio::io_context& io_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<boost::asio::io_context> store_io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::thread thread_;
  std::atomic<bool> connected_{false};
};

}  // namespace ringlane::control::placement
