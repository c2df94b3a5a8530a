// 16 floats as a GCC vector (AVX-512 here, pairs of AVX2 registers in the x86-64-v3 build that
// valgrind runs) and the few operations the float attention kernels share.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace kvc {

typedef float F32x16 __attribute__((vector_size(64)));
typedef int32_t I32x16 __attribute__((vector_size(64)));

inline F32x16 Load16(const float* p) {
  F32x16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store16(float* p, F32x16 v) { std::memcpy(p, &v, sizeof(v)); }

// A broadcast (F32x16{} + x would add 0.0f first: not folded, as it would turn -0 into +0).
inline F32x16 Splat16(float x) { return F32x16{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

// Horizontal max and sum of 16 lanes by halving (4 dependent steps instead of 15).
inline float HMax16(F32x16 v) {
  F32x16 w = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  v = v > w ? v : w;
  w = __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  v = v > w ? v : w;
  w = __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  v = v > w ? v : w;
  return std::max(v[0], v[1]);
}
inline float HSum16(F32x16 v) {
  v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  return v[0] + v[1];
}

}  // namespace kvc
