// KVSpec: everything the cache needs to know about a model (and nothing more).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace kvc {

struct KVSpec {
  int32_t n_layers = 0;
  int32_t n_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t max_tokens = 0;          // hard capacity of one sequence (the context length)
  DType type = DType::kF32;        // element type of stored K and V (F32, F16, BF16)

  size_t RowBytes() const { return kvc::RowBytes(type, head_dim); }
  // Bytes per token for K and V across all layers and heads: 2 x layers x kv_heads x head_dim x b.
  size_t BytesPerToken() const { return 2ull * n_layers * n_kv_heads * RowBytes(); }
};

}  // namespace kvc
