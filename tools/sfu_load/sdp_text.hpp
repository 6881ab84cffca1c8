#pragma once
// The SDP sfu_load writes, as a browser would (JSEP, RFC 8829): the publisher's offer (Opus and
// VP8 with a=ssrc lines, actpass, BUNDLE, rtcp-mux) and the subscriber's recvonly answer to the
// server's offer (setup active); and the host candidate read from the server's side.
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/common/endpoint.hpp"
#include "ringlane/controlplane/sdp/sdp.hpp"
#include "sfu_load/media.hpp"

namespace sfu_load {

namespace sdp = ringlane::control::sdp;

struct LocalDescription {
  std::string ufrag, pwd, fingerprint;  // fingerprint "AB:CD:..."
  std::string identity;
  ringlane::Endpoint candidate;  // our socket (ICE-lite servers learn it from the checks)
};

inline void sdp_line(std::string& out, std::string_view a, std::string_view b = {},
                     std::string_view c = {}) {
  out.append(a).append(b).append(c).append("\r\n");
}

inline void sdp_transport(std::string& out, const LocalDescription& l, std::string_view setup) {
  sdp_line(out, "c=IN IP4 0.0.0.0");
  sdp_line(out, "a=rtcp:9 IN IP4 0.0.0.0");
  sdp_line(out, "a=ice-ufrag:", l.ufrag);
  sdp_line(out, "a=ice-pwd:", l.pwd);
  sdp_line(out, "a=ice-options:trickle");
  sdp_line(out, "a=fingerprint:sha-256 ", l.fingerprint);
  sdp_line(out, "a=setup:", setup);
}

inline void sdp_candidate(std::string& out, const LocalDescription& l) {
  // RFC 8445 §5.1.2.1: host type preference 126, local preference 65535, component 1.
  sdp_line(out, "a=candidate:1 1 udp 2130706431 " + l.candidate.ip.to_string() + " " +
                    std::to_string(l.candidate.port) + " typ host");
  sdp_line(out, "a=end-of-candidates");
}

// simulcast: the video as three rid-named encodings (RFC 8853 §5.3: a=rid lines and
// a=simulcast, no a=ssrc: the server learns each encoding's SSRC from the rid extension, as
// Chromium sends it), with the mid, rid and transport-wide-cc extensions and transport-cc
// feedback on both sections.
inline std::string publish_offer(const LocalDescription& l, std::uint32_t audio_ssrc,
                                 std::uint32_t video_ssrc, std::uint64_t session_id,
                                 bool simulcast = false) {
  constexpr const char* kTwccUri =
      "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
  std::string out;
  std::string stream = l.identity;
  auto extmap = [&out](unsigned id, const char* uri) {
    sdp_line(out, "a=extmap:" + std::to_string(id) + " ", uri);
  };
  sdp_line(out, "v=0");
  sdp_line(out, "o=- " + std::to_string(session_id) + " 2 IN IP4 127.0.0.1");
  sdp_line(out, "s=-");
  sdp_line(out, "t=0 0");
  sdp_line(out, "a=group:BUNDLE 0 1");
  sdp_line(out, "a=msid-semantic: WMS ", stream);
  // Audio: Opus (RFC 7587), the audio level header extension (RFC 6464).
  sdp_line(out, "m=audio 9 UDP/TLS/RTP/SAVPF 111");
  sdp_transport(out, l, "actpass");
  sdp_line(out, "a=mid:0");
  extmap(kAudioLevelId, "urn:ietf:params:rtp-hdrext:ssrc-audio-level");
  if (simulcast) {
    extmap(kTwccId, kTwccUri);
    extmap(kMidId, "urn:ietf:params:rtp-hdrext:sdes:mid");
  }
  sdp_line(out, "a=sendonly");
  sdp_line(out, "a=msid:" + stream + " " + stream + "-audio");
  sdp_line(out, "a=rtcp-mux");
  sdp_line(out, "a=rtpmap:111 opus/48000/2");
  if (simulcast) {
    sdp_line(out, "a=rtcp-fb:111 transport-cc");
  }
  sdp_line(out, "a=fmtp:111 minptime=10;useinbandfec=1");
  std::string a = std::to_string(audio_ssrc);
  sdp_line(out, "a=ssrc:" + a + " cname:", l.identity);
  sdp_line(out, "a=ssrc:" + a + " msid:" + stream + " " + stream + "-audio");
  sdp_candidate(out, l);
  // Video: VP8 (RFC 7741) with NACK and PLI feedback (RFC 4585); simulcast with RTX (RFC 4588)
  // as browsers offer it (this publisher never retransmits: the server's RTX stream towards
  // its subscribers, which carries its probes, needs the format).
  sdp_line(out, simulcast ? "m=video 9 UDP/TLS/RTP/SAVPF 96 97" : "m=video 9 UDP/TLS/RTP/SAVPF 96");
  sdp_transport(out, l, "actpass");
  sdp_line(out, "a=mid:1");
  if (simulcast) {
    extmap(kTwccId, kTwccUri);
    extmap(kMidId, "urn:ietf:params:rtp-hdrext:sdes:mid");
    extmap(kRidId, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id");
    extmap(kRidId + 1, "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id");
  }
  sdp_line(out, "a=sendonly");
  sdp_line(out, "a=msid:" + stream + " " + stream + "-video");
  sdp_line(out, "a=rtcp-mux");
  sdp_line(out, "a=rtcp-rsize");
  sdp_line(out, "a=rtpmap:96 VP8/90000");
  sdp_line(out, "a=rtcp-fb:96 nack");
  sdp_line(out, "a=rtcp-fb:96 nack pli");
  sdp_line(out, "a=rtcp-fb:96 ccm fir");
  if (simulcast) {
    sdp_line(out, "a=rtcp-fb:96 transport-cc");
    sdp_line(out, "a=rtpmap:97 rtx/90000");
    sdp_line(out, "a=fmtp:97 apt=96");
    std::string order;
    for (unsigned i = 0; i < kLayers; ++i) {
      sdp_line(out, "a=rid:", kRids[i], " send");
      order += (i == 0 ? "" : ";") + std::string(kRids[i]);
    }
    sdp_line(out, "a=simulcast:send ", order);
  } else {
    std::string v = std::to_string(video_ssrc);
    sdp_line(out, "a=ssrc:" + v + " cname:", l.identity);
    sdp_line(out, "a=ssrc:" + v + " msid:" + stream + " " + stream + "-video");
  }
  sdp_candidate(out, l);
  return out;
}

// A track the server offers: its m-section's primary SSRC, from whom (cname = publisher).
struct OfferedStream {
  std::uint32_t ssrc = 0;
  std::string publisher;
  std::string kind;
  std::uint8_t payload_type = 0;
  bool active = false;
};

// The streams a description says it sends: each sending m-section's primary SSRC (the first of
// an FID group, RFC 5576 §4.2) with its cname, kind and first payload type.
inline std::vector<OfferedStream> streams_of(const sdp::Session& s) {
  std::vector<OfferedStream> out;
  for (const auto& m : s.media) {
    bool sending = m.direction == "sendonly" || m.direction == "sendrecv";
    if (!sending || m.ssrcs.empty() || m.codecs.empty()) {
      continue;
    }
    OfferedStream o;
    o.ssrc = m.ssrcs.front();
    for (const auto& g : m.ssrc_groups) {
      if (g.semantics == "FID" && !g.ssrcs.empty()) {
        o.ssrc = g.ssrcs.front();
      }
    }
    o.publisher = m.cname;
    o.kind = m.kind;
    o.payload_type = m.codecs.front().pt;
    o.active = true;
    out.push_back(std::move(o));
  }
  return out;
}

// The recvonly answer to a subscriber offer: every active m-section accepted with its first
// codec (and rtx when offered), its extensions kept, the DTLS client role taken (RFC 5763 §5).
inline std::string subscribe_answer(const sdp::Session& offer, const LocalDescription& l,
                                    std::uint64_t session_id, std::uint64_t version,
                                    std::vector<OfferedStream>& streams) {
  std::string out;
  sdp_line(out, "v=0");
  sdp_line(out, "o=- " + std::to_string(session_id) + " " + std::to_string(version) +
                    " IN IP4 127.0.0.1");
  sdp_line(out, "s=-");
  sdp_line(out, "t=0 0");
  std::string group = "a=group:BUNDLE";
  for (const auto& m : offer.media) {
    group += " " + m.mid;
  }
  if (!offer.media.empty()) {
    sdp_line(out, group);
  }
  sdp_line(out, "a=msid-semantic: WMS");
  streams.clear();
  for (const auto& m : offer.media) {
    bool active = m.direction == "sendonly" || m.direction == "sendrecv";
    const sdp::Codec* codec = m.codecs.empty() ? nullptr : &m.codecs.front();
    const sdp::Codec* rtx = nullptr;
    for (const auto& c : m.codecs) {
      if (codec != nullptr && sdp::iequals(c.name, "rtx") && c.apt == codec->pt) {
        rtx = &c;
      }
    }
    std::string pts = codec ? std::to_string(codec->pt) : (m.formats.empty() ? "0" : m.formats[0]);
    if (rtx != nullptr) {
      pts += " " + std::to_string(rtx->pt);
    }
    sdp_line(out, "m=" + m.kind + " 9 " + m.protocol + " " + pts);
    sdp_transport(out, l, "active");
    sdp_line(out, "a=mid:", m.mid);
    for (const auto& e : m.extensions) {
      sdp_line(out, "a=extmap:" + std::to_string(e.id) + " " + e.uri);
    }
    sdp_line(out, active ? "a=recvonly" : "a=inactive");
    sdp_line(out, "a=rtcp-mux");
    if (m.rtcp_rsize) {
      sdp_line(out, "a=rtcp-rsize");
    }
    if (codec != nullptr) {
      std::string map = codec->name + "/" + std::to_string(codec->clock);
      if (codec->channels != 0) {
        map += "/" + std::to_string(codec->channels);
      }
      sdp_line(out, "a=rtpmap:" + std::to_string(codec->pt) + " " + map);
      for (const auto& fb : codec->rtcp_fb) {
        sdp_line(out, "a=rtcp-fb:" + std::to_string(codec->pt) + " " + fb);
      }
      if (!codec->fmtp.empty()) {
        sdp_line(out, "a=fmtp:" + std::to_string(codec->pt) + " " + codec->fmtp);
      }
    }
    if (rtx != nullptr) {
      sdp_line(out, "a=rtpmap:" + std::to_string(rtx->pt) + " rtx/" + std::to_string(rtx->clock));
      sdp_line(out, "a=fmtp:" + std::to_string(rtx->pt) + " apt=" + std::to_string(codec->pt));
    }
  }
  streams = streams_of(offer);
  return out;
}

// A WHEP player's offer (draft-ietf-wish-whep §4.1): one audio and one video m-section to
// receive, the codecs sfu_load's publishers send, actpass.
inline std::string whep_offer(const LocalDescription& l, std::uint64_t session_id) {
  std::string out;
  sdp_line(out, "v=0");
  sdp_line(out, "o=- " + std::to_string(session_id) + " 2 IN IP4 127.0.0.1");
  sdp_line(out, "s=-");
  sdp_line(out, "t=0 0");
  sdp_line(out, "a=group:BUNDLE 0 1");
  sdp_line(out, "a=msid-semantic: WMS");
  sdp_line(out, "m=audio 9 UDP/TLS/RTP/SAVPF 111");
  sdp_transport(out, l, "actpass");
  sdp_line(out, "a=mid:0");
  sdp_line(out, "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level");
  sdp_line(out, "a=recvonly");
  sdp_line(out, "a=rtcp-mux");
  sdp_line(out, "a=rtpmap:111 opus/48000/2");
  sdp_line(out, "a=fmtp:111 minptime=10;useinbandfec=1");
  sdp_candidate(out, l);
  sdp_line(out, "m=video 9 UDP/TLS/RTP/SAVPF 96");
  sdp_transport(out, l, "actpass");
  sdp_line(out, "a=mid:1");
  sdp_line(out, "a=recvonly");
  sdp_line(out, "a=rtcp-mux");
  sdp_line(out, "a=rtcp-rsize");
  sdp_line(out, "a=rtpmap:96 VP8/90000");
  sdp_line(out, "a=rtcp-fb:96 nack");
  sdp_line(out, "a=rtcp-fb:96 nack pli");
  sdp_line(out, "a=rtcp-fb:96 ccm fir");
  sdp_candidate(out, l);
  return out;
}

// The first UDP host candidate of the family `want` in a description ("foundation component
// transport priority address port typ host ...", RFC 8839 §5.1).
inline std::optional<ringlane::Endpoint> host_candidate(const sdp::Session& s,
                                                        ringlane::Family want) {
  for (const auto& m : s.media) {
    for (const auto& c : m.candidates) {
      std::vector<std::string_view> f;
      std::string_view rest = c;
      while (!rest.empty() && f.size() < 8) {
        auto sp = rest.find(' ');
        f.push_back(rest.substr(0, sp));
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
      }
      if (f.size() < 8 || !sdp::iequals(f[2], "udp") || f[6] != "typ" || f[7] != "host") {
        continue;
      }
      auto ip = ringlane::IpAddress::parse(f[4]);
      unsigned port = 0;
      auto [p, ec] = std::from_chars(f[5].data(), f[5].data() + f[5].size(), port);
      if (ip && ip->family == want && ec == std::errc() && port > 0 && port < 65536) {
        return ringlane::Endpoint{*ip, static_cast<std::uint16_t>(port)};
      }
    }
  }
  return std::nullopt;
}

}  // namespace sfu_load
