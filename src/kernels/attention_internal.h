// Pieces shared by the attention kernels (attention.cc dispatches between them).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/exp_approx.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace kvc::attention_internal {

// First visible slot of a query at `pos` (window and dropped slots).
inline int32_t FirstVisible(const AttentionShape& s, const KVView& kv, int32_t pos) {
  const int32_t lo = s.window > 0 ? std::max(0, pos - s.window + 1) : 0;
  return std::max(lo, kv.first_token);
}

constexpr int32_t kMaxTile = 64;  // slots per tile (one online-softmax update)

// One online-softmax update for one head: scores p[0, n) become e^(p - m') with m' the new
// running maximum, l is rescaled and grows by their sum; returns the factor e^(m - m') that
// rescales the weighted sum of earlier tiles. p has room up to n rounded up to 16.
float SoftmaxStep(float* p, int32_t n, float& m, float& l);

// Block addresses of slots [c0, c0 + n) of one side and head (all below side.n_stored).
void GatherRows(const KVView& kv, const KVSideView& side, int32_t head, int32_t c0, int32_t n,
                const uint8_t** rows);

// Software prefetch of every cache line of one row: its first and last byte, and the lines
// strictly between them (none for rows of up to 64 bytes that straddle one line boundary).
inline void PrefetchRow(const uint8_t* row, size_t bytes) {
  __builtin_prefetch(row, 0, 3);
  __builtin_prefetch(row + bytes - 1, 0, 3);
  const uintptr_t last = (reinterpret_cast<uintptr_t>(row) + bytes - 1) & ~uintptr_t{63};
  for (uintptr_t a = (reinterpret_cast<uintptr_t>(row) & ~uintptr_t{63}) + 64; a < last; a += 64) {
    __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
  }
}

// Int8 key path (attention_quant.cc). A query head rounded for it: codes in the order keys are
// unpacked (q4: a group's even elements, then its odd ones), and per segment (a key group, or a
// 64-element slice of a longer one) the query group's scale times the softmax scale and the sum
// of the segment's codes.
struct Int8Query {
  alignas(64) int8_t codes[kMaxHeadDim];
  float scale[kMaxHeadDim / 16];
  float sum[kMaxHeadDim / 16];
  int32_t minus_128_sum[kMaxHeadDim / 16];  // q8 keys' +128 offset, the dot products' start
};
// Whether the int8 key path takes this view's stored slots (built with AVX-512 VNNI; q8 or q4
// per-token keys, head_dim 32/64/128/256, values of any per-token type but q2).
bool Int8KeysSupported(const KVView& kv);
void RoundQueries(const KVView& kv, const float* q, int32_t n_heads, float softmax_scale,
                  Int8Query* out);
// Rows to prefetch while a tile computes: those of the next (tile, head).
struct Prefetch {
  const uint8_t* const* k = nullptr;
  const uint8_t* const* v = nullptr;
  int32_t n = 0;
};
// The query heads of one KV head over n stored slots (rows from GatherRows), updating their
// online-softmax state (m, l, acc of the group's first query head).
void AttendInt8Keys(const KVView& kv, const Int8Query* q, int32_t group,
                    const uint8_t* const* k_rows, const uint8_t* const* v_rows, int32_t n,
                    const Prefetch& next, float* m, float* l, float* acc);

// Float keys and values (f32/f16/bf16 rows, head_dim 32/64/128/256) on the same builds: each
// key converted once for the group's query heads, scores without horizontal sums
// (attention_quant.cc). q: the group's query heads, unscaled; scale: the softmax scale.
bool FloatKeysSupported(const KVView& kv);
void AttendFloatKeys(const KVView& kv, const float* q, float scale, int32_t group,
                     const uint8_t* const* k_rows, const uint8_t* const* v_rows, int32_t n,
                     const Prefetch& next, float* m, float* l, float* acc);

