// ggml block layouts for weights (bit-exact with GGUF files).
#pragma once

#include <cstdint>

namespace kvc {

constexpr int kQK = 32;  // elements per Q8_0 / Q4_0 block

// Q8_0: x[i] = d * qs[i].
struct BlockQ8_0 {
  uint16_t d;  // f16 scale = absmax / 127
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block must be 34 bytes");

// Q4_0: x[i] = d * (nibble - 8); byte j holds element j (low nibble) and j + 16 (high nibble).
struct BlockQ4_0 {
  uint16_t d;  // f16 scale = max-magnitude value / -8
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block must be 18 bytes");

}  // namespace kvc
