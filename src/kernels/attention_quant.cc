// Decode/prefill attention over q8 and q4 keys without decoding them to floats: the query is
// rounded to int8 per key group (as llama.cpp rounds activations for its q8_0 dot products) and
// scored against the stored codes with VNNI (vpdpbusd: 64 byte products per instruction).
// Per tile and KV head:
//   * keys are unpacked once into u8 codes (q8: code + 128; q4: a group's low nibbles, then its
//     high nibbles) and transposed 16 keys at a time, so lane t of register i holds bytes
//     4i..4i+3 of key t: one vpdpbusd per 4 elements scores 16 keys for one query head, with no
//     horizontal sums, and every query head of the GQA group reuses the transposed registers;
//   * per key group: score += S_k * s_q * (dot - Z_k * sum(q codes)) (q8: Z = 128, the offset);
//   * values are converted to f32 in registers and summed with the softmax weights (already
//     multiplied by each value group's scale), for a batch of query heads whose accumulators fit
//     in registers.
// Scoring takes ~15 vector instructions per key where decoding to f32 took ~50. The whole kernel
// (score, softmax, value sum) still costs ~10 ns per key and KV head on one Zen 5 core, so at
// depth 16384 decode is bound by this arithmetic, not by reading the cache (docs/BENCHMARKS.md).
// Float keys (f32/f16/bf16 rows) share the softmax and value sums: each key is converted to f32
// in registers once for a block of up to 4 query heads, and a transposing reduction turns their
// partial products into 16 scores at a time (AttendFloatKeys).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/attention_internal.h"
#include "kernels/vec16.h"
#include "quant/kv_quant.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__F16C__)
#define KVC_INT8_KEYS 1
#include <immintrin.h>
#endif

namespace kvc {

float RoundQueryGroup(const float* q, int32_t g, int8_t* codes) {
  float absmax = 0;
  for (int32_t i = 0; i < g; ++i) absmax = std::max(absmax, std::fabs(q[i]));
  const float inv = absmax > 0 ? 127.0f / absmax : 0.0f;
  // q * inv is at most 127 (up to rounding); nearbyint rounds half to even, as vcvtps2dq does.
  // NaN (a broken activation; absmax skips it) becomes 0 rather than an undefined cast.
  for (int32_t i = 0; i < g; ++i) {
    const float r = std::nearbyint(q[i] * inv);
    codes[i] = r == r ? static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f)) : int8_t{0};
  }
  return absmax / 127.0f;
}

namespace attention_internal {
namespace {

// Groups of a multiple of `unit` that divide head_dim (a power of two here), so segments and
// value pieces never straddle groups. (Unused where the int8 key path is not built.)
[[maybe_unused]] bool GroupFits(int32_t g, int32_t unit, int32_t hd) {
  return g > 0 && g % unit == 0 && hd % g == 0;
}

// Where element d of a key lands once unpacked: q4 puts a group's even elements (low nibbles)
// first, then its odd ones; q8 keeps the order.
int32_t KeyCodePos(KVType t, int32_t g, int32_t d) {
  if (t != KVType::kQ4) return d;
  const int32_t base = d - d % g, i = d % g;
  return base + (i % 2 == 0 ? i / 2 : g / 2 + i / 2);
}

}  // namespace

bool Int8KeysSupported(const KVView& kv) {
#if KVC_INT8_KEYS
  const int32_t hd = kv.head_dim;
  if (hd != 32 && hd != 64 && hd != 128 && hd != 256) return false;
  const KVSideView &k = kv.k, &v = kv.v;
  if (k.kivi || v.kivi || k.tiling != KVTiling::kRows || v.tiling != KVTiling::kRows) return false;
  const bool keys = (k.type == KVType::kQ8 && GroupFits(k.group, 16, hd)) ||
                    (k.type == KVType::kQ4 && GroupFits(k.group, 32, hd));
  const bool values = v.type == KVType::kF32 || v.type == KVType::kF16 || v.type == KVType::kBF16 ||
                      (v.type == KVType::kQ8 && GroupFits(v.group, 16, hd)) ||
                      (v.type == KVType::kQ4 && GroupFits(v.group, 32, hd));
  return keys && values;
#else
  (void)kv;
  return false;
#endif
}

}  // namespace attention_internal

