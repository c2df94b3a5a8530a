#include "kernels/attention.h"

#include <algorithm>

#include "core/status.h"
#include "kernels/attention_internal.h"

namespace kvc {

void Attention(const AttentionShape& s, const float* q, int32_t n_q, int32_t q_pos0,
               const KVView& kv, float* out, ThreadPool* pool) {
  using namespace attention_internal;
  KVC_CHECK(s.head_dim <= kMaxHeadDim && s.n_heads / s.n_kv_heads <= kMaxGroup);
  KVC_CHECK(q_pos0 + n_q <= kv.n_tokens && kv.head_dim == s.head_dim);
  const int64_t stride = static_cast<int64_t>(s.n_heads) * s.head_dim;
  const int64_t tasks = static_cast<int64_t>(n_q) * s.n_kv_heads;
  const auto attend = TiledSupported(kv) ? AttendTiled : AttendGeneric;
  // Work of one task: scores and weighted sum over the visible keys for a group of heads.
  const int64_t visible = s.window > 0 ? std::min(s.window, q_pos0 + n_q) : q_pos0 + n_q;
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
