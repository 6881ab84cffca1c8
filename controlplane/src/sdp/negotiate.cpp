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
  if (e.uri == "urn:ietf:params:rtp-hdrext:sdes:mid") {
    return true;
  }
  if (kind == "audio") {
    return e.uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
  }
  return e.uri == "urn:3gpp:video-orientation";
}

struct Choice {
  const Codec* codec = nullptr;  // nullptr: the m-section is rejected
  const Codec* rtx = nullptr;
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

std::string section_name(const Media& m) {
  return "the " + m.kind + " m-section (mid " + m.mid + ")";
}

// RFC 4145 §4.1 / RFC 5763 §5: the answerer takes the role the offer leaves it; no a=setup in
// the offer means the offerer is active.
std::optional<std::string> answer_setup(const std::string& offered) {
  if (offered.empty() || offered == "actpass" || offered == "active") {
    return "passive";
  }
  if (offered == "passive") {
    return "active";
  }
  return std::nullopt;  // holdconn
}

// An o= session id stable for one ICE session (RFC 8829 §5.2.1: up to 63 bits), from our ufrag.
std::string session_id_from(const std::string& ufrag) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (char c : ufrag) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  return std::to_string(h & 0x7fffffffffffffffull);
}

PublishedTrack track_of(const Media& m, const Choice& choice) {
  PublishedTrack t;
  t.mid = m.mid;
  t.kind = m.kind;
  t.codec = *choice.codec;
  t.codec.rtcp_fb.clear();
  if (m.kind == "video") {
    for (const std::string& fb : choice.codec->rtcp_fb) {
      if (writer::forwarded_feedback(fb) &&
          std::find(t.codec.rtcp_fb.begin(), t.codec.rtcp_fb.end(), fb) == t.codec.rtcp_fb.end()) {
        t.codec.rtcp_fb.push_back(fb);
      }
    }
  }
  if (choice.rtx != nullptr) {
    t.rtx_pt = choice.rtx->pt;
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
    if (answered_extension(e, m.kind)) {
      t.extensions.push_back(e);
    }
  }
  t.msid_stream = m.msid_stream;
  t.msid_track = m.msid_track;
  t.cname = m.cname;
  t.rids = m.rids;
  return t;
}

void write_accepted(std::string& out, const Media& m, const PublishedTrack& t,
                    const LocalIce& local, const std::string& setup) {
  std::string pts = std::to_string(t.codec.pt);
  if (t.rtx_pt) {
    pts += " " + std::to_string(*t.rtx_pt);
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
  writer::candidates(out, local);
}

void write_rejected(std::string& out, const Media& m) {
  // RFC 3264 §6 / RFC 8829 §5.3.1: port 0, the offer's first format, out of the BUNDLE group.
  std::string_view format = m.formats.empty() ? std::string_view("0") : m.formats.front();
  writer::line(out, {"m=", m.kind, " 0 ", m.protocol, " ", format});
  writer::line(out, {"c=IN IP4 0.0.0.0"});
  writer::line(out, {"a=mid:", m.mid});
  writer::line(out, {"a=inactive"});
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
    if (!m.rtcp_mux) {
      return fail(error, m.line,
                  section_name(m) +
                      " has no a=rtcp-mux; RTP and RTCP must share one port "
                      "(RFC 5761)");
    }
    if (offer.ufrag_of(i).empty() || offer.pwd_of(i).empty()) {
      return fail(error, m.line, section_name(m) + " has no a=ice-ufrag/a=ice-pwd (RFC 8839 §5.4)");
    }
    if (!sha256_fingerprint(offer.fingerprint_of(i))) {
      return fail(error, m.line,
                  section_name(m) + " has no sha-256 a=fingerprint (RFC 8122, RFC 8827)");
    }
    auto setup = answer_setup(offer.setup_of(i));
    if (!setup) {
      return fail(error, m.line, section_name(m) + ": a=setup:holdconn is not supported");
    }
    setups[i] = *setup;
    // RFC 8843: we receive everything on one transport, so every accepted section is bundled.
    if (accepted > 1 &&
        std::find(offer.bundle.begin(), offer.bundle.end(), m.mid) == offer.bundle.end()) {
      return fail(error, m.line,
                  section_name(m) +
                      " is not in the offer's a=group:BUNDLE; we receive all "
                      "media on one transport (RFC 8843)");
    }
  }
  answer.remote_ufrag = offer.ufrag_of(first);
  answer.remote_pwd = offer.pwd_of(first);
  answer.remote_fingerprint = *sha256_fingerprint(offer.fingerprint_of(first));
  answer.remote_setup = setups[first] == "passive" ? "active" : "passive";

  std::string& out = answer.sdp;
  writer::session_head(out, session_id_from(local.ufrag), offer.origin_version);
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
  for (std::size_t i = 0; i < offer.media.size(); ++i) {
    const Media& m = offer.media[i];
    if (choices[i].codec == nullptr) {
      write_rejected(out, m);
      continue;
    }
    answer.tracks.push_back(track_of(m, choices[i]));
    write_accepted(out, m, answer.tracks.back(), local, setups[i]);
  }
  return answer;
}

}  // namespace ringlane::control::sdp
