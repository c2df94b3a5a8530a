// Streaming Q8_0 / Q4_0 kernels (AVX-512 VNNI). Memory-bound at n = 1, so the work per byte is
// kept small and regular:
//  * weights become unsigned bytes (Q8_0: w ^ 0x80 = w + 128; Q4_0: the raw nibble = w + 8) so
//    one vpdpbusd multiplies them by the signed activation bytes; the offset times the
//    activation block sum is subtracted once per row at the end (as an f32 term).
//  * two blocks fill one zmm; the 16 f16 block scales of a group are fetched with one gather
//    and converted together instead of one scalar conversion per block.
//  * four rows share each activation load; the rows are read strictly sequentially.
#include "kernels/matmul_internal.h"

#if defined(KVC_MATMUL_VNNI)
#include <immintrin.h>

#include "quant/ggml_blocks.h"

namespace kvc::internal {
namespace {

template <bool kQ4>
struct QFormat {
  static constexpr int kBytes = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  static constexpr float kOffset = kQ4 ? 8.0f : 128.0f;
};

// Blocks at b0 and b1 (b1 == b0 when only one is valid; the activations there are zero) as
// 64 unsigned bytes in activation order.
template <bool kQ4>
inline __m512i LoadPair(const uint8_t* b0, const uint8_t* b1) {
  if constexpr (!kQ4) {
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 2));
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
  } else {
    // 128-bit lanes: [q0, q0, q1, q1]; lanes 1 and 3 take the high nibbles (elements 16..31).
    __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b0 + 2)));
    v = _mm512_mask_broadcast_i32x4(v, 0xff00,
                                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(b1 + 2)));
    v = _mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4);
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
  }
}

// The f16 scales of blocks [0, 16) at `base` (masked lanes give 0).
template <bool kQ4>
inline __m512 LoadScales(const uint8_t* base, __mmask16 m) {
  const __m512i idx = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(QFormat<kQ4>::kBytes));
  const __m512i raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, base, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
}

// acc[r] += sum over the blocks [b0, b0 + nblk) of rows[r], nblk <= 16 (kFull: == 16);
// corr[r] collects dw * dx * sum(qx) for the offset correction.
template <int R, bool kQ4, bool kFull>
inline void Group(const uint8_t* const* rows, const ActBlocksView& x, int64_t b0, int nblk,
                  __m512* acc, __m512* corr) {
  constexpr int kB = QFormat<kQ4>::kBytes;
  const __mmask16 m = kFull ? __mmask16(0xffff) : __mmask16((1u << nblk) - 1);
  // Padding blocks of x have d = 0 and sum = 0, so full-width loads are safe here.
  const __m512 dx = _mm512_load_ps(x.d + b0);
  const __m512 dsx = _mm512_mul_ps(dx, _mm512_cvtepi32_ps(_mm512_load_si512(x.sum + b0)));
  __m512 sv[R];
  for (int r = 0; r < R; ++r) {
    const __m512 dw = LoadScales<kQ4>(rows[r] + b0 * kB, m);
    sv[r] = _mm512_mul_ps(dw, dx);
    corr[r] = _mm512_fmadd_ps(dw, dsx, corr[r]);
  }
  const int npairs = kFull ? 8 : (nblk + 1) / 2;
  const __m512i pair_base = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (int p = 0; p < npairs; ++p) {
    const int64_t b = b0 + 2 * p;
    const bool odd_tail = !kFull && 2 * p + 1 == nblk;
    const __m512i xv = _mm512_load_si512(x.qs + b * kQK);
    const __m512i perm = _mm512_add_epi32(pair_base, _mm512_set1_epi32(2 * p));
    for (int r = 0; r < R; ++r) {
      const uint8_t* blk = rows[r] + b * kB;
      const __m512i wv = LoadPair<kQ4>(blk, odd_tail ? blk : blk + kB);
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv);
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(perm, sv[r]),
                               acc[r]);
    }
  }
}

// out[r * out_stride] = row r . x for R rows of nb blocks each.
template <int R, bool kQ4>
void DotRows(const uint8_t* const* rows, const ActBlocksView& x, int64_t nb, float* out) {
  __m512 acc[R], corr[R];
  for (int r = 0; r < R; ++r) acc[r] = corr[r] = _mm512_setzero_ps();
  int64_t b0 = 0;
  for (; b0 + 16 <= nb; b0 += 16) Group<R, kQ4, true>(rows, x, b0, 16, acc, corr);
  if (b0 < nb) Group<R, kQ4, false>(rows, x, b0, static_cast<int>(nb - b0), acc, corr);
  const __m512 off = _mm512_set1_ps(QFormat<kQ4>::kOffset);
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_fnmadd_ps(off, corr[r], acc[r]));
}

template <bool kQ4>
void Rows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const MatView& w = a.w;
  const int64_t nb = w.cols / kQK;
  constexpr int kR = 4;
  int64_t r = r0;
  const uint8_t* rows[kR];
  for (; r + kR <= r1; r += kR) {
    for (int i = 0; i < kR; ++i) rows[i] = w.row(r + i);
    for (int64_t t = 0; t < a.n; ++t) {
      DotRows<kR, kQ4>(rows, a.qx.Row(t), nb, a.y + t * w.rows + r);
    }
  }
  const int rest = static_cast<int>(r1 - r);
  for (int i = 0; i < rest; ++i) rows[i] = w.row(r + i);
  for (int64_t t = 0; t < a.n && rest > 0; ++t) {
    float* out = a.y + t * w.rows + r;
    if (rest == 1) DotRows<1, kQ4>(rows, a.qx.Row(t), nb, out);
    if (rest == 2) DotRows<2, kQ4>(rows, a.qx.Row(t), nb, out);
    if (rest == 3) DotRows<3, kQ4>(rows, a.qx.Row(t), nb, out);
  }
}

}  // namespace

void Avx512RowsQ(const MatMulArgs& a, int64_t r0, int64_t r1) {
  if (a.w.type == DType::kQ4_0) {
    Rows<true>(a, r0, r1);
  } else {
    Rows<false>(a, r0, r1);
  }
}

}  // namespace kvc::internal
#endif  // KVC_MATMUL_VNNI
