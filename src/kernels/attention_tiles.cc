// Decode/prefill attention over tiled q8/q4 sides (tensor/kv_view.h: KVTiling), AVX-512 VNNI.
//
// Per KV head, 64 slots (four 16-slot tiles) at a time:
//   * scores: a key tile is head_dim / 4 registers of 16 keys x 4 u8 codes (q8: codes + 128; q4:
//     one load gives two registers, low and high nibbles), so one vpdpbusd per register scores 16
//     keys for a query head rounded to int8 (RoundQueries), with no transposes; per segment,
//     score += S_k s_q (dot - Z_k sum(q codes)) with Z_k = 128 for q8, the key's zero point for q4;
//   * online softmax fused with the value weights (ExpRow, WeighHead); slots of the tiles
//     outside the query's range get -inf;
//   * values: the weight of slot t in value group g, e[t] |S[t][g]| with e = e^(score - the
//     step's top score), is rounded to u8 against the step's largest (u = round(255 e |S| /
//     S_max)), and a value tile's 16 elements x 4 slots per register are summed with one
//     vpdpbusd per query head (q4: the codes of negative-scale groups mirrored, the zero points'
//     share kept in lanes and subtracted once per head); once per 64 slots the int32 sums are
//     scaled back by P S_max / 255 (P: the top score's softmax weight) into the f32 accumulators.
// The tiles of the next step (the next 64 slots of the same head) are prefetched, each in one
// burst before a tile is scored: spreading the lines over the arithmetic, or fetching further
// ahead, measured slower from DRAM (docs/BENCHMARKS.md).
#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/attention_internal.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__F16C__)
#define KVC_TILES 1
#include <immintrin.h>
// GCC 12 flags the intentionally undefined upper lanes inside the conversion intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace kvc::attention_internal {

