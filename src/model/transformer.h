// The forward pass of a decoder-only transformer over a batch of sequence chunks. Each chunk
// is some consecutive tokens of one sequence, with that sequence's KV cache: prefill is a chunk
// of many tokens, decode a chunk of one, and several sequences can share one batch.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "kernels/rope.h"
#include "kvcache/kv_cache.h"
#include "model/model_file.h"
#include "threading/thread_pool.h"

namespace kvc {

struct SeqChunk {
  std::span<const int32_t> tokens;  // token ids to run
  int32_t pos0 = 0;                 // position of tokens[0]; must equal kv->size()
  KVCache* kv = nullptr;            // this sequence's cache; receives the chunk's K/V
  float* logits = nullptr;          // [vocab] for the last token, or [n, vocab] if all_logits
  bool all_logits = false;
};

class Transformer {
 public:
  // `model` and `pool` must outlive the Transformer.
  Transformer(const ModelFile& model, ThreadPool* pool);

  const ModelConfig& config() const { return config_; }

  // The cache shape this model needs for `max_tokens` positions (storage options are filled in
  // by MakeKVSpec/MakeKVCache in kvcache/kv_cache_factory.h).
  KVSpec KVShape(int32_t max_tokens) const;

  // Re-positions cached keys moved by a context shift (rotary models rotate them; learned
  // absolute positions need nothing).
  KVCache::Rekey KeyRekey() const;

  // Runs every chunk as one batch: K/V of each chunk are appended to its cache (prepare on all
  // caches first; on failure no cache has changed size) and logits written where asked.
  Status Forward(std::span<const SeqChunk> batch);

 private:
  void EnsureScratch(int64_t n_tokens);
  void Embed(std::span<const SeqChunk> batch);
  void AttentionBlock(int32_t layer, std::span<const SeqChunk> batch, int64_t n);
  void FeedForwardBlock(int32_t layer, int64_t n);
  void Logits(std::span<const SeqChunk> batch);

  const ModelFile& model_;
  const ModelConfig& config_;
  const ModelWeights& w_;
  ThreadPool* pool_;
  Rope rope_;

  // Activations, grown once to the largest batch seen; row-major [tokens, width].
  int64_t capacity_ = 0;
  std::vector<float> x_;     // residual stream [n, dim]
  std::vector<float> xb_;    // normalized input [n, dim]
  std::vector<float> q_;     // [n, q_dim]
  std::vector<float> k_;     // [n, kv_dim]
  std::vector<float> v_;     // [n, kv_dim]
  std::vector<float> qkv_;   // gpt2 fused projection [n, q_dim + 2 kv_dim]
  std::vector<float> att_;   // attention output [n, q_dim]
  std::vector<float> h1_;    // [n, ffn]
  std::vector<float> h2_;    // [n, ffn]
  std::vector<int32_t> pos_;  // position of each batch row
  std::vector<float> last_;   // rows selected for logits [m, dim]
  std::vector<float> out_;    // logits scratch [m, vocab]
  std::vector<std::pair<float*, int64_t>> logit_rows_;  // (destination, batch row) per logits row
};

}  // namespace kvc
