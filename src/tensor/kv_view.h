// KVView: how attention kernels see one layer of one sequence's K/V cache, without knowing the
// cache. Storage is a list of blocks (a contiguous cache is a single block) and inside a block
// each KV head's rows are contiguous, so a kernel streams one head's keys without striding.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace kvc {

struct KVView {
  DType type = DType::kF32;        // element type of K and V rows (F32, F16, BF16)
  int32_t n_tokens = 0;            // readable cache slots: 0 .. n_tokens-1
  int32_t block_size = 0;          // tokens per block
  const int32_t* block_table = nullptr;  // logical block index -> physical block id
  const uint8_t* k = nullptr;      // base of physical block 0 (keys)
  const uint8_t* v = nullptr;      // base of physical block 0 (values)
  size_t block_stride = 0;         // bytes between physical blocks
  size_t head_stride = 0;          // bytes between KV heads inside a block
  size_t row_bytes = 0;            // bytes of one token's row for one head (head_dim elements)

  // Address of slot `t`'s row for KV head `h` in `base` (k or v).
  const uint8_t* Row(const uint8_t* base, int32_t h, int32_t t) const {
    return base + static_cast<size_t>(block_table[t / block_size]) * block_stride +
           h * head_stride + static_cast<size_t>(t % block_size) * row_bytes;
  }
};

}  // namespace kvc
