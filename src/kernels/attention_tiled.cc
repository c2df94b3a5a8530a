// The tiled attention kernel (online softmax, one query at a time): keys and values are taken a
// tile of up to 64 slots at a time, in any layout (the tile gathers row addresses across
// blocks, so paged and contiguous caches run the same loop) and any per-token element type:
// quantized rows are decoded once per tile into an L1-resident f32 scratch that every query head
// of the GQA group then reads. Scores of 16 keys come out of one transposing reduction instead of
// 16 horizontal sums. Written with GCC vector extensions so the same code is AVX-512 here and
// AVX2 (pairs of registers) in the x86-64-v3 build that valgrind runs.
#include <algorithm>
#include <bit>
#include <limits>
#include <vector>

#include "kernels/attention_internal.h"
#include "kernels/vec16.h"
#include "quant/kv_quant.h"
#include "quant/kv_tiles.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace kvc::attention_internal {
namespace {

typedef uintptr_t U64x8 __attribute__((vector_size(64)));
static_assert(sizeof(uintptr_t) == 8 && sizeof(const uint8_t*) == 8);

constexpr int32_t kTileFloats = 64 * 64;     // scratch per side: 16 KiB

// scores[t] = scale * dot(q, rows[t]) for t < n; NV = head_dim / 16.
template <int NV>
void ScoreRows(const float* const* rows, int32_t n, const float* q, float scale, float* scores) {
  F32x16 qv[NV];
  for (int v = 0; v < NV; ++v) qv[v] = Load16(q + 16 * v);
  for (int32_t t0 = 0; t0 < n; t0 += 16) {
    const int32_t m = std::min<int32_t>(16, n - t0);
    F32x16 part[16];
    for (int i = 0; i < 16; ++i) {
      if (i >= m) {
        part[i] = F32x16{};
        continue;
      }
      const float* r = rows[t0 + i];
      F32x16 a = qv[0] * Load16(r);
      for (int v = 1; v < NV; ++v) a += qv[v] * Load16(r + 16 * v);
      part[i] = a;
    }
    const F32x16 s = Reduce16(part) * scale;
    if (m == 16) {
      Store16(scores + t0, s);
    } else {
      float tmp[16];
      Store16(tmp, s);
      std::copy(tmp, tmp + m, scores + t0);
    }
  }
}

// acc = acc * correction + sum_t p[t] * rows[t].
template <int NV>
void AccumulateRows(const float* const* rows, int32_t n, const float* p, float correction,
                    float* acc) {
  F32x16 a[NV];
  for (int v = 0; v < NV; ++v) a[v] = Load16(acc + 16 * v) * correction;
  for (int32_t t = 0; t < n; ++t) {
    const F32x16 w = Splat16(p[t]);
    const float* r = rows[t];
    for (int v = 0; v < NV; ++v) a[v] += w * Load16(r + 16 * v);
  }
  for (int v = 0; v < NV; ++v) Store16(acc + 16 * v, a[v]);
}

using ScoreFn = void (*)(const float* const*, int32_t, const float*, float, float*);
using AccumulateFn = void (*)(const float* const*, int32_t, const float*, float, float*);

template <int NV>
constexpr std::pair<ScoreFn, AccumulateFn> kKernels{ScoreRows<NV>, AccumulateRows<NV>};

std::pair<ScoreFn, AccumulateFn> KernelsFor(int32_t head_dim) {
  switch (head_dim / 16) {
    case 1: return kKernels<1>;
    case 2: return kKernels<2>;
    case 3: return kKernels<3>;
    case 4: return kKernels<4>;
    case 5: return kKernels<5>;
    case 6: return kKernels<6>;
    case 7: return kKernels<7>;
    case 8: return kKernels<8>;
    case 10: return kKernels<10>;
    case 12: return kKernels<12>;
    default: return kKernels<16>;  // TiledSupported admits only these
  }
}

}  // namespace

bool SupportedHeadDim(int32_t hd) {
  return hd % 16 == 0 && hd <= 256 && (hd <= 128 || hd == 160 || hd == 192 || hd == 256);
}

