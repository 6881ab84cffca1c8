// sfu_load: synthetic WebRTC participants for an SFU. N participants join one room of a ringlane
// node over its signaling WebSocket (controlplane/PROTOCOL.md), P of them publish Opus-like audio
// and VP8-like video (paced, a larger keyframe every 2 s, the marker on each frame's last
// packet), and every one subscribes to the others: it answers the server's offers, connects ICE
// (controlling, towards the server's ICE-lite host candidate) and DTLS-SRTP on both of its
// transports, and checks what arrives — payload integrity, sequence continuity per stream,
// end-to-end latency (CLOCK_MONOTONIC, same machine) and loss over the measured window.
// One thread: the WebSockets on an io_context polled from an epoll loop over the UDP sockets.
//
//   sfu_load --token-url http://127.0.0.1:H/api/dev-token --participants 11 --publishers 1
//            --seconds 10 [--video-kbps 1000] [--room R] [--json OUT]
//   sfu_load --janus http://127.0.0.1:H/janus ...   (the same load against Janus's VideoRoom)
//
// Prints "sfu_load: window start" and "sfu_load: window stop" (for a bench sampling the
// server), then one summary line; writes the JSON summary to --json. Exit 0 when every stream
// flowed and nothing arrived altered; 1 otherwise.
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <boost/asio/executor_work_guard.hpp>
#include <cstdio>
#include <fstream>
#include <unordered_map>

#include "ringlane/crypto/jwt.hpp"
#include "sfu_load/janus.hpp"
#include "sfu_load/options.hpp"
#include "sfu_load/participant.hpp"
#include "sfu_load/receiver.hpp"
#include "sfu_load/sdp_text.hpp"
#include "sfu_load/sender.hpp"
#include "sfu_load/summary.hpp"
#include "sfu_load/whip.hpp"

