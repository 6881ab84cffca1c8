// The server's offers to subscribers and reading their answers. Subscribers see one fixed
// numbering of payload types and extension ids whoever published, so m-sections of different
// publishers agree within one BUNDLE group (RFC 8843 §9.1.1: a PT means one codec per transport).
#include <algorithm>
#include <string>
#include <vector>

#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "writer.hpp"

namespace ringlane::control::sdp {
namespace {

struct Numbering {
  std::string_view name;
  std::uint8_t pt;
  std::optional<std::uint8_t> rtx;
};

// Chromium's own numbers for these codecs, so a subscriber's answer reads like its offers. RED
// (RFC 2198) over Opus is kSubscriberRedPt (63), offered after Opus when the publisher sends it.
constexpr Numbering kNumbering[] = {
    {"opus", 111, std::nullopt}, {"VP8", 96, 97}, {"VP9", 98, 99},
    {"H264", 102, 103},          {"AV1", 45, 46},
};

const Numbering* numbering_of(std::string_view name) {
  for (const Numbering& n : kNumbering) {
    if (iequals(n.name, name)) {
      return &n;
    }
  }
  return nullptr;
}

std::optional<SubscribeAnswer> fail(ParseError& error, std::size_t line, std::string reason) {
  error.line = line;
  error.reason = line == 0 ? std::move(reason) : "line " + std::to_string(line) + ": " + reason;
  return std::nullopt;
}

// One sending m-section: in our offers (setup actpass) and in answers to viewers (the setup
// answer_setup() gives; reduced-size RTCP only when the viewer offered it).
void write_track(std::string& out, const OfferedTrack& t, const LocalIce& local,
                 std::string_view setup, bool rtcp_rsize) {
  std::string pts = std::to_string(t.codec.pt);
  if (t.rtx_pt) {
    pts += " " + std::to_string(*t.rtx_pt);
  }
  if (t.red_pt) {
    pts += " " + std::to_string(*t.red_pt);
  }
  writer::line(out, {"m=", t.kind, " 9 UDP/TLS/RTP/SAVPF ", pts});
  writer::transport(out, local, setup);
  writer::line(out, {"a=mid:", t.mid});
  for (const Extension& e : t.extensions) {
    writer::line(out, {"a=extmap:", std::to_string(e.id), " ", e.uri});
  }
  writer::line(out, {t.active ? "a=sendonly" : "a=inactive"});
  std::string stream = t.msid_stream.empty() ? "-" : t.msid_stream;
  std::string msid = t.msid_track.empty() ? stream : stream + " " + t.msid_track;
  if (t.active) {
    // RFC 8830 §2: the subscriber's MediaStream and track ids.
    writer::line(out, {"a=msid:", msid});
  }
  // RFC 5761: no separate RTCP port; RFC 5506: reduced-size RTCP.
  writer::line(out, {"a=rtcp-mux"});
  if (rtcp_rsize) {
    writer::line(out, {"a=rtcp-rsize"});
  }
  writer::codec(out, t.codec, t.rtx_pt);
  if (t.red_pt) {
    writer::red_codec(out, *t.red_pt, t.codec.pt);
  }
  if (t.active && t.ssrc != 0) {
    std::string cname = t.cname.empty() ? "ringlane" : t.cname;
    std::string ssrc = std::to_string(t.ssrc);
    bool rtx = t.rtx_pt && t.rtx_ssrc != 0;
    std::string rtx_ssrc = std::to_string(t.rtx_ssrc);
    if (rtx) {
      // RFC 5576 §4.2: FID groups a stream with its retransmissions (RFC 4588).
      writer::line(out, {"a=ssrc-group:FID ", ssrc, " ", rtx_ssrc});
    }
    writer::line(out, {"a=ssrc:", ssrc, " cname:", cname});
    writer::line(out, {"a=ssrc:", ssrc, " msid:", msid});
    if (rtx) {
      writer::line(out, {"a=ssrc:", rtx_ssrc, " cname:", cname});
      writer::line(out, {"a=ssrc:", rtx_ssrc, " msid:", msid});
    }
  }
  writer::candidates(out, local);
}

std::string_view param_or(std::string_view fmtp, std::string_view name, std::string_view absent) {
  auto v = fmtp_parameter(fmtp, name);
  return v ? *v : absent;
}

// Whether a viewer's offered format receives the stream we send as `sent` (same encoding and
// clock; the parameters that change the bitstream agree).
bool receives(const Codec& offered, const Codec& sent) {
  if (!iequals(offered.name, sent.name) || offered.clock != sent.clock) {
    return false;
  }
  if (iequals(sent.name, "opus")) {
    return offered.channels == 2;  // RFC 7587 §7: always opus/48000/2
  }
  if (iequals(sent.name, "VP9")) {
    // RFC 9628 §6: profile-id, 0 when absent.
    return param_or(offered.fmtp, "profile-id", "0") == param_or(sent.fmtp, "profile-id", "0");
  }
  if (iequals(sent.name, "AV1")) {
    // AV1 RTP payload format §7.2: profile, 0 when absent.
    return param_or(offered.fmtp, "profile", "0") == param_or(sent.fmtp, "profile", "0");
  }
  if (iequals(sent.name, "H264")) {
    // RFC 6184 §8.1: the packetization mode must agree (absent: 0), and so must profile_idc and
    // profile-iop, the first two bytes of profile-level-id (absent: 42000A); the level may not.
    std::string_view a = param_or(offered.fmtp, "profile-level-id", "42000a");
    std::string_view b = param_or(sent.fmtp, "profile-level-id", "42000a");
    return param_or(offered.fmtp, "packetization-mode", "0") ==
               param_or(sent.fmtp, "packetization-mode", "0") &&
           a.size() == 6 && b.size() == 6 && iequals(a.substr(0, 4), b.substr(0, 4));
  }
  return true;
}

bool receivable_section(const Media& m) {
  return (m.kind == "audio" || m.kind == "video") && m.protocol.find("SAVP") != std::string::npos &&
         (m.direction == "recvonly" || m.direction == "sendrecv") && (m.port != 0 || m.bundle_only);
}

// `track` renumbered as the viewer's offer numbers things in section `m` for `format`.
OfferedTrack as_answered(const OfferedTrack& track, const Media& m, const Codec& format) {
  OfferedTrack t = track;
  t.mid = m.mid;
  t.active = true;
  t.codec.pt = format.pt;
  t.codec.rtcp_fb.clear();
  for (const std::string& fb : format.rtcp_fb) {
    bool take = t.kind == "video" ? writer::forwarded_feedback(fb) || fb == "transport-cc"
                                  : fb == "transport-cc";
    if (take &&
        std::find(t.codec.rtcp_fb.begin(), t.codec.rtcp_fb.end(), fb) == t.codec.rtcp_fb.end()) {
      t.codec.rtcp_fb.push_back(fb);
    }
  }
  // RFC 4588 §8.1: the viewer's rtx format for this codec, if it offered one.
  t.rtx_pt.reset();
  if (track.rtx_pt && track.rtx_ssrc != 0) {
    for (const Codec& c : m.codecs) {
      if (iequals(c.name, "rtx") && c.apt == format.pt && c.clock == format.clock) {
        t.rtx_pt = c.pt;
        break;
      }
    }
  }
  if (!t.rtx_pt) {
    t.rtx_ssrc = 0;
  }
  // RFC 2198: RED when the viewer offers it over the Opus format it receives; else stripped.
  t.red_pt.reset();
  if (track.red_pt) {
    if (const Codec* red = writer::red_for(m.codecs, format.pt)) {
      t.red_pt = red->pt;
    }
  }
  // RFC 8285 §5-6: the viewer's ids (one-byte headers) for the extensions the track carries.
  t.extensions.clear();
  for (const Extension& e : track.extensions) {
    for (const Extension& o : m.extensions) {
      if (o.uri == e.uri && o.id >= 1 && o.id <= 14 &&
          (o.direction.empty() || o.direction == "sendrecv")) {
        t.extensions.push_back(Extension{o.id, o.uri, {}});
        break;
      }
    }
  }
  return t;
}

std::optional<ViewAnswer> fail_view(ParseError& error, std::size_t line, std::string reason) {
  error.line = line;
  error.reason = line == 0 ? std::move(reason) : "line " + std::to_string(line) + ": " + reason;
  return std::nullopt;
}

}  // namespace

std::string offer_subscribe(const std::vector<OfferedTrack>& tracks, const LocalIce& local,
                            std::uint64_t version, const std::string& session_id) {
  std::string out;
  writer::session_head(out, session_id, version);
  if (tracks.empty()) {
    return out;
  }
  // RFC 8843: one BUNDLE group with every mid. An inactive section keeps port 9 and stays in
  // the group (port 0 would remove it), so its mid can be reused when a publisher comes back.
  std::string group = "a=group:BUNDLE";
  std::string streams = "a=msid-semantic: WMS";
  std::vector<std::string_view> seen;
  for (const OfferedTrack& t : tracks) {
    group += " " + t.mid;
    if (t.active && !t.msid_stream.empty() && t.msid_stream != "-" &&
        std::find(seen.begin(), seen.end(), t.msid_stream) == seen.end()) {
      seen.push_back(t.msid_stream);
      streams += " " + t.msid_stream;
    }
  }
  writer::line(out, {group});
  writer::line(out, {streams});
  // RFC 8285 §6: a forwarded dependency descriptor may come in a two-byte header element.
  if (std::any_of(tracks.begin(), tracks.end(), [](const OfferedTrack& t) {
        return t.active && writer::has_extension(t.extensions, kDependencyDescriptorUri);
      })) {
    writer::line(out, {"a=extmap-allow-mixed"});
  }
  for (const OfferedTrack& t : tracks) {
    // RFC 5763 §5: the offerer says actpass; the subscriber picks (Chromium answers active).
    // Reduced-size RTCP on video only, as Chromium offers it.
    write_track(out, t, local, "actpass", t.kind == "video");
  }
  return out;
}

std::optional<Codec> subscriber_codec(const Codec& publisher) {
  const Numbering* n = numbering_of(publisher.name);
  bool audio = n != nullptr && n->pt == 111;
  if (n == nullptr || !writer::forwardable(publisher, audio ? "audio" : "video")) {
    return std::nullopt;
  }
  Codec c = publisher;
  c.pt = n->pt;
  c.apt.reset();
  c.rtcp_fb.clear();
  // transport-cc: the SFU numbers what it sends and estimates the subscriber's bandwidth from
  // the feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).
  if (!audio) {
    c.rtcp_fb = {"nack", "nack pli", "ccm fir", "transport-cc"};
  } else {
    c.rtcp_fb = {"transport-cc"};
  }
  return c;
}

std::optional<std::uint8_t> subscriber_rtx_pt(const std::string& codec_name) {
  const Numbering* n = numbering_of(codec_name);
  return n != nullptr ? n->rtx : std::nullopt;
}

std::optional<std::uint8_t> subscriber_extension_id(const std::string& uri) {
  // Chromium's default ids for these two.
  if (uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level") {
    return 1;
  }
  if (uri == "urn:3gpp:video-orientation") {
    return 13;
  }
  if (uri == kTransportCcUri) {
    return 3;
  }
  // Forwarded as the publisher wrote it (AV1 RTP payload format, Appendix A): Chromium's id.
  if (uri == kDependencyDescriptorUri) {
    return 12;
  }
  return std::nullopt;
}

std::optional<SubscribeAnswer> read_subscribe_answer(const Session& answer,
                                                     const std::vector<OfferedTrack>& offered,
                                                     ParseError& error) {
  error = ParseError{};
  // RFC 3264 §6: the answer has the offer's m-sections, in the offer's order.
  if (answer.media.size() != offered.size()) {
    return fail(error, 0,
                "the answer has " + std::to_string(answer.media.size()) +
                    " m-sections where the offer had " + std::to_string(offered.size()));
  }
  SubscribeAnswer out;
  std::size_t transport = answer.media.size();  // the first accepted; past the end: session's
  for (std::size_t i = 0; i < answer.media.size(); ++i) {
    const Media& m = answer.media[i];
    if (m.mid != offered[i].mid || m.kind != offered[i].kind) {
      return fail(error, m.line,
                  "m-section " + std::to_string(i + 1) + " is " + m.kind + " mid '" + m.mid +
                      "' where the offer had " + offered[i].kind + " mid '" + offered[i].mid + "'");
    }
    bool bundled =
        std::find(answer.bundle.begin(), answer.bundle.end(), m.mid) != answer.bundle.end();
    bool receiving = m.direction == "recvonly" || m.direction == "sendrecv";
    if (!receiving || (m.port == 0 && !bundled)) {
      continue;
    }
    if (transport == answer.media.size()) {
      transport = i;
    }
    out.accepted_mids.push_back(m.mid);
    // RFC 8285 §6: an answer keeps or drops the offered extensions, it does not add any.
    std::vector<Extension> kept;
    for (const Extension& e : m.extensions) {
      for (const Extension& o : offered[i].extensions) {
        if (o.uri == e.uri) {
          kept.push_back(e);
          break;
        }
      }
    }
    out.extensions.emplace_back(m.mid, std::move(kept));
    // RFC 3264 §6.1: an answer keeps the offer's PTs; RED stays if its format is still there.
    if (offered[i].red_pt) {
      const Codec* red = writer::red_for(m.codecs, offered[i].codec.pt);
      if (red != nullptr && red->pt == *offered[i].red_pt) {
        out.red_mids.push_back(m.mid);
      }
    }
  }
  if (transport == answer.media.size() && !answer.media.empty()) {
    transport = 0;
  }
  out.remote_ufrag = answer.ufrag_of(transport);
  out.remote_pwd = answer.pwd_of(transport);
  if (out.remote_ufrag.empty() || out.remote_pwd.empty()) {
    return fail(error, 0, "the answer has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)");
  }
  auto fingerprint = sha256_fingerprint(answer.fingerprint_of(transport));
  if (!fingerprint) {
    return fail(error, 0, "the answer has no sha-256 a=fingerprint (RFC 8122, RFC 8827)");
  }
  out.remote_fingerprint = *fingerprint;
  // RFC 5763 §5: to our actpass the answer must pick active or passive.
  out.remote_setup = answer.setup_of(transport);
  if (out.remote_setup != "active" && out.remote_setup != "passive") {
    return fail(error, 0,
                "the answer's a=setup is '" + out.remote_setup +
                    "'; an answer to actpass must say active or passive (RFC 5763 §5)");
  }
  return out;
}

std::optional<ViewAnswer> answer_subscribe(const Session& offer,
                                           const std::vector<OfferedTrack>& tracks,
                                           const LocalIce& local, ParseError& error) {
  error = ParseError{};
  if (std::string why = writer::local_problem(local); !why.empty()) {
    return fail_view(error, 0, why);
  }
  // Per offered section: the index of the track it sends, or tracks.size() (rejected).
  std::vector<std::size_t> chosen(offer.media.size(), tracks.size());
  std::vector<OfferedTrack> answered(offer.media.size());
  std::vector<bool> used(tracks.size(), false);
  std::size_t accepted = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const Media& m = offer.media[i];
    // RFC 8829 §5.2.1: every m-section of an offer has a mid, which the answer echoes.
    if (m.mid.empty()) {
      return fail_view(error, m.line, "the " + m.kind + " m-section has no a=mid");
    }
    if (!receivable_section(m)) {
      continue;
    }
    for (std::size_t j = 0; j < tracks.size() && chosen[i] == tracks.size(); ++j) {
      if (used[j] || tracks[j].kind != m.kind) {
        continue;
      }
      // RFC 3264 §6.1: the answer uses the offer's payload type for the format it sends.
      for (const Codec& c : m.codecs) {
        if (receives(c, tracks[j].codec)) {
          chosen[i] = j;
          used[j] = true;
          answered[i] = as_answered(tracks[j], m, c);
          break;
        }
      }
    }
    if (chosen[i] != tracks.size() && accepted++ == 0) {
      first = i;
    }
  }
  ViewAnswer answer;
  if (accepted == 0) {
    return answer;
  }
  std::vector<std::string> setups(offer.media.size());
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    if (chosen[i] == tracks.size()) {
      continue;
    }
    std::string why = writer::transport_problem(offer, i, accepted > 1, setups[i]);
    if (!why.empty()) {
      return fail_view(error, offer.media[i].line, why);
    }
  }
  answer.remote_ufrag = offer.ufrag_of(first);
  answer.remote_pwd = offer.pwd_of(first);
  answer.remote_fingerprint = *sha256_fingerprint(offer.fingerprint_of(first));
  answer.remote_setup = setups[first] == "passive" ? "active" : "passive";

  std::string& out = answer.sdp;
  writer::session_head(out, writer::session_id(local.ufrag), offer.origin_version);
  // RFC 8843 §7.3: the answer's group holds the accepted mids of the offered group.
  std::string group;
  std::string streams = "a=msid-semantic: WMS";
  std::vector<std::string_view> seen;
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    if (chosen[i] == tracks.size()) {
      continue;
    }
    const OfferedTrack& t = answered[i];
    if (std::find(offer.bundle.begin(), offer.bundle.end(), t.mid) != offer.bundle.end()) {
      group += " " + t.mid;
    }
    if (!t.msid_stream.empty() && t.msid_stream != "-" &&
        std::find(seen.begin(), seen.end(), t.msid_stream) == seen.end()) {
      seen.push_back(t.msid_stream);
      streams += " " + t.msid_stream;
    }
  }
  if (!group.empty()) {
    writer::line(out, {"a=group:BUNDLE", group});
  }
  writer::line(out, {streams});
  bool dependency_descriptor = false;
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    dependency_descriptor =
        dependency_descriptor ||
        (chosen[i] != tracks.size() &&
         writer::has_extension(answered[i].extensions, kDependencyDescriptorUri));
  }
  if (offer.extmap_allow_mixed && dependency_descriptor) {
    writer::line(out, {"a=extmap-allow-mixed"});
  }
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const Media& m = offer.media[i];
    if (chosen[i] == tracks.size()) {
      writer::rejected(out, m);
      continue;
    }
    // RFC 5506 §5: reduced-size RTCP only when the offer allows it.
    write_track(out, answered[i], local, setups[i], m.rtcp_rsize);
    answer.sent.emplace_back(chosen[i], answered[i]);
  }
  return answer;
}

}  // namespace ringlane::control::sdp
