// Streaming Q8_0 / Q4_0 kernels (AVX-512 VNNI + VBMI). Decode is memory-bound, so the work per
// weight byte is kept below what the memory system delivers (this core sustains only about two
// zmm operations per cycle, so operation count is what matters):
//  * weights become unsigned bytes (Q8_0: w ^ 0x80 = w + 128; Q4_0: the raw nibble = w + 8) so
//    one vpdpbusd multiplies them by the signed activation bytes; the offset times the
//    activation sum is removed exactly in the integer accumulators, which start at
//    -offset * sum(x) of their block (Q8_0: -128, Q4_0: -8).
//  * the 16 f16 block scales of a group are collected with word permutes and converted
//    together instead of one scalar conversion per block.
//  * Q8_0_R16 rows (quant/block_r16.h, repacked at load) need one aligned load, one XOR and one
//    vpdpbusd per 64 weight bytes, and one convert and FMA per 16 blocks; Q4_0_R16 rows one
//    load, two masks and two vpdpbusd per 64 bytes (128 weights).
//  * each thread streams two rows in lockstep (two interleaved sequential streams; four for the
//    R16 layouts' rows of 8192 weights and more), with loads of at most 32 bytes (R16: aligned
//    64): what the memory system here serves fastest.
#include "kernels/matmul_internal.h"

#if defined(KVC_MATMUL_VNNI)
// GCC 12 flags the intentionally undefined upper lanes inside the cast intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "kernels/matmul_simd_avx512.h"
#include "quant/block_r16.h"
#include "quant/ggml_blocks.h"

namespace kvc::internal {
namespace {

// Q8_0 blocks at b0 and b1 (b1 == b0 when only one is valid; the activations there are zero) as
// 64 unsigned bytes w + 128 in activation order.
inline __m512i LoadPairQ8(const uint8_t* b0, const uint8_t* b1) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 2));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 2));
  const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
}

// ---- Q8_0: two blocks per vpdpbusd. ----

// acc[] += the blocks [b0, b0 + nblk) of `row` (nblk <= 16; kFull: == 16), spread over four
// accumulators. Each block's integer accumulator starts at -128 sum(qx) (in its first lane), so
// the vpdpbusd of w + 128 with qx is the exact signed dot product before any float rounding:
// removing the offset later in f32 would cancel terms 128 times larger than the result.
template <bool kFull>
inline void GroupQ8(const uint8_t* row, const ActBlocksView& x, int64_t b0, int nblk, __m512* acc) {
  constexpr int kB = sizeof(BlockQ8_0);
  // Padding blocks of x have d = 0 and sum = 0, so full-width loads are safe here.
  const __m512 dx = _mm512_load_ps(x.d + b0);
  const __m512i offset = _mm512_mullo_epi32(_mm512_load_si512(x.sum + b0), _mm512_set1_epi32(-128));
  const __m512 dw = LoadScales<false, kFull>(row + b0 * kB, nblk);
  const __m512 sv = _mm512_mul_ps(dw, dx);
  const int npairs = kFull ? 8 : (nblk + 1) / 2;
  const __m512i pair_base = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (int p = 0; p < npairs; ++p) {
    const int64_t b = b0 + 2 * p;
    const uint8_t* blk = row + b * kB;
    const bool odd_tail = !kFull && 2 * p + 1 == nblk;
    const __m512i wv = LoadPairQ8(blk, odd_tail ? blk : blk + kB);
    const __m512i perm = _mm512_add_epi32(pair_base, _mm512_set1_epi32(2 * p));
    const __m512i init = _mm512_maskz_permutexvar_epi32(0x0101, perm, offset);
    const __m512i dot = _mm512_dpbusd_epi32(init, wv, _mm512_load_si512(x.qs + b * kQK));
    acc[p & 3] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(perm, sv),
                                 acc[p & 3]);
  }
}