#if KVC_TILES
namespace {

constexpr int32_t kTiles = kMaxTile / kKVTileSlots;  // tiles per step
constexpr int32_t kMaxGroups = kMaxHeadDim / 16;

// Bytes of codes in a tile (the f16 scales follow, then q4's zero points).
template <KVType T>
constexpr size_t TileCodeBytes(int32_t hd) {
  return static_cast<size_t>(hd) * kKVTileSlots / (T == KVType::kQ8 ? 1 : 2);
}

// The u8 codes of 16 keys (q8: + 128) for elements 4c .. 4c + 3 of a key tile. q4 keeps two
// such columns per load (low and high nibbles), so its column 2i + 1 reuses column 2i's load.
template <KVType T>
inline __m512i KeyColumn(const uint8_t* tile, int c, __m512i* held) {
  if constexpr (T == KVType::kQ8) return _mm512_loadu_si512(tile + static_cast<size_t>(c) * 64);
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  if (c % 2 == 0) {
    *held = _mm512_loadu_si512(tile + static_cast<size_t>(c / 2) * 64);
    return _mm512_and_si512(*held, nibble);
  }
  return _mm512_and_si512(_mm512_srli_epi16(*held, 4), nibble);
}

// Scores of the 16 keys of NT consecutive tiles for HB query heads into p[j][16 i, 16 i + 16).
// Everything is a compile-time constant so that the NT * HB * NSEG accumulators live in
// registers; a query broadcast serves the NT tiles. NSEG: segments of min(g, 64) elements per
// row. Per segment, score = S_k s_q (dot - Z_k sum(q codes)), with the zero point Z_k = 128 for
// q8 (the integer sums start at -128 sum(q codes)) and per key and group for q4 (kz).
template <KVType T, int HD, int NSEG, int HB, int NT>
void ScoreTileBatch(const uint8_t* const* tiles, const __m512 (*ks)[kMaxGroups], const __m512 (*kz)[kMaxGroups],
                    int32_t segs_per_group, const Int8Query* q, float* const* p) {
  constexpr int kCols = HD / 4 / NSEG;  // 4-element columns per segment
  __m512i acc[NT][HB][NSEG];
  __m512i held[NT];
#pragma GCC unroll 16
  for (int sg = 0; sg < NSEG; ++sg) {
#pragma GCC unroll 16
    for (int i = 0; i < NT; ++i) {
#pragma GCC unroll 16
      for (int j = 0; j < HB; ++j) {
        acc[i][j][sg] = T == KVType::kQ8 ? _mm512_set1_epi32(q[j].minus_128_sum[sg]) : _mm512_setzero_si512();
      }
    }
#pragma GCC unroll 16
    for (int c = sg * kCols; c < (sg + 1) * kCols; ++c) {
      __m512i k[NT];
#pragma GCC unroll 16
      for (int i = 0; i < NT; ++i) k[i] = KeyColumn<T>(tiles[i], c, &held[i]);
#pragma GCC unroll 16
      for (int j = 0; j < HB; ++j) {
        int32_t qd;
        std::memcpy(&qd, q[j].codes + 4 * c, 4);
        const __m512i qb = _mm512_set1_epi32(qd);
#pragma GCC unroll 16
        for (int i = 0; i < NT; ++i) acc[i][j][sg] = _mm512_dpbusd_epi32(acc[i][j][sg], k[i], qb);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < NT; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < HB; ++j) {
      __m512 score = _mm512_setzero_ps();
#pragma GCC unroll 16
      for (int sg = 0; sg < NSEG; ++sg) {
        const int grp = sg / segs_per_group;
        __m512 dot = _mm512_cvtepi32_ps(acc[i][j][sg]);  // q8: the -128 sum(q) started the sum
        if constexpr (T == KVType::kQ4) dot = _mm512_fnmadd_ps(kz[i][grp], _mm512_set1_ps(q[j].sum[sg]), dot);
        score = _mm512_fmadd_ps(dot, _mm512_mul_ps(ks[i][grp], _mm512_set1_ps(q[j].scale[sg])), score);
      }
      _mm512_storeu_ps(p[j] + kKVTileSlots * i, score);
    }
  }
}

// The 16 lanes' u8 parameters at p as floats.
inline __m512 U8Lanes(const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

// Scores of NT (1 or 2) consecutive tiles for query heads [0, heads), in batches of up to
// 16 / (NT NSEG) heads (at most 4).
template <KVType T, int HD, int NSEG, int NT>
void ScoreTilesN(const uint8_t* const* tiles, int32_t g, const Int8Query* q, int32_t heads, float* const* p) {
  constexpr int kBatch = std::min(4, std::max(1, 16 / (NSEG * NT)));
  const int32_t segs_per_group = std::max(1, g / 64), groups = HD / g;
  __m512 ks[NT][kMaxGroups], kz[NT][kMaxGroups];
  for (int i = 0; i < NT; ++i) {
    const uint8_t* scales = tiles[i] + TileCodeBytes<T>(HD);
    for (int32_t grp = 0; grp < groups; ++grp) {
      ks[i][grp] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + grp * 32)));
      if constexpr (T == KVType::kQ4) kz[i][grp] = U8Lanes(scales + groups * 32 + grp * 16);
    }
  }
  int32_t j = 0;
  for (; j + kBatch <= heads; j += kBatch) {
    ScoreTileBatch<T, HD, NSEG, kBatch, NT>(tiles, ks, kz, segs_per_group, q + j, p + j);
  }
  switch (heads - j) {
    case 0: break;
    case 1: ScoreTileBatch<T, HD, NSEG, 1, NT>(tiles, ks, kz, segs_per_group, q + j, p + j); break;
    case 2: ScoreTileBatch<T, HD, NSEG, std::min(2, kBatch), NT>(tiles, ks, kz, segs_per_group, q + j, p + j); break;
    default: ScoreTileBatch<T, HD, NSEG, std::min(3, kBatch), NT>(tiles, ks, kz, segs_per_group, q + j, p + j); break;
  }
}

// Scores of n (1 or 2) consecutive tiles.
template <KVType T, int HD, int NSEG>
void ScoreTiles(const uint8_t* const* tiles, int32_t n, int32_t g, const Int8Query* q, int32_t heads,
                float* const* p) {
  if (n == 2) {
    ScoreTilesN<T, HD, NSEG, 2>(tiles, g, q, heads, p);
  } else {
    ScoreTilesN<T, HD, NSEG, 1>(tiles, g, q, heads, p);
  }
}

using ScoreTileFn = void (*)(const uint8_t* const*, int32_t, int32_t, const Int8Query*, int32_t, float* const*);

template <KVType T, int HD>
ScoreTileFn ScoreTileFor(int32_t nseg) {
  if constexpr (HD >= 64) {
    if (nseg == HD / 64) return ScoreTiles<T, HD, HD / 64>;
  }
  if (nseg == HD / 32) return ScoreTiles<T, HD, HD / 32>;
  return ScoreTiles<T, HD, HD / 16>;
}

template <KVType T>
ScoreTileFn ScoreTileFor(int32_t hd, int32_t nseg) {
  switch (hd) {
    case 32: return ScoreTileFor<T, 32>(nseg);
    case 64: return ScoreTileFor<T, 64>(nseg);
    case 128: return ScoreTileFor<T, 128>(nseg);
    default: return ScoreTileFor<T, 256>(nseg);
  }
}

