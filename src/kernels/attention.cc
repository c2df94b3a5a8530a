#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/status.h"
#include "kernels/attention_internal.h"

namespace kvc {
namespace {

using namespace attention_internal;

constexpr int32_t kMinSlotsPerSplit = 256;  // below this a split costs more than it saves

// One decode query (flash-decoding): the visible slots are split into one contiguous range per
// thread (DecodeSplitStart), and the work items are (range, KV head) pairs, range-major, so that
// a thread's share is its range for every head, block by block (the order a paged block is
// stored in): measured faster from DRAM than a thread per group of heads (q8: 5.6-5.9 against
// 6.9-7.1 ms, 16 layers at depth 16384) or more ranges than threads. A thread slowed by its core
// leaves whole heads of its range for the others (ThreadPool::ParallelFor). The ranges' softmax
// states are merged by their running maxima. Slots in the f32 residual ring of quantized sides
// (13x the bytes of a q4 slot) are split across the ranges apart from the stored ones: a range
// that held the whole ring made the step 7-29% longer (q4, depth 4096, 2 threads).
void AttendSplit(const AttentionShape& s, const float* q, int32_t pos, const KVView& kv, float* out,
                 ThreadPool* pool) {
  const int32_t hd = s.head_dim, heads = s.n_heads, kv_heads = s.n_kv_heads;
  const int32_t group = heads / kv_heads;
  const int32_t lo = FirstVisible(s, kv, pos), hi = pos + 1;
  const int32_t splits = DecodeSplitCount(lo, hi, pool->size());
  const int32_t stored_end = std::clamp(std::min(kv.k.n_stored, kv.v.n_stored), lo, hi);
  // Per split: m[heads], l[heads], acc[heads * hd]. Grows once; no allocation per token after.
  thread_local std::vector<float> state;
  const size_t per_split = static_cast<size_t>(heads) * (hd + 2);
  if (state.size() < per_split * splits) state.resize(per_split * splits);
  float* base = state.data();
  pool->ParallelFor(static_cast<int64_t>(kv_heads) * splits, [&](int64_t b, int64_t e, int) {
    for (int64_t item = b; item < e; ++item) {
      const int32_t i = static_cast<int32_t>(item / kv_heads), h = static_cast<int32_t>(item % kv_heads);
      const int32_t first = h * group;  // the KV head's first query head
      float* m = base + i * per_split + first;
      float* l = m + heads;
      float* acc = base + i * per_split + 2 * heads + static_cast<size_t>(first) * hd;
      std::fill(m, m + group, -std::numeric_limits<float>::infinity());
      std::fill(l, l + group, 0.0f);
      std::fill(acc, acc + static_cast<size_t>(group) * hd, 0.0f);
      const float* qh = q + static_cast<size_t>(first) * hd;
      const int32_t t0 = DecodeSplitStart(lo, stored_end, splits, i);
      const int32_t t1 =
          i + 1 == splits ? stored_end : DecodeSplitStart(lo, stored_end, splits, i + 1);
      const int32_t r0 = stored_end + (hi - stored_end) * i / splits;  // the ring's share
      const int32_t r1 = stored_end + (hi - stored_end) * (i + 1) / splits;
      // The ring's rows are fetched while the stored slots are read.
      if (t0 < t1) AttendSlots(s, qh, h, h + 1, t0, t1, kv, m, l, acc, RingSpans(kv, h, r0, r1));
      if (r0 < r1) AttendSlots(s, qh, h, h + 1, r0, r1, kv, m, l, acc);
    }
  }, 1);
  for (int32_t h = 0; h < heads; ++h) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < splits; ++i) mx = std::max(mx, base[i * per_split + h]);
    float total = 0;
    float* o = out + static_cast<int64_t>(h) * hd;
    std::fill(o, o + hd, 0.0f);
    for (int32_t i = 0; i < splits; ++i) {
      const float* m = base + i * per_split;
      const float w = ExpNonPositive(m[h] - mx);
      total += w * m[heads + h];
      const float* acc = m + 2 * heads + static_cast<int64_t>(h) * hd;
      for (int32_t d = 0; d < hd; ++d) o[d] += w * acc[d];
    }
    const float inv = total > 0 ? 1.0f / total : 0.0f;
    for (int32_t d = 0; d < hd; ++d) o[d] *= inv;
  }
}

}  // namespace

int32_t DecodeSplitCount(int32_t lo, int32_t hi, int32_t threads) {
  return std::max(1, std::min(threads, (hi - lo) / kMinSlotsPerSplit));
}

int32_t DecodeSplitStart(int32_t lo, int32_t hi, int32_t splits, int32_t i) {
  if (i == 0) return lo;
  const int32_t span = (hi - lo + splits - 1) / splits;
  // Whole 64-slot steps: a range that began mid-step would score that step's tiles twice.
  return std::min(hi, (lo + i * span + kMaxTile - 1) / kMaxTile * kMaxTile);
}

void Attention(const AttentionShape& s, const float* q, int32_t n_q, int32_t q_pos0,
               const KVView& kv, float* out, ThreadPool* pool) {
  KVC_CHECK(s.head_dim <= kMaxHeadDim && s.n_heads / s.n_kv_heads <= kMaxGroup);
  KVC_CHECK(q_pos0 + n_q <= kv.n_tokens && kv.head_dim == s.head_dim);
  const bool tiled = TiledSupported(kv);
  if (tiled && n_q == 1) return AttendSplit(s, q, q_pos0, kv, out, pool);
  const int64_t visible = s.window > 0 ? std::min(s.window, q_pos0 + n_q) : q_pos0 + n_q;
  if (n_q > 1 && QueryBlockSupported(kv) && s.n_heads / s.n_kv_heads <= kQueryBlockRows) {
    // Prefill over float sides: one task per (block of queries, KV head).
    const int32_t per_block = QueriesPerBlock(s);
    const int64_t blocks = (n_q + per_block - 1) / per_block;
    const double per_task = 4.0 * visible * s.head_dim * per_block * (s.n_heads / s.n_kv_heads);
    pool->ParallelFor(blocks * s.n_kv_heads, [&](int64_t b, int64_t e, int) {
      for (int64_t task = b; task < e; ++task) {
        const int32_t i0 = static_cast<int32_t>(task / s.n_kv_heads) * per_block;
        const int32_t h = static_cast<int32_t>(task % s.n_kv_heads);
        AttendQueryBlock(s, q, i0, std::min(n_q, i0 + per_block), q_pos0, h, kv, out);
      }
    }, ThreadPool::GrainFor(per_task));
    return;
  }
  // Prefill chunks: one task per (query, KV head).
  const int64_t stride = static_cast<int64_t>(s.n_heads) * s.head_dim;
  const int64_t tasks = static_cast<int64_t>(n_q) * s.n_kv_heads;
  const auto attend = tiled ? AttendTiled : AttendGeneric;
  // Work of one task: scores and weighted sum over the visible keys for a group of heads.
  const double per_task = 2.0 * visible * s.head_dim * (s.n_heads / s.n_kv_heads);
  pool->ParallelFor(tasks, [&](int64_t b, int64_t e, int) {
    for (int64_t task = b; task < e; ++task) {
      const int32_t i = static_cast<int32_t>(task / s.n_kv_heads);
      const int32_t h = static_cast<int32_t>(task % s.n_kv_heads);
      attend(s, q + i * stride, q_pos0 + i, h, kv, out + i * stride);
    }
  }, ThreadPool::GrainFor(per_task));
}

}  // namespace kvc
