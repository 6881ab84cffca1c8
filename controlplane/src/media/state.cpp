// The orchestrator's state as JSON in a file of its own (OrchestratorConfig::state_file), so that
// a control plane restarted while its data plane runs on (adopted) knows the rooms, sessions and
// tracks again and the clients that reconnect resume without renegotiating. The sessions
// themselves (keys, DTLS, 5-tuples) stay in the data plane; only what the control plane made up
// (ids, ICE credentials, SDP numbering) is kept here. Written whole to a temporary file and
// renamed, so a reader never sees half of it; mode 0600 (it holds ICE passwords).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "ringlane/common/log.hpp"
#include "ringlane/controlplane/media/orchestrator.hpp"

namespace ringlane::control::media {
namespace json = boost::json;

namespace {

json::object codec_json(const sdp::Codec& c) {
  json::object o;
  o["pt"] = c.pt;
  o["name"] = c.name;
  o["clock"] = c.clock;
  o["channels"] = c.channels;
  o["fmtp"] = c.fmtp;
  json::array fb;
  for (const auto& f : c.rtcp_fb) {
    fb.emplace_back(f);
  }
  o["rtcp_fb"] = std::move(fb);
  if (c.apt) {
    o["apt"] = *c.apt;
  }
  return o;
}

json::array extensions_json(const std::vector<sdp::Extension>& list) {
  json::array a;
  for (const auto& e : list) {
    json::object o;
    o["id"] = e.id;
    o["uri"] = e.uri;
    a.push_back(std::move(o));
  }
  return a;
}

// Readers: a field of the wrong type reads as its default (the file is ours, but may be old).
std::string str(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}
std::uint64_t num(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  if (v == nullptr) {
    return 0;
  }
  return v->is_uint64()  ? v->get_uint64()
         : v->is_int64() ? static_cast<std::uint64_t>(v->get_int64())
                         : 0;
}
bool flag(const json::object& o, std::string_view k) {
  const json::value* v = o.if_contains(k);
  return v != nullptr && v->is_bool() && v->get_bool();
}
const json::array& arr(const json::object& o, std::string_view k) {
  static const json::array kEmpty;
  const json::value* v = o.if_contains(k);
  return v != nullptr && v->is_array() ? v->get_array() : kEmpty;
}
const json::object& obj(const json::value& v) {
  static const json::object kEmpty;
  return v.is_object() ? v.get_object() : kEmpty;
}

sdp::Codec codec_from(const json::object& o) {
  sdp::Codec c;
  c.pt = static_cast<std::uint8_t>(num(o, "pt"));
  c.name = str(o, "name");
  c.clock = static_cast<std::uint32_t>(num(o, "clock"));
  c.channels = static_cast<std::uint8_t>(num(o, "channels"));
  c.fmtp = str(o, "fmtp");
  for (const auto& f : arr(o, "rtcp_fb")) {
    if (f.is_string()) {
      c.rtcp_fb.emplace_back(f.get_string());
    }
  }
  if (o.contains("apt")) {
    c.apt = static_cast<std::uint8_t>(num(o, "apt"));
  }
  return c;
}

std::vector<sdp::Extension> extensions_from(const json::array& a) {
  std::vector<sdp::Extension> out;
  for (const auto& v : a) {
    sdp::Extension e;
    e.id = static_cast<std::uint8_t>(num(obj(v), "id"));
    e.uri = str(obj(v), "uri");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

json::value Orchestrator::to_json() const {
  auto peer_json = [](const Peer& p) {
    json::object o;
    o["session"] = p.session;
    o["ufrag"] = p.ufrag;
    o["pwd"] = p.pwd;
    o["created"] = p.created;
    o["remote_set"] = p.remote_set;
    o["remote_ufrag"] = p.remote_ufrag;
    return o;
  };
  json::object rooms;
  for (const auto& [name, r] : rooms_) {
    json::object room;
    room["worker"] = r.worker;
    json::array members;
    for (const auto& [identity, p] : r.members) {
      json::object m;
      m["identity"] = identity;
      m["auto_subscribe"] = p.auto_subscribe;
      m["pub"] = peer_json(p.pub);
      m["sub"] = peer_json(p.sub);
      m["seq"] = p.seq;
      m["version"] = p.version;
      m["next_mid"] = p.next_mid;
      m["awaiting"] = p.awaiting;
      if (!p.resource.empty()) {
        m["resource"] = p.resource;
        m["viewer"] = p.viewer;
      }
      json::array tracks;
      for (const auto& t : p.tracks) {
        json::object o;
        o["id"] = t.id;
        o["muted"] = t.muted;
        o["mid"] = t.desc.mid;
        o["kind"] = t.desc.kind;
        o["codec"] = codec_json(t.desc.codec);
        if (t.desc.rtx_pt) {
          o["rtx_pt"] = *t.desc.rtx_pt;
        }
        if (t.desc.red_pt) {
          o["red_pt"] = *t.desc.red_pt;
        }
        o["ssrc"] = t.desc.ssrc;
        o["rtx_ssrc"] = t.desc.rtx_ssrc;
        o["extensions"] = extensions_json(t.desc.extensions);
        o["msid_stream"] = t.desc.msid_stream;
        o["msid_track"] = t.desc.msid_track;
        o["cname"] = t.desc.cname;
        json::array rids;
        for (const auto& rid : t.desc.rids) {
          rids.emplace_back(rid);
        }
        o["rids"] = std::move(rids);
        o["order"] = t.order;
        o["screen"] = t.screen;
        json::array sizes;
        for (const auto& size : t.sizes) {
          sizes.push_back(json::array{size.width, size.height});
        }
        o["sizes"] = std::move(sizes);
        tracks.push_back(std::move(o));
      }
      m["tracks"] = std::move(tracks);
      json::array out;
      for (const auto& t : p.out) {
        json::object o;
        o["publisher"] = t.publisher;
        o["track"] = t.track_id;
        o["routed"] = t.routed;
        o["mid"] = t.offered.mid;
        o["kind"] = t.offered.kind;
        o["active"] = t.offered.active;
        o["codec"] = codec_json(t.offered.codec);
        if (t.offered.rtx_pt) {
          o["rtx_pt"] = *t.offered.rtx_pt;
        }
        if (t.offered.red_pt) {
          o["red_pt"] = *t.offered.red_pt;
        }
        o["ssrc"] = t.offered.ssrc;
        o["rtx_ssrc"] = t.offered.rtx_ssrc;
        o["cname"] = t.offered.cname;
        o["msid_stream"] = t.offered.msid_stream;
        o["msid_track"] = t.offered.msid_track;
        o["extensions"] = extensions_json(t.offered.extensions);
        o["max_spatial"] = t.max_spatial;
        o["paused"] = t.paused;
        o["max_temporal"] = t.max_temporal;
        if (t.rendered) {
          o["render_width"] = t.render_width;
          o["render_height"] = t.render_height;
        }
        out.push_back(std::move(o));
      }
      m["out"] = std::move(out);
      members.push_back(std::move(m));
    }
    room["members"] = std::move(members);
    rooms[name] = std::move(room);
  }
  json::object top;
  top["version"] = 1;
  top["session_counter"] = session_counter_;
  top["publish_counter"] = publish_counter_;
  top["rooms"] = std::move(rooms);
  return top;
}

void Orchestrator::from_json(const json::value& v) {
  const json::object& top = obj(v);
  if (num(top, "version") != 1) {
    return;
  }
  session_counter_ = static_cast<std::uint32_t>(num(top, "session_counter"));
  publish_counter_ = num(top, "publish_counter");
  auto peer_from = [](const json::object& o) {
    Peer p;
    p.session = static_cast<std::uint32_t>(num(o, "session"));
    p.ufrag = str(o, "ufrag");
    p.pwd = str(o, "pwd");
    p.created = flag(o, "created");
    p.remote_set = flag(o, "remote_set");
    p.remote_ufrag = str(o, "remote_ufrag");
    return p;
  };
  const json::value* rooms = top.if_contains("rooms");
  if (rooms == nullptr || !rooms->is_object()) {
    return;
  }
  auto until = std::chrono::steady_clock::now() + config_.resume_grace;
  for (const auto& [name, rv] : rooms->get_object()) {
    const json::object& ro = obj(rv);
    Room& r = rooms_[std::string(name)];
    r.worker = static_cast<unsigned>(num(ro, "worker"));
    for (const auto& mv : arr(ro, "members")) {
      const json::object& m = obj(mv);
      Participant p;
      p.identity = str(m, "identity");
      p.auto_subscribe = flag(m, "auto_subscribe");
      p.pub = peer_from(obj(m.contains("pub") ? m.at("pub") : json::value()));
      p.sub = peer_from(obj(m.contains("sub") ? m.at("sub") : json::value()));
      p.seq = num(m, "seq");
      p.version = num(m, "version");
      p.next_mid = static_cast<unsigned>(num(m, "next_mid"));
      p.awaiting = flag(m, "awaiting");
      p.resource = str(m, "resource");
      p.viewer = flag(m, "viewer");
      for (const auto& tv : arr(m, "tracks")) {
        const json::object& t = obj(tv);
        PubTrack pt;
        pt.id = str(t, "id");
        pt.muted = flag(t, "muted");
        pt.desc.mid = str(t, "mid");
        pt.desc.kind = str(t, "kind");
        pt.desc.codec = codec_from(obj(t.contains("codec") ? t.at("codec") : json::value()));
        if (t.contains("rtx_pt")) {
          pt.desc.rtx_pt = static_cast<std::uint8_t>(num(t, "rtx_pt"));
        }
        if (t.contains("red_pt")) {
          pt.desc.red_pt = static_cast<std::uint8_t>(num(t, "red_pt"));
        }
        pt.desc.ssrc = static_cast<std::uint32_t>(num(t, "ssrc"));
        pt.desc.rtx_ssrc = static_cast<std::uint32_t>(num(t, "rtx_ssrc"));
        pt.desc.extensions = extensions_from(arr(t, "extensions"));
        pt.desc.msid_stream = str(t, "msid_stream");
        pt.desc.msid_track = str(t, "msid_track");
        pt.desc.cname = str(t, "cname");
        for (const auto& rid : arr(t, "rids")) {
          if (rid.is_string()) {
            pt.desc.rids.emplace_back(rid.get_string());
          }
        }
        pt.order = num(t, "order");
        pt.screen = flag(t, "screen");
        for (const auto& sv : arr(t, "sizes")) {
          // [width, height], as written: anything else is skipped.
          const json::array* wh = sv.if_array();
          auto pixels = [](const json::value& n) {
            return static_cast<std::uint32_t>(
                n.is_int64() ? std::clamp<std::int64_t>(n.get_int64(), 0, signaling::kMaxPixels)
                             : 0);
          };
          if (wh != nullptr && wh->size() == 2 && pt.sizes.size() < 3) {
            pt.sizes.push_back(signaling::LayerSize{pixels((*wh)[0]), pixels((*wh)[1])});
          }
        }
        p.tracks.push_back(std::move(pt));
      }
      for (const auto& ov : arr(m, "out")) {
        const json::object& t = obj(ov);
        OutTrack o;
        o.publisher = str(t, "publisher");
        o.track_id = str(t, "track");
        o.routed = flag(t, "routed");
        o.offered.mid = str(t, "mid");
        o.offered.kind = str(t, "kind");
        o.offered.active = flag(t, "active");
        o.offered.codec = codec_from(obj(t.contains("codec") ? t.at("codec") : json::value()));
        if (t.contains("rtx_pt")) {
          o.offered.rtx_pt = static_cast<std::uint8_t>(num(t, "rtx_pt"));
        }
        if (t.contains("red_pt")) {
          o.offered.red_pt = static_cast<std::uint8_t>(num(t, "red_pt"));
        }
        o.offered.ssrc = static_cast<std::uint32_t>(num(t, "ssrc"));
        o.offered.rtx_ssrc = static_cast<std::uint32_t>(num(t, "rtx_ssrc"));
        o.offered.cname = str(t, "cname");
        o.offered.msid_stream = str(t, "msid_stream");
        o.offered.msid_track = str(t, "msid_track");
        o.offered.extensions = extensions_from(arr(t, "extensions"));
        o.max_spatial = static_cast<std::uint8_t>(
            t.contains("max_spatial") ? std::min<std::uint64_t>(num(t, "max_spatial"), 2) : 2);
        o.paused = flag(t, "paused");
        if (t.contains("max_temporal")) {
          o.max_temporal = static_cast<std::uint8_t>(
              std::min<std::uint64_t>(num(t, "max_temporal"), shm::RouteLayer::kAllTemporal));
        }
        o.rendered = t.contains("render_width") && t.contains("render_height");
        if (o.rendered) {
          o.render_width = static_cast<std::uint32_t>(
              std::min<std::uint64_t>(num(t, "render_width"), signaling::kMaxPixels));
          o.render_height = static_cast<std::uint32_t>(
              std::min<std::uint64_t>(num(t, "render_height"), signaling::kMaxPixels));
        }
        p.out.push_back(std::move(o));
      }
      // Until its client reconnects. A WHIP/WHEP resource has no connection to come back: it
      // goes on until DELETE or its session's end.
      p.detached = p.resource.empty();
      p.detached_until = until;
      for (const Peer* peer : {&p.pub, &p.sub}) {
        if (peer->created) {
          sessions_[(std::uint64_t{r.worker} << 32) | peer->session] = {std::string(name),
                                                                        p.identity};
        }
      }
      std::string identity = p.identity;
      r.members[identity] = std::move(p);
      ++restored_;
    }
  }
}

std::size_t Orchestrator::restore() {
  if (config_.state_file.empty()) {
    return 0;
  }
  std::ifstream in(config_.state_file);
  if (!in) {
    return 0;
  }
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec) {
    spdlog::warn("media state {} unreadable ({}): starting without it", config_.state_file,
                 ec.message());
    return 0;
  }
  std::uint64_t before = restored_;
  from_json(v);
  return static_cast<std::size_t>(restored_ - before);
}

void Orchestrator::save() {
  if (!changed_ || config_.state_file.empty()) {
    return;
  }
  changed_ = false;
  std::string text = json::serialize(to_json());
  std::string tmp = config_.state_file + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return;
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), config_.state_file.c_str()) != 0) {
    ::unlink(tmp.c_str());
  }
}

}  // namespace ringlane::control::media