// sum[j] += the u8-weighted codes of ns value tiles for HB query heads (NV registers each, RPG of
// them per value group). Each value load serves the HB heads, and each weight broadcast the RPG
// registers of its group. q8: 4 quads of 4 slots per tile; q4: 2 octets, whose low nibbles are
// their first 4 slots and high nibbles the other 4. q4 groups may have negative scales, which
// S (q - Z) = |S| ((15 - q) - (15 - Z)) turns positive: flip[g][2 s + octet] XORs those slots'
// codes with 15 (Z was mirrored by the caller, and its share is subtracted per head, WeighHead).
template <KVType T, int NV, int RPG, int HB, bool kMirror>
void SumTilesBatch(const uint8_t* const* tiles, int32_t ns, const uint8_t (*u)[kMaxGroups][kMaxTile],
                   const float (*back)[kMaxGroups], const uint32_t (*flip)[2 * kTiles], const float* corr,
                   float* acc) {
  constexpr int32_t hd = 16 * NV;
  constexpr int kParts = T == KVType::kQ8 ? 4 : 2;  // loads of 16 elements per tile and register
  constexpr int kSlots = kKVTileSlots / kParts;    // slots per load
  __m512i sum[HB][NV];
#pragma GCC unroll 16
  for (int j = 0; j < HB; ++j) {
#pragma GCC unroll 16
    for (int e = 0; e < NV; ++e) sum[j][e] = _mm512_setzero_si512();
  }
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  for (int32_t s = 0; s < ns; ++s) {
    for (int part = 0; part < kParts; ++part) {
      const uint8_t* codes = tiles[s] + static_cast<size_t>(part) * hd * 4;
      const int32_t t = kKVTileSlots * s + kSlots * part;
#pragma GCC unroll 16
      for (int grp = 0; grp < NV / RPG; ++grp) {
        const __m512i flips = kMirror ? _mm512_set1_epi32(static_cast<int32_t>(flip[grp][2 * s + part]))
                                      : _mm512_setzero_si512();
        __m512i w[HB], w_hi[HB];
#pragma GCC unroll 16
        for (int j = 0; j < HB; ++j) {
          int32_t x;
          std::memcpy(&x, &u[j][grp][t], 4);
          w[j] = _mm512_set1_epi32(x);
          if constexpr (T == KVType::kQ4) {
            std::memcpy(&x, &u[j][grp][t + 4], 4);
            w_hi[j] = _mm512_set1_epi32(x);
          }
        }
#pragma GCC unroll 16
        for (int e = grp * RPG; e < (grp + 1) * RPG; ++e) {
          __m512i v = _mm512_loadu_si512(codes + 64 * e);
          __asm__("" : "+v"(v));  // one load for all heads, not one folded into each vpdpbusd
          if constexpr (T == KVType::kQ8) {
#pragma GCC unroll 16
            for (int j = 0; j < HB; ++j) sum[j][e] = _mm512_dpbusd_epi32(sum[j][e], w[j], v);
          } else {
            if constexpr (kMirror) v = _mm512_xor_si512(v, flips);
            const __m512i lo = _mm512_and_si512(v, nibble);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble);
#pragma GCC unroll 16
            for (int j = 0; j < HB; ++j) {
              sum[j][e] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(sum[j][e], w[j], lo), w_hi[j], hi);
            }
          }
        }
      }
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < HB; ++j) {
    float* a = acc + static_cast<size_t>(j) * hd;
    const __m512 c = _mm512_set1_ps(corr[j]);
#pragma GCC unroll 16
    for (int e = 0; e < NV; ++e) {
      const __m512 b = _mm512_set1_ps(back[j][e / RPG]);
      const __m512 x = _mm512_cvtepi32_ps(sum[j][e]);
      _mm512_storeu_ps(a + 16 * e, _mm512_fmadd_ps(x, b, _mm512_mul_ps(_mm512_loadu_ps(a + 16 * e), c)));
    }
  }
}

// acc[j] = acc[j] * corr[j] + back[j][g] sum_t u[j][g][t] v[t] over ns tiles (q4: v's codes), for
// query heads [0, heads) in batches of up to 16 / NV (at most 4); NV = head_dim / 16,
// RPG = group / 16. mirror: some q4 slots have negative scales (flip is not all zero).
template <KVType T, int NV, int RPG, bool kMirror>
void SumValuesMirrored(const uint8_t* const* tiles, int32_t ns, const uint8_t (*u)[kMaxGroups][kMaxTile],
                       const float (*back)[kMaxGroups], const uint32_t (*flip)[2 * kTiles], const float* corr,
                       int32_t heads, float* acc) {
  constexpr int kBatch = std::min(4, std::max(1, 16 / NV));
  constexpr int32_t hd = 16 * NV;
  int32_t j = 0;
  for (; j + kBatch <= heads; j += kBatch) {
    SumTilesBatch<T, NV, RPG, kBatch, kMirror>(tiles, ns, u + j, back + j, flip, corr + j, acc + static_cast<size_t>(j) * hd);
  }
  float* a = acc + static_cast<size_t>(j) * hd;
  switch (heads - j) {
    case 0: break;
    case 1: SumTilesBatch<T, NV, RPG, 1, kMirror>(tiles, ns, u + j, back + j, flip, corr + j, a); break;
    case 2: SumTilesBatch<T, NV, RPG, std::min(2, kBatch), kMirror>(tiles, ns, u + j, back + j, flip, corr + j, a); break;
    default: SumTilesBatch<T, NV, RPG, std::min(3, kBatch), kMirror>(tiles, ns, u + j, back + j, flip, corr + j, a); break;
  }
}