bool AttentionRoundsQuery(const KVView& kv) {
  return attention_internal::Int8KeysSupported(kv) || attention_internal::TilesSupported(kv);
}
bool AttentionRoundsValueWeights(const KVView& kv) { return attention_internal::TilesSupported(kv); }

namespace attention_internal {

bool FloatKeysSupported(const KVView& kv) {
#if KVC_INT8_KEYS
  const int32_t hd = kv.head_dim;
  return (hd == 32 || hd == 64 || hd == 128 || hd == 256) && FloatRows(kv.k) && FloatRows(kv.v);
#else
  (void)kv;
  return false;
#endif
}

void RoundQueries(const KVView& kv, const float* q, int32_t n_heads, float softmax_scale,
                  Int8Query* out) {
  const int32_t hd = kv.head_dim, g = kv.k.group, seg = std::min(g, 64);
  int8_t natural[kMaxHeadDim];
  for (int32_t h = 0; h < n_heads; ++h) {
    Int8Query& r = out[h];
    std::fill(r.codes + hd, r.codes + kMaxHeadDim, int8_t{0});
    const bool permuted = kv.k.type == KVType::kQ4 && kv.k.tiling == KVTiling::kRows;  // row kernel
    for (int32_t k = 0; k < hd / g; ++k) {
      int8_t* codes = (permuted ? natural : r.codes) + k * g;
      const float s = RoundQueryGroup(q + static_cast<int64_t>(h) * hd + k * g, g, codes);
      for (int32_t s0 = k * g; s0 < (k + 1) * g; s0 += seg) r.scale[s0 / seg] = s * softmax_scale;
    }
    if (permuted) {
      for (int32_t d = 0; d < hd; ++d) r.codes[KeyCodePos(kv.k.type, g, d)] = natural[d];
    }
    for (int32_t i = 0; i < hd / seg; ++i) {
      int32_t sum = 0;
      for (int32_t d = i * seg; d < (i + 1) * seg; ++d) sum += r.codes[d];
      r.sum[i] = static_cast<float>(sum);
      r.minus_128_sum[i] = -128 * sum;
    }
  }
}

#if KVC_INT8_KEYS
namespace {

// The f16 scale at p (rows are packed, so it may be unaligned).
inline float F16At(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof(bits));
  return _cvtsh_ss(bits);
}

// Bytes 64 s .. 64 s + 63 of a key's u8 codes in KeyCodePos order, straight from its row.
// SW: dwords per segment (g = 4 SW, or g >= 64 for SW = 16).
template <KVType KT, int SW>
inline __m512i LoadKeySlab(const uint8_t* row, int32_t s, int32_t g) {
  if constexpr (KT == KVType::kQ8) {
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
    __m512i x;
    if constexpr (SW == 4) {  // four groups of 16 codes (+ 2 scale bytes each)
      const uint8_t* b = row + 4 * s * 18;
      x = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
      x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 18)), 1);
      x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 36)), 2);
      x = _mm512_inserti32x4(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 54)), 3);
    } else if constexpr (SW == 8) {  // two groups of 32
      const uint8_t* b = row + 2 * s * 34;
      x = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))),
                             _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 34)), 1);
    } else {  // 64 codes of one group
      const int32_t grp = 64 * s / g;
      x = _mm512_loadu_si512(row + grp * (g + 2) + (64 * s - grp * g));
    }
    return _mm512_xor_si512(x, bias);
  } else {  // q4
    const __m512i low = _mm512_set1_epi8(0x0F);
    if constexpr (SW == 8) {  // two groups of 16 packed bytes: low nibbles, high nibbles of each
      const uint8_t* b = row + 2 * s * 19;
      const __m256i x = _mm256_inserti128_si256(
          _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))),
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 19)), 1);
      const __m512i lh = _mm512_inserti64x4(_mm512_castsi256_si512(x), _mm256_srli_epi16(x, 4), 1);
      return _mm512_and_si512(_mm512_shuffle_i32x4(lh, lh, 0xD8), low);  // lo0 hi0 lo1 hi1
    } else {
      const int32_t grp = 64 * s / g, pos = 64 * s - grp * g;
      const uint8_t* b = row + grp * (g / 2 + 3);
      if (g == 64) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
        return _mm512_and_si512(
            _mm512_inserti64x4(_mm512_castsi256_si512(x), _mm256_srli_epi16(x, 4), 1), low);
      }
      const __m512i x = _mm512_loadu_si512(b + (pos < g / 2 ? pos : pos - g / 2));
      return _mm512_and_si512(pos < g / 2 ? x : _mm512_srli_epi16(x, 4), low);
    }
  }
}

