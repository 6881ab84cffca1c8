// The SFU engine: demultiplexing of the media port, ICE-lite, DTLS and the session commands.
// Forwarding is in forwarder.cpp, RTCP in feedback.cpp.
#include "ringlane/dataplane/sfu/engine.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "ringlane/crypto/digest.hpp"
#include "ringlane/dataplane/rtp/demux.hpp"
#include "ringlane/dataplane/sfu/ice_lite.hpp"
#include "ringlane/dataplane/stun/message.hpp"
#include "session.hpp"

namespace ringlane::sfu {

Engine::Engine(EngineConfig config, Output& out)
    : config_(std::move(config)), out_(out), store_(std::make_unique<RetransmitStore>()) {}

Engine::~Engine() = default;

Session* Engine::find(shm::SessionId id) {
  auto it = sessions_.find(id.value);
  return it == sessions_.end() ? nullptr : it->second.get();
}

void Engine::on_datagram(SocketId socket, const Endpoint& from, PacketBuffer& pkt, io::BufferId id,
                         const Now& now) {
  now_us_ = now.us();
  if (!probing_.empty() && now_us_ - last_padding_us_ >= kPaddingEveryUs) {
    pad_probes(now);
  }
  ++counters_.packets_in;
  counters_.bytes_in += pkt.length;
  rtp::PacketKind kind = rtp::classify(pkt.bytes());
  if (kind == rtp::PacketKind::kStun) {
    on_stun(socket, from, pkt, now);
    out_.release(id);
    return;
  }
  if (kind != rtp::PacketKind::kDtls && kind != rtp::PacketKind::kRtp &&
      kind != rtp::PacketKind::kRtcp) {
    counters_.drop(Drop::kUnknownKind);
    out_.release(id);
    return;
  }
  // DTLS and SRTP are accepted only from an address that passed a connectivity check: the
  // check is what proves the peer knows the session's password (RFC 8445 §7.3).
  auto it = by_address_.find(from);
  if (it == by_address_.end()) {
    counters_.drop(Drop::kNoSession);
    out_.release(id);
    return;
  }
  Session& s = *it->second;
  if (kind == rtp::PacketKind::kDtls) {
    on_dtls(s, pkt, now);
  } else if (kind == rtp::PacketKind::kRtp) {
    on_rtp(s, pkt, now);
  } else {
    on_rtcp(s, pkt, now);
  }
  out_.release(id);
}

void Engine::on_stun(SocketId socket, const Endpoint& from, PacketBuffer& pkt, const Now& now) {
  auto msg = stun::Message::parse(pkt.bytes());
  if (!msg) {
    counters_.drop(Drop::kStunMalformed);
    return;
  }
  if (msg->method() != stun::Method::kBinding || msg->message_class() != stun::Class::kRequest) {
    counters_.drop(Drop::kStunNotRequest);
    return;
  }
  auto ufrag = local_ufrag(*msg);
  auto it = ufrag ? by_ufrag_.find(std::string(*ufrag)) : by_ufrag_.end();
  if (it == by_ufrag_.end()) {
    counters_.drop(Drop::kUnknownUfrag);
    return;
  }
  Session& s = *it->second;
  bool previous = it->first != s.ufrag;
  const std::string& pwd = previous ? s.previous_pwd : s.pwd;
  Check check = check_request(*msg, pwd);
  if (check.result == CheckResult::kBadIntegrity) {
    counters_.drop(Drop::kBadIntegrity);
    return;
  }
  PacketBuffer reply;
  auto tx = out_.acquire(reply);
  if (!tx) {
    counters_.drop(Drop::kTxExhausted);
    return;
  }
  std::size_t n = write_response(*msg, check.result, from, pwd,
                                 MutableBytes(reply.data(), reply.capacity - reply.offset));
  if (n == 0) {
    out_.release(*tx);
    return;
  }
  reply.length = static_cast<std::uint32_t>(n);
  out_.send(socket, from, reply, *tx);
  if (check.result == CheckResult::kRoleConflict) {
    ++counters_.ice_role_conflicts;
    return;
  }
  ++counters_.ice_checks;
  s.last_check_ms = now.mono_ms;
  if (!previous && !s.previous_ufrag.empty()) {
    // The client uses the restarted credentials: the old ones are done.
    by_ufrag_.erase(s.previous_ufrag);
    s.previous_ufrag.clear();
    s.previous_pwd.clear();
    ++counters_.ice_restarts_completed;
  }
  if (std::find(s.addresses.begin(), s.addresses.end(), from) == s.addresses.end()) {
    if (s.addresses.size() >= Session::kMaxAddresses) {
      // The oldest address goes, unless it is the one media is sent to.
      auto victim = s.addresses.begin();
      if (s.has_remote && *victim == s.remote) {
        ++victim;
      }
      if (auto old = by_address_.find(*victim); old != by_address_.end() && old->second == &s) {
        by_address_.erase(old);
      }
      s.addresses.erase(victim);
    }
    s.addresses.push_back(from);
    by_address_[from] = &s;
  }
  // The first valid check sets the 5-tuple so DTLS can start; a nomination (USE-CANDIDATE)
  // from another address moves the session there (the controlling side chose that pair, or
  // the network changed).
  if (!s.has_remote || (check.use_candidate && !(s.remote == from && s.socket == socket))) {
    set_remote(s, socket, from, now);
  }
}

void Engine::set_remote(Session& s, SocketId socket, const Endpoint& from, const Now& now) {
  bool first = !s.has_remote;
  s.has_remote = true;
  s.socket = socket;
  s.remote = from;
  if (first) {
    ++counters_.ice_connected;
    emit(s, shm::SessionState::kIceConnected, now);
    dtls_progress(s, now);
  } else {
    ++counters_.ice_moves;
    emit(s, shm::SessionState::kIceConnected, now);
  }
}

// Creates the DTLS endpoint once both the 5-tuple and the peer's fingerprint are known; as the
// client, sends the first flight.
void Engine::dtls_progress(Session& s, const Now& now) {
  if (s.dtls || !s.fingerprint_known || !s.has_remote || s.failed) {
    return;
  }
  std::string fp;
  for (std::size_t i = 0; i < s.fingerprint.size(); ++i) {
    static const char* hex = "0123456789ABCDEF";
    fp += hex[s.fingerprint[i] >> 4];
    fp += hex[s.fingerprint[i] & 15];
    if (i + 1 < s.fingerprint.size()) {
      fp += ':';
    }
  }
  s.dtls = std::make_unique<crypto::DtlsEndpoint>(
      config_.certificate, s.dtls_client ? crypto::DtlsRole::kClient : crypto::DtlsRole::kServer,
      fp);
  if (s.dtls_client) {
    s.dtls->start();
  }
  flush_dtls(s);
  auto t = s.dtls->timeout();
  s.dtls_deadline_ms = t ? now.mono_ms + static_cast<std::uint64_t>(t->count()) : 0;
}

void Engine::on_dtls(Session& s, PacketBuffer& pkt, const Now& now) {
  if (!s.dtls) {
    counters_.drop(Drop::kDtlsNotReady);
    return;
  }
  s.dtls->on_datagram(pkt.bytes());
  flush_dtls(s);
  auto timeout = s.dtls->timeout();
  s.dtls_deadline_ms = timeout ? now.mono_ms + static_cast<std::uint64_t>(timeout->count()) : 0;
  if (s.dtls->state() == crypto::DtlsState::kConnected && !s.connected()) {
    auto profile = s.dtls->srtp_profile();
    auto material = s.dtls->srtp_keying_material();
    std::optional<crypto::SrtpMasters> masters;
    if (profile && material) {
      masters = crypto::split_srtp_keying_material(*profile, *material, s.dtls_client);
    }
    if (masters) {
      s.srtp_in =
          crypto::SrtpSession::create(*profile, masters->remote, crypto::SrtpDirection::kInbound);
      s.srtp_out =
          crypto::SrtpSession::create(*profile, masters->local, crypto::SrtpDirection::kOutbound);
    }
    if (!s.srtp_in || !s.srtp_out) {
      s.srtp_in.reset();
      s.srtp_out.reset();
      s.failed = true;
      ++counters_.dtls_failed;
      emit(s, shm::SessionState::kFailed, now);
      return;
    }
    ++counters_.dtls_connected;
    ++counters_.sessions_connected;
    std::uint64_t elapsed = now.mono_ms - s.created_ms;
    counters_.connect_ms_sum += elapsed;
    std::size_t b = 0;
    while (b < kConnectBuckets.size() && elapsed > kConnectBuckets[b]) {
      ++b;
    }
    ++counters_.connect_ms[b];
    emit(s, shm::SessionState::kDtlsConnected, now);
    // Media sent before the keys were up was dropped: a subscriber needs a keyframe now, and a
    // publisher owes the keyframes requested while it was connecting.
    for (const auto& sub : s.subscriptions) {
      if (Session* p = find(sub.publisher)) {
        if (Track* t = p->track_by_key(sub.publisher_ssrc)) {
          request_keyframe(*p, layer_for(*p, *t, s, sub.ssrc), now);
        }
      }
    }
    for (auto& t : s.tracks) {
      if (t.keyframe_requested) {
        request_keyframe(s, t, now);
      }
    }
  } else if (s.dtls->state() == crypto::DtlsState::kFailed && !s.failed) {
    s.failed = true;
    ++counters_.dtls_failed;
    emit(s, shm::SessionState::kFailed, now);
  }
}

void Engine::flush_dtls(Session& s) {
  std::vector<std::uint8_t> datagram;
  while (s.dtls->pop(datagram)) {
    PacketBuffer pkt;
    auto id = out_.acquire(pkt);
    if (!id) {
      counters_.drop(Drop::kTxExhausted);
      continue;
    }
    if (!pkt.assign(datagram)) {
      out_.release(*id);
      continue;
    }
    out_.send(s.socket, s.remote, pkt, *id);
  }
}

void Engine::emit(const Session& s, shm::SessionState state, const Now& now) {
  shm::SessionEvent e{s.id, state, static_cast<std::uint32_t>(now.mono_ms - s.created_ms)};
  out_.event(shm::Event::kSessionEvent, shm::encode(e));
}

void Engine::on_timer(const Now& now) {
  now_us_ = now.us();
  if (!probing_.empty()) {
    pad_probes(now);
  }
  std::vector<Session*> expired;
  for (auto& [id, sp] : sessions_) {
    Session& s = *sp;
    if (s.dtls && s.dtls_deadline_ms != 0 && now.mono_ms >= s.dtls_deadline_ms) {
      s.dtls->on_timeout();
      flush_dtls(s);
      auto t = s.dtls->timeout();
      s.dtls_deadline_ms = t ? now.mono_ms + static_cast<std::uint64_t>(t->count()) : 0;
      if (s.dtls->state() == crypto::DtlsState::kFailed && !s.failed) {
        s.failed = true;
        ++counters_.dtls_failed;
        emit(s, shm::SessionState::kFailed, now);
      }
    }
    if (s.keyframe_owed && s.connected()) {
      s.keyframe_owed = false;  // set again by a request still inside its interval
      for (Track& t : s.tracks) {
        if (t.keyframe_requested && t.ssrc != 0) {
          request_keyframe(s, t, now);
        }
      }
    }
    if (s.has_remote && now.mono_ms - s.last_check_ms > config_.consent_timeout_ms) {
      ++counters_.consent_expired;
      expired.push_back(&s);
    } else if (!s.connected() && now.mono_ms - s.created_ms > config_.setup_timeout_ms) {
      ++counters_.connect_timeouts;
      expired.push_back(&s);
    }
  }
  for (Session* s : expired) {
    close(*s, true);
  }
  if (now.mono_ms >= next_report_ms_) {
    next_report_ms_ = now.mono_ms + config_.report_interval_ms;
    for (auto& [id, sp] : sessions_) {
      if (sp->connected() && !sp->tracks.empty()) {
        send_receiver_reports(*sp, now);
      }
    }
  }
  for (auto& [id, sp] : sessions_) {
    if (sp->connected() && sp->transport_cc_in != 0) {
      send_transport_feedback(*sp);
    }
  }
  if (now.mono_ms >= next_measure_ms_) {
    next_measure_ms_ = now.mono_ms + config_.measure_interval_ms;
    measure_layers(now);
  }
  if (now.mono_ms >= next_dynacast_ms_) {
    next_dynacast_ms_ = now.mono_ms + 1000;
    dynacast(now);
  }
  if (now.mono_ms >= next_levels_ms_) {
    next_levels_ms_ = now.mono_ms + config_.levels_interval_ms;
    report_levels();
  }
  if (now.mono_ms >= next_route_report_ms_) {
    next_route_report_ms_ = now.mono_ms + config_.route_report_interval_ms;
    report_routes(now);
  }
  if (now.mono_ms >= next_allocate_ms_) {
    next_allocate_ms_ = now.mono_ms + config_.allocate_interval_ms;
    for (auto& [id, sp] : sessions_) {
      if (!sp->subscriptions.empty()) {
        allocate(*sp, now);
      }
    }
  }
}

// Commands ---------------------------------------------------------------------------------

bool Engine::on_command(shm::Command type, std::span<const std::uint8_t> payload, const Now& now) {
  ++counters_.commands;
  bool ok = false;
  switch (type) {
    case shm::Command::kSessionCreate:
      if (auto m = shm::decode_session_create(payload))
        ok = create(*m, now);
      break;
    case shm::Command::kSessionRemote:
      if (auto m = shm::decode_session_remote(payload))
        ok = remote(*m, now);
      break;
    case shm::Command::kSessionIceRestart:
      if (auto m = shm::decode_session_ice_restart(payload))
        ok = ice_restart(*m);
      break;
    case shm::Command::kSessionClose:
      if (auto m = shm::decode_session_close(payload)) {
        if (Session* s = find(m->session)) {
          close(*s, false);
          ok = true;
        }
      }
      break;
    case shm::Command::kTrackAdd:
      if (auto m = shm::decode_track_add(payload))
        ok = add_track(*m);
      break;
    case shm::Command::kTrackRemove:
      if (auto m = shm::decode_track_remove(payload))
        ok = remove_track(*m);
      break;
    case shm::Command::kSubscribe:
      if (auto m = shm::decode_subscribe(payload))
        ok = subscribe(*m, now);
      break;
    case shm::Command::kUnsubscribe:
      if (auto m = shm::decode_unsubscribe(payload))
        ok = unsubscribe(*m);
      break;
    case shm::Command::kRouteLayer:
      if (auto m = shm::decode_route_layer(payload))
        ok = route_layer(*m, now);
      break;
    case shm::Command::kTrackPriority:
      if (auto m = shm::decode_track_priority(payload)) {
        Session* s = find(m->publisher);
        if (Track* t = s != nullptr ? s->track_by_key(m->ssrc) : nullptr) {
          t->priority = m->priority;
          ok = true;
        }
      }
      break;
    case shm::Command::kKeyframeRequest:
      if (auto m = shm::decode_keyframe_request(payload)) {
        // Every layer of a simulcast track: whoever asks may receive any of them.
        if (Session* s = find(m->publisher)) {
          for (auto& t : s->tracks) {
            if (t.key == m->ssrc) {
              request_keyframe(*s, t, now);
              ok = true;
            }
          }
        }
      }
      break;
    default:
      break;
  }
  if (!ok) {
    ++counters_.commands_refused;
  }
  return ok;
}

bool Engine::create(const shm::SessionCreate& c, const Now& now) {
  if (sessions_.count(c.session.value) != 0 || by_ufrag_.count(c.ice_ufrag) != 0 ||
      sessions_.size() >= config_.max_sessions) {
    return false;
  }
  auto s = std::make_unique<Session>();
  s->id = c.session;
  s->ufrag = c.ice_ufrag;
  s->pwd = c.ice_pwd;
  s->dtls_client = c.dtls_client;
  s->fingerprint = c.remote_fingerprint;
  s->fingerprint_known = std::any_of(c.remote_fingerprint.begin(), c.remote_fingerprint.end(),
                                     [](std::uint8_t b) { return b != 0; });
  s->created_ms = now.mono_ms;
  crypto::random_bytes(std::span(reinterpret_cast<std::uint8_t*>(&s->report_ssrc), 4));
  by_ufrag_[s->ufrag] = s.get();
  sessions_.emplace(c.session.value, std::move(s));
  ++counters_.sessions;
  return true;
}

bool Engine::remote(const shm::SessionRemote& r, const Now& now) {
  Session* s = find(r.session);
  if (s == nullptr || s->dtls) {
    return false;  // unknown, or the handshake already runs with the first fingerprint
  }
  s->dtls_client = r.dtls_client;
  s->fingerprint = r.remote_fingerprint;
  s->fingerprint_known = true;
  dtls_progress(*s, now);
  return true;
}

bool Engine::ice_restart(const shm::SessionIceRestart& r) {
  Session* s = find(r.session);
  if (s == nullptr || by_ufrag_.count(r.ice_ufrag) != 0) {
    return false;  // unknown session, or credentials some session (maybe this one) has
  }
  if (s->previous_ufrag.empty()) {
    s->previous_ufrag = std::exchange(s->ufrag, r.ice_ufrag);
    s->previous_pwd = std::exchange(s->pwd, r.ice_pwd);
  } else {
    // A restart of a restart nobody used yet: the client still checks with the credentials
    // before both, so those stay, and the unused ones go.
    by_ufrag_.erase(s->ufrag);
    s->ufrag = r.ice_ufrag;
    s->pwd = r.ice_pwd;
  }
  by_ufrag_[s->ufrag] = s;
  ++counters_.ice_restarts;
  return true;
}

bool Engine::add_track(const shm::TrackAdd& m) {
  constexpr std::size_t kMaxTracks = 24;  // per session, simulcast layers counted one by one
  Session* s = find(m.session);
  bool rtx = false;
  std::size_t layers = m.rids.empty() ? 1 : m.rids.size();
  bool simulcast = !m.rids.empty();
  if (s == nullptr || s->track_by_key(m.ssrc) != nullptr ||
      (!simulcast && s->track(m.ssrc, rtx) != nullptr) || s->tracks.size() + layers > kMaxTracks ||
      (simulcast && (m.kind != shm::MediaKind::kVideo || m.rid_extension == 0))) {
    return false;
  }
  if (m.rid_extension != 0) {
    s->rid_extension = m.rid_extension;
  }
  if (m.repaired_rid_extension != 0) {
    s->repaired_rid_extension = m.repaired_rid_extension;
  }
  if (m.transport_cc_extension != 0) {
    s->transport_cc_in = m.transport_cc_extension;
  }
  if (m.mid_extension != 0) {
    s->mid_extension = m.mid_extension;
  }
  if (m.audio_level_extension != 0 && m.kind == shm::MediaKind::kAudio) {
    s->audio_level_extension = m.audio_level_extension;
  }
  // Never both: a transport-cc publisher estimates on its own.
  s->remb = s->transport_cc_in == 0 && (s->remb || m.remb);
  for (std::size_t i = 0; i < layers; ++i) {
    Track t;
    t.key = m.ssrc;
    t.ssrc = simulcast ? 0 : m.ssrc;  // a layer's SSRC is learned from its RID (on_rtp)
    t.rtx_ssrc = simulcast ? 0 : m.rtx_ssrc;
    t.kind = m.kind;
    t.codec = m.codec;
    t.layer = static_cast<std::uint8_t>(i);
    t.layers = static_cast<std::uint8_t>(layers);
    t.rid = simulcast ? m.rids[i] : std::string();
    t.mid = m.mid;
    t.payload_type = m.payload_type;
    t.rtx_payload_type = m.rtx_payload_type;
    t.red_payload_type = m.kind == shm::MediaKind::kAudio ? m.red_payload_type : 0;
    t.clock_rate = m.clock_rate == 0 ? 90000 : m.clock_rate;
    if (t.kind == shm::MediaKind::kVideo) {
      t.token = next_token_++;
      t.cache = std::make_unique<RetransmitStore::Index>();
    }
    if (t.kind == shm::MediaKind::kVideo && t.codec == shm::Codec::kAv1 &&
        m.dependency_descriptor_extension != 0) {
      t.dependency_extension = m.dependency_descriptor_extension;
      t.dependency = std::make_unique<rtp::DependencyState>();
    }
    s->tracks.push_back(std::move(t));
  }
  ++counters_.tracks;
  return true;
}

// Drops the routes of a track and the subscribers' records of them.
static void drop_routes(Session& publisher, Track& t, Counters& counters) {
  for (auto& r : t.routes) {
    auto& subs = r.subscriber->subscriptions;
    std::erase_if(subs, [&](const Subscription& x) {
      return x.publisher == publisher.id && x.publisher_ssrc == t.key;
    });
    --counters.subscriptions;
  }
  t.routes.clear();
}

bool Engine::remove_track(const shm::TrackRemove& m) {
  Session* s = find(m.session);
  Track* head = s != nullptr ? s->track_by_key(m.ssrc) : nullptr;
  if (head == nullptr) {
    return false;
  }
  drop_routes(*s, *head, counters_);
  std::erase_if(s->tracks, [&](const Track& t) { return t.key == m.ssrc; });
  --counters_.tracks;
  return true;
}

bool Engine::subscribe(const shm::Subscribe& m, const Now& now) {
  Session* sub = find(m.subscriber);
  Session* pub = find(m.publisher);
  Track* t = pub != nullptr ? pub->track_by_key(m.publisher_ssrc) : nullptr;
  if (sub == nullptr || t == nullptr || sub == pub || sub->subscription(m.ssrc) != nullptr ||
      sub->subscriptions.size() >= 256) {
    return false;
  }
  if (m.transport_cc_extension != 0) {
    sub->transport_cc_out = m.transport_cc_extension;
    if (!sub->bwe) {
      sub->bwe = std::make_unique<BandwidthEstimator>();
    }
  }
  Route r;
  r.subscriber = sub;
  r.ssrc = m.ssrc;
  r.rtx_ssrc = m.rtx_ssrc;
  r.payload_type = m.payload_type;
  r.rtx_payload_type = m.rtx_payload_type;
  r.red_in = t->red_payload_type;
  r.opus_in = t->payload_type;
  r.red_out = t->red_payload_type != 0 ? m.red_payload_type : 0;
  r.extensions = m.extensions;
  if (t->layers > 1) {
    r.target = choose_layer(*pub, *t, r, estimate_bps(*sub), now);
  }
  t->routes.push_back(r);
  sub->subscriptions.push_back(Subscription{m.ssrc, m.rtx_ssrc, pub->id, t->key});
  ++counters_.subscriptions;
  // A new subscriber can decode nothing before the next keyframe.
  if (sub->connected() && t->kind == shm::MediaKind::kVideo) {
    request_keyframe(*pub, layer_for(*pub, *t, *sub, m.ssrc), now);
  }
  return true;
}

bool Engine::route_layer(const shm::RouteLayer& m, const Now& now) {
  Session* sub = find(m.subscriber);
  const Subscription* x = sub != nullptr ? sub->subscription(m.ssrc) : nullptr;
  Session* pub = x != nullptr ? find(x->publisher) : nullptr;
  Track* head = pub != nullptr ? pub->track_by_key(x->publisher_ssrc) : nullptr;
  Route* r = head != nullptr ? head->route(*sub, x->ssrc) : nullptr;
  if (r == nullptr) {
    return false;
  }
  // What the route gets now, in the layers the track has: a change of it below is the wish's.
  auto chosen = [&] {
    if (head->layers > 1) {
      return static_cast<int>(r->target) * 8 + r->temporal_target;
    }
    return std::min(r->spatial_target, head->svc_top_spatial) * 8 +
           std::min(r->temporal_target, head->svc_top_temporal);
  };
  int before = chosen();
  r->max_spatial = m.max_spatial;
  r->paused = m.paused;
  r->max_temporal = m.max_temporal;
  // A simulcast layer's temporal layers follow the wish alone; a single stream's layers are
  // allocated (and follow it until they are seen).
  r->temporal_target = m.max_temporal;
  if (head->layers <= 1) {
    r->spatial_target = m.max_spatial;
  }
  if (head->layers > 1 || head->svc_layered) {
    r->by_preference = true;
    allocate(*sub, now);
    r->by_preference = false;
    if (chosen() != before) {
      ++r->preference_changes;
      ++counters_.layer_preference;
    }
  }
  return true;
}

bool Engine::unsubscribe(const shm::Unsubscribe& m) {
  Session* sub = find(m.subscriber);
  const Subscription* x = sub != nullptr ? sub->subscription(m.ssrc) : nullptr;
  if (x == nullptr) {
    return false;
  }
  if (Session* pub = find(x->publisher)) {
    if (Track* t = pub->track_by_key(x->publisher_ssrc)) {
      // By the subscription's own SSRC: m.ssrc may name its RTX stream.
      std::erase_if(t->routes,
                    [&](const Route& r) { return r.subscriber == sub && r.ssrc == x->ssrc; });
    }
  }
  std::uint32_t ssrc = x->ssrc;
  std::erase_if(sub->subscriptions, [&](const Subscription& s) { return s.ssrc == ssrc; });
  --counters_.subscriptions;
  return true;
}

void Engine::close(Session& s, bool report) {
  // Routes to this session from the tracks it subscribes to, then routes of its own tracks.
  for (const auto& x : s.subscriptions) {
    if (Session* pub = find(x.publisher)) {
      if (Track* t = pub->track_by_key(x.publisher_ssrc)) {
        std::erase_if(t->routes, [&](const Route& r) { return r.subscriber == &s; });
      }
    }
    --counters_.subscriptions;
  }
  s.subscriptions.clear();
  for (auto& t : s.tracks) {
    drop_routes(s, t, counters_);
    if (t.layer == 0) {
      --counters_.tracks;
    }
  }
  if (s.dtls && s.dtls->state() == crypto::DtlsState::kConnected) {
    s.dtls->close();
    flush_dtls(s);
  }
  if (s.connected()) {
    --counters_.sessions_connected;
  }
  for (const auto& a : s.addresses) {
    if (auto it = by_address_.find(a); it != by_address_.end() && it->second == &s) {
      by_address_.erase(it);
    }
  }
  by_ufrag_.erase(s.ufrag);
  if (!s.previous_ufrag.empty()) {
    by_ufrag_.erase(s.previous_ufrag);
  }
  if (report) {
    Now now{};
    now.mono_ms = s.created_ms;  // elapsed 0: the event says closed, not when
    emit(s, shm::SessionState::kClosed, now);
  }
  --counters_.sessions;
  sessions_.erase(s.id.value);
}

}  // namespace ringlane::sfu