void TileRows(const KVView& kv, const KVSideView& side, int32_t head, int32_t c0, int32_t n,
              float* scratch, const float** rows) {
  const int32_t hd = kv.head_dim;
  if (c0 >= side.n_stored) {
    const float* ring = side.ring + static_cast<size_t>(head) * side.ring_capacity * hd;
    int32_t r = c0 % side.ring_capacity;
    for (int32_t i = 0; i < n; ++i) {
      rows[i] = ring + static_cast<size_t>(r) * hd;
      if (++r == side.ring_capacity) r = 0;
    }
    return;
  }
  const uint8_t* raw[kMaxTile];
  if (side.tiling != KVTiling::kRows) {  // builds without the tiled kernel: rows unpacked
    thread_local std::vector<uint8_t> unpacked;
    unpacked.resize(static_cast<size_t>(n) * side.row_bytes);
    for (int32_t i = 0; i < n; ++i) {
      raw[i] = StoredRow(kv, side, head, c0 + i, unpacked.data() + static_cast<size_t>(i) * side.row_bytes);
    }
  } else {
    GatherRows(kv, side, head, c0, n, raw);
  }
  if (side.type == KVType::kF32) {
    for (int32_t i = 0; i < n; ++i) rows[i] = reinterpret_cast<const float*>(raw[i]);
    return;
  }
  DequantizeKVRows(side.type, raw, n, hd, side.group, scratch);
  for (int32_t i = 0; i < n; ++i) rows[i] = scratch + static_cast<size_t>(i) * hd;
}

float SoftmaxStep(float* p, int32_t n, float& m, float& l) {
  const int32_t n16 = (n + 15) & ~15;
  std::fill(p + n, p + n16, -std::numeric_limits<float>::infinity());  // e^(-inf) adds ~1e-38
  F32x16 vmax = Load16(p);
  for (int32_t t = 16; t < n16; t += 16) {
    const F32x16 x = Load16(p + t);
    vmax = x > vmax ? x : vmax;
  }
  const float new_m = std::max(m, HMax16(vmax));
  const float correction = ExpNonPositive(m - new_m);
  F32x16 sum{};
  for (int32_t t = 0; t < n16; t += 16) {
    const F32x16 e = ExpNonPositive16(Load16(p + t) - new_m);
    Store16(p + t, e);
    sum += e;
  }
  m = new_m;
  l = l * correction + HSum16(sum);
  return correction;
}

void GatherRows(const KVView& kv, const KVSideView& side, int32_t head, int32_t c0, int32_t n,
                const uint8_t** rows) {
  const U64x8 lanes = U64x8{0, 1, 2, 3, 4, 5, 6, 7} * side.row_bytes;
  for (int32_t i = 0, t = c0; i < n;) {
    const int32_t block = t / kv.block_size;
    const int32_t in_block = t - block * kv.block_size;
    const int32_t run = std::min(n - i, kv.block_size - in_block);
    const uint8_t* p = side.base + static_cast<size_t>(kv.block_table[block]) * side.block_stride +
                       static_cast<size_t>(head) * side.head_stride +
                       static_cast<size_t>(in_block) * side.row_bytes;
    // Eight addresses per vector store (GCC otherwise builds them one lane insert at a time).
    int32_t j = 0;
    for (; j + 8 <= run; j += 8) {
      const U64x8 a = (U64x8{} + reinterpret_cast<uintptr_t>(p + static_cast<size_t>(j) * side.row_bytes)) + lanes;
      std::memcpy(rows + i + j, &a, sizeof(a));
    }
    for (; j < run; ++j) rows[i + j] = p + static_cast<size_t>(j) * side.row_bytes;
    i += run;
    t += run;
  }
}

namespace {

// The residual ring of quantized sides holds f32 rows: as a view of f32 rows, the float row
// kernel takes them, every row read once for the whole GQA group instead of once per query head
// (15-30% faster over a range of ring slots, resident or from DRAM: BM_DecodeAttention
// residual:1000). False when the kernel does not (no ring, or a build or head size without it).
bool RingRowView(const KVView& kv, KVView* out) {
  if (kv.k.ring == nullptr || kv.v.ring == nullptr) return false;
  *out = kv;
  for (KVSideView* side : {&out->k, &out->v}) {
    side->type = KVType::kF32;
    side->group = kv.head_dim;
    side->kivi = false;
    side->tiling = KVTiling::kRows;
    side->row_bytes = static_cast<size_t>(kv.head_dim) * sizeof(float);
  }
  return FloatKeysSupported(*out);
}

}  // namespace

bool TiledSupported(const KVView& kv) {
  if (!SupportedHeadDim(kv.head_dim)) return false;
  for (const KVSideView* s : {&kv.k, &kv.v}) {
    if (s->kivi || (IsQuantized(s->type) && s->group % 16 != 0)) return false;
  }
  return true;
}

