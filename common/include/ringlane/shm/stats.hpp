#pragma once
// Per-worker statistics in shared memory (/dev/shm/ringlane-NAME.stats): each worker writes
// its own block with relaxed atomic stores, anyone reads without locks (`ringlane stats`, the
// control plane's /metrics). The layout is what the two planes share, so it lives here.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "ringlane/shm/io_stats.hpp"
#include "ringlane/shm/sfu_counters.hpp"
#include "ringlane/shm/stream_counters.hpp"
#include "ringlane/shm/turn_counters.hpp"

namespace ringlane {

inline constexpr std::uint64_t kStatsMagic = 0x52474C4E53544154ull;  // "RGLNSTAT"
inline constexpr std::uint32_t kStatsVersion = 11;

struct WorkerStats {
  std::uint64_t heartbeat_ms = 0;  // monotonic time of the last publish
  std::uint64_t loop_turns = 0;
  std::uint64_t cpu = 0;
  std::uint64_t numa_node = 0;
  turn::Counters turn;
  io::BackendStats io;
  sfu::Counters sfu;
  turn::StreamCounters tcp;  // TURN over TCP
};

struct StatsHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t workers;
  std::uint64_t pid;
  char backend[16];
  // The SFU: worker i's media port is media_port + i (0: no SFU); the SHA-256 fingerprint of the
  // data plane's DTLS certificate ("AB:CD:...", NUL-terminated), which the control plane puts
  // in its SDP. The certificate and its key never leave the data plane.
  std::uint32_t media_port;
  std::uint32_t reserved;
  char fingerprint[96];
};