template <KVType T, int NV, int RPG>
void SumValues(const uint8_t* const* tiles, int32_t ns, const uint8_t (*u)[kMaxGroups][kMaxTile],
               const float (*back)[kMaxGroups], const uint32_t (*flip)[2 * kTiles], bool mirror,
               const float* corr, int32_t heads, float* acc) {
  if (T == KVType::kQ4 && mirror) {
    SumValuesMirrored<T, NV, RPG, true>(tiles, ns, u, back, flip, corr, heads, acc);
  } else {
    SumValuesMirrored<T, NV, RPG, false>(tiles, ns, u, back, flip, corr, heads, acc);
  }
}

using SumValuesFn = void (*)(const uint8_t* const*, int32_t, const uint8_t (*)[kMaxGroups][kMaxTile],
                             const float (*)[kMaxGroups], const uint32_t (*)[2 * kTiles], bool, const float*,
                             int32_t, float*);

template <KVType T, int NV>
SumValuesFn SumValuesFor(int32_t g) {
  if constexpr (NV >= 16) if (g == 256) return SumValues<T, NV, 16>;
  if constexpr (NV >= 8) if (g == 128) return SumValues<T, NV, 8>;
  if constexpr (NV >= 4) if (g == 64) return SumValues<T, NV, 4>;
  if (g == 32) return SumValues<T, NV, 2>;
  return SumValues<T, NV, 1>;
}

template <KVType T>
SumValuesFn SumValuesFor(int32_t hd, int32_t g) {
  switch (hd) {
    case 32: return SumValuesFor<T, 2>(g);
    case 64: return SumValuesFor<T, 4>(g);
    case 128: return SumValuesFor<T, 8>(g);
    default: return SumValuesFor<T, 16>(g);
  }
}

// One step's online-softmax update for query heads [j0, j0 + live) (live <= 16), whose largest
// scores are top: the new running maxima m' (into m), corr = e^(m - m') rescales the earlier
// sums, p_max = e^(top - m') is the weight of the step's largest score. Vectorized over heads:
// per head these were scalar exponentials in one long dependency chain.
inline void UpdateMaxima(int32_t live, __m512 top, float* m, float* corr, float* p_max) {
  const __mmask16 lanes = static_cast<__mmask16>(live >= 16 ? 0xFFFF : (1u << live) - 1);
  const __m512 old_m = _mm512_maskz_loadu_ps(lanes, m);
  const __m512 new_m = _mm512_max_ps(old_m, top);
  _mm512_mask_storeu_ps(corr, lanes, ExpNonPositive512(_mm512_sub_ps(old_m, new_m)));
  _mm512_mask_storeu_ps(p_max, lanes, ExpNonPositive512(_mm512_sub_ps(top, new_m)));  // >= e^-87
  _mm512_mask_storeu_ps(m, lanes, new_m);
}