PrefetchSpans RingSpans(const KVView& kv, int32_t h, int32_t r0, int32_t r1) {
  PrefetchSpans spans;
  const size_t row = static_cast<size_t>(kv.head_dim) * sizeof(float);
  for (const KVSideView* side : {&kv.k, &kv.v}) {
    if (side->ring == nullptr || r0 >= r1) continue;
    // Slot t sits at t % capacity: one run, or two when the range wraps.
    const int32_t first = r0 % side->ring_capacity;
    const int32_t run = std::min(r1 - r0, side->ring_capacity - first);
    for (const auto& [t, n] : {std::pair{r0, run}, std::pair{r0 + run, r1 - r0 - run}}) {
      if (n <= 0) continue;
      spans.start[spans.n] = reinterpret_cast<const uint8_t*>(kv.Residual(*side, h, t));
      spans.bytes[spans.n++] = static_cast<size_t>(n) * row;
    }
  }
  return spans;
}

void AttendSlots(const AttentionShape& s, const float* q, int32_t h0, int32_t h1, int32_t t0,
                 int32_t t1, const KVView& kv, float* m, float* l, float* acc,
                 const PrefetchSpans& later) {
  const int32_t hd = s.head_dim;
  const int32_t group = s.n_heads / s.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int32_t tile = std::min(kMaxTile, kTileFloats / hd / 16 * 16);
  const auto [score, accumulate] = KernelsFor(hd);

  // q8/q4 keys: the query heads rounded to int8 once per call. Float rows: scored in place.
  const bool int8_keys = Int8KeysSupported(kv);
  const bool float_keys = !int8_keys && FloatKeysSupported(kv);
  const bool row_kernel = int8_keys || float_keys;
  const bool tiles = TilesSupported(kv);
  const int32_t stored_end = std::min({t1, kv.k.n_stored, kv.v.n_stored});
  thread_local std::vector<Int8Query> rounded;
  // Only stored slots take the rounded query (a range of ring slots alone skips the rounding).
  if ((int8_keys || tiles) && t0 < stored_end) {
    rounded.resize(static_cast<size_t>(h1 - h0) * group);
    RoundQueries(kv, q, (h1 - h0) * group, scale, rounded.data());
  }
  // Tiled sides: their stored slots go to the tiled kernel, the residual rings below.
  if (tiles && t0 < stored_end) {
    AttendTileSlots(s, rounded.data(), h0, h1, t0, stored_end, kv, m, l, acc, later);
    t0 = stored_end;
  }
  KVView ring_view;
  const bool ring_kernel = stored_end < t1 && RingRowView(kv, &ring_view);

  alignas(64) float p[kMaxTile];
  alignas(64) float k_scratch[kTileFloats], v_scratch[kTileFloats];
  const float* k_rows[kMaxTile];
  const float* v_rows[kMaxTile];
  const uint8_t* rows_a[4][kMaxTile];  // this step's K and V rows, and the next step's
  const uint8_t** k_raw = rows_a[0];
  const uint8_t** v_raw = rows_a[1];
  const uint8_t** next_k = rows_a[2];
  const uint8_t** next_v = rows_a[3];
  // The hardware prefetchers do not follow ~1 KiB runs spread over blocks and heads, so the
  // kernels prefetch the rows of the step after (c0, h) in a stored tile as they go: the next
  // head's, or the next tile's first head's (`step` slots long). Gathers them into next_k /
  // next_v and returns how many (0 when that step leaves the stored slots).
  int32_t gathered_c0 = -1, gathered_h = -1;
  auto gather_next = [&](int32_t c0, int32_t c1, int32_t h, int32_t n, int32_t step) {
    const bool last = h + 1 == h1;
    const int32_t ahead = last ? std::min({c1 + step, t1, kv.k.n_stored, kv.v.n_stored}) - c1 : n;
    if (ahead <= 0) return 0;
    gathered_c0 = last ? c1 : c0;
    gathered_h = last ? h0 : h + 1;
    GatherRows(kv, kv.k, gathered_h, gathered_c0, ahead, next_k);
    GatherRows(kv, kv.v, gathered_h, gathered_c0, ahead, next_v);
    return ahead;
  };
  for (int32_t c0 = t0, c1; c0 < t1; c0 = c1) {
    c1 = std::min(t1, c0 + (row_kernel ? kMaxTile : tile));
    for (const KVSideView* side : {&kv.k, &kv.v}) {
      if (c0 < side->n_stored) c1 = std::min(c1, side->n_stored);
    }
    const bool stored_rows = row_kernel && c1 <= kv.k.n_stored && c1 <= kv.v.n_stored;
    if (!stored_rows) c1 = std::min(c1, c0 + tile);
    const int32_t n = c1 - c0;
    // Every KV head of this tile before the next tile: a paged block is read front to back.
    for (int32_t h = h0; h < h1; ++h) {
      const int32_t first = (h - h0) * group;
      if (stored_rows) {
        // Rows were gathered as the previous step's `next` (and swapped in) unless this tile
        // starts the call.
        if (c0 != gathered_c0 || h != gathered_h) {
          GatherRows(kv, kv.k, h, c0, n, k_raw);
          GatherRows(kv, kv.v, h, c0, n, v_raw);
        }
        const Prefetch next{next_k, next_v, gather_next(c0, c1, h, n, kMaxTile)};
        if (int8_keys) {
          AttendInt8Keys(kv, rounded.data() + first, group, k_raw, v_raw, n, next, m + first,
                         l + first, acc + static_cast<int64_t>(first) * hd);
        } else {
          AttendFloatKeys(kv, q + static_cast<int64_t>(first) * hd, scale, group, k_raw, v_raw, n, next,
                          m + first, l + first, acc + static_cast<int64_t>(first) * hd);
        }
        if (next.n > 0) {
          std::swap(k_raw, next_k);
          std::swap(v_raw, next_v);
        }
        continue;
      }
      // Rows decoded to f32 (residual rings, mixed sides, builds without the row kernels): the
      // next step's rows are prefetched a slice per query head. (Stored rows take the row
      // kernels whenever they exist, so the two never share the `next` rows.)
      const bool stored = c1 <= kv.k.n_stored && c1 <= kv.v.n_stored;
      const int32_t ahead = stored ? gather_next(c0, c1, h, n, tile) : 0;
      TileRows(kv, kv.k, h, c0, n, k_scratch, k_rows);
      TileRows(kv, kv.v, h, c0, n, v_scratch, v_rows);
      if (ring_kernel && c0 >= kv.k.n_stored && c0 >= kv.v.n_stored) {
        // The next ring step's rows (the next head's, or the next slots' first head's) are
        // prefetched as the keys are scored: without, rows from DRAM came slower than when
        // each query head read them in turn.
        const int32_t nh = h + 1 < h1 ? h + 1 : h0, nc = h + 1 < h1 ? c0 : c1;
        const int32_t nn = nc < t1 ? std::min(t1, nc + tile) - nc : 0;
        const float* ring_next[2][kMaxTile];
        TileRows(kv, kv.k, nh, nc, nn, nullptr, ring_next[0]);
        TileRows(kv, kv.v, nh, nc, nn, nullptr, ring_next[1]);
        const Prefetch next{reinterpret_cast<const uint8_t* const*>(ring_next[0]),
                            reinterpret_cast<const uint8_t* const*>(ring_next[1]), nn};
        AttendFloatKeys(ring_view, q + static_cast<int64_t>(first) * hd, scale, group,
                        reinterpret_cast<const uint8_t* const*>(k_rows),
                        reinterpret_cast<const uint8_t* const*>(v_rows), n, next, m + first,
                        l + first, acc + static_cast<int64_t>(first) * hd);
        continue;
      }
      for (int32_t g = 0; g < group; ++g) {
        for (int32_t i = g * ahead / group; i < (g + 1) * ahead / group; ++i) {
          PrefetchRow(next_k[i], kv.k.row_bytes);
          PrefetchRow(next_v[i], kv.v.row_bytes);
        }
        const int32_t qh = first + g;
        score(k_rows, n, q + static_cast<int64_t>(qh) * hd, scale, p);
        const float correction = SoftmaxStep(p, n, m[qh], l[qh]);
        accumulate(v_rows, n, p, correction, acc + static_cast<int64_t>(qh) * hd);
      }
    }
  }
}

void AttendTiled(const AttentionShape& s, const float* q, int32_t pos, int32_t kv_head,
                 const KVView& kv, float* out) {
  const int32_t hd = s.head_dim;
  const int32_t group = s.n_heads / s.n_kv_heads;
  float m[kMaxGroup], l[kMaxGroup];
  alignas(64) float acc[kMaxGroup * kMaxHeadDim];
  std::fill(m, m + group, -std::numeric_limits<float>::infinity());
  std::fill(l, l + group, 0.0f);
  std::fill(acc, acc + group * hd, 0.0f);
  const int64_t first = static_cast<int64_t>(kv_head) * group * hd;
  AttendSlots(s, q + first, kv_head, kv_head + 1, FirstVisible(s, kv, pos), pos + 1, kv, m, l, acc);
  for (int32_t g = 0; g < group; ++g) {
    const float inv = l[g] > 0 ? 1.0f / l[g] : 0.0f;
    for (int32_t d = 0; d < hd; ++d) out[first + g * hd + d] = acc[g * hd + d] * inv;
  }
}

}  // namespace kvc::attention_internal
