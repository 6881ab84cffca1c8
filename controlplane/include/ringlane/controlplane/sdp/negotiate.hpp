#pragma once
// Offer/answer for the SFU (RFC 3264, JSEP RFC 8829 §5.3): the server is an ICE-lite (RFC 8445
// §2.5) DTLS-SRTP endpoint that receives from publishers and sends to subscribers, everything on
// one BUNDLE transport (RFC 8843) with RTP/RTCP multiplexed (RFC 8858). No I/O here: these turn
// parsed SDP into SDP text plus what the data plane needs to forward.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringlane/controlplane/sdp/sdp.hpp"

namespace ringlane::control::sdp {

struct LocalIce {
  std::string ufrag, pwd;   // ICE-lite credentials of the server session (RFC 8839 §5.4)
  std::string fingerprint;  // "AB:CD:..." SHA-256 of the data plane's DTLS certificate
  std::vector<std::pair<std::string, std::uint16_t>> candidates;  // host (ip text, port)
};

// What the SFU forwards for one accepted m-section of a publisher.
struct PublishedTrack {
  std::string mid;
  std::string kind;  // "audio" | "video"
  // The chosen codec as the publisher numbered it; rtcp_fb is what was answered (nack,
  // nack pli, ccm fir for video; none for audio).
  Codec codec;
  std::optional<std::uint8_t> rtx_pt;  // publisher's rtx PT for that codec, if accepted
  // Audio: the publisher's RFC 2198 RED PT (red/48000/2, fmtp "<opus>/<opus>"), answered first
  // so the publisher sends RED; nullopt when it did not offer it.
  std::optional<std::uint8_t> red_pt;
  std::uint32_t ssrc = 0;      // primary media SSRC (first of the FID group, else first a=ssrc)
  std::uint32_t rtx_ssrc = 0;  // second of the FID group; 0 if none or rtx was not accepted
  std::vector<Extension> extensions;  // the accepted ones, with the publisher's ids
  std::string msid_stream, msid_track;
  std::string cname;
  // Simulcast (RFC 8853): the rids the publisher sends, lowest resolution first (the offer's
  // a=simulcast order); empty for a plain track. Such a track has no SSRC in the SDP.
  std::vector<std::string> rids;
};

struct PublishAnswer {
  std::string sdp;                     // the answer text (CRLF)
  std::vector<PublishedTrack> tracks;  // accepted m-sections with a sending direction
  // The client's transport, from the first accepted m-section. remote_setup is the client's
  // DTLS role once negotiated (RFC 5763 §5): "active" (it connects to us; we answered passive)
  // or "passive" (it offered passive; we answered active and connect).
  std::string remote_ufrag, remote_pwd, remote_fingerprint /* "AB:.." */, remote_setup;
};

// Answers a client's offer: the client publishes; the server is ICE-lite and receives only.
// Audio: opus/48000/2. Video: the first of VP8, VP9 (profile-id 0), H264 (packetization-mode 1),
// AV1 in the offer's order, plus its rtx. Sections we do not take are answered with port 0.
// The answer's o= session id is derived from local.ufrag (stable for the ICE session) and its
// version is the offer's, so each new answer to a renegotiating client has a newer version
// (RFC 3264 §8). nullopt with `error` (line 0, or the m= line of the section at fault) when the
// offer cannot be answered.
std::optional<PublishAnswer> answer_publish(const Session& offer, const LocalIce& local,
                                            ParseError& error);

// One outgoing track in a server offer to a subscriber.
struct OfferedTrack {
  std::string mid;     // the server assigns "0","1",...; stable across renegotiations
  std::string kind;    // "audio" | "video"
  bool active = true;  // false: the publisher left; the m-line stays, a=inactive
  Codec codec;         // with the SUBSCRIBER-side PT (subscriber_codec())
  std::optional<std::uint8_t> rtx_pt;  // subscriber-side rtx PT when the track has rtx
  // Audio from a RED publisher: the subscriber-side RED PT (63 in our offers; the viewer's in a
  // WHEP answer), nullopt when the subscriber gets plain Opus (the SFU strips RED).
  std::optional<std::uint8_t> red_pt;
  std::uint32_t ssrc = 0, rtx_ssrc = 0;  // subscriber-side SSRCs
  // Give a publisher's audio and video the same cname so the subscriber syncs them (RFC 7022);
  // an empty cname is written as "ringlane".
  std::string cname, msid_stream, msid_track;
  std::vector<Extension> extensions;  // subscriber-side ids
};

// The server's offer to a subscriber's receive-only peer connection (renegotiated as tracks come
// and go): ICE-lite, a=setup:actpass, every mid in one BUNDLE group, a=sendonly (a=inactive for
// a track whose publisher left). rtcp-rsize is offered on video only, as Chromium does. With no
// tracks, the session part alone. Strings are written as given: pass values from parse() or
// answer_publish() (no line breaks).
std::string offer_subscribe(const std::vector<OfferedTrack>& tracks, const LocalIce& local,
                            std::uint64_t version, const std::string& session_id);

// Fixed subscriber-side numbering, so that every subscriber offer is consistent within one
// BUNDLE: opus 111 (RED 63), VP8 96 / rtx 97, VP9 98 / rtx 99, H264 102 / rtx 103, AV1 45 / rtx 46;
// extension ids: ssrc-audio-level 1, video-orientation 13.
// subscriber_codec() keeps name/clock/channels/fmtp, rewrites pt, sets rtcp_fb (video: nack,
// nack pli, ccm fir; audio: none), and returns nullopt for another codec (rtx included).
std::optional<Codec> subscriber_codec(const Codec& publisher);
// RFC 2198 RED over Opus in our offers (Chromium's number for it), fmtp "111/111".
inline constexpr std::uint8_t kSubscriberRedPt = 63;
std::optional<std::uint8_t> subscriber_rtx_pt(const std::string& codec_name);
std::optional<std::uint8_t> subscriber_extension_id(const std::string& uri);

struct SubscribeAnswer {
  // From the first accepted m-section; remote_setup is "active" or "passive".
  std::string remote_ufrag, remote_pwd, remote_fingerprint /* "AB:.." */, remote_setup;
  // m-sections the client answered with recvonly/sendrecv and a non-zero port (or kept in its
  // BUNDLE group: RFC 8843 §7.3.1 lets an answer give bundled sections port 0).
  std::vector<std::string> accepted_mids;
  // Per accepted mid, the extensions the client kept among those offered (the answer's ids).
  std::vector<std::pair<std::string, std::vector<Extension>>> extensions;
  // Accepted mids whose answer kept the offered RED format (RFC 2198): those get RED; the
  // others plain Opus.
  std::vector<std::string> red_mids;
};

// Reads a subscriber's answer to offer_subscribe(offered, ...).
std::optional<SubscribeAnswer> read_subscribe_answer(const Session& answer,
                                                     const std::vector<OfferedTrack>& offered,
                                                     ParseError& error);

// WHEP (draft-ietf-wish-whep §4.2): the answer to a viewer's offer, which has receive-only (or
// sendrecv) audio and video m-sections and is never renegotiated. Each offered section gets, in
// offer order, the first unused track of its kind in `tracks` that it offers a codec for,
// answered a=sendonly in the offer's own numbering: its mid, its payload type for that codec
// (and for that codec's rtx), its ids for the header extensions the track carries. A section
// left without a track is rejected (port 0). `tracks` are built as for offer_subscribe()
// (subscriber_codec(), the SSRCs, cname and msid we send), in order of preference; their mids,
// PTs and extension ids are replaced by the offer's.
struct ViewAnswer {
  std::string sdp;  // empty when no section got a track
  // Per answered section: the index into `tracks` of what it sends, and the track as answered.
  std::vector<std::pair<std::size_t, OfferedTrack>> sent;
  // From the first answered section, as in PublishAnswer: remote_setup is the viewer's DTLS role
  // ("active": it connects to us, we answered passive).
  std::string remote_ufrag, remote_pwd, remote_fingerprint /* "AB:.." */, remote_setup;
};

// nullopt with `error` (line 0, or the m= line of the section at fault) for an offer that cannot
// be answered; an answer with `sent` empty when the offer can receive none of `tracks`.
std::optional<ViewAnswer> answer_subscribe(const Session& offer,
                                           const std::vector<OfferedTrack>& tracks,
                                           const LocalIce& local, ParseError& error);

// RFC 8840 §9: an SDP fragment (application/trickle-ice-sdpfrag), what WHIP and WHEP clients send
// in PATCH requests: ICE credentials, candidates, the m= and a=mid lines they belong to.
struct IceFragment {
  std::string ufrag, pwd;  // "" when absent
  std::size_t candidates = 0;
  bool end_of_candidates = false;
};

// Each line checked as parse() checks it (a=ice-ufrag, a=ice-pwd and a=candidate by their
// grammar); other lines are ignored. nullopt with `error` naming the line when malformed.
std::optional<IceFragment> parse_ice_fragment(std::string_view text, ParseError& error,
                                              const Limits& limits = {});

// The fragment a server answers an ICE restart PATCH with (RFC 9725 §4.3.2): a=ice-lite, our new
// credentials, then the m= line `kind` and `mid` of the first bundled section with our host
// candidates and a=end-of-candidates.
std::string write_ice_fragment(const LocalIce& local, std::string_view kind, std::string_view mid);

}  // namespace ringlane::control::sdp
