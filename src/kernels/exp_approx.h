// e^x for x <= 0 in a few fused multiply-adds, scalar and on 16 lanes: softmax weights (scores
// minus their running maximum) and activations' sigmoids. Relative error ~2e-7, about 2 ulp.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/vec16.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace kvc {

// e^r for |r| <= ln2/2 by its degree-6 Taylor polynomial; T is float or a vector of floats.
template <class T>
inline T ExpReduced(T r) {
  T p = r * 0.0f + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}

// e^x for x <= 0 (scores minus their running maximum), vectorizable: x = n ln2 + r with |r| <=
// ln2/2, e^r by ExpReduced, 2^n through the exponent bits. Relative error ~2e-7.
inline float ExpNonPositive(float x) {
  x = std::max(x, -87.0f);
  const float n = std::nearbyint(x * 1.44269504088896341f);
  const float r = x - n * 0.693145751953125f - n * 1.428606765330187045e-06f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return ExpReduced(r) * scale;
}

#if defined(__AVX512F__)
// GCC 12 flags the placeholder operand inside its own masked intrinsics wherever they inline
// (a known false positive).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// ExpNonPositive on 16 lanes (ExpReduced's polynomial in fused multiply-adds): n by vrndscaleps,
// 2^n by vscalefps.
inline __m512 ExpNonPositive512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 720), r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}
#pragma GCC diagnostic pop
#endif

// ExpNonPositive on 16 lanes (vec16.h).
#if defined(__AVX512F__)
inline F32x16 ExpNonPositive16(F32x16 x) {
  return std::bit_cast<F32x16>(ExpNonPositive512(std::bit_cast<__m512>(x)));
}
#else
inline F32x16 ExpNonPositive16(F32x16 x) {
  const F32x16 floor = F32x16{} - 87.0f;
  x = x > floor ? x : floor;
  const F32x16 shifter = F32x16{} + 12582912.0f;  // adding 1.5 * 2^23 rounds to an integer
  const F32x16 n = (x * 1.44269504088896341f + shifter) - shifter;
  const F32x16 r = x - n * 0.693145751953125f - n * 1.428606765330187045e-06f;
  const I32x16 bits = (__builtin_convertvector(n, I32x16) + 127) << 23;
  return ExpReduced(r) * std::bit_cast<F32x16>(bits);
}
#endif

}  // namespace kvc
