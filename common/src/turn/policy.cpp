#include "ringlane/turn/policy.hpp"

#include "ringlane/stun/long_term_key.hpp"

namespace ringlane::turn {

void Policy::add_user(std::string_view name, std::string_view password) {
  users[std::string(name)] = stun::long_term_key(name, realm, password);
}

const std::vector<Cidr>& default_denied_peers() {
  static const std::vector<Cidr> kDenied = [] {
    std::vector<Cidr> out;
    for (const char* text : {
             "0.0.0.0/8",       // "this" network
             "10.0.0.0/8",      // RFC 1918
             "100.64.0.0/10",   // RFC 6598 shared address space (carrier NAT)
             "127.0.0.0/8",     // loopback
             "169.254.0.0/16",  // link-local
             "172.16.0.0/12",   // RFC 1918
             "192.0.0.0/24",    // IETF protocol assignments
             "192.168.0.0/16",  // RFC 1918
             "198.18.0.0/15",   // benchmarking
             "224.0.0.0/4",     // multicast
             "240.0.0.0/4",     // reserved, and 255.255.255.255
             "::/128",          // unspecified
             "::1/128",         // loopback
             "::/96",           // IPv4-compatible (deprecated)
             "64:ff9b::/96",    // NAT64: would reach IPv4 ranges above
             "64:ff9b:1::/48",  // local-use NAT64
             "fc00::/7",        // unique local
             "fe80::/10",       // link-local
             "fec0::/10",       // site-local (deprecated)
             "ff00::/8",        // multicast
         }) {
      out.push_back(*Cidr::parse(text));
    }
    return out;
  }();
  return kDenied;
}

bool Policy::peer_allowed(const IpAddress& peer) const {
  // Judge an IPv4-mapped IPv6 peer (::ffff:127.0.0.1) by its IPv4 form.
  IpAddress ip = peer.unmapped();
  if (any_contains(allow_peers, ip) || any_contains(allow_peers, peer)) {
    return true;
  }
  return !any_contains(default_denied_peers(), ip) && !any_contains(deny_peers, ip);
}

}  // namespace ringlane::turn
