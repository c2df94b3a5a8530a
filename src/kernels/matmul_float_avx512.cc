// Streaming F32 / F16 / BF16 kernels (AVX-512): two rows in lockstep per thread (four for rows
// of 8192 weights and more), four accumulators per row. F16 converts with vcvtph2ps; BF16 uses
// vdpbf16ps on a bf16 copy of the activations where available, else widens by a 16-bit shift.
#include "kernels/matmul_internal.h"

#if defined(KVC_MATMUL_AVX512)
// GCC 12 flags the intentionally undefined upper lanes inside the cast intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

namespace kvc::internal {
namespace {

// 16 weights at element c of a row as f32 (masked lanes read nothing and give 0).
template <DType kT>
inline __m512 LoadW(const void* row, int64_t c, __mmask16 m = 0xffff) {
  if constexpr (kT == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + c);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + c);
    if constexpr (kT == DType::kF16) {
      return _mm512_cvtph_ps(h);
    } else {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
}

// *y[r] = rows[r] . x for R (1 or 2) rows in lockstep, four accumulators per row (FMA latency
// 4, two per cycle), 64 elements per step.
template <DType kT, int R>
void DotRowsF(const uint8_t* const* rows, const float* x, int64_t cols, float* const* y) {
  __m512 acc[R][4];
  for (auto& a : acc) {
    for (__m512& v : a) v = _mm512_setzero_ps();
  }
  int64_t c = 0;
  for (; c + 64 <= cols; c += 64) {
    for (int r = 0; r < R; ++r) {
      for (int k = 0; k < 4; ++k) {
        acc[r][k] = _mm512_fmadd_ps(LoadW<kT>(rows[r], c + 16 * k),
                                    _mm512_loadu_ps(x + c + 16 * k), acc[r][k]);
      }
    }
  }
  for (int k = 0; c < cols; c += 16, ++k) {
    const __mmask16 m = cols - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - c)) - 1);
    const __m512 xv = _mm512_maskz_loadu_ps(m, x + c);
    for (int r = 0; r < R; ++r) acc[r][k] = _mm512_fmadd_ps(LoadW<kT>(rows[r], c, m), xv, acc[r][k]);
  }
  for (int r = 0; r < R; ++r) {
    *y[r] = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
  }
}

#if defined(KVC_MATMUL_BF16)
// x: bf16 activations; 32 weights per vdpbf16ps, four accumulators per row, 128 per step.
template <int R>
void DotRowsBf16(const uint8_t* const* rows, const uint16_t* x, int64_t cols, float* const* y) {
  __m512 acc[R][4];
  for (auto& a : acc) {
    for (__m512& v : a) v = _mm512_setzero_ps();
  }
  auto w = [&](int r) { return reinterpret_cast<const uint16_t*>(rows[r]); };
  int64_t c = 0;
  for (; c + 128 <= cols; c += 128) {
    for (int r = 0; r < R; ++r) {
      for (int k = 0; k < 4; ++k) {
        acc[r][k] = _mm512_dpbf16_ps(acc[r][k], (__m512bh)_mm512_loadu_si512(w(r) + c + 32 * k),
                                     (__m512bh)_mm512_loadu_si512(x + c + 32 * k));
      }
    }
  }
  for (int k = 0; c < cols; c += 32, ++k) {
    const __mmask32 m =
        cols - c >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << (cols - c)) - 1);
    const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x + c);
    for (int r = 0; r < R; ++r) {
      acc[r][k] =
          _mm512_dpbf16_ps(acc[r][k], (__m512bh)_mm512_maskz_loadu_epi16(m, w(r) + c), xv);
    }
  }
  for (int r = 0; r < R; ++r) {
    *y[r] = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
  }
}
#endif

template <DType kT>
void RowsF(const MatMulArgs& a, int64_t r0, int64_t r1) {
  ForRowStreamsByWidth(a, r0, r1, [&]<int R>(const uint8_t* const* rows, int64_t t, float* const* y) {
    DotRowsF<kT, R>(rows, a.x + t * a.w.cols, a.w.cols, y);
  });
}

}  // namespace

void Avx512RowsFloat(const MatMulArgs& a, int64_t r0, int64_t r1) {
  switch (a.w.type) {
    case DType::kF32: return RowsF<DType::kF32>(a, r0, r1);
    case DType::kF16: return RowsF<DType::kF16>(a, r0, r1);
    case DType::kBF16:
#if defined(KVC_MATMUL_BF16)
      if (a.xbf != nullptr) {
        return ForRowStreamsByWidth(a, r0, r1, [&]<int R>(const uint8_t* const* rows, int64_t t, float* const* y) {
          DotRowsBf16<R>(rows, a.xbf + t * a.xbf_stride, a.w.cols, y);
        });
      }
#endif
      return RowsF<DType::kBF16>(a, r0, r1);
    default: return;
  }
}

}  // namespace kvc::internal
#endif  // KVC_MATMUL_AVX512
