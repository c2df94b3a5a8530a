// Non-owning view of a row-major weight matrix as stored in a model file.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace kvc {

// rows x cols, each row `cols` elements of `type` packed in `row_bytes` bytes (ggml: ne0 = cols,
// ne1 = rows). A product y = W x reads x of length cols and writes y of length rows.
struct MatView {
  DType type = DType::kF32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;

  size_t row_bytes() const { return RowBytes(type, cols); }
  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes();
  }
};

}  // namespace kvc
