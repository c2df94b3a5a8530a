// Scalar reference conversions between f32 and every weight type. Optimized kernels are tested
// against these.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace kvc {

// dst receives n floats decoded from a row of `type`; n must be a multiple of the block size.
void DequantizeRow(DType type, const void* src, float* dst, int64_t n);

// Encodes n floats into a row of `type` (ggml's reference rounding rules).
void QuantizeRow(DType type, const float* src, void* dst, int64_t n);

}  // namespace kvc
