// On-the-fly quantization of f32 activations to int8 blocks of 32 for integer dot products with
// Q8_0 / Q4_0 weights. Unlike a stored Q8_0 row the scale stays f32 (activations are transient,
// so there is no reason to lose bits in an f16 scale) and the block sum is kept: kernels feed
// weights to unsigned-by-signed dot instructions as w + offset and subtract offset * sum.
#pragma once

#include <cstdint>

namespace kvc {

constexpr int kActBlock = 32;

// One quantized activation vector. Element i ~= d[i / 32] * qs[i].
struct ActBlocksView {
  const int8_t* qs = nullptr;   // [n]
  const float* d = nullptr;     // [n / 32] scale = absmax / 127
  const int32_t* sum = nullptr; // [n / 32] sum of qs over the block
};

// Quantizes n floats (n a multiple of 32): d = absmax / 127, qs = round-half-even(x * 127 /
// absmax), so |qs| <= 127 and the per-element error is at most d / 2. Vectorized where the ISA
// allows; bit-identical to QuantizeActsQ8Ref.
void QuantizeActsQ8(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sum);

// Scalar reference of the above.
void QuantizeActsQ8Ref(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sum);

}  // namespace kvc
