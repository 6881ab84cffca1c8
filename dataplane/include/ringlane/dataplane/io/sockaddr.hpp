#pragma once
// Endpoint <-> sockaddr, for the io backends and the worker only.
#include <netinet/in.h>
#include <sys/socket.h>

#include "ringlane/common/endpoint.hpp"

namespace ringlane::io {

socklen_t to_sockaddr(const Endpoint& ep, sockaddr_in6& storage);
Endpoint from_sockaddr(const sockaddr* sa);

}  // namespace ringlane::io