// r[i] lane t <- r[t] lane i (16 x 16 dwords).
inline void Transpose16(__m512i* r) {
  __m512i a[16], b[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // rows i..i+3: element 4L + e of lane L in b[i + e]
    b[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
    b[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
    b[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
    b[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  for (int e = 0; e < 4; ++e) {
    const __m512i v = _mm512_shuffle_i32x4(b[e], b[4 + e], 0x88);
    const __m512i w = _mm512_shuffle_i32x4(b[e], b[4 + e], 0xDD);
    const __m512i x = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], 0x88);
    const __m512i y = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], 0xDD);
    r[e] = _mm512_shuffle_i32x4(v, x, 0x88);
    r[8 + e] = _mm512_shuffle_i32x4(v, x, 0xDD);
    r[4 + e] = _mm512_shuffle_i32x4(w, y, 0x88);
    r[12 + e] = _mm512_shuffle_i32x4(w, y, 0xDD);
  }
}

// Rows of up to 128 bytes (q8/q4 with head_dim 64): their first and last bytes miss only the
// middle line of a row that starts near a line's end; PrefetchRow's line loop costs ~10% of the
// kernel.
inline void PrefetchShortRow(const uint8_t* row, size_t bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(row), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(row + bytes - 1), _MM_HINT_T0);
}

// Both rows of slot t of the next (tile, head). short_rows: both sides' rows are <= 128 bytes.
inline void PrefetchSlot(const KVView& kv, const Prefetch& next, int32_t t, bool short_rows) {
  if (short_rows) {
    PrefetchShortRow(next.k[t], kv.k.row_bytes);
    PrefetchShortRow(next.v[t], kv.v.row_bytes);
  } else {
    PrefetchRow(next.k[t], kv.k.row_bytes);
    PrefetchRow(next.v[t], kv.v.row_bytes);
  }
}

