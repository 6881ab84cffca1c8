#pragma once
// Janus's VideoRoom (janus.plugin.videoroom, Janus 1.x) as sfu_load's signaling, over the Janus
// HTTP API (https://janus.conf.meetecho.com/docs/rest.html): POST {base} creates a session, POST
// {base}/{session} attaches plugin handles, POST {base}/{session}/{handle} sends plugin messages
// (answered "ack"; the result, and any JSEP, arrives later as an event), GET
// {base}/{session}?maxev=N long-polls those events. One session carries every participant's
// handles (a publisher handle, a subscriber handle): the media, which is what is measured, is
// per handle, one PeerConnection each, exactly as over ringlane's signaling.
//
// Flow: create the room; every publisher joins as ptype publisher with its own feed id (index
// + 1) and publishes with the same offer it sends ringlane; once every publisher is connected,
// every receiving participant joins as ptype subscriber with one stream per feed it watches,
// answers Janus's offer and sends "start". Janus writes its own SSRCs, sequence numbers and
// timestamps (its RTP switching context), so the streams are found by the "attached" event's
// mid -> feed map, and continuity is counted from the payload's own counters.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sfu_load/participant.hpp"
#include "sfu_load/sdp_text.hpp"
#include "sfu_load/signaling.hpp"

namespace sfu_load {

inline std::string janus_text(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

inline std::uint64_t janus_number(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && (v->is_uint64() || v->is_int64()) ? v->to_number<std::uint64_t>() : 0;
}

inline const json::object* janus_object(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

// The plugin's reply inside a Janus message ("plugindata": {"data": {...}}), or nullptr.
inline const json::object* plugin_data(const json::object& o) {
  const json::object* pd = janus_object(o, "plugindata");
  return pd != nullptr ? janus_object(*pd, "data") : nullptr;
}

// The Janus API over its HTTP transport. Requests are queued (at most kInFlight at once, so a
// few hundred participants do not open a few hundred connections at once); the long poll runs
// beside them.
class JanusSession {
 public:
  using Reply = std::function<void(const json::object& reply, const std::string& error)>;
  using Events = std::function<void(const json::object& event)>;
  static constexpr unsigned kInFlight = 8;

  JanusSession(asio::io_context& io, Url base) : io_(io), base_(std::move(base)) {
    while (base_.target.size() > 1 && base_.target.back() == '/') {
      base_.target.pop_back();
    }
  }

  std::uint64_t id() const { return id_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  void create(std::function<void()> done) {
    post(base_.target, json::object{{"janus", "create"}},
         [this, done](const json::object& r, const std::string& error) {
           const json::object* data = janus_object(r, "data");
           id_ = data != nullptr ? janus_number(*data, "id") : 0;
           if (!error.empty() || id_ == 0) {
             return fail("create session: " + (error.empty() ? "no id" : error));
           }
           poll();
           done();
         });
  }

  void attach(std::function<void(std::uint64_t handle)> done, Events events) {
    post(session_target(), json::object{{"janus", "attach"}, {"plugin", "janus.plugin.videoroom"}},
         [this, done, events](const json::object& r, const std::string& error) {
           const json::object* data = janus_object(r, "data");
           std::uint64_t h = data != nullptr ? janus_number(*data, "id") : 0;
           if (!error.empty() || h == 0) {
             return fail("attach: " + (error.empty() ? "no handle id" : error));
           }
           handlers_[h] = events;
           done(h);
         });
  }

  void message(std::uint64_t handle, json::object body, const std::string& jsep_type,
               const std::string& sdp, Reply done) {
    json::object m{{"janus", "message"}, {"body", std::move(body)}};
    if (!jsep_type.empty()) {
      m["jsep"] = json::object{{"type", jsep_type}, {"sdp", sdp}};
    }
    post(session_target() + "/" + std::to_string(handle), std::move(m), std::move(done));
  }

  // The session lives while polled; an explicit keepalive as well, as the API asks of clients
  // that may go quiet.
  void keepalive() {
    if (id_ != 0 && !closed_) {
      post(session_target(), json::object{{"janus", "keepalive"}},
           [](const json::object&, const std::string&) {});
    }
  }

  // Ends the session (and every handle, PeerConnection and subscription in it).
  void destroy(std::function<void()> done) {
    if (id_ == 0 || closed_) {
      return done();
    }
    post(session_target(), json::object{{"janus", "destroy"}},
         [this, done](const json::object&, const std::string&) {
           closed_ = true;
           done();
         });
  }

 private:
  struct Pending {
    std::string target;
    std::string body;
    Reply done;
  };

  std::string session_target() const { return base_.target + "/" + std::to_string(id_); }

  void fail(std::string why) {
    if (error_.empty()) {
      error_ = "janus: " + why;
    }
  }

  void post(std::string target, json::object body, Reply done) {
    body["transaction"] = "t" + std::to_string(++transactions_);
    queue_.push_back({std::move(target), json::serialize(body), std::move(done)});
    next();
  }

  void next() {
    while (in_flight_ < kInFlight && !queue_.empty()) {
      Pending p = std::move(queue_.front());
      queue_.pop_front();
      ++in_flight_;
      auto req = std::make_shared<HttpRequest>(io_, "");
      req->run(base_, http::verb::post, p.target, "", "application/json", std::move(p.body),
               std::chrono::seconds(10),
               [this, done = std::move(p.done)](int status, std::string text, std::string,
                                                std::string error) {
                 --in_flight_;
                 boost::system::error_code ec;
                 json::value v = json::parse(text, ec);
                 if (status != 200 || ec || !v.is_object()) {
                   done(json::object{}, "HTTP " + std::to_string(status) + " " + error);
                 } else if (janus_text(v.as_object(), "janus") == "error") {
                   const json::object* e = janus_object(v.as_object(), "error");
                   done(v.as_object(), "error " + (e != nullptr ? janus_text(*e, "reason") : ""));
                 } else {
                   done(v.as_object(), {});
                 }
                 next();
               });
    }
  }

  void poll() {
    if (closed_) {
      return;
    }
    auto req = std::make_shared<HttpRequest>(io_, "");
    // Janus answers a long poll within 30 s (a keepalive when nothing happened).
    req->run(base_, http::verb::get, session_target() + "?maxev=64", "", "", "",
             std::chrono::seconds(45),
             [this](int status, std::string text, std::string, std::string error) {
               if (closed_) {
                 return;
               }
               boost::system::error_code ec;
               json::value v = json::parse(text, ec);
               if (status != 200 || ec) {
                 if (++poll_failures_ > 3) {
                   return fail("long poll: HTTP " + std::to_string(status) + " " + error);
                 }
               } else if (v.is_array()) {
                 for (const auto& e : v.as_array()) {
                   if (e.is_object()) {
                     dispatch(e.as_object());
                   }
                 }
               } else if (v.is_object()) {
                 dispatch(v.as_object());
               }
               poll();
             });
  }

  void dispatch(const json::object& e) {
    auto h = handlers_.find(janus_number(e, "sender"));
    if (h != handlers_.end() && h->second) {
      h->second(e);
    }
  }

  asio::io_context& io_;
  Url base_;
  std::uint64_t id_ = 0;
  std::uint64_t transactions_ = 0;
  unsigned in_flight_ = 0;
  unsigned poll_failures_ = 0;
  bool closed_ = false;
  std::deque<Pending> queue_;
  std::unordered_map<std::uint64_t, Events> handlers_;
  std::string error_;
};

// What the load does with the descriptions Janus sends.
struct JanusHooks {
  // A publisher's answer: start its transport.
  std::function<void(Participant&, const std::string& answer)> answered;
  // A subscriber offer: the answer to send back (the transport started).
  std::function<std::string(Participant&, const std::string& offer)> offered;
};

class JanusVideoRoom {
 public:
  static constexpr std::uint64_t kKeepaliveNs = 20'000'000'000ull;
  static constexpr std::uint64_t kNoSuchFeed = 428;  // JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED
  static constexpr unsigned kJoinRetries = 20;
  static constexpr std::uint64_t kJoinRetryNs = 250'000'000;

  JanusVideoRoom(asio::io_context& io, Url base, std::uint64_t room,
                 const std::vector<std::unique_ptr<Participant>>& people, JanusHooks hooks)
      : session_(io, std::move(base)), room_(room), people_(people), hooks_(std::move(hooks)) {}

  bool failed() const { return session_.failed(); }
  const std::string& error() const { return session_.error(); }

  // Session, the room, then every participant's handles; publishers join and publish at once.
  void start() {
    session_.create(
        [this] { session_.attach([this](std::uint64_t h) { create_room(h); }, nullptr); });
  }

  // Subscribers join once Janus has every publisher's PeerConnection up (before that a feed is
  // "No such feed"); keepalives.
  void tick(std::uint64_t now_ns) {
    now_ns_ = now_ns;
    if (next_keepalive_ns_ == 0 || now_ns >= next_keepalive_ns_) {
      if (next_keepalive_ns_ != 0) {
        session_.keepalive();
      }
      next_keepalive_ns_ = now_ns + kKeepaliveNs;
    }
    for (const auto& p : people_) {
      if (p->janus_retry_ns != 0 && now_ns >= p->janus_retry_ns) {
        p->janus_retry_ns = 0;
        subscribe(*p);
      }
    }
    if (!room_ready_ || all_subscribed_) {
      return;
    }
    for (const auto& p : people_) {
      if (p->publishes && (!p->pub->connected() || !p->janus_webrtcup)) {
        return;
      }
    }
    all_subscribed_ = true;
    for (const auto& p : people_) {
      if (!p->sources.empty() && !p->janus_subscribed) {
        if (p->janus_sub == 0) {
          all_subscribed_ = false;  // its handle is still being attached
        } else {
          p->janus_subscribed = true;
          subscribe(*p);
        }
      }
    }
  }

  // The room destroyed, then the session (Janus hangs up every PeerConnection in it).
  void leave(std::function<void()> done) {
    leaving_ = true;
    if (admin_ == 0) {
      return session_.destroy(done);
    }
    session_.message(
        admin_, json::object{{"request", "destroy"}, {"room", room_}}, "", "",
        [this, done](const json::object&, const std::string&) { session_.destroy(done); });
  }

 private:
  void create_room(std::uint64_t admin) {
    admin_ = admin;
    unsigned publishers = 0;
    for (const auto& p : people_) {
      publishers += p->publishes ? 1 : 0;
    }
    // No periodic keyframe requests (fir_freq 0) and no audio-level events: ringlane does
    // neither, and both servers see the same traffic. The REMB cap (bitrate) stays off.
    json::object create{
        {"request", "create"},       {"room", room_},           {"publishers", publishers + 1},
        {"audiocodec", "opus"},      {"videocodec", "vp8"},     {"fir_freq", 0},
        {"audiolevel_event", false}, {"notify_joining", false}, {"is_private", true}};
    session_.message(
        admin_, std::move(create), "", "", [this](const json::object& r, const std::string& error) {
          const json::object* d = plugin_data(r);
          if (!error.empty() || d == nullptr || janus_text(*d, "videoroom") != "created") {
            fail_all("create room: " + error + (d ? json::serialize(*d) : ""));
            return;
          }
          room_ready_ = true;
          for (const auto& p : people_) {
            attach(*p);
          }
        });
  }

  void fail_all(const std::string& why) {
    for (const auto& p : people_) {
      p->fail("janus: " + why);
    }
  }

  void attach(Participant& p) {
    Participant* pp = &p;
    if (p.publishes) {
      session_.attach(
          [this, pp](std::uint64_t h) {
            pp->janus_pub = h;
            json::object join{{"request", "join"},
                              {"ptype", "publisher"},
                              {"room", room_},
                              {"id", pp->index + 1},
                              {"display", pp->identity}};
            session_.message(h, std::move(join), "", "", checked(*pp, "publisher join"));
          },
          [this, pp](const json::object& e) { on_publisher_event(*pp, e); });
    }
    if (!p.sources.empty()) {
      session_.attach([pp](std::uint64_t h) { pp->janus_sub = h; },
                      [this, pp](const json::object& e) { on_subscriber_event(*pp, e); });
    }
  }

  JanusSession::Reply checked(Participant& p, const char* what) {
    Participant* pp = &p;
    return [pp, what](const json::object&, const std::string& error) {
      if (!error.empty()) {
        pp->fail(std::string("janus ") + what + ": " + error);
      }
    };
  }

  // Events of a handle: an error, a hangup, or the plugin's event with its JSEP.
  bool event_failed(Participant& p, const json::object& e, const char* what) {
    std::string type = janus_text(e, "janus");
    if (type == "hangup" && !leaving_) {
      p.fail(std::string("janus hung up the ") + what + ": " + janus_text(e, "reason"));
      return true;
    }
    const json::object* d = plugin_data(e);
    if (d != nullptr && d->if_contains("error_code") != nullptr) {
      p.fail(std::string("janus ") + what + ": " + janus_text(*d, "error"));
      return true;
    }
    return false;
  }

  static std::string jsep_of(const json::object& e, const char* type) {
    const json::object* j = janus_object(e, "jsep");
    return j != nullptr && janus_text(*j, "type") == type ? janus_text(*j, "sdp") : std::string();
  }

  void on_publisher_event(Participant& p, const json::object& e) {
    if (janus_text(e, "janus") == "webrtcup") {
      p.janus_webrtcup = true;
      return;
    }
    if (event_failed(p, e, "publisher")) {
      return;
    }
    const json::object* d = plugin_data(e);
    if (d != nullptr && janus_text(*d, "videoroom") == "joined" && !p.janus_published) {
      p.janus_published = true;
      LocalDescription l{p.pub->ufrag(), p.pub->pwd(), p.cert->fingerprint(), p.identity,
                         p.pub->local()};
      session_.message(p.janus_pub,
                       json::object{{"request", "publish"}, {"audio", true}, {"video", true}},
                       "offer", publish_offer(l, p.out[0].ssrc, p.out[1].ssrc, p.session_id),
                       checked(p, "publish"));
      return;
    }
    std::string answer = jsep_of(e, "answer");
    if (!answer.empty()) {
      hooks_.answered(p, answer);
    }
  }

  void subscribe(Participant& p) {
    json::array streams;
    for (unsigned source : p.sources) {
      streams.emplace_back(json::object{{"feed", people_[source]->index + 1}});
    }
    json::object join{{"request", "join"},
                      {"ptype", "subscriber"},
                      {"room", room_},
                      {"streams", std::move(streams)}};
    session_.message(p.janus_sub, std::move(join), "", "", checked(p, "subscriber join"));
  }

  void on_subscriber_event(Participant& p, const json::object& e) {
    const json::object* refused = plugin_data(e);
    if (refused != nullptr && janus_number(*refused, "error_code") == kNoSuchFeed &&
        ++p.janus_join_retries <= kJoinRetries) {
      p.janus_retry_ns = now_ns_ + kJoinRetryNs;  // a feed not set up in Janus yet
      return;
    }
    if (event_failed(p, e, "subscriber")) {
      return;
    }
    std::string offer = jsep_of(e, "offer");
    if (offer.empty()) {
      return;
    }
    const json::object* d = plugin_data(e);
    if (d != nullptr) {
      learn_streams(p, *d, offer);
    }
    std::string answer = hooks_.offered(p, offer);
    if (!answer.empty()) {
      session_.message(p.janus_sub, json::object{{"request", "start"}}, "answer", answer,
                       checked(p, "start"));
    }
  }

  // The "attached"/"updated" event lists its streams (mid, feed_id); the offer gives each mid
  // the SSRC Janus sends it with and the audio level extension's id.
  void learn_streams(Participant& p, const json::object& data, const std::string& offer) {
    const json::value* list = data.if_contains("streams");
    if (list == nullptr || !list->is_array()) {
      return;
    }
    std::unordered_map<std::string, std::uint64_t> feed_of_mid;
    for (const auto& s : list->as_array()) {
      if (s.is_object() && janus_number(s.as_object(), "feed_id") != 0) {
        feed_of_mid[janus_text(s.as_object(), "mid")] = janus_number(s.as_object(), "feed_id");
      }
    }
    sdp::ParseError err;
    auto parsed = sdp::parse(offer, err);
    if (!parsed) {
      return;
    }
    for (const auto& m : parsed->media) {
      auto f = feed_of_mid.find(m.mid);
      if (f == feed_of_mid.end() || f->second == 0 || f->second > people_.size() ||
          m.ssrcs.empty() || m.codecs.empty()) {
        continue;
      }
      std::uint32_t ssrc = m.ssrcs.front();
      for (const auto& g : m.ssrc_groups) {
        if (g.semantics == "FID" && !g.ssrcs.empty()) {
          ssrc = g.ssrcs.front();  // RFC 5576 §4.2: the first of an FID group is the primary
        }
      }
      if (p.streams.count(ssrc) != 0) {
        continue;
      }
      ReceivedStream r;
      r.publisher = static_cast<std::uint32_t>(f->second - 1);
      r.video = m.kind == "video";
      r.payload_type = m.codecs.front().pt;
      r.audio_level_id = 0;
      for (const auto& x : m.extensions) {
        if (x.uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level") {
          r.audio_level_id = x.id;
        }
      }
      p.streams.emplace(ssrc, std::move(r));
    }
  }

  JanusSession session_;
  std::uint64_t room_;
  const std::vector<std::unique_ptr<Participant>>& people_;
  JanusHooks hooks_;
  std::uint64_t admin_ = 0;
  std::uint64_t next_keepalive_ns_ = 0;
  std::uint64_t now_ns_ = 0;
  bool room_ready_ = false;
  bool all_subscribed_ = false;
  bool leaving_ = false;
};

}  // namespace sfu_load
