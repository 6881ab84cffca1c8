#pragma once
// How the TURN core asks its worker for relay sockets without touching sockets itself.
#include <cstdint>
#include <optional>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/dataplane/packet.hpp"

namespace ringlane::turn {

struct RelaySocket {
  SocketId id;
  Endpoint address;  // as advertised in XOR-RELAYED-ADDRESS
};

class RelayPorts {
 public:
  struct Request {
    Family family = Family::kV4;
    bool even_port = false;      // EVEN-PORT (RFC 8656 §7.2)
    bool reserve_next = false;   // EVEN-PORT with R: also hold port + 1
    bool dont_fragment = false;  // DONT-FRAGMENT: set DF on the relay socket
  };
  struct Opened {
    RelaySocket socket;
    // With reserve_next: the token under which port + 1 is held (RFC 8656 §7.2), claimable
    // by any worker for about 30 s.
    std::optional<std::uint64_t> token;
  };
  virtual ~RelayPorts() = default;
  // False when this server has no relay address of the family (the server answers 440).
  virtual bool supports(Family family) const = 0;
  // nullopt when no port is free (the server answers 508).
  virtual std::optional<Opened> open(const Request& request) = 0;
  // Takes the relay socket a RESERVATION-TOKEN holds; nullopt when unknown or expired.
  virtual std::optional<RelaySocket> claim(std::uint64_t token) = 0;
  virtual void close(SocketId id) = 0;
};

}  // namespace ringlane::turn
