#pragma once
// A single-producer/single-consumer ring of fixed-size messages in memory that two processes
// may share (DESIGN.md "Control plane <-> data plane"). Head and tail sit on their own cache
// lines; a full ring refuses the push and counts it (backpressure, never a silent drop).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace ringlane::shm {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kSlotSize = 256;  // one message, header included
inline constexpr std::size_t kMessageHeader = 8;
inline constexpr std::size_t kMaxPayload = kSlotSize - kMessageHeader;
// front() reports a slot whose header does not fit it under this type, so the consumer can
// count it and pop it instead of stalling behind it.
inline constexpr std::uint16_t kCorruptType = 0xFFFF;

// Message header as stored: type, version, payload length (little-endian host order; both
// ends run on the same machine).
struct MessageView {
  std::uint16_t type;
  std::uint16_t version;
  std::span<const std::uint8_t> payload;
};

// Decodes one slot's bytes; nullopt when the length field does not fit the slot (a corrupt
// or hostile writer), so the consumer never reads past the slot.
std::optional<MessageView> decode_slot(std::span<const std::uint8_t> slot);

struct alignas(kCacheLine) RingControl {
  std::atomic<std::uint64_t> tail{0};  // written by the producer
  char pad0[kCacheLine - sizeof(std::atomic<std::uint64_t>)];
  std::atomic<std::uint64_t> head{0};  // written by the consumer
  char pad1[kCacheLine - sizeof(std::atomic<std::uint64_t>)];
  std::atomic<std::uint64_t> full{
      0};                      // pushes refused because the ring was full (producer-written)
  std::uint32_t capacity = 0;  // slots, a power of two (informational)
  char pad2[kCacheLine - sizeof(std::atomic<std::uint64_t>) - sizeof(std::uint32_t)];
};
static_assert(sizeof(RingControl) == 3 * kCacheLine);

// A view over [RingControl][capacity x kSlotSize] laid out in caller memory.
class SpscRing {
 public:
  static std::size_t bytes_for(std::uint32_t capacity) {
    return sizeof(RingControl) + std::size_t{capacity} * kSlotSize;
  }
  // Lays out a fresh ring in `memory` (bytes_for(capacity) bytes, cache-line aligned);
  // capacity must be a power of two.
  static SpscRing create(void* memory, std::uint32_t capacity);
  // Uses a ring another process created. The capacity comes from the caller (the validated
  // region header), never from the shared control block, so a broken peer cannot widen the
  // slots this process indexes.
  static SpscRing attach(void* memory, std::uint32_t capacity) {
    return SpscRing(static_cast<std::uint8_t*>(memory), capacity);
  }

  // Producer side. False (and counted) when full or the payload is too large for a slot.
  // push() makes the message visible at once; stage() writes it and publish() makes every
  // staged message visible with one store, so a burst costs the consumer one cache miss.
  bool push(std::uint16_t type, std::uint16_t version, std::span<const std::uint8_t> payload) {
    bool ok = stage(type, version, payload);
    publish();
    return ok;
  }
  bool stage(std::uint16_t type, std::uint16_t version, std::span<const std::uint8_t> payload);
  void publish();
  // Consumer side: the oldest message (kCorruptType if its slot is malformed), valid until pop().
  std::optional<MessageView> front() const;
  void pop();

  std::uint64_t depth() const;
  std::uint64_t full_count() const { return control()->full.load(std::memory_order_relaxed); }
  std::uint64_t pushed_count() const { return control()->tail.load(std::memory_order_relaxed); }
  std::uint32_t capacity() const { return capacity_; }

 private:
  SpscRing(std::uint8_t* base, std::uint32_t capacity) : base_(base), capacity_(capacity) {}
  std::uint64_t load_head() const { return control()->head.load(std::memory_order_acquire); }
  std::uint64_t load_tail() const { return control()->tail.load(std::memory_order_acquire); }
  RingControl* control() const { return reinterpret_cast<RingControl*>(base_); }
  std::uint8_t* slot(std::uint64_t index) const {
    return base_ + sizeof(RingControl) + (index & (capacity_ - 1)) * kSlotSize;
  }
  std::uint8_t* base_;
  std::uint32_t capacity_;
  // Each side's last look at the other side's index: re-read only when the ring seems full
  // (producer) or empty (consumer), so a message costs no cross-core cache miss in steady
  // flow. Use one SpscRing object per side; the two sides' fields sit on separate cache lines
  // so that even a shared object does not bounce a line per message.
  alignas(kCacheLine) std::uint64_t seen_head_ = 0;  // producer side
  std::uint64_t staged_tail_ = 0;                    // producer: the next slot to write
  bool producing_ = false;
  alignas(kCacheLine) mutable std::uint64_t seen_tail_ = 0;  // consumer side
};

}  // namespace ringlane::shm