// Scores of n keys (rounded up to 16; the padding scores 0) for `heads` query heads into
// p[j][0, n16). Prefetches the rows of the next (tile, head) a key at a time: issued all at
// once they overflow the miss buffers and are dropped.
template <KVType KT, int SW>
void ScoreKeys(const KVView& kv, const uint8_t* const* rows, const Prefetch& next, int32_t n,
               const Int8Query* q, int32_t heads, float (*p)[kMaxTile]) {
  const int32_t hd = kv.head_dim, g = kv.k.group, n_grp = hd / g;
  const int32_t n_seg = hd / (4 * SW), slabs = (hd + 63) / 64;
  const size_t gbytes = KVGroupBytes(KT, g), scale_at = KT == KVType::kQ8 ? g : g / 2;
  alignas(64) float ks[kMaxHeadDim / 16][16], kz[kMaxHeadDim / 16][16];
  alignas(32) uint16_t ks16[kMaxHeadDim / 16][16];
  // Segments per group: 1 unless a group spans several 64-element slabs (a power of two).
  const int32_t grp_shift = std::countr_zero(static_cast<uint32_t>(std::max(1, g / (4 * SW))));
  const bool short_rows = kv.k.row_bytes <= 128 && kv.v.row_bytes <= 128;
  for (int32_t c = 0; c < n; c += 16) {
    const int32_t m = std::min(16, n - c);
    const int32_t ahead = std::clamp(next.n - c, 0, m);
    for (int32_t i = 0; i < m; ++i) {
      if (i < ahead) PrefetchSlot(kv, next, c + i, short_rows);
      const uint8_t* b = rows[c + i] + scale_at;
      for (int32_t grp = 0; grp < n_grp; ++grp, b += gbytes) {
        std::memcpy(&ks16[grp][i], b, 2);
        if constexpr (KT == KVType::kQ4) kz[grp][i] = b[2];
      }
    }
    for (int32_t i = m; i < 16; ++i) {
      for (int32_t grp = 0; grp < n_grp; ++grp) ks16[grp][i] = 0, kz[grp][i] = 0.0f;
    }
    for (int32_t grp = 0; grp < n_grp; ++grp) {
      _mm512_store_ps(ks[grp], _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(ks16[grp]))));
    }
    for (int32_t slab = 0; slab < slabs; ++slab) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = i < m ? LoadKeySlab<KT, SW>(rows[c + i], slab, g) : _mm512_setzero_si512();
      Transpose16(r);
      for (int32_t j = 0; j < heads; ++j) {
        const int32_t* qd = reinterpret_cast<const int32_t*>(q[j].codes + 64 * slab);
        __m512 score = slab == 0 ? _mm512_setzero_ps() : _mm512_load_ps(&p[j][c]);
#pragma GCC unroll 4
        for (int sg = 0; sg < 16 / SW; ++sg) {
          const int32_t seg = slab * (16 / SW) + sg;
          if (seg >= n_seg) break;
          // Two accumulators halve the vpdpbusd dependency chain.
          __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
#pragma GCC unroll 16
          for (int i = 0; i < SW; i += 2) {
            acc0 = _mm512_dpbusd_epi32(acc0, r[sg * SW + i], _mm512_set1_epi32(qd[sg * SW + i]));
            acc1 = _mm512_dpbusd_epi32(acc1, r[sg * SW + i + 1], _mm512_set1_epi32(qd[sg * SW + i + 1]));
          }
          const int32_t grp = seg >> grp_shift;
          // q8 codes carry the +128 offset of the u8 operand; q4 its zero point.
          const __m512 zero = KT == KVType::kQ8 ? _mm512_set1_ps(128.0f) : _mm512_load_ps(kz[grp]);
          const __m512 dot = _mm512_fnmadd_ps(zero, _mm512_set1_ps(q[j].sum[seg]),
                                              _mm512_cvtepi32_ps(_mm512_add_epi32(acc0, acc1)));
          const __m512 s = _mm512_mul_ps(_mm512_load_ps(ks[grp]), _mm512_set1_ps(q[j].scale[seg]));
          score = _mm512_fmadd_ps(dot, s, score);
        }
        _mm512_store_ps(&p[j][c], score);
      }
    }
  }
}

template <KVType VT, int NV, int PG>
inline void LoadValues(const uint8_t* row, __m512* v);

// Scores of n float keys (f32/f16/bf16 rows) for R query heads q[0, R) (head_dim 16 NV each)
// into p[r][0, n): each key is loaded and converted once for the R heads, and a transposing
// reduction (Reduce16) turns R heads x 16 / R keys of partial products into one vector of
// scores, instead of a horizontal sum per score. Prefetches the next (tile, head)'s rows a few
// keys at a time, as ScoreKeys does. The loop has no branch on n, so that the 16 partial sums
// stay in registers (with a skip for keys past n, GCC kept them on the stack: 1.2x slower).
template <KVType KT, int NV, int R>
void ScoreFloatKeyBlock(const KVView& kv, const uint8_t* const* rows, const Prefetch& next, bool prefetch,
                        int32_t n, const float* q, float scale, float (*p)[kMaxTile]) {
  constexpr int KB = 16 / R;  // keys per reduction
  constexpr int32_t hd = 16 * NV;
  const __m512 sc = _mm512_set1_ps(scale);
  const bool short_rows = kv.k.row_bytes <= 128 && kv.v.row_bytes <= 128;
  const int32_t ahead = prefetch ? std::min(next.n, n) : 0;
  for (int32_t t0 = 0; t0 < n; t0 += KB) {
    F32x16 part[16];
#pragma GCC unroll 16
    for (int j = 0; j < KB; ++j) {
      // Keys past n score any row: SoftmaxStep overwrites their room (up to n16) with -inf.
      const int32_t t = std::min(t0 + j, n - 1);
      __m512 k[NV];
      LoadValues<KT, NV, 1>(rows[t], k);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        __m512 a = _mm512_mul_ps(_mm512_loadu_ps(q + r * hd), k[0]);
#pragma GCC unroll 16
        for (int v = 1; v < NV; ++v) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + r * hd + 16 * v), k[v], a);
        part[r * KB + j] = std::bit_cast<F32x16>(a);
      }
    }
    for (int32_t t = t0; t < std::min(t0 + KB, ahead); ++t) PrefetchSlot(kv, next, t, short_rows);
    const __m512 sv = _mm512_mul_ps(std::bit_cast<__m512>(Reduce16(part)), sc);
    if constexpr (R == 4) {
      _mm_storeu_ps(&p[0][t0], _mm512_extractf32x4_ps(sv, 0));
      _mm_storeu_ps(&p[1][t0], _mm512_extractf32x4_ps(sv, 1));
      _mm_storeu_ps(&p[2][t0], _mm512_extractf32x4_ps(sv, 2));
      _mm_storeu_ps(&p[3][t0], _mm512_extractf32x4_ps(sv, 3));
    } else if constexpr (R == 2) {
      _mm256_storeu_ps(&p[0][t0], _mm512_castps512_ps256(sv));
      _mm256_storeu_ps(&p[1][t0], _mm512_extractf32x8_ps(sv, 1));
    } else {
      _mm512_storeu_ps(&p[0][t0], sv);
    }
  }
}

