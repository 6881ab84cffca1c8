// The answer to a publisher's offer (RFC 8829 §5.3.1): one codec and its rtx per m-section, the
// receive direction, our ICE-lite transport on every accepted section of the BUNDLE group.
#include <algorithm>
#include <string>
#include <vector>

#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "writer.hpp"

namespace ringlane::control::sdp {
namespace {

// The header extensions we take from publishers, per kind: the mid (RFC 8843, for BUNDLE
// demultiplexing), the audio level (RFC 6464) and the video orientation (3GPP TS 26.114).
bool answered_extension(const Extension& e, std::string_view kind) {
  // The publisher must be sending it (RFC 8285 §6): recvonly/inactive ones are not for us.
  if (!e.direction.empty() && e.direction != "sendrecv" && e.direction != "sendonly") {
    return false;
  }
  // RFC 8285 §4.2: ids 1-14 fit the one-byte header; larger ones need two-byte headers, which
  // need a=extmap-allow-mixed (RFC 8285 §6), not answered here.
  if (e.id > 14) {
    return false;
  }
  // The transport-wide sequence number: the SFU's feedback to it drives the publisher's own
  // bandwidth estimate.
  if (e.uri == kMidUri || e.uri == kTransportCcUri) {
    return true;
  }
  if (kind == "audio") {
    return e.uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
  }
  // The rids name simulcast layers (RFC 8853 §5.1, RFC 8852); the dependency descriptor AV1's
  // spatial and temporal layers (track_of keeps it for AV1 only).
  return e.uri == "urn:3gpp:video-orientation" || e.uri == kRidUri || e.uri == kRepairedRidUri ||
         e.uri == kDependencyDescriptorUri;
}

// RFC 8853 §5.1: the rids a simulcast section sends (alternatives "a,b" give their first, a
// paused "~a" counts), in the a=simulcast order; only those also declared by a=rid send.
std::vector<std::string> simulcast_rids(const Media& m) {
  std::vector<std::string> out;
  std::string_view v = m.simulcast;
  if (m.rids.empty() || v.substr(0, 5) != "send ") {
    return out;
  }
  v.remove_prefix(5);
  v = v.substr(0, v.find(' '));  // a "recv ..." part after it is not for us
  while (!v.empty() && out.size() < 3) {
    std::string_view stream = v.substr(0, v.find(';'));
    v.remove_prefix(std::min(v.size(), stream.size() + 1));
    std::string_view rid = stream.substr(0, stream.find(','));
    if (!rid.empty() && rid[0] == '~') {
      rid.remove_prefix(1);
    }
    if (std::find(m.rids.begin(), m.rids.end(), rid) != m.rids.end() &&
        std::find(out.begin(), out.end(), rid) == out.end()) {
      out.emplace_back(rid);
    }
  }
  return out;
}

struct Choice {
  const Codec* codec = nullptr;  // nullptr: the m-section is rejected
  const Codec* rtx = nullptr;
  const Codec* red = nullptr;  // audio: RFC 2198 redundancy of the chosen Opus
};

Choice choose(const Media& m) {
  Choice c;
  bool receivable =
      (m.kind == "audio" || m.kind == "video") && m.protocol.find("SAVP") != std::string::npos &&
      (m.direction == "sendonly" || m.direction == "sendrecv") && (m.port != 0 || m.bundle_only);
  if (!receivable) {
    return c;
  }
  // RFC 3264 §6.1: the offer lists formats by preference; take the first we forward.
  for (const Codec& codec : m.codecs) {
    if (writer::forwardable(codec, m.kind)) {
      c.codec = &codec;
      break;
    }
  }
  if (c.codec != nullptr && m.kind == "audio") {
    c.red = writer::red_for(m.codecs, c.codec->pt);
  }
  if (c.codec == nullptr || m.kind != "video") {
    return c;
  }
  for (const Codec& codec : m.codecs) {
    if (iequals(codec.name, "rtx") && codec.apt == c.codec->pt && codec.clock == c.codec->clock) {
      c.rtx = &codec;
      break;
    }
  }
  return c;
}

std::optional<PublishAnswer> fail(ParseError& error, std::size_t line, std::string reason) {
  error.line = line;
  error.reason = line == 0 ? std::move(reason) : "line " + std::to_string(line) + ": " + reason;
  return std::nullopt;
}

PublishedTrack track_of(const Media& m, const Choice& choice) {
  PublishedTrack t;
  t.mid = m.mid;
  t.kind = m.kind;
  t.codec = *choice.codec;
  t.codec.rtcp_fb.clear();
  // REMB (draft-alvestrand-rmcat-remb) only for a publisher that cannot use transport-cc (the
  // feedback or its extension missing): the SFU then sends it a receive-side estimate.
  const auto& offered_fb = choice.codec->rtcp_fb;
  bool twcc = std::find(offered_fb.begin(), offered_fb.end(), "transport-cc") != offered_fb.end() &&
              std::any_of(m.extensions.begin(), m.extensions.end(), [&](const Extension& e) {
                return e.uri == kTransportCcUri && answered_extension(e, m.kind);
              });
  for (const std::string& fb : choice.codec->rtcp_fb) {
    bool take = m.kind == "video" ? writer::forwarded_feedback(fb) || fb == "transport-cc" ||
                                        (fb == "goog-remb" && !twcc)
                                  : fb == "transport-cc";
    if (take &&
        std::find(t.codec.rtcp_fb.begin(), t.codec.rtcp_fb.end(), fb) == t.codec.rtcp_fb.end()) {
      t.codec.rtcp_fb.push_back(fb);
    }
  }
  if (choice.rtx != nullptr) {
    t.rtx_pt = choice.rtx->pt;
  }
  if (choice.red != nullptr) {
    t.red_pt = choice.red->pt;
  }
  // RFC 5576 §4.2, RFC 4588 §8: a=ssrc-group:FID <media> <retransmission>.
  for (const SsrcGroup& g : m.ssrc_groups) {
    if (g.semantics == "FID" && g.ssrcs.size() >= 2) {
      t.ssrc = g.ssrcs[0];
      t.rtx_ssrc = choice.rtx != nullptr ? g.ssrcs[1] : 0;
      break;
    }
  }
  if (t.ssrc == 0 && !m.ssrcs.empty()) {
    t.ssrc = m.ssrcs[0];
  }
  for (const Extension& e : m.extensions) {
    // The SFU reads the dependency descriptor of AV1 alone; other codecs' layers come from their
    // payload descriptors, which its drops keep consistent (a receiver would trust the DD).
    bool dd_ok = e.uri != kDependencyDescriptorUri || iequals(choice.codec->name, "AV1");
    if (answered_extension(e, m.kind) && dd_ok) {
      t.extensions.push_back(e);
    }
  }
  t.msid_stream = m.msid_stream;
  t.msid_track = m.msid_track;
  t.cname = m.cname;
  bool has_rid = std::any_of(t.extensions.begin(), t.extensions.end(),
                             [](const Extension& e) { return e.uri == kRidUri; });
  if (m.kind == "video" && has_rid) {
    t.rids = simulcast_rids(m);
  }
  return t;
}

void write_accepted(std::string& out, const Media& m, const PublishedTrack& t,
                    const LocalIce& local, const std::string& setup) {
  std::string pts = std::to_string(t.codec.pt);
  if (t.rtx_pt) {
    pts += " " + std::to_string(*t.rtx_pt);
  }
  if (t.red_pt) {
    // RED first: libwebrtc sends RED only when it comes before Opus in the answer.
    pts = std::to_string(*t.red_pt) + " " + pts;
  }
  // RFC 8829 §5.3.1: the answer's <proto> is the offer's.
  writer::line(out, {"m=", m.kind, " 9 ", m.protocol, " ", pts});
  writer::transport(out, local, setup);
  writer::line(out, {"a=mid:", m.mid});
  for (const Extension& e : t.extensions) {
    // RFC 8285 §6: what the offerer only sends, we only receive.
    std::string_view dir = e.direction == "sendonly" ? "/recvonly" : "";
    writer::line(out, {"a=extmap:", std::to_string(e.id), dir, " ", e.uri});
  }
  writer::line(out, {"a=recvonly"});
  writer::line(out, {"a=rtcp-mux"});
  if (m.rtcp_rsize) {
    writer::line(out, {"a=rtcp-rsize"});
  }
  writer::codec(out, t.codec, t.rtx_pt);
  if (t.red_pt) {
    writer::red_codec(out, *t.red_pt, t.codec.pt);
  }
  if (!t.rids.empty()) {
    // RFC 8853 §5.3: the answerer receives the streams the offerer sends.
    std::string list;
    for (const std::string& rid : t.rids) {
      writer::line(out, {"a=rid:", rid, " recv"});
      list += (list.empty() ? "" : ";") + rid;
    }
    writer::line(out, {"a=simulcast:recv ", list});
  }
  writer::candidates(out, local);
}

}  // namespace

std::optional<PublishAnswer> answer_publish(const Session& offer, const LocalIce& local,
                                            ParseError& error) {
  error = ParseError{};
  if (std::string why = writer::local_problem(local); !why.empty()) {
    return fail(error, 0, why);
  }
  std::vector<Choice> choices;
  std::size_t accepted = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const Media& m = offer.media[i];
    // RFC 8829 §5.2.1: every m-section of an offer has a mid, which the answer echoes.
    if (m.mid.empty()) {
      return fail(error, m.line, "the " + m.kind + " m-section has no a=mid");
    }
    choices.push_back(choose(m));
    if (choices.back().codec != nullptr && accepted++ == 0) {
      first = i;
    }
  }
  if (accepted == 0) {
    return fail(error, 0, "offer has no audio or video we can receive");
  }
  PublishAnswer answer;
  std::vector<std::string> setups(offer.media.size());
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const Media& m = offer.media[i];
    if (choices[i].codec == nullptr) {
      continue;
    }
    std::string why = writer::transport_problem(offer, i, accepted > 1, setups[i]);
    if (!why.empty()) {
      return fail(error, m.line, why);
    }
  }
  answer.remote_ufrag = offer.ufrag_of(first);
  answer.remote_pwd = offer.pwd_of(first);
  answer.remote_fingerprint = *sha256_fingerprint(offer.fingerprint_of(first));
  answer.remote_setup = setups[first] == "passive" ? "active" : "passive";

  std::string& out = answer.sdp;
  writer::session_head(out, writer::session_id(local.ufrag), offer.origin_version);
  std::string group;
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const std::string& mid = offer.media[i].mid;
    if (choices[i].codec != nullptr &&
        std::find(offer.bundle.begin(), offer.bundle.end(), mid) != offer.bundle.end()) {
      group += " " + mid;
    }
  }
  // RFC 8843 §7.3: the answer's group holds the accepted mids of the offered group.
  if (!group.empty()) {
    writer::line(out, {"a=group:BUNDLE", group});
  }
  std::string sections;
  bool dependency_descriptor = false;
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const Media& m = offer.media[i];
    if (choices[i].codec == nullptr) {
      writer::rejected(sections, m);
      continue;
    }
    answer.tracks.push_back(track_of(m, choices[i]));
    write_accepted(sections, m, answer.tracks.back(), local, setups[i]);
    dependency_descriptor =
        dependency_descriptor ||
        writer::has_extension(answer.tracks.back().extensions, kDependencyDescriptorUri);
  }
  // RFC 8285 §6: two-byte header elements allowed, which a keyframe's dependency descriptor
  // needs (libwebrtc sends none without it).
  if (offer.extmap_allow_mixed && dependency_descriptor) {
    writer::line(out, {"a=extmap-allow-mixed"});
  }
  out += sections;
  return answer;
}

}  // namespace ringlane::control::sdp
