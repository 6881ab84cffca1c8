#pragma once
// Per-worker counters of TURN over TCP and TLS (RFC 8656 §3.1): connections, framing and the limits
// that protect the worker from hostile streams. Written by one worker thread as plain
// integers and published to the stats page with the TURN counters.
#include <cstdint>

namespace ringlane::turn {

struct StreamCounters {
  std::uint64_t accepted = 0;            // connections taken into the table
  std::uint64_t active = 0;              // gauge: connections open now
  std::uint64_t refused_total = 0;       // over the worker's connection limit
  std::uint64_t refused_per_ip = 0;      // over the per-source-IP limit
  std::uint64_t refused_rate = 0;        // over the per-source-IP rate of new connections
  std::uint64_t accept_errors = 0;       // accept() failed (EMFILE, ENFILE, ...)
  std::uint64_t closed_by_peer = 0;      // EOF or a reset from the client
  std::uint64_t handshake_timeouts = 0;  // no complete first message, or a frame left partial
  std::uint64_t idle_timeouts = 0;       // no allocation and nothing received for the idle time
  std::uint64_t send_cap_closed = 0;  // a client that does not read: its send backlog hit the cap
  std::uint64_t allocations_closed = 0;  // allocations deleted because their connection closed
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t stun_frames = 0;
  std::uint64_t channel_frames = 0;
  std::uint64_t reassembled_frames = 0;  // frames that straddled receive buffers ...
  std::uint64_t reassembled_bytes = 0;   // ... and the bytes the framer copied for them
  std::uint64_t frame_copies = 0;        // frames copied into a transmit buffer for the server
  std::uint64_t zero_copy_frames = 0;    // ChannelData relayed from the receive buffer itself
  std::uint64_t no_buffer = 0;           // a frame dropped: no transmit buffer free
  std::uint64_t no_room = 0;             // ChannelData to a client with no tailroom for padding
  // The stream failures of StreamFramer (each one closes the connection), by reason.
  std::uint64_t not_turn = 0;  // garbage: neither STUN nor ChannelData
  std::uint64_t bad_magic_cookie = 0;
  std::uint64_t bad_stun_length = 0;
  std::uint64_t stun_too_large = 0;       // a STUN length over the frame limit
  std::uint64_t channel_too_large = 0;    // a ChannelData length over the frame limit
  std::uint64_t channel_before_stun = 0;  // ChannelData before any STUN message
  // TURN over TLS (also counted above: accepted, timeouts, bytes on the wire, frames).
  std::uint64_t tls_accepted = 0;            // connections taken on a TLS listener
  std::uint64_t tls_handshakes = 0;          // handshakes completed
  std::uint64_t tls_handshake_failures = 0;  // garbage, a refused ClientHello, an alert
  std::uint64_t tls_old_protocol = 0;        // a client offering only TLS 1.1 or older
  std::uint64_t tls_handshake_timeouts = 0;  // the handshake not done by the handshake timeout
  std::uint64_t tls_failures = 0;            // a bad record after the handshake (closed)
  std::uint64_t tls_closed_by_peer = 0;      // close_notify from the client
  std::uint64_t tls_write_refused = 0;       // a frame for a connection not yet established
  std::uint64_t tls_close_notify_sent = 0;   // close_notify sent on a close of ours
};

}  // namespace ringlane::turn