// e[v] = e^(p[16 v, 16 v + 16) - top) for one head's row of 64 scores, as 2^y with y = (p - top)
// log2(e) from one multiply-add (ulps of the score's size; the weights are rounded to 8 bits) and
// 2^(y - round(y)) a degree-4 fit (relative error 2.6e-6: 255 e moves by under 1e-3, so a
// weight's rounding changes only near a tie). The 4 vectors go in lockstep, so that the
// polynomial's chain of dependent multiply-adds is one chain of independent ones; the weights are
// computed from them in registers (WeighHead).
inline void ExpRow(const float* p, float top, __m512* e) {
  constexpr float kLog2e = 1.44269504088896341f;
  // Relative-error minimax coefficients of 2^y on [-0.5, 0.5] (Remez), highest degree first.
  constexpr float kC[] = {9.57010191e-3f, 5.59178603e-2f, 0.240247448f, 0.693121815f, 0.999999261f};
  const __m512 top_log2 = _mm512_set1_ps(top * kLog2e);
  __m512 y[kTiles], n[kTiles], x[kTiles];
#pragma GCC unroll 4
  for (int v = 0; v < kTiles; ++v) {
    y[v] =
        _mm512_max_ps(_mm512_fmsub_ps(_mm512_load_ps(p + 16 * v), _mm512_set1_ps(kLog2e), top_log2),
                      _mm512_set1_ps(-126.0f));  // -inf lanes too: 2^-126 stays normal
    n[v] = _mm512_roundscale_ps(y[v], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    y[v] = _mm512_sub_ps(y[v], n[v]);  // in [-0.5, 0.5]
    x[v] = _mm512_fmadd_ps(_mm512_set1_ps(kC[0]), y[v], _mm512_set1_ps(kC[1]));
  }
#pragma GCC unroll 4
  for (int k = 2; k < 5; ++k) {
#pragma GCC unroll 4
    for (int v = 0; v < kTiles; ++v) x[v] = _mm512_fmadd_ps(x[v], y[v], _mm512_set1_ps(kC[k]));
  }
#pragma GCC unroll 4
  for (int v = 0; v < kTiles; ++v) e[v] = _mm512_scalef_ps(x[v], n[v]);
}

// One query head's value weights for a step of 64 weights e = e^(score - top) (ExpRow; the
// largest is 1 up to the fit; lanes outside the query's range hold 2^-126 and 0 in vnorm): per
// value group u = round(e vnorm) with vnorm = 255 |S| / S_max (packed with unsigned saturation,
// so u <= 255). The head's state is kept in lanes so that no step reduces across them: l_lanes
// (l, rescaled by corr, grows by P sum e, with P = p_max) and, with zero points (q4 values, zb: a
// byte per slot), z_lanes[g] (the zero points' share of the output, back[g] sum_t u[g][t]
// Z[g][t], rescaled as the output is; the sum is one vpdpbusd of the packed weights).
// back[g] = P S_max[g] / 255 scales the step's integer sums back.
template <bool kZeros>
inline void WeighHead(const __m512* e, const float (*vnorm)[kMaxTile],
                      const uint8_t (*zb)[kMaxTile], int32_t n_vgrp, const float* s_max, float corr,
                      float p_max, __m512& l_lanes, __m512* z_lanes, float* back,
                      uint8_t (*u)[kMaxTile]) {
  const __m512 c = _mm512_set1_ps(corr);
  const __m512 sum = _mm512_add_ps(_mm512_add_ps(e[0], e[1]), _mm512_add_ps(e[2], e[3]));
  l_lanes = _mm512_fmadd_ps(l_lanes, c, _mm512_mul_ps(sum, _mm512_set1_ps(p_max)));
  // u8 weights of 64 slots packed in registers (vpmovusdb to memory is slow): packs interleave
  // 128-bit lanes, the permutation puts slot order back.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const float unit = p_max * (1.0f / 255);
  for (int32_t grp = 0; grp < n_vgrp; ++grp) {
    back[grp] = unit * s_max[grp];
    __m512i r[kTiles];
#pragma GCC unroll 4
    for (int v = 0; v < kTiles; ++v) {
      // Half to even; the packs below saturate, so u <= 255.
      const __m512 x = _mm512_mul_ps(e[v], _mm512_load_ps(vnorm[grp] + 16 * v));
      r[v] = _mm512_cvt_roundps_epi32(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    const __m512i lo = _mm512_packus_epi32(r[0], r[1]);
    const __m512i hi = _mm512_packus_epi32(r[2], r[3]);
    const __m512i w = _mm512_permutexvar_epi32(order, _mm512_packus_epi16(lo, hi));
    _mm512_store_si512(u[grp], w);
    if constexpr (kZeros) {
      const __m512i zsum =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_load_si512(zb[grp]));
      z_lanes[grp] = _mm512_fmadd_ps(
          z_lanes[grp], c, _mm512_mul_ps(_mm512_cvtepi32_ps(zsum), _mm512_set1_ps(back[grp])));
    }
  }
}

}  // namespace

// Tiled sides come with the shapes the kernel handles (tensor/kv_view.h, KVTiling).
bool TilesSupported(const KVView& kv) {
  return kv.k.tiling == KVTiling::kKeyTiles && kv.v.tiling == KVTiling::kValueTiles;
}

namespace {

// The XORs that mirror the codes of a step's slots with their bit set in `negative`, one per
// octet (8 slots of a value tile): byte i's low nibble for slot i < 4, its high nibble for slot
// i + 4. All 8 octets at once: a byte per slot, each octet's upper 4 bytes shifted onto its lower.
inline void MirrorMasks(uint64_t negative, uint32_t* flips) {
  const __m512i slots = _mm512_maskz_set1_epi8(negative, 0x0F);
  const __m512i octets = _mm512_or_si512(slots, _mm512_slli_epi16(_mm512_srli_epi64(slots, 32), 4));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(flips), _mm512_cvtepi64_epi32(octets));
}

// The largest of x[0, n), n a positive multiple of 16, x 64-byte aligned.
inline float MaxOf(const float* x, int32_t n) {
  __m512 mx = _mm512_load_ps(x);
  for (int32_t t = 16; t < n; t += 16) mx = _mm512_max_ps(mx, _mm512_load_ps(x + t));
  return _mm512_reduce_max_ps(mx);
}

// A step's value-tile parameters (ns tiles): vscale[g][t] = |S|; q4: vzero[g][t] = the zero
// point as a byte, mirrored (15 - Z) where S < 0, and flip[g] the XORs that mirror those slots'
// codes.
// Returns whether any slot is mirrored.
template <KVType VT>
inline bool ReadValueParams(const uint8_t* const* vt, int32_t ns, int32_t hd, int32_t n_vgrp,
                            float (*vscale)[kMaxTile], uint8_t (*vzero)[kMaxTile],
                            uint32_t (*flip)[2 * kTiles]) {
  const size_t scales = TileCodeBytes<VT>(hd), zeros = scales + static_cast<size_t>(n_vgrp) * 32;
  uint64_t negative[kMaxGroups] = {};  // q4: slots with negative scales, per group
  for (int32_t i = 0; i < ns; ++i) {
    for (int32_t grp = 0; grp < n_vgrp; ++grp) {
      const __m256i sc = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vt[i] + scales + grp * 32));
      _mm512_store_ps(vscale[grp] + kKVTileSlots * i, _mm512_abs_ps(_mm512_cvtph_ps(sc)));
      if constexpr (VT == KVType::kQ4) {
        const __mmask16 neg = _mm256_movepi16_mask(sc);  // f16 sign bits
        const __m128i z =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(vt[i] + zeros + grp * 16));
        _mm_store_si128(reinterpret_cast<__m128i*>(vzero[grp] + kKVTileSlots * i),
                        _mm_mask_sub_epi8(z, neg, _mm_set1_epi8(15), z));
        negative[grp] |= static_cast<uint64_t>(neg) << (kKVTileSlots * i);
      }
    }
  }
  bool mirror = false;
  if constexpr (VT == KVType::kQ4) {
    for (int32_t grp = 0; grp < n_vgrp; ++grp) {
      MirrorMasks(negative[grp], flip[grp]);
      mirror |= negative[grp] != 0;
    }
  }
  return mirror;
}

