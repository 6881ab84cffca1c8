#pragma once
// What the server's answers and offers share (private to src/sdp/): the lines that describe our
// ICE-lite/DTLS transport, codec lines, and which publisher codecs the SFU forwards.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringlane/controlplane/sdp/negotiate.hpp"
#include "ringlane/controlplane/sdp/sdp.hpp"

namespace ringlane::control::sdp::writer {

// Appends the pieces and a CRLF (RFC 8866 §5: lines end in CRLF).
void line(std::string& out, std::initializer_list<std::string_view> parts);

// v= o= s= t= and a=ice-lite (RFC 8445 §2.5: a lite agent says so at session level).
void session_head(std::string& out, std::string_view session_id, std::uint64_t version);

// c=, a=rtcp, a=ice-ufrag, a=ice-pwd, a=fingerprint and a=setup of one m-section.
void transport(std::string& out, const LocalIce& local, std::string_view setup);

// Our host candidates and a=end-of-candidates (RFC 8840: a lite agent knows them all).
void candidates(std::string& out, const LocalIce& local);

// a=rtpmap, a=rtcp-fb and a=fmtp of one codec, then its rtx (RFC 4588 §8.1) if rtx_pt is set.
void codec(std::string& out, const Codec& c, std::optional<std::uint8_t> rtx_pt);

// RFC 2198 §5, as browsers offer it for Opus: the red/48000/2 format among `codecs` whose fmtp
// names only `opus_pt` ("111/111"), or nullptr.
const Codec* red_for(const std::vector<Codec>& codecs, std::uint8_t opus_pt);

// a=rtpmap and a=fmtp of that format: red/48000/2, "<opus>/<opus>".
void red_codec(std::string& out, std::uint8_t red_pt, std::uint8_t opus_pt);

// Why `local` cannot be written into SDP, or "" when it can.
std::string local_problem(const LocalIce& local);

// A codec the SFU forwards: opus/48000/2 for audio; VP8, VP9 (profile-id 0), H264
// (packetization-mode 1, RFC 6184 §6.3: non-interleaved, what browsers send) and AV1 for video.
bool forwardable(const Codec& c, std::string_view kind);

// The RTCP feedback we answer and offer for video (RFC 4585 §4.2, RFC 5104 §7.1): NACK, PLI, FIR.
bool forwarded_feedback(std::string_view fb);

// Whether `extensions` has one with this URI.
bool has_extension(const std::vector<Extension>& extensions, std::string_view uri);

// "the video m-section (mid 1)", for messages about one section of an offer.
std::string section_name(const Media& m);

// RFC 4145 §4.1 / RFC 5763 §5: the a=setup an answer gives to the offer's (passive to actpass,
// active or none; active to passive); nullopt for holdconn.
std::optional<std::string> answer_setup(const std::string& offered);

// An o= session id stable for one ICE session (RFC 8829 §5.2.1: up to 63 bits), from our ufrag.
std::string session_id(const std::string& ufrag);

// Why m-section i of `offer`, which we accept, cannot share our one transport ("" when it can):
// no a=rtcp-mux, no ICE credentials, no sha-256 fingerprint, a=setup:holdconn, or, when more than
// one section is accepted (`bundled`), not in the offer's BUNDLE group. `setup` gets the answer's
// a=setup for it.
std::string transport_problem(const Session& offer, std::size_t i, bool bundled,
                              std::string& setup);

// A rejected m-section of an answer (RFC 3264 §6, RFC 8829 §5.3.1): port 0, the offer's first
// format, out of the BUNDLE group.
void rejected(std::string& out, const Media& m);

}  // namespace ringlane::control::sdp::writer
