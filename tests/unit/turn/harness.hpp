#pragma once
// Drives a turn::Server directly: builds client requests (with long-term auth) and feeds
// datagrams through PacketBuffers laid out as a worker's would be.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ringlane/dataplane/stun/builder.hpp"
#include "ringlane/dataplane/turn/server.hpp"

namespace ringlane::turn::testing {

class FakeRelayPorts : public RelayPorts {
 public:
  std::optional<Opened> open(const Request& req) override {
    if (exhausted) {
      return std::nullopt;
    }
    std::uint16_t port = next_port;
    if (req.even_port && port % 2 != 0) {
      ++port;
    }
    next_port = static_cast<std::uint16_t>(port + (req.reserve_next ? 2 : 1));
    Opened o;
    o.socket = make(req.family, port);
    last_dont_fragment = req.dont_fragment;
    if (req.reserve_next) {
      std::uint64_t token = 0x1000 + next_id;
      reserved[token] = make(req.family, static_cast<std::uint16_t>(port + 1));
      o.token = token;
    }
    return o;
  }
  std::optional<RelaySocket> claim(std::uint64_t token) override {
    auto it = reserved.find(token);
    if (it == reserved.end())
      return std::nullopt;
    RelaySocket s = it->second;
    reserved.erase(it);
    return s;
  }
  void close(SocketId id) override { open_sockets.erase(id.value); }
  bool supports(Family f) const override { return f == Family::kV4 || ipv6; }
  bool ipv6 = true;

  RelaySocket make(Family f, std::uint16_t port) {
    RelaySocket s;
    s.id = SocketId{next_id++};
    s.address.ip =
        f == Family::kV4 ? *IpAddress::parse("203.0.113.5") : *IpAddress::parse("2001:db8::5");
    s.address.port = port;
    open_sockets[s.id.value] = s.address;
    return s;
  }

  bool exhausted = false;
  bool last_dont_fragment = false;
  std::uint16_t next_port = 50000;
  std::uint32_t next_id = 100;
  std::map<std::uint32_t, Endpoint> open_sockets;
  std::map<std::uint64_t, RelaySocket> reserved;
};

struct Out {
  SendDecision decision;
  std::vector<std::uint8_t> bytes;
  const std::uint8_t* data = nullptr;  // where the bytes lie in the input slot
  std::optional<stun::Message> message() const { return stun::Message::parse(bytes); }
  std::uint16_t error_code() const {
    auto m = message();
    if (!m)
      return 0;
    auto v = m->find(stun::attr::kErrorCode);
    if (!v || v->size() < 4)
      return 0;
    return static_cast<std::uint16_t>((*v)[2] * 100 + (*v)[3]);
  }
};

class Harness {
 public:
  static constexpr SocketId kListener{1};

  explicit Harness(std::function<void(Policy&)> tweak = {},
                   std::function<void(ServerConfig&)> config_tweak = {}) {
    auto p = std::make_shared<Policy>();
    p->realm = "ringlane.test";
    p->add_user("alice", "alice-pass");
    p->add_user("bob", "bob-pass");
    p->rest_secrets = {"rest-secret"};
    if (tweak)
      tweak(*p);
    policy = p;
    ServerConfig cfg;
    cfg.policy = p;
    cfg.quota = std::make_shared<UserQuota>();
    cfg.nonce_secret.fill(7);
    if (config_tweak)
      config_tweak(cfg);
    server = std::make_unique<Server>(cfg, ports);
    now.mono_ms = 1'000'000;
    now.unix_s = 1'700'000'000;
  }

  Out feed(bool from_peer, SocketId sock, const Endpoint& from,
           const std::vector<std::uint8_t>& dgram) {
    slot.assign(std::max<std::size_t>(2048, kPacketHeadroom + dgram.size() + 64), 0xEE);
    std::copy(dgram.begin(), dgram.end(), slot.begin() + kPacketHeadroom);
    PacketBuffer pkt{slot.data(), static_cast<std::uint32_t>(slot.size()), kPacketHeadroom,
                     static_cast<std::uint32_t>(dgram.size())};
    Out out;
    out.decision = from_peer ? server->on_peer_packet(sock, from, pkt, now)
                             : server->on_client_packet(sock, from, pkt, now);
    if (out.decision.send) {
      out.bytes.assign(pkt.data(), pkt.data() + pkt.length);
      out.data = pkt.data();
    }
    return out;
  }
  Out from_client(const Endpoint& c, const std::vector<std::uint8_t>& d) {
    return feed(false, kListener, c, d);
  }
  Out from_peer(SocketId relay, const Endpoint& p, const std::vector<std::uint8_t>& d) {
    return feed(true, relay, p, d);
  }
  const std::uint8_t* slot_payload() const { return slot.data() + kPacketHeadroom; }

  FakeRelayPorts ports;
  std::shared_ptr<const Policy> policy;
  std::unique_ptr<Server> server;
  Now now;
  std::vector<std::uint8_t> slot;
};

// A TURN client's side: keeps the nonce a server handed out and signs requests.
class Client {
 public:
  Client(Harness& h, std::string_view endpoint, std::string name, std::string password)
      : h_(h), addr(*Endpoint::parse(endpoint)), user(std::move(name)), pass(std::move(password)) {}

  using Attrs = std::function<void(stun::Builder&)>;

  std::vector<std::uint8_t> build(stun::Method m, stun::Class c, const Attrs& attrs, bool sign,
                                  bool fingerprint = true) {
    std::vector<std::uint8_t> out(1500);
    if (!keep_tid)
      next_tid();
    stun::Builder b(out, m, c, tid);
    if (attrs)
      attrs(b);
    if (sign) {
      b.add_string(stun::attr::kUsername, user);
      b.add_string(stun::attr::kRealm, realm);
      b.add_string(stun::attr::kNonce, nonce);
      b.add_integrity(stun::long_term_key(user, realm, pass));
    }
    if (fingerprint)
      b.add_fingerprint();
    out.resize(b.size());
    return out;
  }

  // Sends the request signed, first learning realm and nonce from a 401 as a real client does.
  Out request(stun::Method m, const Attrs& attrs) {
    if (nonce.empty()) {
      Out challenge = h_.from_client(addr, build(m, stun::Class::kRequest, attrs, false));
      auto msg = challenge.message();
      if (msg) {
        realm = std::string(msg->find_string(stun::attr::kRealm).value_or(""));
        nonce = std::string(msg->find_string(stun::attr::kNonce).value_or(""));
      }
    }
    return h_.from_client(addr, build(m, stun::Class::kRequest, attrs, true));
  }

  Out allocate(const Attrs& extra = {}) {
    return request(stun::Method::kAllocate, [&](stun::Builder& b) {
      b.add_u32(stun::attr::kRequestedTransport, 17u << 24);
      if (extra)
        extra(b);
    });
  }

  void next_tid() {
    for (std::size_t i = 0; i < tid.size(); ++i)
      tid[i] = static_cast<std::uint8_t>(counter_ + i);
    ++counter_;
  }

  Harness& h_;
  Endpoint addr;
  std::string user;
  std::string pass;
  std::string realm;
  std::string nonce;
  stun::TransactionId tid{};
  bool keep_tid = false;  // resend with the same transaction id (a retransmission)

 private:
  std::uint8_t counter_ = 1;
};

}  // namespace ringlane::turn::testing