// s_max[g] = the step's largest |S| in value group g; vscale becomes 255 |S| / s_max (0 for an
// all-zero group).
inline void NormalizeScales(int32_t n_vgrp, float (*vscale)[kMaxTile], float* s_max) {
  for (int32_t grp = 0; grp < n_vgrp; ++grp) {
    s_max[grp] = MaxOf(vscale[grp], kMaxTile);
    const __m512 norm = _mm512_set1_ps(s_max[grp] > 0 ? 255.0f / s_max[grp] : 0.0f);
    for (int32_t t = 0; t < kMaxTile; t += 16) {
      _mm512_store_ps(vscale[grp] + t, _mm512_mul_ps(_mm512_load_ps(vscale[grp] + t), norm));
    }
  }
}

// The step's top score per query head (into top) and the online-softmax update of every head
// (UpdateMaxima, 16 heads per vector).
inline void StepMaxima(const float (*p)[kMaxTile], int32_t heads, float* top, float* m, float* corr, float* p_max) {
  for (int32_t j0 = 0; j0 < heads; j0 += 16) {
    const int32_t live = std::min<int32_t>(16, heads - j0);
    __m512 tops = _mm512_setzero_ps();
    for (int32_t j = 0; j < live; ++j) {
      top[j0 + j] = MaxOf(p[j0 + j], kMaxTile);
      tops = _mm512_mask_mov_ps(tops, static_cast<__mmask16>(1u << j), _mm512_set1_ps(top[j0 + j]));
    }
    UpdateMaxima(live, tops, m + j0, corr + j0, p_max + j0);
  }
}

// Tile addresses of slots c, c + 16, ... (n tiles) of one side and head: one division, then
// steps through the block table (blocks hold a multiple of 16 slots).
inline void TileAddresses(const KVView& kv, const KVSideView& s, int32_t h, int32_t c, int32_t n,
                          const uint8_t** out) {
  if (n == 0) return;
  const uint8_t* head = s.base + static_cast<size_t>(h) * s.head_stride;
  if (kv.block_size == kKVTileSlots) {  // a tile per block (the paged default): no division
    const int32_t* table = kv.block_table + c / kKVTileSlots;
    for (int32_t i = 0; i < n; ++i) out[i] = head + static_cast<size_t>(table[i]) * s.block_stride;
    return;
  }
  int32_t block = c / kv.block_size, in_block = c - block * kv.block_size;
  const size_t tile_bytes = kKVTileSlots * s.row_bytes;
  for (int32_t i = 0; i < n; ++i) {
    out[i] = head + static_cast<size_t>(kv.block_table[block]) * s.block_stride +
             static_cast<size_t>(in_block / kKVTileSlots) * tile_bytes;
    in_block += kKVTileSlots;
    if (in_block == kv.block_size) {
      ++block;
      in_block = 0;
    }
  }
}

