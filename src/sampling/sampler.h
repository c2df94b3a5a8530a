// Picks the next token from logits: greedy, or temperature + top-k + top-p with a seeded RNG.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace kvc {

struct SamplingParams {
  float temperature = 0.8f;  // 0 = greedy (argmax)
  int32_t top_k = 40;        // <= 0: no top-k cut
  float top_p = 0.95f;       // >= 1: no nucleus cut
  uint64_t seed = 0;         // same seed + same logits -> same tokens
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Returns a token id in [0, n). logits are not modified.
  int32_t Sample(const float* logits, int32_t n);

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // reused scratch
};

// Index of the largest value; the first one on ties (as llama2.c's argmax).
int32_t Argmax(const float* x, int32_t n);

}  // namespace kvc
