// Verifier: runs a cache configuration beside the reference (f32 K/V, no cache reuse: the whole
// sequence recomputed every step) and measures how far its logits drift: the engine's
// consistency check (cached == recomputed) and the quality report of quantized caches.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/status.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/shift_policy.h"
#include "model/transformer.h"

namespace kvc {

// Comparison of one logits row against the reference.
struct LogitsDiff {
  double max_abs = 0;   // max |logit - reference logit|
  double kl = 0;        // KL(reference || candidate) of the softmax distributions, nats
  bool top1_agree = true;
};

LogitsDiff CompareLogits(const float* reference, const float* candidate, int32_t n);

struct VerifyStep {
  int32_t position = 0;   // position whose next-token logits were compared
  int32_t token = 0;      // the reference's greedy choice (fed to both)
  LogitsDiff diff;
};

struct VerifySummary {
  std::vector<VerifyStep> steps;
  double max_abs = 0;
  double mean_kl = 0;
  double max_kl = 0;
  double top1_agreement = 0;  // fraction of steps
};

struct PerplexityReport {
  int32_t tokens_scored = 0;
  double ppl_reference = 0;
  double ppl_candidate = 0;
  double mean_kl = 0;
  double top1_agreement = 0;
  double max_abs = 0;
  size_t kv_bytes = 0;        // candidate cache bytes at the end of the longest segment
  int32_t kv_tokens = 0;
};

class Verifier {
 public:
  // `shift` (sinks / context shift) applies to the candidate only.
  Verifier(Transformer& transformer, const KVCacheOptions& candidate, ShiftPolicy shift = {})
      : tf_(transformer), candidate_(candidate), shift_(shift) {}

  // Greedy generation of `n` tokens after `prompt`: the candidate decodes with its cache one
  // token per step; the reference recomputes the whole sequence each step. Both are fed the
  // reference's greedy tokens, so every step compares the same context.
  Result<VerifySummary> Generate(std::span<const int32_t> prompt, int32_t n,
                                 const std::function<void(const VerifyStep&)>& on_step);

  // Perplexity of `tokens` (BOS first) under both, in segments of at most `context` tokens
  // (each restarted with `bos`). The candidate reads the text one token per step, as in decode.
  Result<PerplexityReport> Perplexity(std::span<const int32_t> tokens, int32_t context, int32_t bos);

 private:
  // Runs one token of the candidate, first applying the shift policy.
  Status CandidateStep(KVCache& cache, const int32_t* token, float* logits);

  Transformer& tf_;
  KVCacheOptions candidate_;
  ShiftPolicy shift_;
};

}  // namespace kvc