namespace sfu_load {
namespace {

std::uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string text_of(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

class Load {
 public:
  explicit Load(Options o)
      : o_(std::move(o)),
        work_(asio::make_work_guard(io_)),
        sender_(o_.video_kbps, o_.audio_bytes, o_.packet_bytes, o_.simulcast) {}
  int run();

 private:
  enum class Phase { kSetup, kWindow, kDrain, kDone };

  bool prepare();
  void fetch_token(Participant& p);
  void sign_token(Participant& p);
  void connect(Participant& p);
  void on_message(Participant& p, const json::object& m);
  void send_join(Participant& p);
  void on_publish_answer(Participant& p, const std::string& text);
  void on_offer(Participant& p, std::uint64_t seq, const std::string& text);
  std::string answer_offer(Participant& p, const std::string& text);
  void start_janus();
  void on_readable(std::uint64_t key, std::uint64_t now);
  void got_token(Participant& p);
  void post_whip(Participant& p);
  void post_whep(Participant& p);
  bool start_transport(Participant& p, Transport& t, const std::string& sdp_text, const char* what);
  bool steady() const;
  void open_window(std::uint64_t now);
  void close_window(std::uint64_t now);
  void leave_all();
  void on_track(Participant& p, const json::object& track);
  void send_feedback(Participant& p);
  void switch_layers(Participant& p, std::uint64_t now);
  int report();

  Options o_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<Participant>> people_;
  std::unordered_map<std::string, unsigned> by_identity_;
  int epoll_ = -1;
  Sender sender_;
  Phase phase_ = Phase::kSetup;
  std::uint64_t t0_ = 0;
  double cpu0_ = 0, cpu_start_ = 0, cpu_stop_ = 0;
  Receiver rx_;
  bool setup_complete_ = false;
  std::uint64_t next_feedback_ns_ = 0;
  std::unique_ptr<JanusVideoRoom> janus_;  // last: it refers to people_ and io_
};

bool Load::prepare() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  auto media_ip = ringlane::IpAddress::parse(o_.media_ip);
  if (epoll_ < 0 || !media_ip) {
    std::fprintf(stderr, "sfu_load: epoll or --media-ip unusable\n");
    return false;
  }
  std::string first_url = !o_.token_url.empty()   ? o_.token_url
                          : !o_.ws_url.empty()    ? o_.ws_url
                          : !o_.janus_url.empty() ? o_.janus_url
                                                  : o_.whip_url + o_.whep_url;
  auto http = parse_url(first_url);
  bool loopback = http && http->host.rfind("127.", 0) == 0;
  unsigned publishers = o_.publishers.value_or(o_.participants);
  rx_.simulcast = o_.simulcast;
  rx_.own_sequence_numbers = o_.simulcast;  // the server's numbering spans its layer switches
  for (unsigned i = 0; i < o_.participants; ++i) {
    auto p = std::make_unique<Participant>();
    p->index = i;
    p->identity = o_.identity_prefix + std::to_string(i);
    p->publishes = i < publishers;
    // Publishers go over WHIP when given one, players over WHEP (each watching one publisher);
    // everyone else joins over the WebSocket and receives every other publisher.
    p->whep = !p->publishes && !o_.whep_url.empty() && publishers > 0;
    p->via_ws = p->publishes ? o_.whip_url.empty() : !p->whep;
    p->janus = !o_.janus_url.empty();
    if (p->janus) {
      p->via_ws = false;  // Janus: everyone receives every other publisher, as over the WebSocket
      for (unsigned q = 0; q < publishers; ++q) {
        if (q != i) {
          p->sources.push_back(q);
        }
      }
    } else if (p->whep) {
      p->sources.push_back(i % publishers);
    } else if (p->via_ws) {
      for (unsigned q = 0; q < publishers; ++q) {
        if (q != i) {
          p->sources.push_back(q);
        }
      }
    }
    p->expected_streams = 2 * p->sources.size();
    p->source = loopback ? "127.0.0." + std::to_string(1 + (i / o_.per_source) % 254) : "";
    std::string error;
    p->cert = crypto::DtlsCertificate::generate(&error);
    if (!p->cert) {
      std::fprintf(stderr, "sfu_load: certificate: %s\n", error.c_str());
      return false;
    }
    // A browser's libraries are loaded and warm; the tool's first handshake should not be
    // slower than the rest for its own one-time costs.
    if (i == 0 && !crypto::DtlsEndpoint::warm_up(p->cert)) {
      std::fprintf(stderr, "sfu_load: a DTLS-SRTP handshake with itself failed\n");
      return false;
    }
    p->session_id = random_value<std::uint32_t>();
    for (int which = 0; which < 2; ++which) {
      // A WebSocket participant always has a subscriber transport: the server may offer it
      // tracks (of a WHIP publisher, say) that this run does not count on.
      if ((which == 0 && !p->publishes) ||
          (which == 1 && !p->via_ws && !p->whep && (!p->janus || p->sources.empty()))) {
        continue;
      }
      auto t = std::make_unique<Transport>(*media_ip, p->cert);
      if (t->fd() < 0) {
        std::perror("sfu_load: UDP socket");
        return false;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = (std::uint64_t{i} << 1) | static_cast<std::uint64_t>(which);
      epoll_ctl(epoll_, EPOLL_CTL_ADD, t->fd(), &ev);
      (which == 0 ? p->pub : p->sub) = std::move(t);
    }
    for (Outgoing* out : {&p->out[0], &p->out[1], &p->lower[0], &p->lower[1]}) {
      out->ssrc = random_value<std::uint32_t>();
      out->initial = random_value<std::uint16_t>();
      out->counter = out->initial;
      out->timestamp = random_value<std::uint32_t>();
    }
    p->twcc_seq = random_value<std::uint16_t>();
    p->feedback_ssrc = random_value<std::uint32_t>();
    by_identity_[p->identity] = i;
    people_.push_back(std::move(p));
  }
  return true;
}

void Load::fetch_token(Participant& p) {
  auto u = parse_url(o_.token_url);
  if (!u) {
    return p.fail("bad --token-url");
  }
  std::string target = u->target + (u->target.find('?') == std::string::npos ? "?" : "&") +
                       "room=" + url_escape(o_.room) + "&identity=" + url_escape(p.identity);
  auto req = std::make_shared<HttpRequest>(io_, p.source);
  Participant* pp = &p;
  req->run(*u, http::verb::get, target, "", "", "", std::chrono::seconds(5),
           [this, pp](int status, std::string body, std::string, std::string error) {
             if (status == 429) {
               pp->retry_token_ns = mono_ns() + 300'000'000;  // the API's per-address limit
               return;
             }
             boost::system::error_code ec;
             json::value v = json::parse(body, ec);
             if (status != 200 || ec || !v.is_object()) {
               return pp->fail("token: HTTP " + std::to_string(status) + " " + error);
             }
             pp->token = text_of(v.as_object(), "token");
             pp->ws_url = o_.ws_url.empty() ? text_of(v.as_object(), "ws_url") : o_.ws_url;
             got_token(*pp);
           });
}

void Load::sign_token(Participant& p) {
  auto now = static_cast<std::int64_t>(std::time(nullptr));
  json::object claims{{"sub", p.identity}, {"room", o_.room}, {"iat", now}, {"exp", now + 3600}};
  p.token = crypto::jws_sign_hs256(json::serialize(claims), o_.jwt_secret);
  p.ws_url = o_.ws_url;
  got_token(p);
}

void Load::got_token(Participant& p) {
  if (p.via_ws) {
    connect(p);
  }
  if (p.publishes && !o_.whip_url.empty()) {
    post_whip(p);
  }
  // WHEP players start once every publisher is connected (the tick loop).
}

void Load::post_whip(Participant& p) {
  LocalDescription l{p.pub->ufrag(), p.pub->pwd(), p.cert->fingerprint(), p.identity,
                     p.pub->local()};
  Participant* pp = &p;
  post_offer(io_, p.source, o_.whip_url, o_.bearer.empty() ? p.token : o_.bearer,
             publish_offer(l, p.out[0].ssrc, p.out[1].ssrc, p.session_id),
             {[this, pp](const std::string& answer, const std::string& resource) {
                pp->whip_location = resource;
                pp->joined_ns = mono_ns();
                pp->answered = start_transport(*pp, *pp->pub, answer, "WHIP answer");
              },
              [pp] { pp->fail("WHIP endpoint not ready"); },
              [pp](const std::string& why) { pp->fail(why); }});
}

void Load::post_whep(Participant& p) {
  std::string url = o_.whep_url;
  if (auto at = url.find("{publisher}"); at != std::string::npos) {
    url.replace(at, 11, url_escape(people_[p.sources.front()]->identity));
  }
  p.whep_posted = true;
  LocalDescription l{p.sub->ufrag(), p.sub->pwd(), p.cert->fingerprint(), p.identity,
                     p.sub->local()};
  Participant* pp = &p;
  post_offer(io_, p.source, url, o_.bearer.empty() ? p.token : o_.bearer,
             whep_offer(l, p.session_id + 1),
             {[this, pp](const std::string& answer, const std::string& resource) {
                pp->whep_location = resource;
                pp->joined_ns = mono_ns();
                start_transport(*pp, *pp->sub, answer, "WHEP answer");
              },
              [pp] {
                pp->whep_posted = false;
                pp->retry_whep_ns = mono_ns() + 300'000'000;
              },
              [pp](const std::string& why) { pp->fail(why); }});
}

// Host candidate, ICE credentials, fingerprint and DTLS role of a description the server wrote.
bool Load::start_transport(Participant& p, Transport& t, const std::string& text,
                           const char* what) {
  sdp::ParseError err;
  auto s = sdp::parse(text, err);
  if (!s || s->media.empty()) {
    p.fail(std::string(what) + ": " + err.reason);
    return false;
  }
  auto remote = host_candidate(*s, t.local().family());
  auto fp = sdp::sha256_fingerprint(s->fingerprint_of(0));
  if (!remote || !fp) {
    p.fail(std::string(what) + " without a host candidate or a sha-256 fingerprint");
    return false;
  }
  // RFC 5763 §5: an answer saying passive (or an offer's actpass, answered active) makes us the
  // DTLS client.
  t.start(*remote, s->ufrag_of(0), s->pwd_of(0), *fp, s->setup_of(0) != "active", mono_ns());
  if (&t == p.sub.get()) {
    for (const auto& o : streams_of(*s)) {
      auto who = by_identity_.find(o.publisher);
      if (who != by_identity_.end() && p.streams.count(o.ssrc) == 0) {
        ReceivedStream r;
        r.publisher = who->second;
        r.video = o.kind == "video";
        r.payload_type = o.payload_type;
        p.streams.emplace(o.ssrc, std::move(r));
      }
    }
  }
  return true;
}

void Load::connect(Participant& p) {
  auto u = parse_url(p.ws_url);
  if (!u || p.token.empty()) {
    return p.fail("no ws URL or token");
  }
  p.ws = std::make_shared<SignalSocket>(io_, p.source);
  Participant* pp = &p;
  p.ws->connect(
      *u, p.token, std::chrono::seconds(5),
      [this, pp](const json::object& m) { on_message(*pp, m); },
      [this, pp](const std::string& why) {
        pp->closed = true;
        if (phase_ != Phase::kDone && !pp->left) {
          pp->fail("signaling closed: " + why);
        }
      });
}

void Load::send_join(Participant& p) {
  p.ws->send(json::object{{"type", "join"}, {"id", 1}, {"room", o_.room}});
}

void Load::on_message(Participant& p, const json::object& m) {
  std::string type = text_of(m, "type");
  if (type == "welcome") {
    send_join(p);
  } else if (type == "joined") {
    p.joined_ns = mono_ns();
    if (const json::value* tracks = m.if_contains("tracks"); tracks && tracks->is_array()) {
      for (const auto& t : tracks->get_array()) {
        if (t.is_object()) {
          on_track(p, t.get_object());
        }
      }
    }
    if (p.publishes && o_.whip_url.empty()) {
      LocalDescription l{p.pub->ufrag(), p.pub->pwd(), p.cert->fingerprint(), p.identity,
                         p.pub->local()};
      std::string offer =
          publish_offer(l, p.out[0].ssrc, p.out[1].ssrc, p.session_id, o_.simulcast);
      p.ws->send(json::object{{"type", "publish"}, {"id", 2}, {"sdp", offer}});
    }
  } else if (type == "answer") {
    on_publish_answer(p, text_of(m, "sdp"));
  } else if (type == "offer") {
    const json::value* seq = m.if_contains("seq");
    if (seq == nullptr || !seq->is_number()) {
      return p.fail("offer without seq");
    }
    on_offer(p, seq->to_number<std::uint64_t>(), text_of(m, "sdp"));
  } else if (type == "track_published") {
    on_track(p, m);
  } else if (type == "left") {
    p.left = true;
  } else if (type == "error") {
    std::string code = text_of(m, "code");
    if (code == "rate_limited" && p.joined_ns == 0) {
      p.retry_join_ns = mono_ns() + 300'000'000;
      return;
    }
    if (phase_ != Phase::kDone) {
      p.fail("error " + code + ": " + text_of(m, "message"));
    }
  }
}

// A video track of one of the run's publishers (in `joined.tracks`, or `track_published`): what
// --switch-every asks layers of.
void Load::on_track(Participant& p, const json::object& track) {
  auto who = by_identity_.find(text_of(track, "participant"));
  if (o_.simulcast && text_of(track, "kind") == "video" && who != by_identity_.end() &&
      who->second != p.index) {
    p.video_tracks[text_of(track, "track")] = who->second;
  }
}

// Transport-cc feedback (RTPFB FMT=15) for what the subscriber transport received, every 100 ms as
// libwebrtc's default interval: the server's estimate for this subscriber is built on it.
void Load::send_feedback(Participant& p) {
  if (!p.twcc || !p.sub || !p.sub->connected()) {
    return;
  }
  TxBuffer b;
  for (int i = 0; i < 4 && p.twcc->pending(); ++i) {
    std::uint32_t media = p.streams.empty() ? 0 : p.streams.begin()->first;
    std::size_t n = p.twcc->build_feedback(
        std::span(b.data.data(), ringlane::sfu::TwccRecorder::kMaxFeedbackSize), p.feedback_ssrc,
        media);
    if (n == 0 || !p.sub->send_rtcp(b.data, n)) {
      return;
    }
    ++p.feedbacks_sent;
  }
}

// --switch-every: each video this subscriber receives goes to the lowest layer, or back to the
// highest, by a `layer` request; the switch is timed to the first packet of that layer
// (Receiver::on_layer). One unanswered for 5 s is counted as a timeout.
void Load::switch_layers(Participant& p, std::uint64_t now) {
  for (const auto& entry : p.video_tracks) {
    const std::string& track = entry.first;  // a named reference: the lambda below captures it
    unsigned publisher = entry.second;
    std::uint32_t ssrc = 0;
    for (const auto& [s, r] : p.streams) {
      ssrc = r.video && r.publisher == publisher ? s : ssrc;
    }
    auto w = std::find_if(p.switches.begin(), p.switches.end(),
                          [&](const LayerSwitch& x) { return x.track == track; });
    if (w == p.switches.end()) {
      w = p.switches.insert(p.switches.end(), LayerSwitch{track, ssrc});
    }
    w->ssrc = ssrc;
    if (w->asked_ns != 0 && now - w->asked_ns > 5'000'000'000ull) {
      ++p.switch_timeouts;
      w->asked_ns = 0;
    }
    if (w->asked_ns != 0 || w->current >= kLayers || ssrc == 0) {
      continue;
    }
    w->asked = w->current == 0 ? kLayers - 1 : 0;
    w->asked_ns = now;
    p.ws->send(json::object{{"type", "layer"}, {"id", 4}, {"track", track}, {"spatial", w->asked}});
  }
}

void Load::on_publish_answer(Participant& p, const std::string& text) {
  if (!p.pub) {
    return p.fail("an answer to a publish it did not send");
  }
  p.answered = start_transport(p, *p.pub, text, "publish answer");
}

void Load::on_offer(Participant& p, std::uint64_t seq, const std::string& text) {
  std::string answer = answer_offer(p, text);
  if (!answer.empty()) {
    p.ws->send(json::object{{"type", "answer"}, {"id", 3}, {"seq", seq}, {"sdp", answer}});
  }
}

// The answer to a subscriber offer ("" when it does not parse); the streams it offers by their
// cname, and the transport started on the first.
std::string Load::answer_offer(Participant& p, const std::string& text) {
  sdp::ParseError err;
  auto s = sdp::parse(text, err);
  if (!s) {
    p.fail("subscriber offer: " + err.reason);
    return {};
  }
  ++p.offers;
  LocalDescription l{p.sub->ufrag(), p.sub->pwd(), p.cert->fingerprint(), p.identity,
                     p.sub->local()};
  std::vector<OfferedStream> offered;
  std::string answer = subscribe_answer(*s, l, p.session_id + 1, ++p.sub_version, offered);
  for (const auto& o : offered) {
    auto who = by_identity_.find(o.publisher);
    if (who == by_identity_.end() || p.streams.count(o.ssrc) != 0) {
      continue;  // another client in the room, or a stream already known
    }
    ReceivedStream r;
    r.publisher = who->second;
    r.video = o.kind == "video";
    r.payload_type = o.payload_type;
    p.streams.emplace(o.ssrc, std::move(r));
  }
  if (o_.simulcast) {
    for (const auto& m : s->media) {
      for (const auto& e : m.extensions) {
        if (e.uri == sdp::kTransportCcUri) {
          p.twcc_id = static_cast<std::uint8_t>(e.id);
        }
      }
      for (const auto& g : m.ssrc_groups) {
        if (g.semantics == "FID" && g.ssrcs.size() == 2 &&
            std::find(p.rtx_ssrcs.begin(), p.rtx_ssrcs.end(), g.ssrcs[1]) == p.rtx_ssrcs.end()) {
          p.rtx_ssrcs.push_back(g.ssrcs[1]);
        }
      }
    }
    if (p.twcc_id != 0 && !p.twcc) {
      p.twcc = std::make_unique<ringlane::sfu::TwccRecorder>();
    }
  }
  if (s->media.empty() || p.sub->started()) {
    return answer;
  }
  // We answered setup:active: the DTLS client whatever the offer said.
  auto remote = host_candidate(*s, p.sub->local().family());
  auto fp = sdp::sha256_fingerprint(s->fingerprint_of(0));
  if (!remote || !fp) {
    p.fail("subscriber offer without a host candidate or a sha-256 fingerprint");
    return answer;
  }
  p.sub->start(*remote, s->ufrag_of(0), s->pwd_of(0), *fp, true, mono_ns());
  return answer;
}

void Load::start_janus() {
  auto u = parse_url(o_.janus_url);
  if (!u) {
    people_.front()->fail("bad --janus URL");
    return;
  }
  rx_.own_sequence_numbers = true;
  JanusHooks hooks{[this](Participant& p, const std::string& answer) {
                     p.joined_ns = mono_ns();
                     p.answered = start_transport(p, *p.pub, answer, "Janus answer");
                   },
                   [this](Participant& p, const std::string& offer) {
                     p.joined_ns = mono_ns();
                     return answer_offer(p, offer);
                   }};
  janus_ = std::make_unique<JanusVideoRoom>(io_, *u, o_.janus_room, people_, std::move(hooks));
  janus_->start();
}

void Load::on_readable(std::uint64_t key, std::uint64_t now) {
  Participant& p = *people_[key >> 1];
  Transport& t = (key & 1) == 0 ? *p.pub : *p.sub;  // registered only when it exists
  constexpr unsigned kBatch = 32;
  static std::array<std::array<std::uint8_t, 2048>, kBatch> bufs;
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_in6, kBatch> from{};
  for (;;) {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr = {};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(t.fd(), msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) {
      return;
    }
    now = mono_ns();
    for (int i = 0; i < n; ++i) {
      std::span<std::uint8_t> plain;
      auto got =
          t.on_datagram(bufs[i], msgs[i].msg_len, from[i], msgs[i].msg_hdr.msg_namelen, now, plain);
      if (got == Transport::Got::kRtp && (key & 1) == 1) {
        rx_.on_rtp(p, people_, plain, now);
      } else if (got == Transport::Got::kRtcp && (key & 1) == 0) {
        on_publisher_rtcp(p, plain);
      }
    }
    if (n < static_cast<int>(kBatch)) {
      return;
    }
  }
}

bool Load::steady() const {
  for (const auto& p : people_) {
    if ((p->joined_ns == 0 && (p->via_ws || p->publishes || p->whep || p->janus)) ||
        (p->publishes && !p->pub->connected()) || p->flowing_streams < p->expected_streams) {
      return false;
    }
  }
  return true;
}

void Load::open_window(std::uint64_t now) {
  rx_.window_start = now + 1;  // what this loop turn already sent (stamped `now`) is not in it
  // --switch-every: the subscribers' first requests spread over the first period.
  auto period = static_cast<std::uint64_t>(o_.switch_every_s * 1e9);
  for (auto& p : people_) {
    p->next_switch_ns = now + period * p->index / people_.size();
  }
  cpu_start_ = cpu_seconds();
  phase_ = Phase::kWindow;
  std::printf("sfu_load: window start (setup %.2f s)\n", static_cast<double>(now - t0_) / 1e9);
  std::fflush(stdout);
}

void Load::close_window(std::uint64_t now) {
  rx_.window_stop = now;
  cpu_stop_ = cpu_seconds();
  phase_ = Phase::kDrain;
  std::printf("sfu_load: window stop\n");
  std::fflush(stdout);
}

void Load::leave_all() {
  for (auto& p : people_) {
    if (p->ws && p->ws->is_open()) {
      // A requested leave ends the participant's media at once (a dropped connection would
      // keep it for the resume grace).
      p->ws->send(json::object{{"type", "leave"}, {"id", 9}});
    }
  }
  // RFC 9725 §4.3: a WHIP/WHEP session ends with a DELETE of its resource.
  unsigned deletes = 0;
  for (auto& p : people_) {
    for (const std::string* url : {&p->whip_location, &p->whep_location}) {
      deletes += delete_resource(io_, p->source, *url, o_.bearer.empty() ? p->token : o_.bearer,
                                 [&deletes] { --deletes; })
                     ? 1
                     : 0;
    }
  }
  bool janus_left = janus_ == nullptr;
  if (janus_) {
    janus_->leave([&janus_left] { janus_left = true; });
  }
  std::uint64_t until = mono_ns() + 2'000'000'000ull;
  auto all_left = [&] {
    if (!janus_left) {
      return false;
    }
    for (auto& p : people_) {
      if (p->ws && p->ws->is_open() && !p->left) {
        return false;
      }
    }
    return deletes == 0;
  };
  while (!all_left() && mono_ns() < until) {
    io_.run_for(std::chrono::milliseconds(5));
  }
  for (auto& p : people_) {
    if (p->ws) {
      p->ws->close();
    }
  }
  io_.run_for(std::chrono::milliseconds(100));
  for (auto& p : people_) {
    if (p->ws) {
      p->ws->detach();
    }
  }
  work_.reset();
  io_.run_for(std::chrono::milliseconds(100));
}

int Load::run() {
  t0_ = mono_ns();
  cpu0_ = cpu_seconds();
  if (!prepare()) {
    return 2;
  }
  if (!o_.janus_url.empty()) {
    start_janus();
  }
  for (auto& p : people_) {
    p->started_ns = t0_;
    if (p->janus) {
      continue;
    } else if (!o_.token_url.empty()) {
      fetch_token(*p);
    } else if (!o_.jwt_secret.empty()) {
      sign_token(*p);
    } else {
      got_token(*p);  // WHIP/WHEP with --bearer or without authorization
    }
  }
  std::uint64_t setup_deadline = t0_ + static_cast<std::uint64_t>(o_.setup_timeout_s * 1e9);
  std::uint64_t next_tick = 0;
  std::uint64_t steady_at = 0;
  std::array<epoll_event, 256> events{};
  while (phase_ != Phase::kDone) {
    io_.poll();
    std::uint64_t now = mono_ns();
    // Sleep until the next send is due (at most 2 ms: signaling is polled in between).
    std::uint64_t wake = now + 2'000'000;
    for (const auto& p : people_) {
      if (p->publishes && p->pub->connected() && phase_ < Phase::kDrain) {
        for (const auto& out : p->out) {
          if (out.next_ns != 0) {
            wake = std::min(wake, out.next_ns);
          }
        }
      }
    }
    timespec ts{0, static_cast<long>(wake > now ? wake - now : 0)};
    int n = epoll_pwait2(epoll_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
    now = mono_ns();
    for (int i = 0; i < n; ++i) {
      on_readable(events[i].data.u64, now);
    }
    now = mono_ns();
    if (now >= next_tick) {
      next_tick = now + 1'000'000;
      if (janus_) {
        janus_->tick(now);
        if (janus_->failed()) {
          for (auto& p : people_) {
            p->fail(janus_->error());
          }
        }
      }
      bool feedback = now >= next_feedback_ns_;
      next_feedback_ns_ = feedback ? now + 100'000'000 : next_feedback_ns_;
      bool switching = o_.switch_every_s > 0 && phase_ == Phase::kWindow;
      auto switch_ns = static_cast<std::uint64_t>(o_.switch_every_s * 1e9);
      for (auto& p : people_) {
        if (p->retry_token_ns != 0 && now >= p->retry_token_ns) {
          p->retry_token_ns = 0;
          fetch_token(*p);
        }
        if (p->retry_join_ns != 0 && now >= p->retry_join_ns) {
          p->retry_join_ns = 0;
          send_join(*p);
        }
        if (p->whep && !p->whep_posted && now >= p->retry_whep_ns &&
            (!p->token.empty() || (o_.token_url.empty() && o_.jwt_secret.empty())) &&
            people_[p->sources.front()]->pub->connected()) {
          post_whep(*p);
        }
        if (feedback) {
          send_feedback(*p);
        }
        if (switching && p->ws && p->sub && p->sub->connected() && now >= p->next_switch_ns) {
          p->next_switch_ns = now + switch_ns;
          switch_layers(*p, now);
        }
        for (Transport* t : {p->pub.get(), p->sub.get()}) {
          if (t != nullptr) {
            t->tick(now);
            if (t->failed()) {
              p->fail(t->error());
            }
          }
        }
      }
    }
    if (phase_ < Phase::kDrain) {
      for (auto& p : people_) {
        sender_.run(*p, now, phase_ == Phase::kWindow);
      }
    }
    if (phase_ == Phase::kSetup && steady_at == 0 && steady()) {
      steady_at = now;
    }
    // Once every stream flows, a short settle (late handshakes' keyframes, the server's stats
    // page, which is published every 100 ms) before the window opens.
    if (phase_ == Phase::kSetup &&
        ((steady_at != 0 && now >= steady_at + static_cast<std::uint64_t>(o_.settle_s * 1e9)) ||
         now >= setup_deadline)) {
      setup_complete_ = steady_at != 0;
      open_window(now);
    } else if (phase_ == Phase::kWindow &&
               now >= rx_.window_start + static_cast<std::uint64_t>(o_.seconds * 1e9)) {
      close_window(now);
    } else if (phase_ == Phase::kDrain &&
               now >= rx_.window_stop + static_cast<std::uint64_t>(o_.drain_s * 1e9)) {
      phase_ = Phase::kDone;
    }
  }
  leave_all();
  return report();
}

int Load::report() {
  std::uint64_t end = mono_ns();
  RunFacts f{o_, people_, rx_.latency};
  f.setup_s = static_cast<double>(rx_.window_start - t0_) / 1e9;
  f.window_s = static_cast<double>(rx_.window_stop - rx_.window_start) / 1e9;
  f.setup_complete = setup_complete_;
  f.cpu_window_s = cpu_stop_ - cpu_start_;
  f.cpu_total_s = cpu_seconds() - cpu0_;
  f.wall_total_s = static_cast<double>(end - t0_) / 1e9;
  f.integrity_failures = rx_.integrity_failures;
  return summarize(f);
}

}  // namespace
}  // namespace sfu_load

int main(int argc, char** argv) {
  auto o = sfu_load::parse_options(argc, argv);
  if (!o) {
    return 2;
  }
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  rlim_t want = 4ull * o->participants + 64;
  if (r.rlim_cur < want && want <= r.rlim_max) {
    r.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  sfu_load::Load load(*o);
  return load.run();
}
