#pragma once
// The signaling protocol's client messages (controlplane/PROTOCOL.md): a bounded parse of one
// WebSocket text frame into a typed message, or an error with the code the client is sent.
// No I/O here, so the fuzzer drives it directly.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ringlane::control::signaling {

inline constexpr int kProtocolVersion = 2;
inline constexpr std::size_t kMaxSdpBytes = 64 * 1024;
inline constexpr std::size_t kMaxNameBytes = 128;

enum class ClientType {
  kAuth,   // {"type":"auth","token":JWT}
  kJoin,   // {"type":"join","room":R}
  kLeave,  // {"type":"leave"}
  kPing,   // {"type":"ping"}
  // The SFU's messages (publish, unpublish, subscribe, unsubscribe, answer, candidate, mute,
  // layer; PROTOCOL.md version 2). A node without a data plane answers "not_supported".
  kMedia,
};

// Video sizes (`layer` width/height, `publish` layers, the state file): 0 up to 16K, in pixels.
inline constexpr std::uint32_t kMaxPixels = 16384;

// A layer of a published video track as its publisher encodes it (PROTOCOL.md `publish`
// `layers`): a simulcast encoding, or a spatial layer of SVC, lowest first.
struct LayerSize {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  bool operator==(const LayerSize&) const = default;
};
struct SectionLayers {
  std::string mid;  // the offer's m-section
  std::vector<LayerSize> sizes;
};
// What a publish tells of its sections beyond the SDP.
struct PublishHints {
  std::vector<SectionLayers> layers;  // `layers`: each video section's layer sizes
  std::vector<std::string> screen;    // `screen`: the mids that carry a screen share
};

struct ClientMessage {
  ClientType type = ClientType::kPing;
  std::string id;  // the request id as JSON text ("7", "\"abc\""), echoed in the reply; or empty
  std::string token;
  std::string room;
  std::string media_type;  // kMedia: which one
  // kMedia fields (each optional; the handler checks what its type needs).
  std::string sdp;
  std::string track;
  std::string participant;
  std::optional<bool> muted;
  std::optional<std::uint64_t> spatial;   // layer: the highest spatial layer wanted (0 lowest)
  std::optional<std::uint64_t> temporal;  // layer: the highest temporal layer wanted (0 lowest)
  std::optional<bool> paused;             // layer: none at all
  // layer: the size the subscriber renders the track at (its video element's, in device pixels;
  // 0 x 0: not shown), which the server maps to the smallest layer that covers it.
  std::optional<std::uint64_t> width;
  std::optional<std::uint64_t> height;
  PublishHints hints;  // publish
  std::optional<std::uint64_t> seq;
  std::optional<bool> auto_subscribe;  // join
};

struct ParseError {
  std::string code;  // bad_json | bad_message | unknown_type
  std::string message;
  std::string id;
};

std::variant<ClientMessage, ParseError> parse_client_message(std::string_view text);

// Room names double as store keys: 1..128 of [A-Za-z0-9_.:-].
bool valid_room_name(std::string_view room);
// Participant identities: 1..128 bytes, no control characters.
bool valid_identity(std::string_view identity);

// {"type":"error","code":..,"message":..,"retryable":..[,"id":..]}
std::string error_reply(std::string_view code, std::string_view message, bool retryable,
                        std::string_view id = {});

}  // namespace ringlane::control::signaling