// A group's query heads in blocks of 4 (then 2, then 1), every block's reduction full.
template <KVType KT, int NV>
void ScoreFloatKeys(const KVView& kv, const uint8_t* const* rows, const Prefetch& next, int32_t n,
                    const float* q, float scale, int32_t heads, float (*p)[kMaxTile]) {
  constexpr int32_t hd = 16 * NV;
  int32_t j = 0;
  for (; j + 4 <= heads; j += 4) ScoreFloatKeyBlock<KT, NV, 4>(kv, rows, next, j == 0, n, q + j * hd, scale, p + j);
  for (; j + 2 <= heads; j += 2) ScoreFloatKeyBlock<KT, NV, 2>(kv, rows, next, j == 0, n, q + j * hd, scale, p + j);
  for (; j < heads; ++j) ScoreFloatKeyBlock<KT, NV, 1>(kv, rows, next, j == 0, n, q + j * hd, scale, p + j);
}

using FloatScoreFn = void (*)(const KVView&, const uint8_t* const*, const Prefetch&, int32_t,
                              const float*, float, int32_t, float (*)[kMaxTile]);

template <KVType KT>
FloatScoreFn FloatScoreFor(int32_t hd) {
  switch (hd) {
    case 32: return ScoreFloatKeys<KT, 2>;
    case 64: return ScoreFloatKeys<KT, 4>;
    case 128: return ScoreFloatKeys<KT, 8>;
    default: return ScoreFloatKeys<KT, 16>;
  }
}

// A row of head_dim values as NV registers of f32, scales applied: in element order, except that
// q4 gives each 32-element piece as its even elements, then its odd ones (PermutePairs). PG:
// 16-element pieces per value group (quantized types), so each group's scale is converted once.
template <KVType VT, int NV, int PG>
inline void LoadValues(const uint8_t* row, __m512* v) {
  if constexpr (VT == KVType::kF32) {
    for (int i = 0; i < NV; ++i) v[i] = _mm512_loadu_ps(row + 64 * i);
  } else if constexpr (VT == KVType::kF16) {
    for (int i = 0; i < NV; ++i) {
      v[i] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * i)));
    }
  } else if constexpr (VT == KVType::kBF16) {
    for (int i = 0; i < NV; ++i) {
      const __m512i x = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * i)));
      v[i] = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    }
  } else if constexpr (VT == KVType::kQ8) {  // S * code
    constexpr int g = 16 * PG;
    for (int grp = 0; grp < NV / PG; ++grp) {
      const uint8_t* b = row + grp * (g + 2);
      const __m512 s = _mm512_set1_ps(F16At(b + g));
      for (int k = 0; k < PG; ++k) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * k));
        v[grp * PG + k] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(x)), s);
      }
    }
  } else {  // q4: S * code - S * Z; 16 packed bytes are 32 elements, low nibble first
    constexpr int g = 16 * PG;
    for (int grp = 0; grp < NV / PG; ++grp) {
      const uint8_t* b = row + grp * (g / 2 + 3);
      const float scale = F16At(b + g / 2);
      const __m512 s = _mm512_set1_ps(scale), zs = _mm512_set1_ps(scale * b[g / 2 + 2]);
      for (int k = 0; k < PG; k += 2) {
        const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 8 * k)));
        v[grp * PG + k] = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(15))), s, zs);
        v[grp * PG + k + 1] = _mm512_fmsub_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(x, 4)), s, zs);
      }
    }
  }
}

