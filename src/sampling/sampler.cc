#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>

namespace kvc {

int32_t Argmax(const float* x, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (x[i] > x[best]) best = i;
  }
  return best;
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::Sample(const float* logits, int32_t n) {
  if (params_.temperature <= 0.0f) return Argmax(logits, n);
  candidates_.clear();
  for (int32_t i = 0; i < n; ++i) candidates_.emplace_back(logits[i], i);
  auto by_logit = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(keep);
  // Softmax over the survivors at the given temperature (max subtracted for stability).
  const float max = candidates_[0].first;
  double sum = 0;
  for (auto& c : candidates_) {
    c.first = std::exp((c.first - max) / params_.temperature);
    sum += c.first;
  }
  // Nucleus: the smallest prefix whose probability mass reaches top_p.
  if (params_.top_p < 1.0f) {
    double mass = 0;
    size_t cut = candidates_.size();
    for (size_t i = 0; i < candidates_.size(); ++i) {
      mass += candidates_[i].first / sum;
      if (mass >= params_.top_p) {
        cut = i + 1;
        break;
      }
    }
    candidates_.resize(cut);
    sum = 0;
    for (const auto& c : candidates_) sum += c.first;
  }
  const double r = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  double acc = 0;
  for (const auto& c : candidates_) {
    acc += c.first;
    if (r < acc) return c.second;
  }
  return candidates_.back().second;
}

}  // namespace kvc