// Memory that a kernel prefetches a few lines a step while it runs, for what its caller reads
// next: the residual ring's rows of a decode range, attended right after its stored slots. Cold
// from DRAM, and only 64 rows a call, they made a q4 step (16 layers, 2 threads) a fifth longer at
// depth 4096 and 5-10% at 16384, most of it waiting.
struct PrefetchSpans {
  static constexpr int32_t kMax = 4;
  const uint8_t* start[kMax] = {};
  size_t bytes[kMax] = {};
  int32_t n = 0;
};
// The ring rows of KV head h, slots [r0, r1) (at most the ring's capacity), of both sides.
PrefetchSpans RingSpans(const KVView& kv, int32_t h, int32_t r0, int32_t r1);

// Tiled q8/q4 sides (tensor/kv_view.h: KVTiling) on builds with AVX-512 VNNI: the int8 kernel of
// attention_tiles.cc takes their stored slots.
bool TilesSupported(const KVView& kv);
// The query heads of KV heads [h0, h1) (q rounded by RoundQueries; m, l, acc as AttendSlots) over
// stored slots [t0, t1), prefetching `later` spread over its steps.
void AttendTileSlots(const AttentionShape& s, const Int8Query* q, int32_t h0, int32_t h1,
                     int32_t t0, int32_t t1, const KVView& kv, float* m, float* l, float* acc,
                     const PrefetchSpans& later);

// The tiled kernel handles per-token rows whose head_dim is a multiple of 16 (and quantized
// groups of a multiple of 16): everything but KIVI keys and odd head sizes.
bool TiledSupported(const KVView& kv);

// An f32/f16/bf16 side stored as per-token rows (what the float row kernels read in place).
inline bool FloatRows(const KVSideView& s) {
  return !s.kivi && s.tiling == KVTiling::kRows &&
         (s.type == KVType::kF32 || s.type == KVType::kF16 || s.type == KVType::kBF16);
}

// Head sizes the float kernels are instantiated for (multiples of 16 up to 256).
bool SupportedHeadDim(int32_t hd);
// f32 rows of slots [c0, c0 + n) (n <= kMaxTile) of one side: the ring or f32 blocks in place,
// other types decoded into `scratch` (n * head_dim floats). The caller keeps [c0, c0 + n) on one
// side of side.n_stored.
void TileRows(const KVView& kv, const KVSideView& side, int32_t head, int32_t c0, int32_t n,
              float* scratch, const float** rows);

// Prefill over float sides (attention_prefill.cc): queries [i0, i1) of a chunk whose query i sits
// at slot pos0 + i (q and out as Attention's), KV head kv_head, as one block of at most
// kQueryBlockRows rows (queries x query heads of the group).
constexpr int32_t kQueryBlockRows = 32;
bool QueryBlockSupported(const KVView& kv);
int32_t QueriesPerBlock(const AttentionShape& s);
void AttendQueryBlock(const AttentionShape& s, const float* q, int32_t i0, int32_t i1, int32_t pos0,
                      int32_t kv_head, const KVView& kv, float* out);

// One query position, one KV head and its query heads (n_heads / n_kv_heads of them).
void AttendTiled(const AttentionShape& s, const float* q, int32_t pos, int32_t kv_head,
                 const KVView& kv, float* out);
// The tiled kernel's core: the query heads of KV heads [h0, h1) (q, m, l, acc start at h0's first
// query head; acc holds head_dim floats per query head) over slots [t0, t1), updating the online
// softmax state in place. Tile by tile, every head of a tile before the next. `later`: memory the
// caller reads next, prefetched on the way by the tiled kernel (the other kernels ignore it).
void AttendSlots(const AttentionShape& s, const float* q, int32_t h0, int32_t h1, int32_t t0,
                 int32_t t1, const KVView& kv, float* m, float* l, float* acc,
                 const PrefetchSpans& later = {});
void AttendGeneric(const AttentionShape& s, const float* q, int32_t pos, int32_t kv_head,
                   const KVView& kv, float* out);

}  // namespace kvc::attention_internal