// Issues the cache lines of `spans` evenly over `steps` calls of Next(), a few at a time: as a
// burst they would crowd out the misses of the step that issues them.
class SpreadPrefetch {
 public:
  SpreadPrefetch(const PrefetchSpans& spans, int32_t steps) : spans_(spans) {
    size_t lines = 0;
    for (int32_t i = 0; i < spans.n; ++i) lines += (End(i) - LineOf(spans.start[i]) + 63) / 64;
    per_step_ = steps > 0 ? (lines + steps - 1) / steps : 0;
    if (spans.n > 0) at_ = LineOf(spans.start[0]);
  }
  void Next() {
    for (size_t k = 0; k < per_step_ && span_ < spans_.n; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(at_), _MM_HINT_T0);
      at_ += 64;
      if (at_ >= End(span_) && ++span_ < spans_.n) at_ = LineOf(spans_.start[span_]);
    }
  }

 private:
  static uintptr_t LineOf(const uint8_t* p) {
    return reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  }
  uintptr_t End(int32_t i) const {
    return reinterpret_cast<uintptr_t>(spans_.start[i]) + spans_.bytes[i];
  }

  const PrefetchSpans& spans_;
  size_t per_step_ = 0;
  int32_t span_ = 0;
  uintptr_t at_ = 0;
};

