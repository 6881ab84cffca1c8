// The SDP parser and the negotiation fed what a hostile signaling client can send as an offer or
// an answer. Every input is either refused with a message naming a line (or the whole text), or
// parsed into a session within the limits; whatever the server writes back from it must parse
// again and say what was meant.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "ringlane/controlplane/sdp/sdp.hpp"

namespace {

using namespace ringlane::control::sdp;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// The server's own text: no hostile limits needed, but it must parse.
Session reparse(const std::string& text) {
  Limits roomy;
  roomy.max_bytes = 1 << 20;
  roomy.max_lines = 100000;
  roomy.max_line = 1 << 20;
  ParseError e;
  auto s = parse(text, e, roomy);
  check(s.has_value());
  return *s;
}

void check_error(const ParseError& e, std::size_t lines) {
  check(!e.reason.empty() && e.line <= lines);
  if (e.line != 0) {
    std::string prefix = "line " + std::to_string(e.line) + ": ";
    check(e.reason.compare(0, prefix.size(), prefix) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::size_t lines = 1;
  for (char c : text) {
    lines += c == '\n' ? 1 : 0;
  }
  Limits limits;
  ParseError error;
  auto session = parse(text, error, limits);
  if (!session) {
    check_error(error, lines);
    return 0;
  }
  check(session->media.size() <= limits.max_media);
  for (const Media& m : session->media) {
    check(!m.formats.empty() && m.formats.size() <= limits.max_codecs);
    check(m.codecs.size() <= m.formats.size());
    check(m.ssrcs.size() <= limits.max_ssrcs);
    for (const Codec& c : m.codecs) {
      check(c.pt <= 127 && !c.name.empty() && c.clock != 0);
    }
    for (const Extension& e : m.extensions) {
      check(e.id != 0);
    }
  }

  LocalIce local;
  local.ufrag = "fuzzUfrag";
  local.pwd = "fuzzPasswordFuzzPassword";
  local.fingerprint =
      "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:A0:B1:C2:D3:E4:F5:06:17:28:39:4A:5B:6C:7D:"
      "8E:9F";
  local.candidates = {{"192.0.2.1", 3478}, {"2001:db8::1", 3478}};

  // The input as a publisher's offer: the answer parses, with one m-section per offered one.
  auto answer = answer_publish(*session, local, error);
  std::vector<OfferedTrack> offered;
  if (answer) {
    Session back = reparse(answer->sdp);
    check(back.media.size() == session->media.size());
    check(!answer->tracks.empty() && sha256_fingerprint("sha-256 " + answer->remote_fingerprint));
    for (const PublishedTrack& t : answer->tracks) {
      auto codec = subscriber_codec(t.codec);
      check(codec.has_value());  // only forwardable codecs are accepted
      OfferedTrack o;
      o.mid = std::to_string(offered.size());
      o.kind = t.kind;
      o.active = offered.size() % 2 == 0;
      o.codec = *codec;
      o.rtx_pt = t.rtx_pt ? subscriber_rtx_pt(t.codec.name) : std::nullopt;
      o.ssrc = t.ssrc;
      o.rtx_ssrc = t.rtx_ssrc;
      o.cname = t.cname;
      o.msid_stream = t.msid_stream;
      o.msid_track = t.msid_track;
      for (const Extension& e : t.extensions) {
        if (auto id = subscriber_extension_id(e.uri)) {
          o.extensions.push_back(Extension{*id, e.uri, ""});
        }
      }
      offered.push_back(o);
    }
    Session sub = reparse(offer_subscribe(offered, local, 1, "1"));
    check(sub.media.size() == offered.size() && sub.bundle.size() == offered.size());
  } else {
    check_error(error, lines);
  }

  // The input as a subscriber's answer, to an offer with its mids and kinds.
  std::vector<OfferedTrack> asked;
  for (const Media& m : session->media) {
    OfferedTrack o;
    o.mid = m.mid;
    o.kind = m.kind;
    o.extensions = m.extensions;
    asked.push_back(o);
  }
  if (auto sub = read_subscribe_answer(*session, asked, error)) {
    check(sub->remote_setup == "active" || sub->remote_setup == "passive");
    check(sub->accepted_mids.size() == sub->extensions.size());
  } else {
    check_error(error, lines);
  }

  // The input as a WHEP viewer's offer, answered with what the publisher path made of it (or a
  // fixed opus + VP8 pair): the answer parses, one m-section per offered one.
  if (offered.empty()) {
    for (const char* kind : {"audio", "video"}) {
      OfferedTrack o;
      o.mid = std::to_string(offered.size());
      o.kind = kind;
      Codec c;
      c.name = o.kind == "audio" ? "opus" : "VP8";
      c.clock = o.kind == "audio" ? 48000 : 90000;
      c.channels = o.kind == "audio" ? 2 : 0;
      o.codec = *subscriber_codec(c);
      o.ssrc = 1000 + static_cast<std::uint32_t>(offered.size());
      offered.push_back(o);
    }
  }
  if (auto view = answer_subscribe(*session, offered, local, error)) {
    check(view->sdp.empty() || reparse(view->sdp).media.size() == session->media.size());
  } else {
    check_error(error, lines);
  }
  // And as a trickle-ice-sdpfrag (RFC 8840) body.
  if (!parse_ice_fragment(text, error)) {
    check(!error.reason.empty());
  }
  return 0;
}
