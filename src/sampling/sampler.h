// Picks the next token from logits: greedy, or temperature + top-k + top-p with a seeded RNG.
//
// Every path is a few vector passes over the vocabulary plus work on the survivors only: a
// decode step of a 32000-token vocabulary used to sort all of it whenever top-k was off (2.3 ms,
// 11 ms at 128256 tokens; the server's default, as OpenAI requests carry no top_k).
//  * no cut (top_k off, top_p >= 1): the categorical draw walks the tokens in index order, with
//    block sums to find the block first;
//  * top-k: a heap of the k best, fed only by the 16-token chunks whose largest logit beats the
//    heap's worst;
//  * top-p alone: the candidates are the tokens within 4, 6, 8, 11, ... temperatures of the
//    largest logit, the first such set whose mass reaches top_p; they are ordered a chunk at a
//    time until the nucleus is found.
// Survivors of a cut are ordered by logit, then by index (ties go to the lower index), and the
// draw walks them in that order.
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

  // Returns a token id in [0, n). logits are not modified. NaN logits are never picked (unless
  // all are NaN: then 0); with no finite logit, the largest (+inf first, then -inf) is picked.
  int32_t Sample(const float* logits, int32_t n);

  const SamplingParams& params() const { return params_; }

 private:
  int32_t SampleTopK(const float* logits, int32_t n, float max, float inv_t);
  int32_t SampleAll(int32_t n);  // weights_ holds every token's weight; no cut
  int32_t SampleNucleus(const float* logits, int32_t n, float max, float inv_t);  // top-p alone
  // Draws from candidates_[0, count) (best first, .first = their weights), walking them in order.
  int32_t DrawOrdered(size_t count);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<float> weights_;  // e^((logit - max) / T) per token (per survivor for top-k)
  std::vector<double> block_sums_;                     // of weights_, per kSampleBlock tokens
  std::vector<std::pair<float, int32_t>> candidates_;  // (logit, then weight; token)
};

// Index of the largest non-NaN value; the first one on ties (as llama2.c's argmax); 0 if all
// are NaN.
int32_t Argmax(const float* x, int32_t n);

// Weight of each token for sampling at 1 / inv_t: w[i] = e^((x[i] - max) inv_t), relative error
// ~2e-7, and exactly 0 where the exponent is below -87 or NaN; the same for a logit wherever it
// stands in x. max must be finite; w may be x.
void SamplingWeights(const float* x, int32_t n, float max, float inv_t, float* w);

}  // namespace kvc
