// Streaming F32 / F16 / BF16 kernels (AVX-512): four rows share each activation load, two
// accumulators per row hide the FMA latency. F16 converts with vcvtph2ps; BF16 uses vdpbf16ps on
// a bf16 copy of the activations where available, else widens by a 16-bit shift.
#include "kernels/matmul_internal.h"

#if defined(KVC_MATMUL_AVX512)
#include <immintrin.h>
// GCC 12 flags the intentionally undefined upper lanes inside the cast intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

template <DType kT, int R>
void DotRowsF(const uint8_t* const* rows, const float* x, int64_t cols, float* out) {
  __m512 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= cols; c += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_fmadd_ps(LoadW<kT>(rows[r], c), x0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(LoadW<kT>(rows[r], c + 16), x1, acc1[r]);
    }
  }
  for (; c < cols; c += 16) {
    const __mmask16 m = cols - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - c)) - 1);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, x + c);
    for (int r = 0; r < R; ++r) acc0[r] = _mm512_fmadd_ps(LoadW<kT>(rows[r], c, m), x0, acc0[r]);
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
}

#if defined(KVC_MATMUL_BF16)
// x: bf16 activations; 32 weights per vdpbf16ps.
template <int R>
void DotRowsBf16(const uint8_t* const* rows, const uint16_t* x, int64_t cols, float* out) {
  __m512 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  int64_t c = 0;
  auto w_at = [&](int r, int64_t cc) { return reinterpret_cast<const uint16_t*>(rows[r]) + cc; };
  for (; c + 64 <= cols; c += 64) {
    const __m512bh x0 = (__m512bh)_mm512_loadu_si512(x + c);
    const __m512bh x1 = (__m512bh)_mm512_loadu_si512(x + c + 32);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_dpbf16_ps(acc0[r], (__m512bh)_mm512_loadu_si512(w_at(r, c)), x0);
      acc1[r] = _mm512_dpbf16_ps(acc1[r], (__m512bh)_mm512_loadu_si512(w_at(r, c + 32)), x1);
    }
  }
  for (; c < cols; c += 32) {
    const __mmask32 m = cols - c >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << (cols - c)) - 1);
    const __m512bh x0 = (__m512bh)_mm512_maskz_loadu_epi16(m, x + c);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm512_dpbf16_ps(acc0[r], (__m512bh)_mm512_maskz_loadu_epi16(m, w_at(r, c)), x0);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
}
#endif

// Calls fn.template operator()<R>(rows, t, out) over 4-row groups (then the 1..3 left) of
// [r0, r1) and every token.
template <typename Fn>
void ForRowGroups(const MatMulArgs& a, int64_t r0, int64_t r1, Fn&& fn) {
  const uint8_t* rows[4];
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) {
    for (int i = 0; i < 4; ++i) rows[i] = a.w.row(r + i);
    for (int64_t t = 0; t < a.n; ++t) fn.template operator()<4>(rows, t, a.y + t * a.w.rows + r);
  }
  const int rest = static_cast<int>(r1 - r);
  for (int i = 0; i < rest; ++i) rows[i] = a.w.row(r + i);
  for (int64_t t = 0; t < a.n && rest > 0; ++t) {
    float* out = a.y + t * a.w.rows + r;
    if (rest == 1) fn.template operator()<1>(rows, t, out);
    if (rest == 2) fn.template operator()<2>(rows, t, out);
    if (rest == 3) fn.template operator()<3>(rows, t, out);
  }
}

template <DType kT>
void RowsF(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const int64_t cols = a.w.cols;
  ForRowGroups(a, r0, r1, [&]<int R>(const uint8_t* const* rows, int64_t t, float* out) {
    DotRowsF<kT, R>(rows, a.x + t * cols, cols, out);
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
        ForRowGroups(a, r0, r1, [&]<int R>(const uint8_t* const* rows, int64_t t, float* out) {
          DotRowsBf16<R>(rows, a.xbf + t * a.xbf_stride, a.w.cols, out);
        });
        return;
      }
#endif
      return RowsF<DType::kBF16>(a, r0, r1);
    default: return;
  }
}

}  // namespace kvc::internal
#endif  // KVC_MATMUL_AVX512
