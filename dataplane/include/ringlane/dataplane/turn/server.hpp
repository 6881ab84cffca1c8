#pragma once
// The TURN/STUN server of one worker (RFC 8489, RFC 8656 over UDP, RFC 6156). Sans-I/O: it
// is handed datagrams in buffers it may edit in place, and answers with a SendDecision; it
// asks the worker for relay sockets through RelayPorts. It never throws and never reads a
// byte that parse() did not bound-check first.
#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "ringlane/dataplane/packet.hpp"
#include "ringlane/dataplane/turn/allocation.hpp"
#include "ringlane/dataplane/turn/nonce_issuer.hpp"
#include "ringlane/dataplane/turn/relay_ports.hpp"
#include "ringlane/dataplane/turn/user_quota.hpp"
#include "ringlane/shm/turn_counters.hpp"
#include "ringlane/turn/policy.hpp"

namespace ringlane::turn {

struct ServerConfig {
  std::shared_ptr<const Policy> policy;
  std::shared_ptr<UserQuota> quota;  // shared by the workers of one process
  std::array<std::uint8_t, 32> nonce_secret{};
  // This node's own SFU media ports: a client behind a UDP-hostile network reaches the SFU
  // through the relay, so these addresses are peers even where the deny list (loopback,
  // private) would refuse their IP; only these ports of them, never another service there.
  std::vector<IpAddress> own_media_ips;
  std::uint16_t own_media_port_min = 0;  // 0: no SFU
  std::uint16_t own_media_port_max = 0;
};

class Server {
 public:
  Server(ServerConfig config, RelayPorts& relay_ports);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // A datagram from a client on a listening socket.
  SendDecision on_client_packet(SocketId listener, const Endpoint& client, PacketBuffer& pkt,
                                const Now& now);
  // A datagram from a peer on a relay socket.
  SendDecision on_peer_packet(SocketId relay, const Endpoint& peer, PacketBuffer& pkt,
                              const Now& now);
  // Over TCP the "listener" above is the client's connection (RFC 8656 §3.1): the 5-tuple
  // then includes the transport, so a UDP and a TCP client at one address:port never share an
  // allocation. These two serve the connection's owner.
  bool has_allocation(SocketId transport, const Endpoint& client) const;
  // The connection closed: its allocation is deleted (true if there was one).
  bool close_transport(SocketId transport, const Endpoint& client);
  // Expires allocations, permissions and channels. Call about once a second.
  void on_timer(const Now& now);

  void set_policy(std::shared_ptr<const Policy> policy) { policy_ = std::move(policy); }
  const Policy& policy() const { return *policy_; }
  const Counters& counters() const { return counters_; }
  std::size_t allocation_count() const { return by_client_.size(); }

 private:
  struct ClientKey {
    SocketId listener;
    Endpoint client;
    bool operator==(const ClientKey&) const = default;
  };
  struct ClientKeyHash {
    std::size_t operator()(const ClientKey& k) const noexcept {
      return EndpointHash{}(k.client) ^ (std::size_t{k.listener.value} << 48);
    }
  };
  // A request being answered: what the reply needs to know.
  struct Reply {
    const stun::Message& request;
    SocketId listener;
    const Endpoint& client;
    PacketBuffer& pkt;
    const Now& now;
    const CredentialKey* key = nullptr;  // set once authenticated: the reply carries MI
  };
  struct AuthResult {
    bool ok = false;
    std::string username;
    CredentialKey key{};
  };

  SendDecision on_stun(SocketId listener, const Endpoint& client, PacketBuffer& pkt,
                       const Now& now);
  SendDecision on_channel_data(SocketId listener, const Endpoint& client, PacketBuffer& pkt,
                               const Now& now);
  SendDecision on_send_indication(const stun::Message& msg, SocketId listener,
                                  const Endpoint& client, PacketBuffer& pkt, const Now& now);
  SendDecision on_request(Reply& r);
  SendDecision on_allocate(Reply& r, const AuthResult& auth);
  SendDecision on_refresh(Reply& r, Allocation& a);
  SendDecision on_create_permission(Reply& r, Allocation& a);
  SendDecision on_channel_bind(Reply& r, Allocation& a);
  SendDecision binding_success(Reply& r);
  SendDecision allocate_success(Reply& r, const Allocation& a, const std::uint64_t* token);

  // Fills `auth` or answers the challenge/error itself (returned decision is then set).
  bool authenticate(Reply& r, Allocation* existing, AuthResult& auth, SendDecision& out);
  bool rate_limited(const IpAddress& source, std::uint64_t now_ms);

  // Builds a reply into scratch_ and copies it over the request in pkt.
  template <typename F>
  SendDecision respond(Reply& r, stun::Class cls, F&& add_attributes);
  SendDecision error(Reply& r, std::uint16_t code, const char* reason);
  SendDecision challenge(Reply& r, std::uint16_t code, const char* reason);

  Allocation* find_allocation(SocketId listener, const Endpoint& client);
  // A peer the deny list would refuse but that is one of this node's SFU media ports.
  bool own_media_ip(const IpAddress& ip) const;
  bool own_media(const Endpoint& peer) const;
  void free_allocation(std::uint32_t index, bool expired);
  void install_permission(Allocation& a, const IpAddress& peer, std::uint64_t now_ms);
  std::uint32_t lifetime_for(std::optional<std::uint32_t> requested) const;
  void recount_gauges();

  std::shared_ptr<const Policy> policy_;
  std::shared_ptr<UserQuota> quota_;
  NonceIssuer nonces_;
  RelayPorts& relay_ports_;
  std::vector<IpAddress> own_media_ips_;
  std::uint16_t own_media_port_min_ = 0;
  std::uint16_t own_media_port_max_ = 0;
  Counters counters_;

  std::vector<Allocation> allocations_;
  std::vector<std::uint32_t> free_slots_;
  std::unordered_map<ClientKey, std::uint32_t, ClientKeyHash> by_client_;
  std::vector<std::uint32_t> by_relay_;  // SocketId.value -> allocation index
  struct SourceBudget {
    std::uint64_t tokens_milli;
    std::uint64_t last_ms;
  };
  std::unordered_map<IpAddress, SourceBudget, IpAddressHash> unauthorized_budget_;
  std::uint64_t indication_seed_ = 0x9E3779B97F4A7C15ull;
  std::array<std::uint8_t, 1024> scratch_{};
};

}  // namespace ringlane::turn
