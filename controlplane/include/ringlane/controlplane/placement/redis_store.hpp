#pragma once
// The shared store: several control planes agree on nodes and rooms through one Redis.
//   {prefix}node:{id}     hash: ws_url workers max_rooms rooms participants allocations pps cpu;
//                         PEXPIRE node_ttl, refreshed by each heartbeat (an expired node gets
//                         no new rooms and its rooms are placed again at their next join)
//   {prefix}nodes         set of node ids (pruned when their hash has expired)
//   {prefix}wrooms:{id}   hash worker -> rooms placed there (HINCRBY on place/release)
//   {prefix}room:{room}   "node|worker" with PX room_ttl: the room lock, taken by one Lua script
//                         that reads the lock and the registry and places the room atomically
//                         (one round trip), renewed by the host with a compare-and-renew script
// hiredis, synchronous with short timeouts. When Redis is unreachable every call fails fast
// (kUnavailable) and the next call after `retry` reconnects by itself.
#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>

#include "ringlane/controlplane/placement/store.hpp"

namespace ringlane::control::placement {

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
  std::string prefix = "ringlane:";
  std::chrono::milliseconds node_ttl{6000};
  std::chrono::milliseconds room_ttl{30000};
  std::chrono::milliseconds timeout{300};
  std::chrono::milliseconds retry{500};
};

// redis://[:password@]host[:port][/db]
std::optional<RedisConfig> parse_redis_url(std::string_view url, std::string& error);

class RedisStore final : public Store {
 public:
  explicit RedisStore(RedisConfig config);
  ~RedisStore() override;
  bool heartbeat(const NodeInfo& self) override;
  std::optional<Placement> place(std::string_view room, PlaceError& error) override;
  std::vector<std::string> keep(std::string_view node_id,
                                const std::vector<HostedRoom>& rooms) override;
  void release(std::string_view room, std::string_view node_id) override;
  void deregister(std::string_view node_id, const std::vector<HostedRoom>& rooms) override;
  bool connected() const override { return ctx_ != nullptr; }
  std::string_view kind() const override { return "redis"; }

 private:
  struct ReplyDeleter {
    void operator()(redisReply* r) const { freeReplyObject(r); }
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

  bool ensure_connected();
  Reply command(const std::vector<std::string>& args);
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string>>& commands);
  void disconnect(const char* why);

  RedisConfig config_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace ringlane::control::placement