// Register pairs (a[i], a[i + 1]) become (permute(first), permute(second)) of their 32 lanes.
// q4 value rows come out of LoadValues with each 32-element piece split into its even and odd
// elements, so the accumulators take that order for the tile: two permutes per piece and head,
// instead of two per piece and row.
template <int NV>
inline void PermutePairs(__m512* a, __m512i first, __m512i second) {
  for (int i = 0; i < NV; i += 2) {
    const __m512 x = _mm512_permutex2var_ps(a[i], first, a[i + 1]);
    a[i + 1] = _mm512_permutex2var_ps(a[i], second, a[i + 1]);
    a[i] = x;
  }
}

// acc[j] = acc[j] * corr[j] + sum_t p[j][t] v[t] for a batch of 16 / NV heads, whose
// accumulators stay in registers while each value row is converted once.
template <KVType VT, int NV, int PG>
void AccumulateValues(const uint8_t* const* rows, int32_t n, const float (*p)[kMaxTile],
                      const float* corr, float* const* acc) {
  constexpr int HB = 16 / NV;
  __m512 a[HB][NV];
  for (int j = 0; j < HB; ++j) {
    for (int i = 0; i < NV; ++i) a[j][i] = _mm512_mul_ps(_mm512_loadu_ps(acc[j] + 16 * i), _mm512_set1_ps(corr[j]));
    if constexpr (VT == KVType::kQ4) {  // to the rows' split order
      PermutePairs<NV>(a[j], _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                       _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31));
    }
  }
  for (int32_t t = 0; t < n; ++t) {
    __m512 v[NV];
    LoadValues<VT, NV, PG>(rows[t], v);
    for (int j = 0; j < HB; ++j) {
      const __m512 w = _mm512_set1_ps(p[j][t]);
      for (int i = 0; i < NV; ++i) a[j][i] = _mm512_fmadd_ps(w, v[i], a[j][i]);
    }
  }
  for (int j = 0; j < HB; ++j) {
    if constexpr (VT == KVType::kQ4) {  // back to element order
      PermutePairs<NV>(a[j], _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23),
                       _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
    }
    for (int i = 0; i < NV; ++i) _mm512_storeu_ps(acc[j] + 16 * i, a[j][i]);
  }
}

using ScoreFn = void (*)(const KVView&, const uint8_t* const*, const Prefetch&, int32_t,
                         const Int8Query*, int32_t, float (*)[kMaxTile]);
using AccumulateFn = void (*)(const uint8_t* const*, int32_t, const float (*)[kMaxTile],
                              const float*, float* const*);

template <KVType KT>
ScoreFn ScoreFor(int32_t g) {
  if (g == 16) return ScoreKeys<KT, 4>;
  return g == 32 ? ScoreKeys<KT, 8> : ScoreKeys<KT, 16>;
}

// pg: 16-element pieces per value group (1 for float types); q4 needs an even pg.
template <KVType VT, int NV>
AccumulateFn AccumulateFor(int32_t pg) {
  if constexpr (VT != KVType::kQ4) {
    if (pg == 1) return AccumulateValues<VT, NV, 1>;
  }
  if constexpr (NV >= 16) {
    if (pg == 16) return AccumulateValues<VT, NV, 16>;
  }
  if constexpr (NV >= 8) {
    if (pg == 8) return AccumulateValues<VT, NV, 8>;
  }
  if constexpr (NV >= 4) {
    if (pg == 4) return AccumulateValues<VT, NV, 4>;
  }
  return AccumulateValues<VT, NV, 2>;
}

template <KVType VT>
AccumulateFn AccumulateFor(int32_t hd, int32_t pg) {
  switch (hd) {
    case 32: return AccumulateFor<VT, 2>(pg);
    case 64: return AccumulateFor<VT, 4>(pg);
    case 128: return AccumulateFor<VT, 8>(pg);
    default: return AccumulateFor<VT, 16>(pg);
  }
}