// y[r] = rows[r] . x over nb blocks for R (1 or 2) rows in lockstep, group by group.
template <int R>
void DotRowsQ8(const uint8_t* const* rows, const ActBlocksView& x, int64_t nb, float* const* y) {
  __m512 acc[R][4];
  for (int r = 0; r < R; ++r) {
    for (__m512& v : acc[r]) v = _mm512_setzero_ps();
  }
  int64_t b0 = 0;
  for (; b0 + 16 <= nb; b0 += 16) {
    for (int r = 0; r < R; ++r) GroupQ8<true>(rows[r], x, b0, 16, acc[r]);
  }
  if (b0 < nb) {
    for (int r = 0; r < R; ++r) GroupQ8<false>(rows[r], x, b0, static_cast<int>(nb - b0), acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    *y[r] = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
  }
}

// ---- Q4_0: four blocks per step against activations repacked once per call. ----
// The 16 packed bytes of four blocks are gathered with 16-byte loads (wider unaligned loads
// stream measurably slower from DRAM on this core), split into low and high nibbles, and dotted
// with the matching activation halves; both products land in the same lanes, so one convert and
// one FMA serve four blocks. The nibbles are w + 8; the accumulator starts at -8 sum(x).
template <bool kFull>
inline void GroupQ4(const uint8_t* row, const ActBlocksView& x, const Q4ActUnit* xu, int64_t b0,
                    int nblk, __m512* acc) {
  const __m512 sv =
      _mm512_mul_ps(LoadScales<true, kFull>(row + b0 * 18, nblk), _mm512_load_ps(x.d + b0));
  const int units = kFull ? 4 : (nblk + 3) / 4;
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i lane_blk = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (int u = 0; u < units; ++u) {
    const uint8_t* p = row + (b0 + 4 * u) * 18 + 2;
    // In a partial unit, missing blocks repeat the last one: their activations are zero.
    const int have = kFull ? 4 : std::min(4, nblk - 4 * u);
    const int i1 = have > 1 ? 1 : 0, i2 = have > 2 ? 2 : i1, i3 = have > 3 ? 3 : i2;
    auto load16 = [&](int i) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18 * i));
    };
    __m512i z = _mm512_castsi128_si512(load16(0));
    z = _mm512_inserti32x4(z, load16(i1), 1);
    z = _mm512_inserti32x4(z, load16(i2), 2);
    z = _mm512_inserti32x4(z, load16(i3), 3);
    const __m512i lo = _mm512_and_si512(z, low4);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), low4);
    const Q4ActUnit* xv = xu + b0 / 4 + u;
    __m512i dot = _mm512_load_si512(xv->init);
    dot = _mm512_dpbusd_epi32(dot, lo, _mm512_load_si512(xv->lo));
    dot = _mm512_dpbusd_epi32(dot, hi, _mm512_load_si512(xv->hi));
    const __m512 scale =
        _mm512_permutexvar_ps(_mm512_add_epi32(lane_blk, _mm512_set1_epi32(4 * u)), sv);
    acc[u & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[u & 1]);
  }
}

template <int R>
void DotRowsQ4(const uint8_t* const* rows, const ActBlocksView& x, const Q4ActUnit* xu, int64_t nb,
               float* const* y) {
  __m512 acc[R][2];
  for (auto& a : acc) a[0] = a[1] = _mm512_setzero_ps();
  int64_t b0 = 0;
  for (; b0 + 16 <= nb; b0 += 16) {
    for (int r = 0; r < R; ++r) GroupQ4<true>(rows[r], x, xu, b0, 16, acc[r]);
  }
  if (b0 < nb) {
    for (int r = 0; r < R; ++r) GroupQ4<false>(rows[r], x, xu, b0, static_cast<int>(nb - b0), acc[r]);
  }
  for (int r = 0; r < R; ++r) *y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
}

