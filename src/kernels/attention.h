// Causal multi-head / grouped-query attention over a KV cache view, with an online softmax
// (flash-attention style): keys and values are streamed once per KV head, never materializing
// the score matrix, and the cache is read in its stored element type.
#pragma once

#include <cstdint>

#include "tensor/kv_view.h"
#include "threading/thread_pool.h"

namespace kvc {

struct AttentionShape {
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;   // query head h reads KV head h / (n_heads / n_kv_heads)
  int32_t head_dim = 0;
  int32_t window = 0;       // > 0: a query at slot p sees slots (p - window, p]; 0: all <= p
};

constexpr int32_t kMaxHeadDim = 256;
constexpr int32_t kMaxGroup = 32;  // query heads per KV head

// q:   [n_q, n_heads * head_dim] f32; query i sits at cache slot q_pos0 + i.
// out: [n_q, n_heads * head_dim] f32 (softmax(q k^T / sqrt(head_dim)) v per head).
// The view must cover slots [0, q_pos0 + n_q).
void Attention(const AttentionShape& shape, const float* q, int32_t n_q, int32_t q_pos0,
               const KVView& kv, float* out, ThreadPool* pool);

// Scores against q8/q4 keys use the query rounded to int8 per key group (as llama.cpp rounds
// activations for its q8_0 dot products) when this is true for the view (builds with AVX-512
// VNNI): query element i counts as scale * codes[i] with scale = RoundQueryGroup(...). Slots
// still in the f32 residual ring use the query as is.
bool AttentionRoundsQuery(const KVView& kv);
// When this is true for the view (tiled q8/q4 sides, tensor/kv_view.h, on builds with AVX-512
// VNNI), stored values are summed with u8 weights. Each KV head's slots are visited in steps of
// up to 64 slots starting at a multiple of 16 (at the first visible slot of the query's range,
// rounded down; a decode query has one range per split, DecodeSplitStart); within a step, the
// weight of slot t in value group g is rounded to u = round-half-even(255 * e^(s_t - s_max) *
// |S_t,g| / max |S_t',g|) over the step's slots in range, s_max their largest score, S the group
// scales, and counts as u / 255 of the step's largest weight.
bool AttentionRoundsValueWeights(const KVView& kv);
// A decode query on `threads` threads splits its visible slots [lo, hi) into this many ranges
// (one per thread, each of at least 256 slots, or one). With e the end of the stored slots in
// [lo, hi), range i takes the stored slots from DecodeSplitStart(lo, e, splits, i) (a multiple
// of 64 past the first range's) up to the next range's start (the last range up to e), and the
// slots past e (the residual ring) are cut evenly: range i takes [e + (hi - e) i / splits,
// e + (hi - e) (i + 1) / splits). Each range keeps its own softmax state.
int32_t DecodeSplitCount(int32_t lo, int32_t hi, int32_t threads);
int32_t DecodeSplitStart(int32_t lo, int32_t hi, int32_t splits, int32_t i);
// Rounds g query elements: scale = absmax / 127, codes = round-half-even(q * 127 / absmax);
// NaN elements get code 0.
float RoundQueryGroup(const float* q, int32_t g, int8_t* codes);

}  // namespace kvc
