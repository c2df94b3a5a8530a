// 16 floats as a GCC vector (AVX-512 here, pairs of AVX2 registers in the x86-64-v3 build that
// valgrind runs) and the few operations the float attention kernels share.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

// These vectors are passed by value only between inline helpers of one build, so the note that
// their ABI differs without AVX-512 (the portable build) does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace kvc {

typedef float F32x16 __attribute__((vector_size(64)));
typedef int32_t I32x16 __attribute__((vector_size(64)));

inline F32x16 Load16(const float* p) {
  F32x16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void Store16(float* p, F32x16 v) { std::memcpy(p, &v, sizeof(v)); }
inline I32x16 LoadI16(const int32_t* p) {
  I32x16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

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

// r[i] = sum of the 16 lanes of v[i]: a butterfly of lane shuffles (15 add steps for 16 sums).
inline F32x16 Reduce16(const F32x16* v) {
  F32x16 c[8], e[4], h[2];
  for (int i = 0; i < 8; ++i) {  // pairs within 128-bit lanes
    c[i] = __builtin_shufflevector(v[2 * i], v[2 * i + 1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25,
                                   12, 28, 13, 29) +
           __builtin_shufflevector(v[2 * i], v[2 * i + 1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11,
                                   27, 14, 30, 15, 31);
  }
  for (int i = 0; i < 4; ++i) {  // each 128-bit lane: partial sums of 4 inputs
    e[i] = __builtin_shufflevector(c[2 * i], c[2 * i + 1], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25,
                                   12, 13, 28, 29) +
           __builtin_shufflevector(c[2 * i], c[2 * i + 1], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26,
                                   27, 14, 15, 30, 31);
  }
  for (int i = 0; i < 2; ++i) {  // across 128-bit lanes
    h[i] = __builtin_shufflevector(e[2 * i], e[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19,
                                   24, 25, 26, 27) +
           __builtin_shufflevector(e[2 * i], e[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22,
                                   23, 28, 29, 30, 31);
  }
  return __builtin_shufflevector(h[0], h[1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26,
                                 27) +
         __builtin_shufflevector(h[0], h[1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30,
                                 31);
}

}  // namespace kvc
