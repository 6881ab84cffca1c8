#pragma once
// One peer connection's transport as a browser runs it against an ICE-lite SFU: a UDP socket,
// the controlling ICE agent (RFC 8445 §7.2.4: Binding requests with USERNAME, PRIORITY,
// ICE-CONTROLLING, USE-CANDIDATE, MESSAGE-INTEGRITY and FINGERPRINT towards the server's host
// candidate, then consent checks, RFC 7675), DTLS-SRTP (RFC 5764) and SRTP from the exporter's
// keys. The owner feeds it datagrams and the clock; it hands back plain RTP and RTCP.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/crypto/digest.hpp"
#include "ringlane/crypto/dtls.hpp"
#include "ringlane/crypto/srtp.hpp"
#include "ringlane/dataplane/rtp/demux.hpp"
#include "ringlane/dataplane/stun/builder.hpp"
#include "ringlane/dataplane/stun/message.hpp"

namespace sfu_load {

namespace crypto = ringlane::crypto;
namespace stun = ringlane::stun;
using ringlane::Endpoint;

inline socklen_t to_sockaddr(const Endpoint& ep, sockaddr_in6& storage) {
  std::memset(&storage, 0, sizeof(storage));
  if (ep.family() == ringlane::Family::kV4) {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(ep.port);
    std::memcpy(&in->sin_addr, ep.ip.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  storage.sin6_family = AF_INET6;
  storage.sin6_port = htons(ep.port);
  std::memcpy(&storage.sin6_addr, ep.ip.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

inline Endpoint from_sockaddr(const sockaddr_in6& storage) {
  Endpoint ep;
  if (storage.sin6_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    ep.ip.family = ringlane::Family::kV4;
    std::memcpy(ep.ip.bytes.data(), &in->sin_addr, 4);
    ep.port = ntohs(in->sin_port);
  } else {
    ep.ip.family = ringlane::Family::kV6;
    std::memcpy(ep.ip.bytes.data(), &storage.sin6_addr, 16);
    ep.port = ntohs(storage.sin6_port);
  }
  return ep;
}

// ICE credentials: letters and digits (RFC 8839 §5.4).
inline std::string ice_token(std::size_t n) {
  return crypto::random_alnum(n);
}

template <typename T>
T random_value() {
  T v{};
  while (v == T{}) {
    crypto::random_bytes(std::span(reinterpret_cast<std::uint8_t*>(&v), sizeof(v)));
  }
  return v;
}

struct TransportCounters {
  std::uint64_t checks_sent = 0;
  std::uint64_t check_responses = 0;
  std::uint64_t checks_answered = 0;  // Binding requests from a full ICE server
  std::uint64_t bad_stun = 0;
  std::uint64_t dtls_datagrams = 0;
  std::uint64_t srtp_failures = 0;
  std::uint64_t srtcp_failures = 0;
  std::uint64_t rtp_in = 0;
  std::uint64_t rtcp_in = 0;
  std::uint64_t rtp_out = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t unknown = 0;
};

class Transport {
 public:
  static constexpr std::uint64_t kCheckIntervalNs = 50'000'000;       // until the first answer
  static constexpr std::uint64_t kConsentIntervalNs = 5'000'000'000;  // RFC 7675 §5.1: ~5 s

  // Binds a UDP socket on `ip`, port 0; fd() < 0 (with errno) when that fails.
  Transport(const ringlane::IpAddress& ip, std::shared_ptr<const crypto::DtlsCertificate> cert)
      : cert_(std::move(cert)) {
    local_ufrag_ = ice_token(8);
    local_pwd_ = ice_token(24);
    tiebreaker_ = random_value<std::uint64_t>();
    fd_ = socket(ip.family == ringlane::Family::kV4 ? AF_INET : AF_INET6,
                 SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      return;
    }
    int size = 1 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    sockaddr_in6 sa{};
    socklen_t len = to_sockaddr(Endpoint{ip, 0}, sa);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    len = sizeof(sa);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    local_ = from_sockaddr(sa);
  }
  ~Transport() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  int fd() const { return fd_; }
  const Endpoint& local() const { return local_; }
  const std::string& ufrag() const { return local_ufrag_; }
  const std::string& pwd() const { return local_pwd_; }
  bool started() const { return started_; }
  bool ice_ok() const { return ice_ns_ != 0; }
  bool connected() const { return srtp_out_ != nullptr; }
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }
  std::uint64_t started_ns() const { return start_ns_; }
  std::uint64_t ice_ns() const { return ice_ns_; }
  std::uint64_t connected_ns() const { return connected_ns_; }
  const TransportCounters& counters() const { return counters_; }

  // The server's description arrived: checks start now. `dtls_client` is our role.
  void start(const Endpoint& remote, std::string remote_ufrag, std::string remote_pwd,
             std::string remote_fingerprint, bool dtls_client, std::uint64_t now_ns) {
    if (started_) {
      return;  // a renegotiation of the same transport: nothing to restart
    }
    started_ = true;
    remote_ = remote;
    to_len_ = to_sockaddr(remote_, to_);
    remote_ufrag_ = std::move(remote_ufrag);
    remote_pwd_ = std::move(remote_pwd);
    remote_fingerprint_ = std::move(remote_fingerprint);
    dtls_client_ = dtls_client;
    start_ns_ = now_ns;
    next_check_ns_ = now_ns;
  }

  // Checks, consent and DTLS retransmissions that are due.
  void tick(std::uint64_t now_ns) {
    if (!started_ || failed_) {
      return;
    }
    if (now_ns >= next_check_ns_) {
      send_check();
      next_check_ns_ = now_ns + (ice_ok() ? kConsentIntervalNs : kCheckIntervalNs);
    }
    if (dtls_ && dtls_deadline_ns_ != 0 && now_ns >= dtls_deadline_ns_) {
      dtls_->on_timeout();
      flush_dtls(now_ns);
    }
  }

  // Plain RTP/RTCP after unprotect (the span is the receive buffer, shortened).
  enum class Got { kNothing, kRtp, kRtcp };
  Got on_datagram(std::span<std::uint8_t> buf, std::size_t n, const sockaddr_in6& from,
                  socklen_t from_len, std::uint64_t now_ns, std::span<std::uint8_t>& plain) {
    auto kind = ringlane::rtp::classify(std::span<const std::uint8_t>(buf.data(), n));
    switch (kind) {
      case ringlane::rtp::PacketKind::kStun:
        on_stun(std::span<const std::uint8_t>(buf.data(), n), from, from_len, now_ns);
        return Got::kNothing;
      case ringlane::rtp::PacketKind::kDtls:
        ++counters_.dtls_datagrams;
        if (dtls_) {
          dtls_->on_datagram(std::span<const std::uint8_t>(buf.data(), n));
          flush_dtls(now_ns);
        }
        return Got::kNothing;
      case ringlane::rtp::PacketKind::kRtp: {
        if (!srtp_in_) {
          ++counters_.srtp_failures;
          return Got::kNothing;
        }
        auto len = srtp_in_->unprotect_rtp(buf, n);
        if (!len) {
          ++counters_.srtp_failures;
          return Got::kNothing;
        }
        ++counters_.rtp_in;
        plain = buf.first(*len);
        return Got::kRtp;
      }
      case ringlane::rtp::PacketKind::kRtcp: {
        if (!srtp_in_) {
          ++counters_.srtcp_failures;
          return Got::kNothing;
        }
        auto len = srtp_in_->unprotect_rtcp(buf, n);
        if (!len) {
          ++counters_.srtcp_failures;
          return Got::kNothing;
        }
        ++counters_.rtcp_in;
        plain = buf.first(*len);
        return Got::kRtcp;
      }
      default:
        ++counters_.unknown;
        return Got::kNothing;
    }
  }

  // Protects plain RTP in place (the buffer has SrtpSession::kMaxTrailer of tailroom); the
  // protected length, 0 on failure.
  std::size_t protect(std::span<std::uint8_t> buf, std::size_t n) {
    auto len = srtp_out_ ? srtp_out_->protect_rtp(buf, n) : std::nullopt;
    return len ? *len : 0;
  }
  // Protects plain RTCP in place (kMaxTrailer of tailroom) and sends it; false when it could not.
  bool send_rtcp(std::span<std::uint8_t> buf, std::size_t n) {
    auto len = srtp_out_ ? srtp_out_->protect_rtcp(buf, n) : std::nullopt;
    if (!len) {
      return false;
    }
    send_raw(buf.data(), *len);
    return true;
  }
  const sockaddr_in6& remote_sockaddr() const { return to_; }
  socklen_t remote_sockaddr_len() const { return to_len_; }
  void count_sent(std::size_t n) { counters_.rtp_out += n; }
  void count_send_error() { ++counters_.send_errors; }

 private:
  void send_raw(const std::uint8_t* p, std::size_t n) {
    if (sendto(fd_, p, n, 0, reinterpret_cast<const sockaddr*>(&to_), to_len_) < 0) {
      ++counters_.send_errors;
    }
  }

  void send_check() {
    stun::TransactionId tid{};
    crypto::random_bytes(tid);
    tids_[next_tid_++ % tids_.size()] = tid;
    std::array<std::uint8_t, 256> buf{};
    stun::Builder b(buf, stun::Method::kBinding, stun::Class::kRequest, tid);
    // RFC 8445 §7.2.2: USERNAME is "remote ufrag:local ufrag" from the sender's view.
    b.add_string(stun::attr::kUsername, remote_ufrag_ + ":" + local_ufrag_);
    // §5.1.2.1: the priority of a peer-reflexive candidate (type preference 110).
    b.add_u32(stun::attr::kPriority, (110u << 24) | (65535u << 8) | 255u);
    b.add_u64(stun::attr::kIceControlling, tiebreaker_);
    if (!ice_ok()) {
      b.add_bytes(stun::attr::kUseCandidate, {});  // §8.1.1: aggressive nomination
    }
    b.add_integrity(ringlane::as_bytes(remote_pwd_));
    b.add_fingerprint();
    if (b.ok()) {
      send_raw(buf.data(), b.size());
      ++counters_.checks_sent;
    }
  }

  // RFC 8445 §7.3: a full ICE server checks us too (its triggered check is what lets it nominate
  // the pair): answered with our password, from wherever it came.
  void answer_check(const stun::Message& req, const sockaddr_in6& from, socklen_t from_len) {
    auto username = req.find_string(stun::attr::kUsername);
    if (!username || username->substr(0, username->find(':')) != local_ufrag_ ||
        !req.check_integrity(ringlane::as_bytes(local_pwd_))) {
      ++counters_.bad_stun;
      return;
    }
    std::array<std::uint8_t, 128> buf{};
    stun::Builder b(buf, stun::Method::kBinding, stun::Class::kSuccess, req.transaction_id());
    b.add_xor_address(stun::attr::kXorMappedAddress, from_sockaddr(from));
    b.add_integrity(ringlane::as_bytes(local_pwd_));
    b.add_fingerprint();
    if (b.ok() && sendto(fd_, buf.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&from),
                         from_len) >= 0) {
      ++counters_.checks_answered;
    }
  }

  void on_stun(std::span<const std::uint8_t> d, const sockaddr_in6& from, socklen_t from_len,
               std::uint64_t now_ns) {
    auto msg = stun::Message::parse(d);
    if (msg && started_ && msg->method() == stun::Method::kBinding &&
        msg->message_class() == stun::Class::kRequest) {
      return answer_check(*msg, from, from_len);
    }
    if (!msg || msg->method() != stun::Method::kBinding ||
        msg->message_class() != stun::Class::kSuccess ||
        !msg->check_integrity(ringlane::as_bytes(remote_pwd_)) ||
        (msg->has_fingerprint() && !msg->check_fingerprint())) {
      ++counters_.bad_stun;
      return;
    }
    auto tid = msg->transaction_id();
    bool ours = false;
    for (const auto& t : tids_) {
      ours = ours || t == tid;
    }
    if (!ours) {
      ++counters_.bad_stun;
      return;
    }
    ++counters_.check_responses;
    if (ice_ns_ != 0) {
      return;
    }
    ice_ns_ = now_ns;
    next_check_ns_ = now_ns + kConsentIntervalNs;
    // RFC 5763 §5: with the pair nominated, the DTLS client begins the handshake.
    dtls_ = std::make_unique<crypto::DtlsEndpoint>(
        cert_, dtls_client_ ? crypto::DtlsRole::kClient : crypto::DtlsRole::kServer,
        remote_fingerprint_);
    if (dtls_client_) {
      dtls_->start();
    }
    flush_dtls(now_ns);
  }

  void flush_dtls(std::uint64_t now_ns) {
    std::vector<std::uint8_t> out;
    while (dtls_->pop(out)) {
      send_raw(out.data(), out.size());
    }
    auto t = dtls_->timeout();
    dtls_deadline_ns_ = t ? now_ns + static_cast<std::uint64_t>(t->count()) * 1'000'000 : 0;
    if (dtls_->state() == crypto::DtlsState::kConnected && !srtp_out_) {
      auto profile = dtls_->srtp_profile();
      auto material = dtls_->srtp_keying_material();
      std::optional<crypto::SrtpMasters> masters;
      if (profile && material) {
        masters = crypto::split_srtp_keying_material(*profile, *material, dtls_client_);
      }
      if (masters) {
        srtp_in_ =
            crypto::SrtpSession::create(*profile, masters->remote, crypto::SrtpDirection::kInbound);
        srtp_out_ =
            crypto::SrtpSession::create(*profile, masters->local, crypto::SrtpDirection::kOutbound);
      }
      if (!srtp_in_ || !srtp_out_) {
        srtp_in_.reset();
        srtp_out_.reset();
        fail("no SRTP keys from the handshake");
        return;
      }
      connected_ns_ = now_ns;
    } else if (dtls_->state() == crypto::DtlsState::kFailed) {
      fail("DTLS: " + dtls_->error());
    }
  }

  void fail(std::string why) {
    if (!failed_) {
      failed_ = true;
      error_ = std::move(why);
    }
  }

  std::shared_ptr<const crypto::DtlsCertificate> cert_;
  int fd_ = -1;
  Endpoint local_;
  Endpoint remote_;
  sockaddr_in6 to_{};
  socklen_t to_len_ = 0;
  std::string local_ufrag_, local_pwd_;
  std::string remote_ufrag_, remote_pwd_, remote_fingerprint_;
  bool dtls_client_ = true;
  std::uint64_t tiebreaker_ = 0;
  std::array<stun::TransactionId, 4> tids_{};
  std::size_t next_tid_ = 0;
  bool started_ = false;
  bool failed_ = false;
  std::string error_;
  std::uint64_t start_ns_ = 0;
  std::uint64_t ice_ns_ = 0;
  std::uint64_t connected_ns_ = 0;
  std::uint64_t next_check_ns_ = 0;
  std::unique_ptr<crypto::DtlsEndpoint> dtls_;
  std::uint64_t dtls_deadline_ns_ = 0;
  std::unique_ptr<crypto::SrtpSession> srtp_in_;
  std::unique_ptr<crypto::SrtpSession> srtp_out_;
  TransportCounters counters_;
};

}  // namespace sfu_load
