#include "ringlane/controlplane/signaling/message.hpp"

#include <boost/json.hpp>

namespace ringlane::control::signaling {
namespace json = boost::json;

namespace {

// Messages are small and flat: a shallow nesting limit keeps hostile input cheap.
constexpr std::size_t kMaxDepth = 8;
constexpr std::size_t kMaxIdBytes = 64;
constexpr std::size_t kMaxTokenBytes = 4096;

const char* const kMediaTypes[] = {"publish",   "unpublish", "subscribe", "unsubscribe", "answer",
                                   "candidate", "mute",      "layer",     "restart_ice"};

ParseError fail(std::string code, std::string message, std::string id = {}) {
  return ParseError{std::move(code), std::move(message), std::move(id)};
}

// Reads an optional string field; false if present with another type or too long.
bool string_field(const json::object& o, std::string_view key, std::size_t max,
                  std::optional<std::string>& out) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) {
    return true;
  }
  const json::string* s = v->if_string();
  if (s == nullptr || s->size() > max) {
    return false;
  }
  out = std::string(s->data(), s->size());
  return true;
}

constexpr std::size_t kMaxLayerSections = 16;

std::optional<std::uint32_t> pixels(const json::value& v) {
  if (v.is_uint64() && v.get_uint64() <= kMaxPixels) {
    return static_cast<std::uint32_t>(v.get_uint64());
  }
  if (v.is_int64() && v.get_int64() >= 0 && v.get_int64() <= kMaxPixels) {
    return static_cast<std::uint32_t>(v.get_int64());
  }
  return std::nullopt;
}

// The optional fields of the SFU's messages, each bounded and of its one type.
std::variant<ClientMessage, ParseError> parse_media_fields(const json::object& o, ClientMessage m) {
  std::optional<std::string> sdp;
  std::optional<std::string> track;
  std::optional<std::string> participant;
  if (!string_field(o, "sdp", kMaxSdpBytes, sdp)) {
    return fail("bad_message", "\"sdp\" must be a string of at most 65536 bytes", m.id);
  }
  if (!string_field(o, "track", kMaxNameBytes, track) ||
      !string_field(o, "participant", kMaxNameBytes, participant)) {
    return fail("bad_message", "\"track\" and \"participant\" are strings of at most 128 bytes",
                m.id);
  }
  m.sdp = sdp.value_or("");
  m.track = track.value_or("");
  m.participant = participant.value_or("");
  if (const json::value* v = o.if_contains("muted")) {
    if (!v->is_bool()) {
      return fail("bad_message", "\"muted\" must be a boolean", m.id);
    }
    m.muted = v->get_bool();
  }
  if (const json::value* v = o.if_contains("paused")) {
    if (!v->is_bool()) {
      return fail("bad_message", "\"paused\" must be a boolean", m.id);
    }
    m.paused = v->get_bool();
  }
  if (const json::value* v = o.if_contains("spatial")) {
    if (!(v->is_uint64() || v->is_int64()) || (v->is_int64() && v->get_int64() < 0) ||
        (v->is_int64() ? static_cast<std::uint64_t>(v->get_int64()) : v->get_uint64()) > 2) {
      return fail("bad_message", "\"spatial\" must be 0, 1 or 2", m.id);
    }
    m.spatial = v->is_uint64() ? v->get_uint64() : static_cast<std::uint64_t>(v->get_int64());
  }
  if (const json::value* v = o.if_contains("temporal")) {
    if (!(v->is_uint64() || v->is_int64()) || (v->is_int64() && v->get_int64() < 0) ||
        (v->is_int64() ? static_cast<std::uint64_t>(v->get_int64()) : v->get_uint64()) > 2) {
      return fail("bad_message", "\"temporal\" must be 0, 1 or 2", m.id);
    }
    m.temporal = v->is_uint64() ? v->get_uint64() : static_cast<std::uint64_t>(v->get_int64());
  }
  for (auto [key, out] : {std::pair{"width", &m.width}, std::pair{"height", &m.height}}) {
    if (const json::value* v = o.if_contains(key)) {
      std::optional<std::uint32_t> n = pixels(*v);
      if (!n) {
        return fail("bad_message",
                    std::string("\"") + key + "\" must be 0-" + std::to_string(kMaxPixels) +
                        " (device pixels)",
                    m.id);
      }
      *out = *n;
    }
  }
  if (const json::value* v = o.if_contains("layers")) {
    // {"<mid>": [{"width": W, "height": H}, ...], ...}: each video section's layers, lowest first.
    const json::object* sections = v->if_object();
    if (sections == nullptr || sections->size() > kMaxLayerSections) {
      return fail("bad_message", "\"layers\" must be an object of at most 16 sections", m.id);
    }
    for (const auto& [mid, list] : *sections) {
      const json::array* a = list.if_array();
      if (mid.size() > kMaxNameBytes || a == nullptr || a->empty() || a->size() > 3) {
        return fail("bad_message",
                    "\"layers\" maps a mid to 1-3 layers, each {\"width\", \"height\"}", m.id);
      }
      SectionLayers section{std::string(mid), {}};
      for (const json::value& e : *a) {
        const json::object* size = e.if_object();
        const json::value* w = size != nullptr ? size->if_contains("width") : nullptr;
        const json::value* h = size != nullptr ? size->if_contains("height") : nullptr;
        std::optional<std::uint32_t> wp = w != nullptr ? pixels(*w) : std::nullopt;
        std::optional<std::uint32_t> hp = h != nullptr ? pixels(*h) : std::nullopt;
        if (!wp || !hp) {
          return fail("bad_message",
                      "a layer is {\"width\", \"height\"}, each 0-" + std::to_string(kMaxPixels),
                      m.id);
        }
        section.sizes.push_back(LayerSize{*wp, *hp});
      }
      m.hints.layers.push_back(std::move(section));
    }
  }
  if (const json::value* v = o.if_contains("screen")) {
    // ["<mid>", ...]: the video sections that share a screen (they go first in the bandwidth).
    const json::array* mids = v->if_array();
    bool ok = mids != nullptr && mids->size() <= kMaxLayerSections;
    for (std::size_t i = 0; ok && i < mids->size(); ++i) {
      const json::string* mid = (*mids)[i].if_string();
      ok = mid != nullptr && mid->size() <= kMaxNameBytes;
      if (ok) {
        m.hints.screen.emplace_back(mid->data(), mid->size());
      }
    }
    if (!ok) {
      return fail("bad_message", "\"screen\" must be an array of at most 16 mids", m.id);
    }
  }
  if (const json::value* v = o.if_contains("seq")) {
    if (!v->is_uint64() && !(v->is_int64() && v->get_int64() >= 0)) {
      return fail("bad_message", "\"seq\" must be a non-negative integer", m.id);
    }
    m.seq = v->is_uint64() ? v->get_uint64() : static_cast<std::uint64_t>(v->get_int64());
  }
  return m;
}

}  // namespace