// ---- Q8_0_R16 / Q4_0_R16: one vpdpbusd advances 16 blocks (quant/block_r16.h). ----
// Per row and group of 16 blocks, two integer chains, then one convert and one FMA apply the 16
// block scales. Q8_0: the group's 8 vectors (w + 128 by an XOR) alternate between the chains,
// the first started at -128 sum(x). Q4_0: each of the 4 vectors meets activation vector k with
// its low nibbles (first chain, started at -8 sum(x) over both halves) and vector k + 4 with its
// high ones, used in place (w & 0xF0 = 16 x nibble, one operation instead of a shift and a
// mask): the second chain holds 16 times its dot, exactly, and is shifted back once per group.
template <typename Block, int R>
void DotRowsR16(const uint8_t* const* rows, const float* dx, const R16ActGroup* xg, int64_t nb,
                float* const* y) {
  constexpr bool kQ4 = std::is_same_v<Block, BlockQ4_0>;
  constexpr int64_t kQ = kQuantBytes<Block>, kGroup = kR16Blocks * kQ;
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8(static_cast<char>(0xF0));
  int64_t lead[R];
  __m512 acc[R];
  for (int r = 0; r < R; ++r) {
    lead[r] = R16Lead(rows[r], nb);
    acc[r] = _mm512_setzero_ps();
  }
  for (int64_t g = 0; g < nb / kR16Blocks; ++g) {
    const __m512i init = _mm512_load_si512(xg[g].init);
    __m512i d0[R], d1[R];
    for (int r = 0; r < R; ++r) {
      d0[r] = init;
      d1[r] = _mm512_setzero_si512();
    }
    const uint8_t* x = reinterpret_cast<const uint8_t*>(xg[g].qs);
    if constexpr (kQ4) {
      for (int k = 0; k < 4; ++k) {
        const __m512i x_lo = _mm512_load_si512(x + 64 * k);
        const __m512i x_hi = _mm512_load_si512(x + 64 * k + 256);
        for (int r = 0; r < R; ++r) {
          const __m512i v = _mm512_load_si512(rows[r] + lead[r] + g * kGroup + 64 * k);
          d0[r] = _mm512_dpbusd_epi32(d0[r], _mm512_and_si512(v, low), x_lo);
          d1[r] = _mm512_dpbusd_epi32(d1[r], _mm512_and_si512(v, high), x_hi);
        }
      }
    } else {
      for (int k = 0; k < 8; k += 2) {
        const __m512i x0 = _mm512_load_si512(x + 64 * k);
        const __m512i x1 = _mm512_load_si512(x + 64 * k + 64);
        for (int r = 0; r < R; ++r) {
          const uint8_t* q = rows[r] + lead[r] + g * kGroup + 64 * k;
          d0[r] = _mm512_dpbusd_epi32(d0[r], _mm512_xor_si512(_mm512_load_si512(q), bias), x0);
        }
        for (int r = 0; r < R; ++r) {
          const uint8_t* q = rows[r] + lead[r] + g * kGroup + 64 * k + 64;
          d1[r] = _mm512_dpbusd_epi32(d1[r], _mm512_xor_si512(_mm512_load_si512(q), bias), x1);
        }
      }
    }
    const __m512 dxg = _mm512_load_ps(dx + g * kR16Blocks);
    for (int r = 0; r < R; ++r) {
      const __m256i h = _mm256_load_si256(
          reinterpret_cast<const __m256i*>(rows[r] + R16ScaleOffset(lead[r], nb, g, kQ)));
      const __m512i dot = _mm512_add_epi32(d0[r], kQ4 ? _mm512_srai_epi32(d1[r], 4) : d1[r]);
      acc[r] =
          _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(_mm512_cvtph_ps(h), dxg), acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) *y[r] = _mm512_reduce_add_ps(acc[r]);
}

}  // namespace

