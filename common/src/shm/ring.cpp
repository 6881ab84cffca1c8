#include "ringlane/shm/ring.hpp"

#include <new>

namespace ringlane::shm {

std::optional<MessageView> decode_slot(std::span<const std::uint8_t> slot) {
  if (slot.size() < kMessageHeader) {
    return std::nullopt;
  }
  std::uint16_t type;
  std::uint16_t version;
  std::uint32_t length;
  std::memcpy(&type, slot.data(), 2);
  std::memcpy(&version, slot.data() + 2, 2);
  std::memcpy(&length, slot.data() + 4, 4);
  if (length > slot.size() - kMessageHeader) {
    return std::nullopt;
  }
  return MessageView{type, version, slot.subspan(kMessageHeader, length)};
}

SpscRing SpscRing::create(void* memory, std::uint32_t capacity) {
  auto* c = new (memory) RingControl();
  c->capacity = capacity;
  return SpscRing(static_cast<std::uint8_t*>(memory), capacity);
}

bool SpscRing::stage(std::uint16_t type, std::uint16_t version,
                     std::span<const std::uint8_t> payload) {
  RingControl* c = control();
  if (!producing_) {
    staged_tail_ = c->tail.load(std::memory_order_relaxed);
    producing_ = true;
  }
  std::uint64_t tail = staged_tail_;
  if (tail - seen_head_ >= capacity_) {
    seen_head_ = load_head();
  }
  if (payload.size() > kMaxPayload || tail - seen_head_ >= capacity_) {
    // Only the producer writes this counter: a plain increment, no locked instruction.
    c->full.store(c->full.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return false;
  }
  std::uint8_t* s = slot(tail);
  auto length = static_cast<std::uint32_t>(payload.size());
  std::memcpy(s, &type, 2);
  std::memcpy(s + 2, &version, 2);
  std::memcpy(s + 4, &length, 4);
  if (!payload.empty()) {
    std::memcpy(s + kMessageHeader, payload.data(), payload.size());
  }
  staged_tail_ = tail + 1;
  return true;
}

void SpscRing::publish() {
  // Publishing the tail releases the staged slots' bytes to the consumer.
  if (producing_) {
    control()->tail.store(staged_tail_, std::memory_order_release);
  }
}

std::optional<MessageView> SpscRing::front() const {
  std::uint64_t head = control()->head.load(std::memory_order_relaxed);
  // ">=" and not "==": a fresh view starts with seen_tail_ 0 while head has moved on, and a
  // corrupt peer may leave head ahead of tail; both must read as "look again", then "empty".
  if (head >= seen_tail_) {
    seen_tail_ = load_tail();
    if (head >= seen_tail_) {
      return std::nullopt;
    }
  }
  auto m = decode_slot(std::span<const std::uint8_t>(slot(head), kSlotSize));
  return m ? *m : MessageView{kCorruptType, 0, {}};
}

void SpscRing::pop() {
  RingControl* c = control();
  c->head.store(c->head.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

std::uint64_t SpscRing::depth() const {
  return load_tail() - load_head();
}

}  // namespace ringlane::shm
