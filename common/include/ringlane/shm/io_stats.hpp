#pragma once
// What an io backend counts, as the stats page carries it (the backends live in dataplane/io).
#include <cstdint>

namespace ringlane::io {

struct BackendStats {
  std::uint64_t receive_calls = 0;  // syscalls (or submits) that could receive
  std::uint64_t send_calls = 0;     // syscalls (or submits) that sent
  std::uint64_t datagrams_in = 0;
  std::uint64_t datagrams_out = 0;
  std::uint64_t send_errors = 0;
  std::uint64_t truncated = 0;             // datagram larger than a buffer: dropped
  std::uint64_t no_buffers = 0;            // receive stalled for want of a free buffer
  std::uint64_t gso_sends = 0;             // sendmsg calls that carried more than one datagram
  std::uint64_t gso_fallbacks = 0;         // GSO sends refused (EIO) and resent one by one
  std::uint64_t zerocopy_copied = 0;       // zero-copy sends the kernel copied after all
  std::uint64_t tx_exhausted = 0;          // acquire() found no free transmit buffer
  std::uint64_t stream_chunks_in = 0;      // stream receives delivered (TURN over TCP)
  std::uint64_t stream_sends = 0;          // stream sendmsg calls (one per stream per turn)
  std::uint64_t stream_partial_sends = 0;  // of which the kernel took only part
};

}  // namespace ringlane::io
