// Single-sequence generation: prefill the prompt, then decode token by token, with the KV
// cache on (append one token per step) or off (recompute the whole sequence every step).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/shift_policy.h"
#include "model/model_file.h"
#include "model/transformer.h"
#include "sampling/sampler.h"
#include "threading/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace kvc {

// A model file with its tokenizer.
struct LoadedModel {
  std::unique_ptr<ModelFile> file;
  std::unique_ptr<Tokenizer> tokenizer;

  // Opens `model_path` (GGUF or llama2.c); llama2.c checkpoints need `tokenizer_path`.
  static Result<LoadedModel> Load(const std::string& model_path,
                                  const std::string& tokenizer_path = "",
                                  MappedFile::Mode mode = MappedFile::Mode::kMap);
};

struct CacheOptions {
  bool enabled = true;           // false: recompute the whole sequence each step
  KVCacheOptions kv;             // layout and element type
};

struct GenerateOptions {
  int32_t max_new_tokens = 128;
  int32_t context_length = 0;    // 0: the model's
  int32_t eos_token = -1;        // generation stops (without emitting it) when sampled; -1: never
  SamplingParams sampling;
  CacheOptions cache;
  ShiftPolicy shift;             // attention sinks / context shift (off by default)
};

struct GenerationStats {
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  double prefill_seconds = 0;    // time to the first generated token's logits
  double decode_seconds = 0;     // the remaining steps
  size_t kv_bytes = 0;           // bytes the cache holds at the end (storage + residual)
  int32_t kv_tokens = 0;         // tokens it holds
  bool stopped_at_eos = false;
  int32_t context_shifts = 0;    // times old tokens were dropped by the shift policy

  double PrefillTokensPerSecond() const;
  double DecodeTokensPerSecond() const;
};

class Generator {
 public:
  // `model` and `pool` must outlive the Generator.
  Generator(const ModelFile& model, ThreadPool* pool);

  // Generates after `prompt` (which already holds BOS if wanted). `on_token` sees each new
  // token as it is sampled and may return false to stop. Errors: empty prompt, prompt or
  // prompt + max_new_tokens beyond the context, bad token ids.
  Result<GenerationStats> Generate(std::span<const int32_t> prompt, const GenerateOptions& options,
                                   const std::function<bool(int32_t)>& on_token);

  const Transformer& transformer() const { return transformer_; }

 private:
  const ModelFile& model_;
  Transformer transformer_;
};

}  // namespace kvc