// Calls f(name, value) for every field, in a fixed order (for JSON and Prometheus output).
template <typename F>
void for_each_stat(const WorkerStats& s, F&& f) {
  f("heartbeat_ms", s.heartbeat_ms);
  f("loop_turns", s.loop_turns);
  f("cpu", s.cpu);
  f("numa_node", s.numa_node);
  const turn::Counters& t = s.turn;
  f("client_packets_in", t.client_packets_in);
  f("client_bytes_in", t.client_bytes_in);
  f("peer_packets_in", t.peer_packets_in);
  f("peer_bytes_in", t.peer_bytes_in);
  f("relayed_to_peer", t.relayed_to_peer);
  f("relayed_to_client", t.relayed_to_client);
  f("relayed_bytes_to_peer", t.relayed_bytes_to_peer);
  f("relayed_bytes_to_client", t.relayed_bytes_to_client);
  f("responses", t.responses);
  f("error_responses", t.error_responses);
  f("auth_challenges", t.auth_challenges);
  f("auth_failures", t.auth_failures);
  f("stale_nonces", t.stale_nonces);
  f("forbidden_peers", t.forbidden_peers);
  f("quota_rejections", t.quota_rejections);
  f("allocations_created", t.allocations_created);
  f("allocations_expired", t.allocations_expired);
  f("allocations_deleted", t.allocations_deleted);
  f("allocations", t.allocations);
  f("permissions", t.permissions);
  f("channels", t.channels);
  for (std::size_t i = 0; i < t.drops.size(); ++i) {
    f(std::string("drop_") + turn::drop_reason_name(static_cast<turn::Drop>(i)), t.drops[i]);
  }
  f("io_receive_calls", s.io.receive_calls);
  f("io_send_calls", s.io.send_calls);
  f("io_datagrams_in", s.io.datagrams_in);
  f("io_datagrams_out", s.io.datagrams_out);
  f("io_send_errors", s.io.send_errors);
  f("io_truncated", s.io.truncated);
  f("io_no_buffers", s.io.no_buffers);
  f("io_gso_sends", s.io.gso_sends);
  f("io_gso_fallbacks", s.io.gso_fallbacks);
  f("io_zerocopy_copied", s.io.zerocopy_copied);
  f("io_tx_exhausted", s.io.tx_exhausted);
  f("io_stream_chunks_in", s.io.stream_chunks_in);
  f("io_stream_sends", s.io.stream_sends);
  f("io_stream_partial_sends", s.io.stream_partial_sends);
  const sfu::Counters& m = s.sfu;
  f("sfu_sessions", m.sessions);
  f("sfu_sessions_connected", m.sessions_connected);
  f("sfu_tracks", m.tracks);
  f("sfu_subscriptions", m.subscriptions);
  f("sfu_packets_in", m.packets_in);
  f("sfu_bytes_in", m.bytes_in);
  f("sfu_rtp_in", m.rtp_in);
  f("sfu_rtcp_in", m.rtcp_in);
  f("sfu_rtp_forwarded", m.rtp_forwarded);
  f("sfu_bytes_forwarded", m.bytes_forwarded);
  f("sfu_ice_checks", m.ice_checks);
  f("sfu_ice_role_conflicts", m.ice_role_conflicts);
  f("sfu_ice_connected", m.ice_connected);
  f("sfu_ice_moves", m.ice_moves);
  f("sfu_ice_restarts", m.ice_restarts);
  f("sfu_ice_restarts_completed", m.ice_restarts_completed);
  f("sfu_dtls_connected", m.dtls_connected);
  f("sfu_dtls_failed", m.dtls_failed);
  f("sfu_consent_expired", m.consent_expired);
  f("sfu_connect_timeouts", m.connect_timeouts);
  f("sfu_pli_received", m.pli_received);
  f("sfu_pli_sent", m.pli_sent);
  f("sfu_pli_throttled", m.pli_throttled);
  f("sfu_nack_received", m.nack_received);
  f("sfu_nack_forwarded", m.nack_forwarded);
  f("sfu_retransmitted", m.retransmitted);
  f("sfu_retransmit_missed", m.retransmit_missed);
  f("sfu_retransmit_throttled", m.retransmit_throttled);
  f("sfu_upstream_nacks", m.upstream_nacks);
  f("sfu_rtx_received", m.rtx_received);
  f("sfu_sr_forwarded", m.sr_forwarded);
  f("sfu_rr_sent", m.rr_sent);
  f("sfu_layers_learned", m.layers_learned);
  f("sfu_layer_switches", m.layer_switches);
  f("sfu_layer_up", m.layer_up);
  f("sfu_layer_down", m.layer_down);
  f("sfu_svc_layer_up", m.svc_layer_up);
  f("sfu_svc_layer_down", m.svc_layer_down);
  f("sfu_layer_preference", m.layer_preference);
  f("sfu_layer_keyframe_waits", m.layer_keyframe_waits);
  f("sfu_repair_keyframes", m.repair_keyframes);
  f("sfu_layer_down_kept", m.layer_down_kept);
  f("sfu_dependency_malformed", m.dependency_malformed);
  f("sfu_twcc_sent", m.twcc_sent);
  f("sfu_remb_sent", m.remb_sent);
  f("sfu_twcc_received", m.twcc_received);
  f("sfu_probes", m.probes);
  f("sfu_padding_sent", m.padding_sent);
  f("sfu_freezes", m.freezes);
  f("sfu_route_reports", m.route_reports);
  f("sfu_dynacast_changes", m.dynacast_changes);
  f("sfu_commands", m.commands);
  f("sfu_commands_refused", m.commands_refused);
  for (std::size_t i = 0; i < m.connect_ms.size(); ++i) {
    f(std::string("sfu_connect_ms_le_") +
          (i < sfu::kConnectBuckets.size() ? std::to_string(sfu::kConnectBuckets[i]) : "inf"),
      m.connect_ms[i]);
  }
  f("sfu_connect_ms_sum", m.connect_ms_sum);
  for (std::size_t i = 0; i < m.drops.size(); ++i) {
    f(std::string("sfu_drop_") + sfu::drop_reason_name(static_cast<sfu::Drop>(i)), m.drops[i]);
  }
  const turn::StreamCounters& c = s.tcp;
  f("tcp_accepted", c.accepted);
  f("tcp_active", c.active);
  f("tcp_refused_total", c.refused_total);
  f("tcp_refused_per_ip", c.refused_per_ip);
  f("tcp_refused_rate", c.refused_rate);
  f("tcp_accept_errors", c.accept_errors);
  f("tcp_closed_by_peer", c.closed_by_peer);
  f("tcp_handshake_timeouts", c.handshake_timeouts);
  f("tcp_idle_timeouts", c.idle_timeouts);
  f("tcp_send_cap_closed", c.send_cap_closed);
  f("tcp_allocations_closed", c.allocations_closed);
  f("tcp_bytes_in", c.bytes_in);
  f("tcp_bytes_out", c.bytes_out);
  f("tcp_stun_frames", c.stun_frames);
  f("tcp_channel_frames", c.channel_frames);
  f("tcp_reassembled_frames", c.reassembled_frames);
  f("tcp_reassembled_bytes", c.reassembled_bytes);
  f("tcp_frame_copies", c.frame_copies);
  f("tcp_zero_copy_frames", c.zero_copy_frames);
  f("tcp_drop_no_buffer", c.no_buffer);
  f("tcp_drop_no_room", c.no_room);
  f("tcp_drop_not_turn", c.not_turn);
  f("tcp_drop_bad_magic_cookie", c.bad_magic_cookie);
  f("tcp_drop_bad_stun_length", c.bad_stun_length);
  f("tcp_drop_stun_too_large", c.stun_too_large);
  f("tcp_drop_channel_too_large", c.channel_too_large);
  f("tcp_drop_channel_before_stun", c.channel_before_stun);
  f("tls_accepted", c.tls_accepted);
  f("tls_handshakes", c.tls_handshakes);
  f("tls_handshake_failures", c.tls_handshake_failures);
  f("tls_old_protocol", c.tls_old_protocol);
  f("tls_handshake_timeouts", c.tls_handshake_timeouts);
  f("tls_failures", c.tls_failures);
  f("tls_closed_by_peer", c.tls_closed_by_peer);
  f("tls_write_refused", c.tls_write_refused);
  f("tls_close_notify_sent", c.tls_close_notify_sent);
}

// The writer's side: creates the region and hands each worker its block.
class StatsPage {
 public:
  // Creates /dev/shm/ringlane-NAME.stats (replacing a stale one); empty name = anonymous.
  StatsPage(const std::string& name, std::uint32_t workers, const char* backend,
            std::uint32_t media_port = 0, const std::string& fingerprint = {});
  ~StatsPage();
  StatsPage(const StatsPage&) = delete;
  StatsPage& operator=(const StatsPage&) = delete;
  bool ok() const { return base_ != nullptr; }
  // Copies `s` into worker i's block with relaxed atomic stores.
  void publish(std::uint32_t worker, const WorkerStats& s);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::uint8_t* base_ = nullptr;
  std::size_t bytes_ = 0;
};

// The reader's side: a snapshot of every worker, or an error.
struct StatsSnapshot {
  std::uint64_t pid = 0;
  std::string backend;
  std::uint32_t media_port = 0;
  std::string fingerprint;
  std::vector<WorkerStats> workers;
};
bool read_stats(const std::string& name, StatsSnapshot& out, std::string& error);
std::string stats_path(const std::string& name);

}  // namespace ringlane