template <KVType KT, KVType VT>
void AttendTiles(const AttentionShape& s, const Int8Query* q, int32_t h0, int32_t h1, int32_t t0,
                 int32_t t1, const KVView& kv, float* m, float* l, float* acc,
                 const PrefetchSpans& later) {
  const int32_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int32_t gk = kv.k.group, gv = kv.v.group, n_vgrp = hd / gv;
  const ScoreTileFn score = ScoreTileFor<KT>(hd, hd / std::min(gk, 64));
  const SumValuesFn sum_values = SumValuesFor<VT>(hd, gv);
  const size_t k_tile = kKVTileSlots * kv.k.row_bytes, v_tile = kKVTileSlots * kv.v.row_bytes;  // bytes
  const int32_t a = t0 / kKVTileSlots * kKVTileSlots;  // first tile's first slot
  const int32_t end = (t1 + kKVTileSlots - 1) / kKVTileSlots * kKVTileSlots;

  alignas(64) float p[kMaxGroup][kMaxTile];
  alignas(64) float vscale[kMaxGroups][kMaxTile];
  // q4: zero points per slot (mirrored if S < 0); zeroed once so that the slots past a short
  // step's tiles, whose weights are 0, read defined bytes.
  alignas(64) uint8_t vzero[kMaxGroups][kMaxTile] = {};
  uint32_t flip[kMaxGroups][2 * kTiles];           // q4: per octet, the codes to mirror
  alignas(64) uint8_t u[kMaxGroup][kMaxGroups][kMaxTile];
  alignas(64) float top[kMaxGroup], corr[kMaxGroup], p_max[kMaxGroup];
  float back[kMaxGroup][kMaxGroups];
  __m512 l_lanes[kMaxGroup];
  constexpr bool kZeros = VT == KVType::kQ4;
  __m512 z_lanes[kZeros ? kMaxGroup : 1][kMaxGroups];
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const uint8_t* kt[kTiles];
  const uint8_t* vt[kTiles];
  const uint8_t* next_k[kTiles];
  const uint8_t* next_v[kTiles];
  int32_t n_next = h0 < h1 ? (std::min(end, a + kMaxTile) - a) / kKVTileSlots : 0;
  TileAddresses(kv, kv.k, h0, a, n_next, next_k);
  TileAddresses(kv, kv.v, h0, a, n_next, next_v);
  SpreadPrefetch spread(later, (h1 - h0) * ((end - a + kMaxTile - 1) / kMaxTile));
  for (int32_t h = h0; h < h1; ++h) {
    const int32_t first = (h - h0) * group;
    for (int32_t j = 0; j < group; ++j) {
      l_lanes[j] = _mm512_maskz_mov_ps(1, _mm512_set1_ps(l[first + j]));
      if constexpr (kZeros) {
        for (int32_t grp = 0; grp < n_vgrp; ++grp) z_lanes[j][grp] = _mm512_setzero_ps();
      }
    }
    for (int32_t c0 = a; c0 < end; c0 += kMaxTile) {
      const int32_t ns = (std::min(end, c0 + kMaxTile) - c0) / kKVTileSlots;
      const int32_t lo = std::max(t0, c0) - c0, hi = std::min(t1, c0 + kMaxTile) - c0;  // live lanes
      std::copy(next_k, next_k + ns, kt);
      std::copy(next_v, next_v + ns, vt);
      // The next step: the next 64 slots of this head, or the first of the next head.
      const int32_t nc = c0 + kMaxTile < end ? c0 + kMaxTile : a;
      const int32_t nh = c0 + kMaxTile < end ? h : h + 1;
      n_next = nh < h1 ? (std::min(end, nc + kMaxTile) - nc) / kKVTileSlots : 0;
      TileAddresses(kv, kv.k, nh, nc, n_next, next_k);
      TileAddresses(kv, kv.v, nh, nc, n_next, next_v);
      spread.Next();
      for (int32_t i = 0; i < ns; i += 2) {
        const int32_t pair = std::min(2, ns - i);
        // The next step's tiles i and i + 1, one before and one after scoring this pair: a burst
        // of both measured 5-10% slower from DRAM.
        if (i < n_next) {
          PrefetchRow(next_k[i], k_tile);  // every line of the tile
          PrefetchRow(next_v[i], v_tile);
        }
        float* rows[kMaxGroup];
        for (int32_t j = 0; j < group; ++j) rows[j] = p[j] + kKVTileSlots * i;
        score(kt + i, pair, gk, q + first, group, rows);
        if (i + 1 < n_next) {
          PrefetchRow(next_k[i + 1], k_tile);
          PrefetchRow(next_v[i + 1], v_tile);
        }
      }
      const bool mirror = ReadValueParams<VT>(vt, ns, hd, n_vgrp, vscale, vzero, flip);
      if (lo > 0 || hi < kMaxTile) {  // lanes outside [t0, t1) or past the step's tiles: no weight
        for (int32_t t = 0; t < kMaxTile; ++t) {
          if (t >= lo && t < hi) continue;
          for (int32_t j = 0; j < group; ++j) p[j][t] = neg_inf;
          for (int32_t grp = 0; grp < n_vgrp; ++grp) vscale[grp][t] = 0.0f;  // u = 0
        }
      }
      float s_max[kMaxGroups];
      NormalizeScales(n_vgrp, vscale, s_max);
      StepMaxima(p, group, top, m + first, corr, p_max);
      for (int32_t j = 0; j < group; ++j) {
        __m512 e[kTiles];
        ExpRow(p[j], top[j], e);
        WeighHead<kZeros>(e, vscale, vzero, n_vgrp, s_max, corr[j], p_max[j], l_lanes[j],
                          z_lanes[kZeros ? j : 0], back[j], u[j]);
      }
      sum_values(vt, ns, u, back, flip, mirror, corr, group, acc + static_cast<size_t>(first) * hd);
    }
    for (int32_t j = 0; j < group; ++j) {
      l[first + j] = _mm512_reduce_add_ps(l_lanes[j]);
      if constexpr (kZeros) {
        float* out = acc + static_cast<size_t>(first + j) * hd;
        for (int32_t grp = 0; grp < n_vgrp; ++grp) {
          const __m512 z = _mm512_set1_ps(_mm512_reduce_add_ps(z_lanes[j][grp]));
          for (int32_t e = grp * gv; e < (grp + 1) * gv; e += 16) {
            _mm512_storeu_ps(out + e, _mm512_sub_ps(_mm512_loadu_ps(out + e), z));
          }
        }
      }
    }
  }
}

}  // namespace

void AttendTileSlots(const AttentionShape& s, const Int8Query* q, int32_t h0, int32_t h1,
                     int32_t t0, int32_t t1, const KVView& kv, float* m, float* l, float* acc,
                     const PrefetchSpans& later) {
  const bool k8 = kv.k.type == KVType::kQ8, v8 = kv.v.type == KVType::kQ8;
  const auto attend = k8 ? (v8 ? AttendTiles<KVType::kQ8, KVType::kQ8> : AttendTiles<KVType::kQ8, KVType::kQ4>)
                         : (v8 ? AttendTiles<KVType::kQ4, KVType::kQ8> : AttendTiles<KVType::kQ4, KVType::kQ4>);
  attend(s, q, h0, h1, t0, t1, kv, m, l, acc, later);
}
#else
bool TilesSupported(const KVView&) { return false; }
void AttendTileSlots(const AttentionShape&, const Int8Query*, int32_t, int32_t, int32_t, int32_t,
                     const KVView&, float*, float*, float*, const PrefetchSpans&) {}
#endif

}  // namespace kvc::attention_internal
