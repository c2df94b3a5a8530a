#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/exp_approx.h"
#include "kernels/vec16.h"

namespace kvc {
namespace {

constexpr int32_t kSampleBlock = 256;  // tokens per block sum of the no-cut draw
constexpr float kInf = std::numeric_limits<float>::infinity();

typedef double F64x8 __attribute__((vector_size(64)));

using Candidate = std::pair<float, int32_t>;

// The survivors' order: higher logit first, then lower index. A heap under it has its worst on
// top.
bool Better(const Candidate& a, const Candidate& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// NaN lanes become -inf, so that no comparison meets a NaN.
inline F32x16 Sanitized(F32x16 v) { return v == v ? v : Splat16(-kInf); }

// Largest non-NaN value of x[0, n); -inf if none.
float MaxOf(const float* x, int32_t n) {
  F32x16 m = Splat16(-kInf);
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const F32x16 v = Load16(x + i);
    m = v > m ? v : m;  // a NaN lane compares false: m keeps its lane
  }
  float r = HMax16(m);
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}

// Sum of w[0, n) in double: 8 lanes, then the lanes in order, then the tail.
double SumOf(const float* w, int32_t n) {
  F64x8 a = {}, b = {};
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const F32x16 v = Load16(w + i);
    a += __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), F64x8);
    b +=
        __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), F64x8);
  }
  a += b;
  double s = 0;
  for (int k = 0; k < 8; ++k) s += a[k];
  for (; i < n; ++i) s += w[i];
  return s;
}

// Weight of the tokens whose logit is at least t (in float: a gate, not the decision).
float MassFrom(const float* x, const float* w, int32_t n, float t) {
  const F32x16 tv = Splat16(t), zero = {};
  F32x16 acc = {};
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) acc += Load16(x + i) >= tv ? Load16(w + i) : zero;
  float s = HSum16(acc);
  for (; i < n; ++i) s += x[i] >= t ? w[i] : 0.0f;
  return s;
}

}  // namespace

int32_t Argmax(const float* x, int32_t n) {
  const float m = MaxOf(x, n);
  for (int32_t i = 0; i < n; ++i) {
    if (x[i] == m) return i;
  }
  return 0;  // all NaN
}

void SamplingWeights(const float* x, int32_t n, float max, float inv_t, float* w) {
  const F32x16 mx = Splat16(max), it = Splat16(inv_t), floor = Splat16(-87.0f), zero = {};
  auto weigh = [&](F32x16 v) {
    const F32x16 d = (v - mx) * it;
    return d >= floor ? ExpNonPositive16(d) : zero;  // NaN compares false: 0
  };
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) Store16(w + i, weigh(Load16(x + i)));
  if (i < n) {  // the tail on lanes too, so that a token's weight does not depend on its place
    alignas(64) float tail[16] = {};
    std::copy(x + i, x + n, tail);
    Store16(tail, weigh(Load16(tail)));
    std::copy(tail, tail + (n - i), w + i);
  }
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::Sample(const float* logits, int32_t n) {
  if (!(params_.temperature > 0.0f) || n <= 1) return Argmax(logits, n);
  const float max = MaxOf(logits, n);
  const float inv_t = 1.0f / params_.temperature;
  // +inf outweighs everything, no finite logit leaves nothing to weigh, and a temperature so
  // small that 1 / T overflows is greedy.
  if (!std::isfinite(max) || !(inv_t < kInf)) return Argmax(logits, n);

  if (params_.top_k > 0 && params_.top_k < n) return SampleTopK(logits, n, max, inv_t);
  weights_.resize(static_cast<size_t>(n));
  SamplingWeights(logits, n, max, inv_t, weights_.data());
  return params_.top_p < 1.0f ? SampleNucleus(logits, n, max, inv_t) : SampleAll(n);
}

int32_t Sampler::SampleTopK(const float* logits, int32_t n, float max, float inv_t) {
  // The k best under Better: a heap, offered only what beats its worst (a later token with the
  // same logit loses the tie), chunks of 16 skipped whole when none of them does.
  const int32_t k = params_.top_k;
  candidates_.clear();
  for (int32_t i = 0; i < k; ++i)
    candidates_.emplace_back(std::isnan(logits[i]) ? -kInf : logits[i], i);
  std::make_heap(candidates_.begin(), candidates_.end(), Better);
  float worst = candidates_.front().first;
  auto offer = [&](int32_t i) {
    if (!(logits[i] > worst)) return;
    std::pop_heap(candidates_.begin(), candidates_.end(), Better);
    candidates_.back() = {logits[i], i};
    std::push_heap(candidates_.begin(), candidates_.end(), Better);
    worst = candidates_.front().first;
  };
  int32_t i = k;
  for (; i < n && i % 16 != 0; ++i) offer(i);
  for (; i + 16 <= n; i += 16) {
    if (!(HMax16(Sanitized(Load16(logits + i))) > worst)) continue;
    for (int32_t j = i; j < i + 16; ++j) offer(j);
  }
  for (; i < n; ++i) offer(i);
  std::sort_heap(candidates_.begin(), candidates_.end(), Better);  // best first
  weights_.resize(static_cast<size_t>(k));
  for (int32_t j = 0; j < k; ++j) weights_[j] = candidates_[j].first;
  SamplingWeights(weights_.data(), k, max, inv_t, weights_.data());
  double total = 0;
  for (int32_t j = 0; j < k; ++j) {
    candidates_[j].first = weights_[j];
    total += weights_[j];
  }
  size_t count = candidates_.size();
  if (params_.top_p < 1.0f) {  // the nucleus within the k
    const double target = params_.top_p * total;
    double mass = 0;
    for (size_t j = 0; j < candidates_.size(); ++j) {
      mass += candidates_[j].first;
      if (mass >= target) {
        count = j + 1;
        break;
      }
    }
  }
  return DrawOrdered(count);
}

