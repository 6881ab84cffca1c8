#include "ringlane/controlplane/placement/redis_store.hpp"

#include <algorithm>
#include <charconv>

#include "ringlane/common/log.hpp"

namespace ringlane::control::placement {
namespace {

// Deletes / renews the room lock only while it still names this node (a plain DEL or PEXPIRE
// after a GET could act on a lock another node took in between).
constexpr const char* kDeleteIfOwner =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";
// Releases a room this node holds and gives its worker's room count back (ARGV: prefix, room,
// node id).
constexpr const char* kReleaseIfOwner =
    "local lock = ARGV[1] .. 'room:' .. ARGV[2] "
    "local v = redis.call('GET', lock) "
    "if not v then return 0 end "
    "local node, worker = string.match(v, '^(.*)|(%d+)$') "
    "if node ~= ARGV[3] then return 0 end "
    "redis.call('DEL', lock) "
    "redis.call('HINCRBY', ARGV[1] .. 'wrooms:' .. node, worker, -1) "
    "return 1";
constexpr const char* kRenewIfOwner =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
    "return 0";

// The placement of one room, server-side (ARGV: prefix, room, lock lifetime in ms). Returns
// {node, ws_url, worker, 0 existing | 1 placed now} or {"", "", -1, 2} when no live node has room.
// The order of nodes is less_loaded()'s: load per worker, CPU, rooms, id.
constexpr const char* kPlaceScript = R"lua(
local prefix, room, ttl = ARGV[1], ARGV[2], ARGV[3]
local lock = prefix .. 'room:' .. room
local held = redis.call('GET', lock)
if held then
  local node, worker = string.match(held, '^(.*)|(%d+)$')
  if node then
    local url = redis.call('HGET', prefix .. 'node:' .. node, 'ws_url')
    if url then return {node, url, tonumber(worker), 0} end
  end
  redis.call('DEL', lock)
end
local best, best_key, best_url, best_counts
for _, id in ipairs(redis.call('SMEMBERS', prefix .. 'nodes')) do
  local h = redis.call('HMGET', prefix .. 'node:' .. id, 'ws_url', 'workers', 'max_rooms',
                       'participants', 'allocations', 'cpu', 'rooms')
  if h[1] then
    local workers = math.max(1, tonumber(h[2]) or 1)
    local counts, hosted = {}, 0
    for w = 0, workers - 1 do counts[w] = 0 end
    local flat = redis.call('HGETALL', prefix .. 'wrooms:' .. id)
    for i = 1, #flat, 2 do
      local w, c = tonumber(flat[i]), tonumber(flat[i + 1]) or 0
      if w and w >= 0 and w < workers and c > 0 then counts[w] = c; hosted = hosted + c end
    end
    if hosted < (tonumber(h[3]) or 0) then
      local key = {((tonumber(h[4]) or 0) + (tonumber(h[5]) or 0)) / workers,
                   tonumber(h[6]) or 0, tonumber(h[7]) or 0, id}
      local better = best == nil
      if not better then
        for i = 1, 4 do
          if key[i] ~= best_key[i] then better = key[i] < best_key[i]; break end
        end
      end
      if better then best, best_key, best_url, best_counts = id, key, h[1], counts end
    end
  else
    redis.call('SREM', prefix .. 'nodes', id)
  end
end
if not best then return {'', '', -1, 2} end
local worker = 0
for w, c in pairs(best_counts) do
  if c < best_counts[worker] or (c == best_counts[worker] and w < worker) then worker = w end
end
redis.call('SET', lock, best .. '|' .. worker, 'PX', ttl)
redis.call('HINCRBY', prefix .. 'wrooms:' .. best, tostring(worker), 1)
return {best, best_url, worker, 1}
)lua";

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

std::string_view reply_text(const redisReply* r) {
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) {
    return {};
  }
  return {r->str, r->len};
}

template <typename T>
T number(std::string_view s, T fallback) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() ? v : fallback;
}

}  // namespace