AccumulateFn AccumulateFor(const KVSideView& v, int32_t hd) {
  const int32_t pg = std::min(v.group, hd) / 16;
  switch (v.type) {
    case KVType::kF32: return AccumulateFor<KVType::kF32>(hd, 1);
    case KVType::kF16: return AccumulateFor<KVType::kF16>(hd, 1);
    case KVType::kBF16: return AccumulateFor<KVType::kBF16>(hd, 1);
    case KVType::kQ8: return AccumulateFor<KVType::kQ8>(hd, pg);
    default: return AccumulateFor<KVType::kQ4>(hd, pg);
  }
}

// Declared here, defined after the two entry points that share it.
void SoftmaxAndValues(const KVView& kv, int32_t group, const uint8_t* const* v_rows, int32_t n,
                      float (*p)[kMaxTile], float* m, float* l, float* acc);

}  // namespace

void AttendInt8Keys(const KVView& kv, const Int8Query* q, int32_t group,
                    const uint8_t* const* k_rows, const uint8_t* const* v_rows, int32_t n,
                    const Prefetch& next, float* m, float* l, float* acc) {
  alignas(64) float p[kMaxGroup][kMaxTile];
  const ScoreFn score = kv.k.type == KVType::kQ8 ? ScoreFor<KVType::kQ8>(kv.k.group)
                                                 : ScoreFor<KVType::kQ4>(kv.k.group);
  score(kv, k_rows, next, n, q, group, p);
  SoftmaxAndValues(kv, group, v_rows, n, p, m, l, acc);
}

void AttendFloatKeys(const KVView& kv, const float* q, float scale, int32_t group,
                     const uint8_t* const* k_rows, const uint8_t* const* v_rows, int32_t n,
                     const Prefetch& next, float* m, float* l, float* acc) {
  alignas(64) float p[kMaxGroup][kMaxTile];
  const int32_t hd = kv.head_dim;
  const FloatScoreFn score = kv.k.type == KVType::kF32   ? FloatScoreFor<KVType::kF32>(hd)
                             : kv.k.type == KVType::kF16 ? FloatScoreFor<KVType::kF16>(hd)
                                                         : FloatScoreFor<KVType::kBF16>(hd);
  score(kv, k_rows, next, n, q, scale, group, p);
  SoftmaxAndValues(kv, group, v_rows, n, p, m, l, acc);
}

namespace {

// The online-softmax update of a group's scores p and the value sums of n slots.
void SoftmaxAndValues(const KVView& kv, int32_t group, const uint8_t* const* v_rows, int32_t n,
                      float (*p)[kMaxTile], float* m, float* l, float* acc) {
  const int32_t hd = kv.head_dim;
  float corr[kMaxGroup];
  for (int32_t j = 0; j < group; ++j) corr[j] = SoftmaxStep(p[j], n, m[j], l[j]);

  // Query heads in batches whose accumulators fit in registers; a short last batch is padded
  // with zero weights summed into a dummy.
  const int32_t hb = 16 / (hd / 16);
  const AccumulateFn accumulate = AccumulateFor(kv.v, hd);
  alignas(64) float dummy[kMaxHeadDim];
  if (group % hb != 0) std::fill(dummy, dummy + hd, 0.0f);
  for (int32_t j = group; j < (group + hb - 1) / hb * hb; ++j) {
    std::fill(p[j], p[j] + kMaxTile, 0.0f);
    corr[j] = 0.0f;
  }
  for (int32_t j0 = 0; j0 < group; j0 += hb) {
    float* accs[16];
    for (int32_t jb = 0; jb < hb; ++jb) {
      accs[jb] = j0 + jb < group ? acc + static_cast<size_t>(j0 + jb) * hd : dummy;
    }
    accumulate(v_rows, n, p + j0, corr + j0, accs);
  }
}

}  // namespace
#else
void AttendInt8Keys(const KVView&, const Int8Query*, int32_t, const uint8_t* const*,
                    const uint8_t* const*, int32_t, const Prefetch&, float*, float*, float*) {}
void AttendFloatKeys(const KVView&, const float*, float, int32_t, const uint8_t* const*,
                     const uint8_t* const*, int32_t, const Prefetch&, float*, float*, float*) {}
#endif

}  // namespace attention_internal
}  // namespace kvc
