#include "quant/act_quant.h"

#include <cmath>

#if defined(__AVX512F__) && defined(__AVX512BW__)
#include <immintrin.h>
#endif

namespace kvc {
namespace {

// Both paths compute the scale the same way so their results are bit-identical.
inline float InvScale(float amax) { return amax != 0.0f ? 127.0f / amax : 0.0f; }

}  // namespace

void QuantizeActsQ8Ref(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sum) {
  for (int64_t b = 0; b < n / kActBlock; ++b) {
    const float* xb = x + b * kActBlock;
    float amax = 0.0f;
    for (int i = 0; i < kActBlock; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float id = InvScale(amax);
    int32_t s = 0;
    for (int i = 0; i < kActBlock; ++i) {
      // nearbyint rounds half to even in the default rounding mode, like cvtps2dq.
      const int q = static_cast<int>(std::nearbyint(xb[i] * id));
      qs[b * kActBlock + i] = static_cast<int8_t>(q);
      s += q;
    }
    d[b] = amax / 127.0f;
    sum[b] = s;
  }
}

void QuantizeActsQ8(const float* x, int64_t n, int8_t* qs, float* d, int32_t* sum) {
#if defined(__AVX512F__) && defined(__AVX512BW__)
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / kActBlock; ++b) {
    const float* xb = x + b * kActBlock;
    const __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
    const __m512 m = _mm512_max_ps(_mm512_and_ps(v0, abs_mask), _mm512_and_ps(v1, abs_mask));
    const float amax = _mm512_reduce_max_ps(m);
    const __m512 id = _mm512_set1_ps(InvScale(amax));
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * kActBlock), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + b * kActBlock + 16),
                     _mm512_cvtepi32_epi8(q1));
    d[b] = amax / 127.0f;
    sum[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  }
#else
  QuantizeActsQ8Ref(x, n, qs, d, sum);
#endif
}

}  // namespace kvc