std::optional<RedisConfig> parse_redis_url(std::string_view url, std::string& error) {
  RedisConfig c;
  constexpr std::string_view scheme = "redis://";
  if (!url.starts_with(scheme)) {
    error = "a Redis URL starts with redis:// (TLS, rediss://, is not supported)";
    return std::nullopt;
  }
  url.remove_prefix(scheme.size());
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = url.substr(0, at);
    auto colon = auth.find(':');
    c.password = std::string(colon == std::string_view::npos ? auth : auth.substr(colon + 1));
    url.remove_prefix(at + 1);
  }
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    c.db = number<int>(url.substr(slash + 1), -1);
    if (c.db < 0) {
      error = "bad database number in the Redis URL";
      return std::nullopt;
    }
    url = url.substr(0, slash);
  }
  std::string_view port;
  if (url.starts_with('[')) {
    auto close = url.find(']');
    if (close == std::string_view::npos) {
      error = "unclosed [ in the Redis URL";
      return std::nullopt;
    }
    std::string_view rest = url.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':')) {
      error = "bad host in the Redis URL";
      return std::nullopt;
    }
    port = rest.empty() ? rest : rest.substr(1);
    url = url.substr(1, close - 1);
  } else if (auto colon = url.find(':'); colon != std::string_view::npos) {
    port = url.substr(colon + 1);
    url = url.substr(0, colon);
  }
  if (!port.empty()) {
    c.port = number<int>(port, -1);
  }
  if (c.port <= 0 || c.port > 65535) {
    error = "bad port in the Redis URL";
    return std::nullopt;
  }
  if (url.empty()) {
    error = "no host in the Redis URL";
    return std::nullopt;
  }
  c.host = std::string(url);
  return c;
}

RedisStore::RedisStore(RedisConfig config) : config_(std::move(config)) {
  ensure_connected();
}

RedisStore::~RedisStore() {
  if (ctx_ != nullptr) {
    redisFree(ctx_);
  }
}

void RedisStore::disconnect(const char* why) {
  if (ctx_ != nullptr) {
    spdlog::warn("redis {}:{}: {}; reconnecting in the background", config_.host, config_.port,
                 why);
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  next_attempt_ = std::chrono::steady_clock::now() + config_.retry;
}

bool RedisStore::ensure_connected() {
  if (ctx_ != nullptr) {
    return true;
  }
  auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) {
    return false;
  }
  next_attempt_ = now + config_.retry;
  redisContext* c =
      redisConnectWithTimeout(config_.host.c_str(), config_.port, to_timeval(config_.timeout));
  if (c == nullptr || c->err != 0) {
    if (c != nullptr) {
      redisFree(c);
    }
    return false;
  }
  redisSetTimeout(c, to_timeval(config_.timeout));
  ctx_ = c;
  if (!config_.password.empty()) {
    auto r = command({"AUTH", config_.password});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      disconnect("AUTH refused");
      return false;
    }
  }
  if (config_.db != 0) {
    auto r = command({"SELECT", std::to_string(config_.db)});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      disconnect("SELECT refused");
      return false;
    }
  }
  spdlog::info("redis {}:{} connected", config_.host, config_.port);
  return true;
}

RedisStore::Reply RedisStore::command(const std::vector<std::string>& args) {
  auto replies = pipeline({args});
  return replies.empty() ? nullptr : std::move(replies.front());
}

// Sends all commands, then reads all replies: one round trip. An I/O error or a timeout drops
// the connection and returns nothing.
std::vector<RedisStore::Reply> RedisStore::pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  std::vector<Reply> out;
  if (ctx_ == nullptr) {
    return out;
  }
  for (const auto& args : commands) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      disconnect(ctx_->errstr[0] != '\0' ? ctx_->errstr : "I/O error");
      if (raw != nullptr) {
        freeReplyObject(raw);
      }
      return {};
    }
    out.emplace_back(static_cast<redisReply*>(raw));
  }
  return out;
}

