// KVSpec: everything the cache needs to know about a model and the chosen storage (and nothing
// about the model beyond its cache shape).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tensor/kv_type.h"

namespace kvc {

struct KVSpec {
  int32_t n_layers = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t max_tokens = 0;  // hard capacity of one sequence (positions)

  KVType type_k = KVType::kF32;
  KVType type_v = KVType::kF32;
  int32_t group = 32;                          // quantization group size (--kv-group)
  KVGrouping grouping = KVGrouping::kPerToken;
  int32_t residual = 0;                        // most recent tokens kept in f32 (quantized sides)
  int32_t window = 0;                          // sliding window; 0 = keep every token

  // Elements per group of one side: per-token groups run along head_dim (clipped to it, so any
  // head dim works); KIVI keys group `group` tokens of one channel.
  int32_t GroupK() const { return KiviKeys() ? group : std::min(group, head_dim); }
  int32_t GroupV() const { return std::min(group, head_dim); }
  bool KiviKeys() const { return grouping == KVGrouping::kKivi && IsQuantized(type_k); }
};

}  // namespace kvc