int32_t Sampler::SampleAll(int32_t n) {
  const float* w = weights_.data();
  const int32_t blocks = (n + kSampleBlock - 1) / kSampleBlock;
  block_sums_.resize(static_cast<size_t>(blocks));
  double total = 0;
  for (int32_t b = 0; b < blocks; ++b) {
    block_sums_[b] = SumOf(w + b * kSampleBlock, std::min(kSampleBlock, n - b * kSampleBlock));
    total += block_sums_[b];
  }
  const double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  // The block where the running sum passes r, then the token inside it. The walk inside sums
  // in another order than the block's sum: if it ends short of r by a rounding, the block's
  // last weighted token is drawn.
  double acc = 0;
  int32_t b = 0;
  for (; b + 1 < blocks && r >= acc + block_sums_[b]; ++b) acc += block_sums_[b];
  int32_t last = -1;
  for (int32_t i = b * kSampleBlock; i < std::min(n, (b + 1) * kSampleBlock); ++i) {
    if (!(w[i] > 0.0f)) continue;
    acc += w[i];
    last = i;
    if (r < acc) return i;
  }
  if (last >= 0) return last;
  return static_cast<int32_t>(std::max_element(weights_.begin(), weights_.begin() + n) -
                              weights_.begin());
}

int32_t Sampler::SampleNucleus(const float* logits, int32_t n, float max, float inv_t) {
  const float* w = weights_.data();
  const double target = params_.top_p * SumOf(w, n);
  // Candidates: the tokens within `depth` of the largest logit (in units of the temperature),
  // a prefix of the survivors' order. Once their weight reaches the target, the nucleus is
  // among them; they are ordered a chunk at a time (the best 64, then 4x as many, ...)
  // until the running mass reaches it. The gate sums in float; the decision is the ordered
  // walk's, so a gate passed by a rounding only costs a wider retry.
  for (const float depth : {4.0f, 6.0f, 8.0f, 11.0f, 16.0f, 23.0f, 32.0f, 64.0f, kInf}) {
    const float t = depth == kInf ? -kInf : max - depth / inv_t;
    if (depth != kInf && MassFrom(logits, w, n, t) < target) continue;
    candidates_.clear();
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
      if (!(HMax16(Sanitized(Load16(logits + i))) >= t)) continue;
      for (int32_t j = i; j < i + 16; ++j) {
        if (logits[j] >= t) candidates_.emplace_back(logits[j], j);
      }
    }
    for (; i < n; ++i) {
      if (logits[i] >= t) candidates_.emplace_back(logits[i], i);
    }
    const size_t m = candidates_.size();
    double mass = 0;
    size_t count = 0;
    for (size_t done = 0; done < m && count == 0;) {
      const size_t k = std::min(m, std::max<size_t>(64, 4 * done));
      const auto first = candidates_.begin() + static_cast<std::ptrdiff_t>(done);
      const auto kth = candidates_.begin() + static_cast<std::ptrdiff_t>(k);
      if (k < m) std::nth_element(first, kth, candidates_.end(), Better);
      std::sort(first, kth, Better);
      for (size_t j = done; j < k; ++j) {
        mass += w[candidates_[j].second];
        if (mass >= target) {
          count = j + 1;
          break;
        }
      }
      done = k;
    }
    if (count == 0 && depth != kInf) continue;  // short by a rounding: widen
    if (count == 0) count = m;
    for (size_t j = 0; j < count; ++j) candidates_[j].first = w[candidates_[j].second];
    return DrawOrdered(count);
  }
  return Argmax(logits, n);  // not reached: the last depth always draws
}

int32_t Sampler::DrawOrdered(size_t count) {
  double sum = 0;
  for (size_t j = 0; j < count; ++j) sum += candidates_[j].first;
  const double r = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  double acc = 0;
  int32_t last = candidates_[0].second;
  for (size_t j = 0; j < count; ++j) {
    if (!(candidates_[j].first > 0.0f)) continue;
    acc += candidates_[j].first;
    last = candidates_[j].second;
    if (r < acc) return last;
  }
  return last;
}

}  // namespace kvc
