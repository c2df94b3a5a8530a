#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/status.h"
#include "quant/kv_quant.h"

namespace kvc {
namespace {

constexpr int32_t kChunk = 64;  // keys scored per online-softmax update

inline float Dot(const float* a, const float* b, int32_t n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int32_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

inline void Axpy(float a, const float* x, float* y, int32_t n) {
#pragma omp simd
  for (int32_t d = 0; d < n; ++d) y[d] += a * x[d];
}

// Reads keys/values of one KV head in their stored format. Rows in blocks are decoded inside the
// dot product when one query head reads them; with several (GQA) the row is decoded once into a
// small buffer and reused, so a shared KV head is read once.
class SideReader {
 public:
  SideReader(const KVView& view, const KVSideView& side, int32_t head)
      : view_(view), side_(side), head_(head), hd_(view.head_dim) {}

  // f32 row of slot t (decoded into tmp when stored quantized or in half precision).
  const float* Row(int32_t t, float* tmp) const {
    if (t >= side_.n_stored) return view_.Residual(side_, head_, t);
    const uint8_t* p = view_.Stored(side_, head_, t);
    if (side_.kivi) {
      DequantizeKVChannelGroupRow(side_.type, p, hd_, side_.group, t % side_.group, tmp);
      return tmp;
    }
    if (side_.type == KVType::kF32) return reinterpret_cast<const float*>(p);
    DequantizeKVRow(side_.type, p, hd_, side_.group, tmp);
    return tmp;
  }

  // Dot of q with slot t without materializing the row (per-token formats).
  float Dot(int32_t t, const float* q, float* tmp) const {
    if (t >= side_.n_stored || side_.kivi || side_.type == KVType::kF32) return kvc::Dot(q, Row(t, tmp), hd_);
    return DotKVRow(side_.type, view_.Stored(side_, head_, t), q, hd_, side_.group);
  }

  // acc += a * row(t).
  void Axpy(int32_t t, float a, float* acc, float* tmp) const {
    if (t < side_.n_stored && !side_.kivi && side_.type != KVType::kF32) {
      AxpyKVRow(side_.type, view_.Stored(side_, head_, t), a, acc, hd_, side_.group);
      return;
    }
    kvc::Axpy(a, Row(t, tmp), acc, hd_);
  }

 private:
  const KVView& view_;
  const KVSideView& side_;
  int32_t head_;
  int32_t hd_;
};

// One query position, one KV head, its `group` query heads.
void AttendOne(const AttentionShape& s, const float* q, int32_t pos, int32_t kv_head,
               const KVView& kv, float* out) {
  const int32_t hd = s.head_dim;
  const int32_t group = s.n_heads / s.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  int32_t lo = s.window > 0 ? std::max(0, pos - s.window + 1) : 0;
  lo = std::max(lo, kv.first_token);
  const int32_t hi = pos + 1;  // exclusive

  float m[kMaxGroup], l[kMaxGroup];
  float acc[kMaxGroup * kMaxHeadDim];
  float scores[kMaxGroup * kChunk];
  float row[kMaxHeadDim];
  std::fill(m, m + group, -std::numeric_limits<float>::infinity());
  std::fill(l, l + group, 0.0f);
  std::fill(acc, acc + group * hd, 0.0f);
  const float* qh = q + static_cast<int64_t>(kv_head) * group * hd;
  const SideReader keys(kv, kv.k, kv_head), values(kv, kv.v, kv_head);

  for (int32_t c0 = lo; c0 < hi; c0 += kChunk) {
    const int32_t c1 = std::min(hi, c0 + kChunk);
    const int32_t n = c1 - c0;
    for (int32_t t = 0; t < n; ++t) {
      if (group == 1) {
        scores[t] = keys.Dot(c0 + t, qh, row) * scale;
        continue;
      }
      const float* k = keys.Row(c0 + t, row);
      for (int32_t g = 0; g < group; ++g) scores[g * kChunk + t] = Dot(qh + g * hd, k, hd) * scale;
    }
    // Rescale running sums once per chunk to the new maximum, then accumulate.
    for (int32_t g = 0; g < group; ++g) {
      float* sg = scores + g * kChunk;
      const float cmax = *std::max_element(sg, sg + n);
      const float new_m = std::max(m[g], cmax);
      const float correction = std::exp(m[g] - new_m);
      l[g] *= correction;
      float* ag = acc + g * hd;
      for (int32_t d = 0; d < hd; ++d) ag[d] *= correction;
      m[g] = new_m;
      for (int32_t t = 0; t < n; ++t) {
        sg[t] = std::exp(sg[t] - new_m);
        l[g] += sg[t];
      }
    }
    for (int32_t t = 0; t < n; ++t) {
      if (group == 1) {
        values.Axpy(c0 + t, scores[t], acc, row);
        continue;
      }
      const float* v = values.Row(c0 + t, row);
      for (int32_t g = 0; g < group; ++g) Axpy(scores[g * kChunk + t], v, acc + g * hd, hd);
    }
  }
  float* oh = out + static_cast<int64_t>(kv_head) * group * hd;
  for (int32_t g = 0; g < group; ++g) {
    const float inv = l[g] > 0 ? 1.0f / l[g] : 0.0f;
    for (int32_t d = 0; d < hd; ++d) oh[g * hd + d] = acc[g * hd + d] * inv;
  }
}

}  // namespace

void Attention(const AttentionShape& s, const float* q, int32_t n_q, int32_t q_pos0,
               const KVView& kv, float* out, ThreadPool* pool) {
  KVC_CHECK(s.head_dim <= kMaxHeadDim && s.n_heads / s.n_kv_heads <= kMaxGroup);
  KVC_CHECK(q_pos0 + n_q <= kv.n_tokens && kv.head_dim == s.head_dim);
  const int64_t stride = static_cast<int64_t>(s.n_heads) * s.head_dim;
  const int64_t tasks = static_cast<int64_t>(n_q) * s.n_kv_heads;
  // Work of one task: scores and weighted sum over the visible keys for a group of heads.
  const int64_t visible = s.window > 0 ? std::min(s.window, q_pos0 + n_q) : q_pos0 + n_q;
  const double per_task = 2.0 * visible * s.head_dim * (s.n_heads / s.n_kv_heads);
  pool->ParallelFor(tasks, [&](int64_t b, int64_t e, int) {
    for (int64_t task = b; task < e; ++task) {
      const int32_t i = static_cast<int32_t>(task / s.n_kv_heads);
      const int32_t h = static_cast<int32_t>(task % s.n_kv_heads);
      AttendOne(s, q + i * stride, q_pos0 + i, h, kv, out + i * stride);
    }
  }, ThreadPool::GrainFor(per_task));
}

}  // namespace kvc
