#pragma once
// SDP (RFC 8866) as WebRTC endpoints write it (JSEP, RFC 8829): a bounded, I/O-free parse of an
// offer or answer into the fields the SFU negotiates with. Unknown lines and attributes are
// ignored; the attributes read here are checked, and a malformed one is an error that names its
// line. The parser neither throws nor recurses, so it is fed hostile text directly (fuzzed by
// tests/fuzz/sdp_fuzz.cpp).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ringlane::control::sdp {

// Header extension URIs the SFU reads or writes.
inline constexpr std::string_view kMidUri = "urn:ietf:params:rtp-hdrext:sdes:mid";  // RFC 8843
inline constexpr std::string_view kRidUri = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
inline constexpr std::string_view kRepairedRidUri =
    "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";  // RFC 8852 §3.1-3.2
// AV1 RTP payload format, Appendix A: the SFU reads AV1's layers from it. Longer than a one-byte
// header element holds on keyframes, so it goes with a=extmap-allow-mixed (RFC 8285 §6).
inline constexpr std::string_view kDependencyDescriptorUri =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
inline constexpr std::string_view kTransportCcUri =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

struct Codec {
  std::uint8_t pt = 0;
  std::string name;  // as written in a=rtpmap ("VP8", "opus", "H264", "rtx", ...)
  std::uint32_t clock = 0;
  std::uint8_t channels = 0;         // 0 when absent
  std::string fmtp;                  // the a=fmtp value after "PT ", "" if none
  std::vector<std::string> rtcp_fb;  // e.g. "nack", "nack pli", "ccm fir", "goog-remb", ...
  std::optional<std::uint8_t> apt;   // for rtx: the apt= of its fmtp (RFC 4588 §8.1)
};

// RFC 8285 §5: a=extmap:<id>[/<direction>] <uri>.
struct Extension {
  std::uint8_t id = 0;
  std::string uri;
  std::string direction;  // "" when absent (sendrecv), else sendonly | recvonly | inactive
};

struct SsrcGroup {
  std::string semantics;  // "FID", "SIM", "FEC-FR", ...
  std::vector<std::uint32_t> ssrcs;
};

struct Media {
  std::string kind;  // "audio", "video", "application", ...
  std::uint16_t port = 0;
  std::string protocol;              // "UDP/TLS/RTP/SAVPF"
  std::vector<std::string> formats;  // the m= line's fmt list as text
  std::string mid;
  std::string direction = "sendrecv";  // sendrecv | sendonly | recvonly | inactive
  // In m= line order; only formats that have an a=rtpmap or are static (0 PCMU, 8 PCMA, 9 G722).
  std::vector<Codec> codecs;
  std::vector<Extension> extensions;  // the session-level a=extmap lines first, if any
  std::vector<std::uint32_t> ssrcs;   // distinct a=ssrc ids in order of first appearance
  std::vector<SsrcGroup> ssrc_groups;
  std::string cname;                                   // first a=ssrc:N cname:
  std::string msid_stream, msid_track;                 // a=msid (or the a=ssrc:N msid: form)
  std::string ice_ufrag, ice_pwd, fingerprint, setup;  // media-level values ("" if absent)
  bool rtcp_mux = false;
  bool rtcp_rsize = false;
  bool bundle_only = false;             // RFC 8843 §6: port 0 but meant to be bundled
  std::vector<std::string> rids;        // a=rid:<id> send ...
  std::vector<std::string> recv_rids;   // a=rid:<id> recv ...
  std::string simulcast;                // the a=simulcast value
  std::vector<std::string> candidates;  // a=candidate values (after "candidate:")
  bool end_of_candidates = false;
  std::size_t line = 0;  // where the m= line is, for messages about this section
};

struct Session {
  std::string origin_session_id;  // o= field 2
  std::uint64_t origin_version = 0;
  std::string ice_ufrag, ice_pwd, fingerprint, setup;  // session-level
  bool ice_lite = false;
  // RFC 8285 §6 a=extmap-allow-mixed, at the session level or in any media section.
  bool extmap_allow_mixed = false;
  std::vector<std::string> bundle;  // mids of the first a=group:BUNDLE
  std::vector<Media> media;

  // The effective ICE/DTLS values of media i: its own, else the session's (RFC 8839 §5.4,
  // RFC 8122 §5). An index past the end gives the session's.
  std::string ufrag_of(std::size_t i) const;
  std::string pwd_of(std::size_t i) const;
  std::string fingerprint_of(std::size_t i) const;
  std::string setup_of(std::size_t i) const;
};

struct Limits {
  std::size_t max_bytes = 64 * 1024;  // whole SDP
  std::size_t max_lines = 2000;
  std::size_t max_line = 4096;  // one line
  std::size_t max_media = 64;
  std::size_t max_codecs = 64;  // per m-section (formats on the m= line)
  std::size_t max_ssrcs = 32;   // per m-section; also bounds a=ssrc-group lines and their size
  std::size_t max_rids = 16;    // per m-section
};

struct ParseError {
  std::size_t line = 0;  // 1-based line number where it went wrong (0 = the whole text)
  std::string reason;    // e.g. "line 12: a=rtpmap: payload type 300 out of range (0-127)"
};

// Lines end in CRLF or LF. v=0 comes first, o= is required. Media-level attributes (a=rtpmap,
// a=ssrc, a=mid, ...) before the first m= line are an error, not ignored: such an SDP is broken
// and ignoring them would quietly lose codecs. Control characters (NUL included) are refused.
std::optional<Session> parse(std::string_view text, ParseError& error, const Limits& limits = {});

// "sha-256 ab:CD:..." (hash name case-insensitive, RFC 8122 §5) -> "AB:CD:..." (32 upper-case hex
// pairs); nullopt for another hash or a malformed value.
std::optional<std::string> sha256_fingerprint(std::string_view value);

// The value of one parameter of an a=fmtp value ("a=1;b=2", names case-insensitive as in
// RFC 6184 §8.1): fmtp_parameter("packetization-mode=1;profile-level-id=42e01f",
// "packetization-mode") == "1". nullopt when absent.
std::optional<std::string_view> fmtp_parameter(std::string_view fmtp, std::string_view name);

// ASCII case-insensitive equality: media subtype names are case-insensitive (RFC 4855 §3), and
// GStreamer writes "OPUS" where browsers write "opus".
bool iequals(std::string_view a, std::string_view b);

}  // namespace ringlane::control::sdp
