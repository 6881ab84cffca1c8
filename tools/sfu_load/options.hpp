#pragma once
// sfu_load's command line.
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

namespace sfu_load {

struct Options {
  unsigned participants = 3;
  std::optional<unsigned> publishers;  // default: every participant
  double seconds = 10;                 // the measured window, media flowing
  double setup_timeout_s = 30;         // tokens, joins, ICE, DTLS and the first packets
  double drain_s = 0.5;                // receive after the senders stop
  double settle_s = 0.3;               // from every stream flowing to the window's start
  unsigned video_kbps = 1000;
  unsigned audio_bytes = 60;  // RTP payload of an audio packet (+ 12 header + 8 extension)
  unsigned packet_bytes = 1100;
  std::string room;
  std::string ws_url;     // ws://HOST:PORT/ws; from the token reply when not given
  std::string token_url;  // http://HOST:PORT/api/dev-token
  std::string jwt_secret;
  // WHIP (RFC 9725) / WHEP (draft-ietf-wish-whep) instead of the WebSocket for publishing /
  // playing: the endpoint URL ("{publisher}" in the WHEP URL becomes the identity a player
  // watches), with the participant's join token (or --bearer) as its Bearer token.
  std::string whip_url;
  std::string whep_url;
  std::string bearer;
  // Janus's VideoRoom over its HTTP API instead of ringlane's signaling: the API's base URL
  // (http://H:P/janus) and the numeric room to create (default: from the pid).
  std::string janus_url;
  std::uint64_t janus_room = 0;
  std::string json_out;
  std::string identity_prefix;
  std::string media_ip = "127.0.0.1";
  // Signaling from several 127.0.0.x source addresses, so that the server's per-address limits
  // (requests, joins and connections per second) do not pace a load of many participants.
  unsigned per_source = 16;
  // Simulcast as a browser sends it (RFC 8853): three VP8 encodings per publisher (rids q, h, f
  // at 1/16, 1/4 and all of --video-kbps) with a real VP8 payload descriptor in front of the
  // checked payload, mid/rid/transport-wide-cc header extensions, and subscribers that answer
  // with transport-cc feedback (so the server's estimator runs). Counted: the top layer.
  bool simulcast = false;
  // With --simulcast: every S seconds inside the window each subscriber asks (`layer`) for the
  // lowest or, the next time, the highest layer of every video it receives, and times the
  // switch to the first packet of the asked-for layer (the server switches at its keyframes).
  double switch_every_s = 0;
  bool quiet = false;
};

inline const char* usage() {
  return "usage: sfu_load (--token-url http://H:P/api/dev-token | --jwt-secret S --ws-url "
         "ws://H:P/ws)\n"
         "         [--participants N] [--publishers P] [--seconds S] [--video-kbps K]\n"
         "         [--room R] [--ws-url URL] [--json OUT] [--setup-timeout S] [--settle S] "
         "[--drain S]\n"
         "         [--audio-bytes B] [--packet-bytes B] [--identity-prefix X] [--media-ip IP]\n"
         "         [--per-source N] [--quiet]\n"
         "         [--simulcast [--switch-every S]]   (three VP8 layers, transport-cc)\n"
         "       sfu_load --whip URL [--whep URL] [--token-url U | --jwt-secret S | --bearer T] "
         "...\n"
         "       sfu_load --janus http://H:P/janus [--janus-room N] ...   (Janus VideoRoom)\n";
}

// nullopt after printing why (exit 2).
inline std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  auto number = [](const char* v, double lo, double hi, double& out) {
    char* end = nullptr;
    double d = std::strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= lo && d <= hi)) {
      return false;
    }
    out = d;
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (k == "--simulcast") {
      o.simulcast = true;
      continue;
    }
    if (k == "-h" || k == "--help") {
      std::fputs(usage(), stdout);
      return std::nullopt;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "sfu_load: %s needs a value\n%s", k.c_str(), usage());
      return std::nullopt;
    }
    const char* v = argv[++i];
    double d = 0;
    bool ok = true;
    if (k == "--participants") {
      ok = number(v, 1, 5000, d);
      o.participants = static_cast<unsigned>(d);
    } else if (k == "--publishers") {
      ok = number(v, 0, 5000, d);
      o.publishers = static_cast<unsigned>(d);
    } else if (k == "--seconds") {
      ok = number(v, 0.1, 3600, o.seconds);
    } else if (k == "--setup-timeout") {
      ok = number(v, 1, 600, o.setup_timeout_s);
    } else if (k == "--settle") {
      ok = number(v, 0, 60, o.settle_s);
    } else if (k == "--drain") {
      ok = number(v, 0, 10, o.drain_s);
    } else if (k == "--video-kbps") {
      ok = number(v, 0, 100000, d);
      o.video_kbps = static_cast<unsigned>(d);
    } else if (k == "--audio-bytes") {
      ok = number(v, 28, 1000, d);
      o.audio_bytes = static_cast<unsigned>(d);
    } else if (k == "--packet-bytes") {
      ok = number(v, 100, 1200, d);
      o.packet_bytes = static_cast<unsigned>(d);
    } else if (k == "--per-source") {
      ok = number(v, 1, 1000, d);
      o.per_source = static_cast<unsigned>(d);
    } else if (k == "--switch-every") {
      ok = number(v, 0.2, 600, o.switch_every_s);
    } else if (k == "--room") {
      o.room = v;
    } else if (k == "--ws-url") {
      o.ws_url = v;
    } else if (k == "--token-url") {
      o.token_url = v;
    } else if (k == "--jwt-secret") {
      o.jwt_secret = v;
    } else if (k == "--whip") {
      o.whip_url = v;
    } else if (k == "--whep") {
      o.whep_url = v;
    } else if (k == "--bearer") {
      o.bearer = v;
    } else if (k == "--janus") {
      o.janus_url = v;
    } else if (k == "--janus-room") {
      ok = number(v, 1, 1e15, d);
      o.janus_room = static_cast<std::uint64_t>(d);
    } else if (k == "--json") {
      o.json_out = v;
    } else if (k == "--identity-prefix") {
      o.identity_prefix = v;
    } else if (k == "--media-ip") {
      o.media_ip = v;
    } else {
      std::fprintf(stderr, "sfu_load: unknown option %s\n%s", k.c_str(), usage());
      return std::nullopt;
    }
    if (!ok) {
      std::fprintf(stderr, "sfu_load: bad value for %s\n", k.c_str());  // not echoed: secrets
      return std::nullopt;
    }
  }
  bool ws_needed = o.janus_url.empty() && (o.whip_url.empty() || o.whep_url.empty());
  if (!o.janus_url.empty() && (!o.whip_url.empty() || !o.whep_url.empty())) {
    std::fputs("sfu_load: --janus does not combine with --whip/--whep\n", stderr);
    return std::nullopt;
  }
  if (ws_needed && o.token_url.empty() && (o.jwt_secret.empty() || o.ws_url.empty())) {
    std::fputs(usage(), stderr);
    return std::nullopt;
  }
  if (o.publishers && *o.publishers > o.participants) {
    std::fputs("sfu_load: --publishers cannot exceed --participants\n", stderr);
    return std::nullopt;
  }
  if (o.simulcast && (!o.janus_url.empty() || !o.whip_url.empty() || !o.whep_url.empty())) {
    std::fputs("sfu_load: --simulcast is for ringlane's signaling\n", stderr);
    return std::nullopt;
  }
  if (o.switch_every_s > 0 && !o.simulcast) {
    std::fputs("sfu_load: --switch-every needs --simulcast\n", stderr);
    return std::nullopt;
  }
  if (o.janus_room == 0) {
    o.janus_room = 1000000 + static_cast<std::uint64_t>(getpid());
  }
  if (o.room.empty()) {
    o.room = "load-" + std::to_string(getpid());
  }
  if (o.identity_prefix.empty()) {
    o.identity_prefix = "load" + std::to_string(getpid()) + "-";
  }
  return o;
}

}  // namespace sfu_load
