// AVX-512 helpers shared by the matmul kernel files (include only where KVC_MATMUL_AVX512).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "quant/ggml_blocks.h"

namespace kvc::internal {

template <bool kQ4>
struct QFormat {
  static constexpr int kBytes = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
};

// The f16 scales of the blocks [0, nblk) at `g` (nblk <= 16; lanes >= nblk give 0), without a
// gather (about 30 cycles here): scale k sits at 16-bit word kB / 2 * k, so 128-byte windows
// hold 4 (Q8_0) or 8 (Q4_0) scales each and one vpermt2w per window collects them; the in-window
// index of scale k is the same expression for every window.
template <bool kQ4, bool kFull>
inline __m512 LoadScales(const uint8_t* g, int nblk) {
  constexpr int kB = QFormat<kQ4>::kBytes;
  // Window starts in bytes: Q8_0 128 j for j < 4; Q4_0 0 and 144 (words 9 k - 72 for k >= 8).
  constexpr int kWindows = kQ4 ? 2 : 4;
  constexpr int kStride = kQ4 ? 144 : 128;
  constexpr int kPerWindow = 16 / kWindows;
  const __m512i idx = kQ4 ? _mm512_setr_epi32(0x00090000, 0x001b0012, 0x002d0024, 0x003f0036,
                                               0x00090000, 0x001b0012, 0x002d0024, 0x003f0036,
                                               0, 0, 0, 0, 0, 0, 0, 0)
                          : _mm512_setr_epi32(0x00110000, 0x00330022, 0x00150004, 0x00370026,
                                              0x00190008, 0x003b002a, 0x001d000c, 0x003f002e,
                                              0, 0, 0, 0, 0, 0, 0, 0);
  const int valid = nblk * kB;
  __m512i words = _mm512_setzero_si512();
  for (int j = 0; j < kWindows; ++j) {
    const int at = j * kStride;
    if (!kFull && at >= valid) break;
    __m512i lo, hi;
    if (kFull) {
      lo = _mm512_loadu_si512(g + at);
      hi = _mm512_loadu_si512(g + at + 64);
    } else {  // masked: never touch bytes past the row's last block
      auto mask_for = [&](int from) {
        const int n = valid - from;
        return n >= 64 ? ~__mmask64{0} : n <= 0 ? __mmask64{0} : (__mmask64{1} << n) - 1;
      };
      lo = _mm512_maskz_loadu_epi8(mask_for(at), g + at);
      hi = _mm512_maskz_loadu_epi8(mask_for(at + 64), g + at + 64);
    }
    const __mmask32 lanes = ((1u << kPerWindow) - 1) << (j * kPerWindow);
    words = _mm512_mask_mov_epi16(words, lanes, _mm512_permutex2var_epi16(lo, idx, hi));
  }
  if (!kFull) words = _mm512_maskz_mov_epi16((1u << nblk) - 1, words);
  return _mm512_cvtph_ps(_mm512_castsi512_si256(words));
}

// Transposes a 16 x 16 matrix of dwords held as 16 row vectors.
inline void Transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4 i + e], lane L: rows 4i..4i+3, element 4 L + e
    r[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int e = 0; e < 4; ++e) {
    const __m512i ab_lo = _mm512_shuffle_i32x4(r[e], r[4 + e], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i ab_hi = _mm512_shuffle_i32x4(r[e], r[4 + e], _MM_SHUFFLE(3, 2, 3, 2));
    const __m512i cd_lo = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512i cd_hi = _mm512_shuffle_i32x4(r[8 + e], r[12 + e], _MM_SHUFFLE(3, 2, 3, 2));
    t[e] = _mm512_shuffle_i32x4(ab_lo, cd_lo, _MM_SHUFFLE(2, 0, 2, 0));
    t[4 + e] = _mm512_shuffle_i32x4(ab_lo, cd_lo, _MM_SHUFFLE(3, 1, 3, 1));
    t[8 + e] = _mm512_shuffle_i32x4(ab_hi, cd_hi, _MM_SHUFFLE(2, 0, 2, 0));
    t[12 + e] = _mm512_shuffle_i32x4(ab_hi, cd_hi, _MM_SHUFFLE(3, 1, 3, 1));
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace kvc::internal
