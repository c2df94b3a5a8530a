// Prefill attention over float KV sides (f32, f16, bf16), flash-attention forward: a block of
// consecutive queries of one KV head (rows = queries x the group's query heads, at most 32)
// against each tile of up to 64 slots. The per-query kernel (attention_tiled.cc) reads and decodes
// every tile once per query and reduces each score horizontally; here a tile is read once per
// block and the rows sit in vector lanes: the block's queries are transposed once, so a key's
// scores for 32 rows come out of register-blocked FMAs (a broadcast key element times 16 rows'
// query elements), and the online softmax is lane-wise (a row's maximum and sum are vertical
// maxima and sums over the keys, with no horizontal reduction). The weighted values keep
// head_dim in the lanes (16 elements per vector, a broadcast weight). GCC vector extensions:
// AVX-512 here, AVX2 in the valgrind build.
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

constexpr int32_t kRowVectors = kQueryBlockRows / 16;  // lanes of a block's rows
constexpr int32_t kScoreKeys = 12;  // keys per register block of the scores: 12 x 2 accumulators

// Calls f(std::integral_constant<int, n>{}) for a runtime n in [1, Max]: a tile's or a block's
// last keys or rows take one register block of their own size (one at a time, FMAs would wait
// on their own results).
template <int Max, typename F>
inline void WithCount(int32_t n, F&& f) {
  if constexpr (Max > 1) {
    if (n == Max) return f(std::integral_constant<int, Max>{});
    return WithCount<Max - 1>(n, f);
  } else {
    f(std::integral_constant<int, 1>{});
  }
}

// st[j][rows] = the scores of J keys for the block's rows (RV vectors of 16 rows): qt holds the
// rows' scaled queries transposed (qt[d][r], kQueryBlockRows a d), k the keys' f32 rows.
template <int J, int RV>
inline void ScoreKeys(const float* qt, int32_t hd, const float* const* k, float* st) {
  F32x16 acc[J][RV] = {};
  for (int32_t d = 0; d < hd; ++d) {
    F32x16 q[RV];
    for (int v = 0; v < RV; ++v)
      q[v] = Load16(qt + static_cast<size_t>(d) * kQueryBlockRows + 16 * v);
    for (int j = 0; j < J; ++j) {
      const F32x16 kj = Splat16(k[j][d]);
      for (int v = 0; v < RV; ++v) acc[j][v] += kj * q[v];
    }
  }
  for (int j = 0; j < J; ++j) {
    for (int v = 0; v < RV; ++v) Store16(st + j * kQueryBlockRows + 16 * v, acc[j][v]);
  }
}

template <int RV>
void ScoreTile(const float* qt, int32_t hd, const float* const* k, int32_t n, float* st) {
  int32_t j = 0;
  for (; j + kScoreKeys <= n; j += kScoreKeys)
    ScoreKeys<kScoreKeys, RV>(qt, hd, k + j, st + j * kQueryBlockRows);
  if (j < n) {
    WithCount<kScoreKeys - 1>(n - j, [&](auto jb) {
      ScoreKeys<decltype(jb)::value, RV>(qt, hd, k + j, st + j * kQueryBlockRows);
    });
  }
}

// The online-softmax update of RV x 16 rows over a tile's n keys, lane-wise: row r sees key j
// when a[r] <= j < b[r]; st's scores become the weights (0 where unseen), and m, l and corr (the
// factor for the rows' earlier sums) are updated. A row that sees nothing keeps m: its corr is
// e^0, or e^-87 while m is still -inf (ExpNonPositive clamps the NaN of -inf - -inf), with l and
// its sums still 0.
template <int RV, bool kMasked>
void SoftmaxTileOf(float* st, int32_t n, const int32_t* a, const int32_t* b, float* m, float* l,
                   float* corr) {
  for (int v = 0; v < RV; ++v) {
    const I32x16 av = LoadI16(a + 16 * v), bv = LoadI16(b + 16 * v);
    F32x16 top = Splat16(-std::numeric_limits<float>::infinity());
    for (int32_t j = 0; j < n; ++j) {
      const F32x16 x = Load16(st + j * kQueryBlockRows + 16 * v);
      if constexpr (kMasked) {
        top = (av <= j && j < bv && x > top) ? x : top;
      } else {
        top = x > top ? x : top;
      }
    }
    const F32x16 old_m = Load16(m + 16 * v);
    const F32x16 new_m = old_m > top ? old_m : top;
    const F32x16 c = ExpNonPositive16(old_m - new_m);
    F32x16 sum{};
    for (int32_t j = 0; j < n; ++j) {
      float* x = st + j * kQueryBlockRows + 16 * v;
      F32x16 e = ExpNonPositive16(Load16(x) - new_m);
      if constexpr (kMasked) e = (av <= j && j < bv) ? e : F32x16{};
      Store16(x, e);
      sum += e;
    }
    Store16(l + 16 * v, Load16(l + 16 * v) * c + sum);
    Store16(m + 16 * v, new_m);
    Store16(corr + 16 * v, c);
  }
}