void Avx512RowsQ(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const int64_t nb = a.w.cols / kQK;
  if (a.w.type == DType::kQ4_0) {
    ForRowPairs(a, r0, r1, [&]<int R>(const uint8_t* const* rows, int64_t t, float* const* y) {
      DotRowsQ4<R>(rows, a.qx.Row(t), a.xq4 + t * a.xq4_stride, nb, y);
    });
  } else if (IsR16(a.w.type)) {
    const bool q8 = a.w.type == DType::kQ8_0_R16;
    auto dot = [&]<int R>(const uint8_t* const* rows, int64_t t, float* const* y) {
      const float* dx = a.qx.Row(t).d;
      const R16ActGroup* xg = a.xr16 + t * a.xr16_stride;
      if (q8) {
        DotRowsR16<BlockQ8_0, R>(rows, dx, xg, nb, y);
      } else {
        DotRowsR16<BlockQ4_0, R>(rows, dx, xg, nb, y);
      }
    };
    ForRowStreamsByWidth(a, r0, r1, dot);
  } else {
    ForRowPairs(a, r0, r1, [&]<int R>(const uint8_t* const* rows, int64_t t, float* const* y) {
      DotRowsQ8<R>(rows, a.qx.Row(t), nb, y);
    });
  }
}

const Q4ActUnit* PackActsQ4(const QuantizedActs& q, int64_t n, int64_t cols, ScratchBuffer* buf,
                            int64_t* stride) {
  const int64_t nb = cols / kQK;
  const int64_t units = (nb + 3) / 4;  // the padded activations cover whole units
  *stride = units;
  auto* out = static_cast<Q4ActUnit*>(buf->Get(static_cast<size_t>(n * units) * sizeof(Q4ActUnit)));
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512i dx_idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  for (int64_t t = 0; t < n; ++t) {
    const ActBlocksView x = q.Row(t);
    for (int64_t u = 0; u < units; ++u) {
      // The padded activation row (zeros past cols) covers whole units.
      const __m512i x01 = _mm512_load_si512(x.qs + u * 128);
      const __m512i x23 = _mm512_load_si512(x.qs + u * 128 + 64);
      // 128-bit lanes: lo = first halves of blocks 0..3, hi = second halves.
      const __m512i lo = _mm512_shuffle_i64x2(x01, x23, _MM_SHUFFLE(2, 0, 2, 0));
      const __m512i hi = _mm512_shuffle_i64x2(x01, x23, _MM_SHUFFLE(3, 1, 3, 1));
      Q4ActUnit* o = out + t * units + u;
      _mm512_store_si512(o->lo, lo);
      _mm512_store_si512(o->hi, hi);
      // -8 * (sum of the 8 activations each lane multiplies): weights are fed as w + 8.
      const __m512i sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, lo), ones, hi);
      _mm512_store_si512(o->init, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sums, 3)));
      const __m512 d4 = _mm512_castps128_ps512(_mm_load_ps(x.d + u * 4));
      _mm512_store_ps(o->dx, _mm512_permutexvar_ps(dx_idx, d4));
    }
  }
  return out;
}

const R16ActGroup* PackActsR16(const QuantizedActs& q, int64_t n, int64_t cols, int32_t offset,
                               ScratchBuffer* buf, int64_t* stride) {
  const int64_t groups = cols / kR16GroupElems;
  *stride = groups;
  const size_t bytes = static_cast<size_t>(n * groups) * sizeof(R16ActGroup);
  auto* out = static_cast<R16ActGroup*>(buf->Get(bytes));
  // Dword j of block l lands in lane l of vector j: a 16 x 8 dword transpose per group.
  const __m512i lanes = _mm512_setr_epi32(0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104,
                                          112, 120);
  for (int64_t t = 0; t < n; ++t) {
    const ActBlocksView x = q.Row(t);
    for (int64_t g = 0; g < groups; ++g) {
      const auto* src = reinterpret_cast<const int*>(x.qs + g * kR16GroupElems);
      R16ActGroup& o = out[t * groups + g];
      for (int j = 0; j < 8; ++j) {
        const __m512i idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(j));
        _mm512_store_si512(o.qs + 64 * j, _mm512_i32gather_epi32(idx, src, 4));
      }
      const __m512i sum = _mm512_loadu_si512(x.sum + g * kR16Blocks);
      _mm512_store_si512(o.init, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-offset)));
    }
  }
  return out;
}

}  // namespace kvc::internal
#endif  // KVC_MATMUL_VNNI
