// The general attention kernel: any head size, any layout, KIVI keys (channel groups along
// tokens), run by run through the row codecs of quant/kv_quant.h. Slower than the tiled kernel,
// which takes every configuration it can.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention_internal.h"
#include "quant/kv_quant.h"

namespace kvc::attention_internal {
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

// A run of consecutive slots [c0, c1) of one KV head that lies in one block (or in the residual
// ring) for both K and V, so each row is one pointer step from the previous.
class SideRun {
 public:
  SideRun(const KVView& view, const KVSideView& side, int32_t head, int32_t c0)
      : view_(view), side_(side), head_(head), hd_(view.head_dim), c0_(c0) {
    residual_ = c0 >= side.n_stored;
    if (!residual_) base_ = view.Stored(side, head, c0);
  }

  // f32 row of slot c0 + i: in place for f32 storage, else decoded into tmp.
  const float* Row(int32_t i, float* tmp) const {
    const int32_t t = c0_ + i;
    if (residual_) return view_.Residual(side_, head_, t);
    if (side_.kivi) {
      const uint8_t* group = view_.Stored(side_, head_, t);
      DequantizeKVChannelGroupRow(side_.type, group, hd_, side_.group, t % side_.group, tmp);
      return tmp;
    }
    const uint8_t* row = base_ + static_cast<size_t>(i) * side_.row_bytes;
    if (side_.type == KVType::kF32) return reinterpret_cast<const float*>(row);
    DequantizeKVRow(side_.type, row, hd_, side_.group, tmp);
    return tmp;
  }

  // Whether rows can go straight into DotKVRow / AxpyKVRow (per-token formats in blocks).
  bool Fused() const { return !residual_ && !side_.kivi && side_.type != KVType::kF32; }
  const uint8_t* Raw(int32_t i) const { return base_ + static_cast<size_t>(i) * side_.row_bytes; }
  const KVSideView& side() const { return side_; }

 private:
  const KVView& view_;
  const KVSideView& side_;
  int32_t head_, hd_, c0_;
  bool residual_ = false;
  const uint8_t* base_ = nullptr;
};

// End of the run starting at c0: same block, same side of each residual boundary, <= kChunk.
int32_t RunEnd(const KVView& kv, int32_t c0, int32_t hi) {
  int32_t c1 = std::min(hi, c0 + kChunk);
  c1 = std::min(c1, (c0 / kv.block_size + 1) * kv.block_size);
  for (const KVSideView* s : {&kv.k, &kv.v}) {
    if (c0 < s->n_stored) c1 = std::min(c1, s->n_stored);
    if (s->kivi && c0 < s->n_stored) c1 = std::min(c1, (c0 / s->group + 1) * s->group);
  }
  return c1;
}

// One query position, one KV head, its `group` query heads.
}  // namespace

void AttendGeneric(const AttentionShape& s, const float* q, int32_t pos, int32_t kv_head,
                   const KVView& kv, float* out) {
  const int32_t hd = s.head_dim;
  const int32_t group = s.n_heads / s.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int32_t lo = FirstVisible(s, kv, pos);
  const int32_t hi = pos + 1;  // exclusive

  float m[kMaxGroup], l[kMaxGroup];
  alignas(64) float acc[kMaxGroup * kMaxHeadDim];
  alignas(64) float scores[kMaxGroup * kChunk];
  alignas(64) float row[kMaxHeadDim];
  std::fill(m, m + group, -std::numeric_limits<float>::infinity());
  std::fill(l, l + group, 0.0f);
  std::fill(acc, acc + group * hd, 0.0f);
  const float* qh = q + static_cast<int64_t>(kv_head) * group * hd;

  for (int32_t c0 = lo; c0 < hi;) {
    const int32_t c1 = RunEnd(kv, c0, hi);
    const int32_t n = c1 - c0;
    const SideRun keys(kv, kv.k, kv_head, c0), values(kv, kv.v, kv_head, c0);
    if (group == 1 && keys.Fused()) {
      for (int32_t t = 0; t < n; ++t) {
        scores[t] = DotKVRow(kv.k.type, keys.Raw(t), qh, hd, kv.k.group) * scale;
      }
    } else {
      // A shared (GQA) KV head: each key row is read and decoded once for all its query heads.
      for (int32_t t = 0; t < n; ++t) {
        const float* k = keys.Row(t, row);
        for (int32_t g = 0; g < group; ++g) scores[g * kChunk + t] = Dot(qh + g * hd, k, hd) * scale;
      }
    }
    // Rescale running sums once per run to the new maximum, then accumulate.
    for (int32_t g = 0; g < group; ++g) {
      float* sg = scores + g * kChunk;
      const float cmax = *std::max_element(sg, sg + n);
      const float new_m = std::max(m[g], cmax);
      const float correction = ExpNonPositive(m[g] - new_m);
      l[g] *= correction;
      float* ag = acc + g * hd;
#pragma omp simd
      for (int32_t d = 0; d < hd; ++d) ag[d] *= correction;
      m[g] = new_m;
      float sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int32_t t = 0; t < n; ++t) {
        sg[t] = ExpNonPositive(sg[t] - new_m);
        sum += sg[t];
      }
      l[g] += sum;
    }
    if (group == 1 && values.Fused()) {
      for (int32_t t = 0; t < n; ++t) AxpyKVRow(kv.v.type, values.Raw(t), scores[t], acc, hd, kv.v.group);
    } else {
      for (int32_t t = 0; t < n; ++t) {
        const float* v = values.Row(t, row);
        for (int32_t g = 0; g < group; ++g) Axpy(scores[g * kChunk + t], v, acc + g * hd, hd);
      }
    }
    c0 = c1;
  }
  float* oh = out + static_cast<int64_t>(kv_head) * group * hd;
  for (int32_t g = 0; g < group; ++g) {
    const float inv = l[g] > 0 ? 1.0f / l[g] : 0.0f;
    for (int32_t d = 0; d < hd; ++d) oh[g * hd + d] = acc[g * hd + d] * inv;
  }
}


}  // namespace kvc::attention_internal