bool RedisStore::heartbeat(const NodeInfo& self) {
  if (!ensure_connected()) {
    return false;
  }
  std::string key = config_.prefix + "node:" + self.id;
  std::string wrooms = config_.prefix + "wrooms:" + self.id;
  std::string ttl = std::to_string(config_.node_ttl.count());
  auto replies = pipeline({
      {"HSET", key, "ws_url", self.ws_url, "workers", std::to_string(self.workers), "max_rooms",
       std::to_string(self.max_rooms), "rooms", std::to_string(self.rooms), "participants",
       std::to_string(self.participants), "allocations", std::to_string(self.allocations), "pps",
       std::to_string(self.packets_per_s), "cpu", std::to_string(self.cpu)},
      {"PEXPIRE", key, ttl},
      {"HSETNX", wrooms, "0", "0"},
      {"PEXPIRE", wrooms, ttl},
      {"SADD", config_.prefix + "nodes", self.id},
  });
  return !replies.empty();
}

void RedisStore::deregister(std::string_view node_id, const std::vector<HostedRoom>& rooms) {
  if (!ensure_connected()) {
    return;
  }
  std::string id(node_id);
  std::vector<std::vector<std::string>> commands = {
      {"SREM", config_.prefix + "nodes", id},
      {"DEL", config_.prefix + "node:" + id, config_.prefix + "wrooms:" + id}};
  for (const auto& r : rooms) {
    commands.push_back({"EVAL", kDeleteIfOwner, "1", config_.prefix + "room:" + r.room,
                        id + "|" + std::to_string(r.worker)});
  }
  pipeline(commands);
}

std::optional<Placement> RedisStore::place(std::string_view room, PlaceError& error) {
  error = PlaceError::kUnavailable;
  if (!ensure_connected()) {
    return std::nullopt;
  }
  // One round trip: the script reads the lock, the registry and the worker counts and takes
  // the lock, atomically (Redis runs a script alone), so there is no SET NX race to lose.
  auto r = command({"EVAL", kPlaceScript, "0", config_.prefix, std::string(room),
                    std::to_string(config_.room_ttl.count())});
  if (!r) {
    return std::nullopt;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
      r->element[2]->type != REDIS_REPLY_INTEGER || r->element[3]->type != REDIS_REPLY_INTEGER) {
    spdlog::warn("redis placement script answered unexpectedly (type {})", r->type);
    return std::nullopt;
  }
  if (r->element[3]->integer == 2) {
    error = PlaceError::kNoCapacity;
    return std::nullopt;
  }
  error = PlaceError::kNone;
  return Placement{std::string(reply_text(r->element[0])), std::string(reply_text(r->element[1])),
                   static_cast<unsigned>(r->element[2]->integer), r->element[3]->integer == 1};
}

std::vector<std::string> RedisStore::keep(std::string_view node_id,
                                          const std::vector<HostedRoom>& rooms) {
  std::vector<std::string> lost;
  if (rooms.empty() || !ensure_connected()) {
    return lost;
  }
  std::vector<std::vector<std::string>> renew;
  for (const auto& r : rooms) {
    renew.push_back({"EVAL", kRenewIfOwner, "1", config_.prefix + "room:" + r.room,
                     std::string(node_id) + "|" + std::to_string(r.worker),
                     std::to_string(config_.room_ttl.count())});
  }
  auto renewed = pipeline(renew);
  for (std::size_t i = 0; i < renewed.size(); ++i) {
    if (renewed[i]->type == REDIS_REPLY_INTEGER && renewed[i]->integer == 0) {
      lost.push_back(rooms[i].room);
    }
  }
  return lost;
}

void RedisStore::release(std::string_view room, std::string_view node_id) {
  if (ensure_connected()) {
    command(
        {"EVAL", kReleaseIfOwner, "0", config_.prefix, std::string(room), std::string(node_id)});
  }
}

}  // namespace ringlane::control::placement
