// Prefill attention over float KV sides (f32, f16, bf16), flash-attention forward: a block of
// consecutive queries of one KV head (rows = queries x the group's query heads) against each
// tile of up to 64 slots. The per-query kernel (attention_tiled.cc) reads and decodes every tile
// once per query and reduces each score horizontally; here a tile is read once per block, its
// keys are transposed once so that a row's 64 scores come out of register-blocked FMAs (16 keys
// per vector, a broadcast query element), and the weighted values likewise (16 elements per
// vector, a broadcast weight). GCC vector extensions: AVX-512 here, AVX2 in the valgrind build.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/attention_internal.h"
#include "kernels/exp_approx.h"
#include "kernels/vec16.h"

namespace kvc::attention_internal {
namespace {

constexpr int32_t kKeyVectors = kMaxTile / 16;
constexpr int32_t kScoreRows = 6;  // rows per register block of the scores: 6 x 4 accumulators

// Swaps the off-diagonal s x s blocks of rows i and i + s (i & s == 0) for s = 8, 4, 2, 1: the
// transpose of 16 x 16 floats in 64 two-input shuffles.
template <int S>
inline void SwapBlocks(F32x16* r) {
  for (int i = 0; i < 16; ++i) {
    if (i & S) continue;
    const F32x16 a = r[i], b = r[i + S];
    if constexpr (S == 8) {
      r[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
      r[i + S] = __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    } else if constexpr (S == 4) {
      r[i] = __builtin_shufflevector(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
      r[i + S] = __builtin_shufflevector(a, b, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    } else if constexpr (S == 2) {
      r[i] = __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
      r[i + S] = __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    } else {
      r[i] = __builtin_shufflevector(a, b, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
      r[i + S] = __builtin_shufflevector(a, b, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31);
    }
  }
}

// kt[d * 64 + j] = rows[j][d] for j < n (zero for n <= j < 64), d < hd.
void TransposeKeys(const float* const* rows, int32_t n, int32_t hd, float* kt) {
  for (int32_t j0 = 0; j0 < kMaxTile; j0 += 16) {
    for (int32_t d0 = 0; d0 < hd; d0 += 16) {
      F32x16 r[16];
      for (int i = 0; i < 16; ++i) r[i] = j0 + i < n ? Load16(rows[j0 + i] + d0) : F32x16{};
      SwapBlocks<8>(r);
      SwapBlocks<4>(r);
      SwapBlocks<2>(r);
      SwapBlocks<1>(r);
      for (int i = 0; i < 16; ++i) Store16(kt + static_cast<size_t>(d0 + i) * kMaxTile + j0, r[i]);
    }
  }
}

// s[r][0, 64) = q[r] . keys for RB rows (q pre-scaled), kt from TransposeKeys.
template <int RB>
inline void ScoreBlock(const float* q, int32_t hd, const float* kt, float* s) {
  F32x16 acc[RB][kKeyVectors] = {};
  for (int32_t d = 0; d < hd; ++d) {
    F32x16 k[kKeyVectors];
    for (int v = 0; v < kKeyVectors; ++v) k[v] = Load16(kt + static_cast<size_t>(d) * kMaxTile + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const F32x16 qb = Splat16(q[static_cast<size_t>(r) * hd + d]);
      for (int v = 0; v < kKeyVectors; ++v) acc[r][v] += qb * k[v];
    }
  }
  for (int r = 0; r < RB; ++r) {
    for (int v = 0; v < kKeyVectors; ++v) Store16(s + r * kMaxTile + 16 * v, acc[r][v]);
  }
}

// o[r] = o[r] * corr[r] + sum_j p[r][j] v_j for RB rows of NV vectors (head_dim = 16 NV).
template <int NV, int RB>
inline void AccumulateBlock(const float* const* v_rows, int32_t n, const float* p, const float* corr,
                            float* o) {
  F32x16 acc[RB][NV];
  for (int r = 0; r < RB; ++r) {
    for (int v = 0; v < NV; ++v) acc[r][v] = Load16(o + r * 16 * NV + 16 * v) * corr[r];
  }
  for (int32_t j = 0; j < n; ++j) {
    F32x16 x[NV];
    for (int v = 0; v < NV; ++v) x[v] = Load16(v_rows[j] + 16 * v);
    for (int r = 0; r < RB; ++r) {
      const F32x16 w = Splat16(p[r * kMaxTile + j]);
      for (int v = 0; v < NV; ++v) acc[r][v] += w * x[v];
    }
  }
  for (int r = 0; r < RB; ++r) {
    for (int v = 0; v < NV; ++v) Store16(o + r * 16 * NV + 16 * v, acc[r][v]);
  }
}

// Calls f(std::integral_constant<int, n>{}) for a runtime n in [1, Max]: a block's last rows
// take one register block of their own size (a row at a time, its FMAs waited on their own
// results).
template <int Max, typename F>
inline void WithRowCount(int32_t n, F&& f) {
  if constexpr (Max > 1) {
    if (n == Max) return f(std::integral_constant<int, Max>{});
    return WithRowCount<Max - 1>(n, f);
  } else {
    f(std::integral_constant<int, 1>{});
  }
}

template <int NV>
void AccumulateRowsOf(const float* const* v_rows, int32_t n, const float* p, const float* corr,
                      int32_t rows, float* o) {
  constexpr int kRB = std::max(1, std::min(6, 24 / NV));  // accumulators stay in registers
  int32_t r = 0;
  for (; r + kRB <= rows; r += kRB) {
    AccumulateBlock<NV, kRB>(v_rows, n, p + r * kMaxTile, corr + r, o + r * 16 * NV);
  }
  if (r < rows) {
    WithRowCount<kRB>(rows - r, [&](auto rb) {
      AccumulateBlock<NV, decltype(rb)::value>(v_rows, n, p + r * kMaxTile, corr + r,
                                               o + r * 16 * NV);
    });
  }
}

// The online-softmax update of nr <= 16 rows for one tile: row r's scores (p, rows of 64) become
// its weights on lanes [a[r], b[r]) and 0 elsewhere; m, l and corr (the factor for the row's
// earlier sums) are updated for the 16 rows at once, from one transposing reduction of the rows'
// maxima and one of their sums (a horizontal max, a scalar exponential and a horizontal sum per
// row took a fifth of the prefill attention's time).
void SoftmaxRows(float* p, int32_t nr, const int32_t* a, const int32_t* b, float* m, float* l,
                 float* corr) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const I32x16 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  F32x16 part[16];
  for (int32_t r = 0; r < 16; ++r) {
    F32x16 vmax = Splat16(neg_inf);
    const float* pr = p + r * kMaxTile;
    if (r < nr && a[r] == 0 && b[r] == kMaxTile) {
      for (int32_t v = 0; v < kKeyVectors; ++v) {
        const F32x16 x = Load16(pr + 16 * v);
        vmax = x > vmax ? x : vmax;
      }
    } else if (r < nr) {
      for (int32_t v = 0; v < kKeyVectors; ++v) {
        const I32x16 j = lane + 16 * v;
        const F32x16 x = Load16(pr + 16 * v);
        vmax = (j >= a[r] && j < b[r] && x > vmax) ? x : vmax;
      }
    }
    part[r] = vmax;
  }
  // Rows past nr (and rows that see nothing here) keep m: their corr is e^0, or e^-87 while m is
  // still -inf (ExpNonPositive clamps the NaN of -inf - -inf), with l and the sums still 0.
  alignas(64) float old_m[16], new_m[16], old_l[16];
  std::fill(old_m, old_m + 16, neg_inf);
  std::fill(old_l, old_l + 16, 0.0f);
  std::copy(m, m + nr, old_m);
  std::copy(l, l + nr, old_l);
  const F32x16 top = ReduceMax16(part), mv = Load16(old_m);
  const F32x16 nm = mv > top ? mv : top;
  const F32x16 cv = ExpNonPositive16(mv - nm);
  Store16(new_m, nm);
  for (int32_t r = 0; r < 16; ++r) {
    F32x16 sum{};
    float* pr = p + r * kMaxTile;
    if (r < nr && a[r] < b[r]) {
      const F32x16 mr = Splat16(new_m[r]);
      const bool full = a[r] == 0 && b[r] == kMaxTile;
      for (int32_t v = 0; v < kKeyVectors; ++v) {
        const I32x16 j = lane + 16 * v;
        F32x16 e = ExpNonPositive16(Load16(pr + 16 * v) - mr);
        if (!full) e = (j >= a[r] && j < b[r]) ? e : F32x16{};
        Store16(pr + 16 * v, e);
        sum += e;
      }
    } else if (r < nr) {
      std::fill(pr, pr + kMaxTile, 0.0f);
    }
    part[r] = sum;
  }
  alignas(64) float nl[16], cr[16];
  Store16(nl, Load16(old_l) * cv + Reduce16(part));
  Store16(cr, cv);
  std::copy(new_m, new_m + nr, m);
  std::copy(nl, nl + nr, l);
  std::copy(cr, cr + nr, corr);
}

using AccumulateRowsFn = void (*)(const float* const*, int32_t, const float*, const float*, int32_t, float*);

AccumulateRowsFn AccumulateFor(int32_t hd) {
  switch (hd / 16) {
    case 1: return AccumulateRowsOf<1>;
    case 2: return AccumulateRowsOf<2>;
    case 3: return AccumulateRowsOf<3>;
    case 4: return AccumulateRowsOf<4>;
    case 5: return AccumulateRowsOf<5>;
    case 6: return AccumulateRowsOf<6>;
    case 7: return AccumulateRowsOf<7>;
    case 8: return AccumulateRowsOf<8>;
    case 10: return AccumulateRowsOf<10>;
    case 12: return AccumulateRowsOf<12>;
    default: return AccumulateRowsOf<16>;  // QueryBlockSupported admits only these
  }
}

}  // namespace

bool QueryBlockSupported(const KVView& kv) {
  return FloatRows(kv.k) && FloatRows(kv.v) && SupportedHeadDim(kv.head_dim);
}

int32_t QueriesPerBlock(const AttentionShape& s) {
  return std::max(1, kQueryBlockRows / (s.n_heads / s.n_kv_heads));
}

void AttendQueryBlock(const AttentionShape& s, const float* q, int32_t i0, int32_t i1, int32_t pos0,
                      int32_t kv_head, const KVView& kv, float* out) {
  const int32_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int32_t rows = (i1 - i0) * group;  // row r: query i0 + r / group, head r % group
  const size_t q_stride = static_cast<size_t>(s.n_heads) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const AccumulateRowsFn accumulate = AccumulateFor(hd);

  alignas(64) float qs[kQueryBlockRows * kMaxHeadDim];  // the rows' queries, scaled
  alignas(64) float o[kQueryBlockRows * kMaxHeadDim];
  alignas(64) float p[kQueryBlockRows * kMaxTile];
  alignas(64) float kt[kMaxHeadDim * kMaxTile];
  alignas(64) float k_scratch[kMaxTile * kMaxHeadDim], v_scratch[kMaxTile * kMaxHeadDim];
  float m[kQueryBlockRows], l[kQueryBlockRows], corr[kQueryBlockRows];
  int32_t lo[kQueryBlockRows], pos[kQueryBlockRows];
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t i = i0 + r / group;
    const float* src = q + i * q_stride + static_cast<size_t>(kv_head * group + r % group) * hd;
    for (int32_t d = 0; d < hd; ++d) qs[r * hd + d] = src[d] * scale;
    pos[r] = pos0 + i;
    lo[r] = FirstVisible(s, kv, pos[r]);
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.0f;
  }
  std::fill(o, o + static_cast<size_t>(rows) * hd, 0.0f);

  const float* k_rows[kMaxTile];
  const float* v_rows[kMaxTile];
  const int32_t first = *std::min_element(lo, lo + rows), end = pos[rows - 1] + 1;
  for (int32_t c0 = first, c1; c0 < end; c0 = c1) {
    c1 = std::min(end, c0 + kMaxTile);
    for (const KVSideView* side : {&kv.k, &kv.v}) {  // a tile stays on one side of the ring
      if (c0 < side->n_stored) c1 = std::min(c1, side->n_stored);
    }
    const int32_t n = c1 - c0;
    TileRows(kv, kv.k, kv_head, c0, n, k_scratch, k_rows);
    TileRows(kv, kv.v, kv_head, c0, n, v_scratch, v_rows);
    TransposeKeys(k_rows, n, hd, kt);
    int32_t r = 0;
    for (; r + kScoreRows <= rows; r += kScoreRows) ScoreBlock<kScoreRows>(qs + r * hd, hd, kt, p + r * kMaxTile);
    if (r < rows) {
      WithRowCount<kScoreRows - 1>(rows - r, [&](auto rb) {
        ScoreBlock<decltype(rb)::value>(qs + r * hd, hd, kt, p + r * kMaxTile);
      });
    }
    // Online softmax per row over the slots it sees: [lo, pos] within [c0, c1).
    int32_t a[kQueryBlockRows], b[kQueryBlockRows];  // live lanes
    for (r = 0; r < rows; ++r) {
      a[r] = std::max(lo[r], c0) - c0;
      b[r] = std::max(a[r], std::min(pos[r] + 1, c1) - c0);
    }
    for (r = 0; r < rows; r += 16) {
      const int32_t nr = std::min(16, rows - r);
      SoftmaxRows(p + r * kMaxTile, nr, a + r, b + r, m + r, l + r, corr + r);
    }
    accumulate(v_rows, n, p, corr, rows, o);
  }
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t i = i0 + r / group;
    float* dst = out + i * q_stride + static_cast<size_t>(kv_head * group + r % group) * hd;
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
    for (int32_t d = 0; d < hd; ++d) dst[d] = o[r * hd + d] * inv;
  }
}

}  // namespace kvc::attention_internal
