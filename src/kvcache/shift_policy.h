// When a sequence would outgrow its budget, which old tokens to drop: attention sinks
// (StreamingLLM: keep the first `keep` tokens and the most recent ones) and llama.cpp-style
// context shift (keep the first tokens, drop half of the rest). Pure arithmetic; the engine
// applies it with KVCache::RemoveRange before each forward step.
#pragma once

#include <algorithm>
#include <cstdint>

namespace kvc {

struct ShiftPolicy {
  int32_t keep = 0;         // first tokens never dropped (sinks; BOS)
  int32_t limit = 0;        // most tokens the cache may hold; 0 = no policy
  int32_t min_discard = 1;  // drop at least this many at once (amortizes re-positioning keys)

  bool active() const { return limit > 0; }

  // Tokens to drop after the first `keep` so that `incoming` more fit within `limit` (0 if they
  // already fit). Never more than the droppable ones.
  int32_t DiscardFor(int32_t size, int32_t incoming) const {
    if (!active() || size + incoming <= limit) return 0;
    const int32_t droppable = std::max(0, size - keep);
    return std::min(droppable, std::max(size + incoming - limit, min_discard));
  }

  // Sinks + window: keep `sinks` first tokens and about the last `window` (drops in steps of
  // window/8 so keys are re-positioned only every few tokens).
  static ShiftPolicy Sinks(int32_t sinks, int32_t window) {
    return {sinks, sinks + window, std::max(1, window / 8)};
  }
  // llama.cpp's context shift: when `context` is full keep `keep`, drop half of the rest.
  static ShiftPolicy ContextShift(int32_t keep, int32_t context) {
    return {keep, context, std::max(1, (context - keep) / 2)};
  }
};

}  // namespace kvc