// Tiles that every row of the block sees whole (all but the diagonal's and a window's edges) skip
// the masks.
template <int RV>
void SoftmaxTile(float* st, int32_t n, const int32_t* a, const int32_t* b, float* m, float* l,
                 float* corr) {
  bool whole = true;
  for (int32_t r = 0; r < 16 * RV; ++r) whole &= a[r] == 0 && b[r] == n;
  if (whole) {
    SoftmaxTileOf<RV, false>(st, n, a, b, m, l, corr);
  } else {
    SoftmaxTileOf<RV, true>(st, n, a, b, m, l, corr);
  }
}

// o[r] = o[r] * corr[r] + sum_j p[j][r] v_j for RB rows of NV vectors (head_dim = 16 NV); p
// holds kQueryBlockRows weights a key.
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
      const F32x16 w = Splat16(p[j * kQueryBlockRows + r]);
      for (int v = 0; v < NV; ++v) acc[r][v] += w * x[v];
    }
  }
  for (int r = 0; r < RB; ++r) {
    for (int v = 0; v < NV; ++v) Store16(o + r * 16 * NV + 16 * v, acc[r][v]);
  }
}

template <int NV>
void AccumulateRowsOf(const float* const* v_rows, int32_t n, const float* p, const float* corr,
                      int32_t rows, float* o) {
  constexpr int kRB = std::max(1, std::min(6, 24 / NV));  // accumulators stay in registers
  int32_t r = 0;
  for (; r + kRB <= rows; r += kRB) {
    AccumulateBlock<NV, kRB>(v_rows, n, p + r, corr + r, o + r * 16 * NV);
  }
  if (r < rows) {
    WithCount<kRB>(rows - r, [&](auto rb) {
      AccumulateBlock<NV, decltype(rb)::value>(v_rows, n, p + r, corr + r, o + r * 16 * NV);
    });
  }
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

  // Rows in lanes: the rows' scaled queries transposed (qt[d][r]), each key's weights for the
  // block's rows (p[j][r]).
  alignas(64) float qt[kMaxHeadDim * kQueryBlockRows];
  alignas(64) float p[kMaxTile * kQueryBlockRows];
  alignas(64) float o[kQueryBlockRows * kMaxHeadDim];
  alignas(64) float k_scratch[kMaxTile * kMaxHeadDim], v_scratch[kMaxTile * kMaxHeadDim];
  alignas(64) float m[kQueryBlockRows], l[kQueryBlockRows], corr[kQueryBlockRows];
  alignas(64) int32_t a[kQueryBlockRows], b[kQueryBlockRows];  // seen keys of a tile
  int32_t lo[kQueryBlockRows], pos[kQueryBlockRows];
  std::fill(m, m + kQueryBlockRows, -std::numeric_limits<float>::infinity());
  std::fill(l, l + kQueryBlockRows, 0.0f);
  std::fill(qt, qt + static_cast<size_t>(hd) * kQueryBlockRows, 0.0f);  // rows past `rows`: 0
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t i = i0 + r / group;
    const float* src = q + i * q_stride + static_cast<size_t>(kv_head * group + r % group) * hd;
    for (int32_t d = 0; d < hd; ++d) qt[d * kQueryBlockRows + r] = src[d] * scale;
    pos[r] = pos0 + i;
    lo[r] = FirstVisible(s, kv, pos[r]);
  }
  std::fill(o, o + static_cast<size_t>(rows) * hd, 0.0f);
  const auto score = rows > 16 ? ScoreTile<kRowVectors> : ScoreTile<1>;
  const auto softmax = rows > 16 ? SoftmaxTile<kRowVectors> : SoftmaxTile<1>;

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
    score(qt, hd, k_rows, n, p);
    // Row r sees the slots [lo, pos] within [c0, c1); rows past `rows` (zero queries, never
    // written out) see every slot, so that they do not keep a whole tile on the masked path.
    for (int32_t r = 0; r < kQueryBlockRows; ++r) {
      a[r] = r < rows ? std::max(lo[r], c0) - c0 : 0;
      b[r] = r < rows ? std::max(a[r], std::min(pos[r] + 1, c1) - c0) : n;
    }
    softmax(p, n, a, b, m, l, corr);
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
