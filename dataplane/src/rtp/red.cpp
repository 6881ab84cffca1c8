// RFC 2198 §3: each redundant block has a 4-byte header
//   |F|   block PT  |  timestamp offset         |   block length    |
// (F = 1: another header follows), and the primary block a 1-byte header |0| block PT |. The
// data of the blocks follow the headers in the same order, the primary last, running to the end.
#include "ringlane/dataplane/rtp/red.hpp"

#include <cstring>

namespace ringlane::rtp {

std::optional<RedPayload> parse_red(Bytes payload) {
  RedPayload red;
  std::size_t i = 0;
  std::size_t data = 0;  // bytes the redundant blocks take
  for (;;) {
    if (i >= payload.size()) {
      return std::nullopt;  // a header cut short (or an empty payload)
    }
    std::uint8_t b = payload[i];
    if ((b & 0x80) == 0) {
      red.primary.payload_type = b & 0x7F;
      ++i;
      break;
    }
    if (red.redundant == RedPayload::kMaxRedundant || payload.size() - i < 4) {
      return std::nullopt;
    }
    RedBlock& block = red.blocks[red.redundant++];
    block.payload_type = b & 0x7F;
    block.timestamp_offset =
        static_cast<std::uint16_t>((payload[i + 1] << 6) | (payload[i + 2] >> 2));
    block.size = static_cast<std::size_t>(((payload[i + 2] & 0x03) << 8) | payload[i + 3]);
    data += block.size;
    i += 4;
  }
  red.header_size = i;
  if (payload.size() - i < data) {
    return std::nullopt;  // the block lengths run past the end
  }
  std::size_t offset = i;
  for (std::size_t k = 0; k < red.redundant; ++k) {
    red.blocks[k].offset = offset;
    offset += red.blocks[k].size;
  }
  red.primary.offset = offset;
  red.primary.size = payload.size() - offset;
  return red;
}

void rewrite_red_payload_types(MutableBytes payload, const RedPayload& red, std::uint8_t from,
                               std::uint8_t to) {
  if (payload.size() < red.header_size) {
    return;
  }
  std::size_t i = 0;
  for (std::size_t k = 0; k <= red.redundant; ++k) {
    std::uint8_t& b = payload[i];
    if ((b & 0x7F) == from) {
      b = static_cast<std::uint8_t>((b & 0x80) | (to & 0x7F));
    }
    i += k < red.redundant ? 4 : 1;
  }
}

std::size_t copy_for_receiver(std::uint8_t* out, const RtpPacket& view, std::uint8_t red_in,
                              std::uint8_t red_out, std::uint8_t opus_in, std::uint8_t media_out) {
  std::optional<RedPayload> red;
  if (red_in != 0 && view.payload_type() == red_in) {
    red = parse_red(view.payload());
  }
  return copy_for_receiver(out, view, red ? &*red : nullptr, red_out, opus_in, media_out);
}

std::size_t copy_for_receiver(std::uint8_t* out, const RtpPacket& view, const RedPayload* red,
                              std::uint8_t red_out, std::uint8_t opus_in, std::uint8_t media_out) {
  Bytes rtp = view.bytes();
  if (!red || red_out != 0) {
    std::memcpy(out, rtp.data(), rtp.size());
    out[1] = static_cast<std::uint8_t>((out[1] & 0x80) | ((red ? red_out : media_out) & 0x7F));
    if (red && opus_in != media_out) {
      rewrite_red_payload_types(MutableBytes(out + view.header_size(), view.payload().size()), *red,
                                opus_in, media_out);
    }
    return rtp.size();
  }
  // Stripped: the header, then the primary block's data.
  std::size_t header = view.header_size();
  std::memcpy(out, rtp.data(), header);
  std::memcpy(out + header, view.payload().data() + red->primary.offset, red->primary.size);
  out[0] = static_cast<std::uint8_t>(out[0] & ~0x20);
  out[1] = static_cast<std::uint8_t>((out[1] & 0x80) | (media_out & 0x7F));
  return header + red->primary.size;
}

}  // namespace ringlane::rtp
