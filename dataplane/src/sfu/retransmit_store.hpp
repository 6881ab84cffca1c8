#pragma once
// Recently forwarded video packets, kept to answer subscribers' NACKs (RFC 4585 §6.2.1) without
// asking the publisher again. One slab per worker, written in a circle: the newest packet takes
// the oldest slot, so the memory is fixed (kSlots x kSlotBytes) and retention is kSlots divided
// by the worker's incoming video packet rate (4096 slots: ~1 s at 4,000 video packets/s, far
// more on a lighter worker); a packet older than max_age is never resent. Each track indexes its
// own packets by sequence number; a slot remembers whose it is, so a stale index entry misses.
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>

namespace ringlane::sfu {

class RetransmitStore {
 public:
  static constexpr std::size_t kSlots = 4096;
  static constexpr std::size_t kSlotBytes = 1280;  // an RTP packet of a 1200-byte MTU and some
  static constexpr std::size_t kIndex = 1024;      // sequence numbers a track indexes

  struct Index {
    std::array<std::uint32_t, kIndex> slot;
    Index() { slot.fill(UINT32_MAX); }
  };

  RetransmitStore() : slots_(std::make_unique<Slot[]>(kSlots)) {}

  // Keeps a copy of one plain (decrypted) RTP packet of track `owner`.
  void put(std::uint64_t owner, Index& index, std::uint16_t seq, std::span<const std::uint8_t> rtp,
           std::uint64_t now_ms) {
    if (rtp.size() > kSlotBytes) {
      return;
    }
    std::uint32_t at = next_;
    next_ = (next_ + 1) % kSlots;
    Slot& s = slots_[at];
    s.owner = owner;
    s.seq = seq;
    s.length = static_cast<std::uint16_t>(rtp.size());
    s.at_ms = now_ms;
    std::memcpy(s.bytes, rtp.data(), rtp.size());
    index.slot[seq % kIndex] = at;
  }

  // The packet `seq` of `owner`, if still kept and younger than max_age_ms.
  std::optional<std::span<const std::uint8_t>> find(std::uint64_t owner, const Index& index,
                                                    std::uint16_t seq, std::uint64_t now_ms,
                                                    std::uint64_t max_age_ms) const {
    std::uint32_t at = index.slot[seq % kIndex];
    if (at == UINT32_MAX) {
      return std::nullopt;
    }
    const Slot& s = slots_[at];
    if (s.owner != owner || s.seq != seq || now_ms - s.at_ms > max_age_ms) {
      return std::nullopt;
    }
    return std::span<const std::uint8_t>(s.bytes, s.length);
  }

 private:
  struct Slot {
    std::uint64_t owner = 0;
    std::uint64_t at_ms = 0;
    std::uint16_t seq = 0;
    std::uint16_t length = 0;
    std::uint8_t bytes[kSlotBytes];
  };
  std::unique_ptr<Slot[]> slots_;
  std::uint32_t next_ = 0;
};

}  // namespace ringlane::sfu