bool valid_room_name(std::string_view room) {
  if (room.empty() || room.size() > kMaxNameBytes) {
    return false;
  }
  for (char c : room) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

bool valid_identity(std::string_view identity) {
  if (identity.empty() || identity.size() > kMaxNameBytes) {
    return false;
  }
  for (unsigned char c : identity) {
    if (c < 0x20 || c == 0x7f) {
      return false;
    }
  }
  return true;
}

std::variant<ClientMessage, ParseError> parse_client_message(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxDepth;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec, {}, options);
  if (ec) {
    return fail("bad_json", "not valid JSON: " + ec.message());
  }
  const json::object* o = v.if_object();
  if (o == nullptr) {
    return fail("bad_message", "a message is a JSON object");
  }
  ClientMessage m;
  if (const json::value* id = o->if_contains("id")) {
    if (!id->is_int64() && !id->is_uint64() && !id->is_string()) {
      return fail("bad_message", "\"id\" must be a number or a string");
    }
    m.id = json::serialize(*id);
    if (m.id.size() > kMaxIdBytes) {
      return fail("bad_message", "\"id\" is longer than 64 bytes");
    }
  }
  const json::value* type = o->if_contains("type");
  if (type == nullptr || !type->is_string()) {
    return fail("bad_message", "\"type\" (a string) is required", m.id);
  }
  std::string_view t = type->get_string();
  std::optional<std::string> room;
  std::optional<std::string> token;
  if (!string_field(*o, "room", kMaxNameBytes, room)) {
    return fail("bad_message", "\"room\" must be a string of at most 128 bytes", m.id);
  }
  if (!string_field(*o, "token", kMaxTokenBytes, token)) {
    return fail("bad_message", "\"token\" must be a string of at most 4096 bytes", m.id);
  }
  if (t == "auth") {
    if (!token) {
      return fail("bad_message", "auth needs \"token\"", m.id);
    }
    m.type = ClientType::kAuth;
    m.token = std::move(*token);
  } else if (t == "join") {
    if (room && !valid_room_name(*room)) {
      return fail("bad_message", "room names are 1-128 of A-Z a-z 0-9 _ . : -", m.id);
    }
    m.type = ClientType::kJoin;
    m.room = room.value_or("");
    if (const json::value* a = o->if_contains("auto_subscribe")) {
      if (!a->is_bool()) {
        return fail("bad_message", "\"auto_subscribe\" must be a boolean", m.id);
      }
      m.auto_subscribe = a->get_bool();
    }
  } else if (t == "leave") {
    m.type = ClientType::kLeave;
  } else if (t == "ping") {
    m.type = ClientType::kPing;
  } else {
    for (const char* media : kMediaTypes) {
      if (t == media) {
        m.type = ClientType::kMedia;
        m.media_type = media;
        return parse_media_fields(*o, std::move(m));
      }
    }
    std::string shown(t.substr(0, 32));
    for (char& c : shown) {
      // ASCII only: a cut multi-byte sequence must not make the reply invalid UTF-8.
      auto u = static_cast<unsigned char>(c);
      c = (u < 0x20 || u >= 0x7f) ? '?' : c;
    }
    return fail("unknown_type", "unknown message type \"" + shown + "\"", m.id);
  }
  return m;
}

std::string error_reply(std::string_view code, std::string_view message, bool retryable,
                        std::string_view id) {
  json::object o;
  o["type"] = "error";
  if (!id.empty()) {
    boost::system::error_code ec;
    o["id"] = json::parse(id, ec);
  }
  o["code"] = code;
  o["message"] = message;
  o["retryable"] = retryable;
  return json::serialize(o);
}

}  // namespace ringlane::control::signaling
