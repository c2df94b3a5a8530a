#include "model/model_config.h"

namespace kvc {

const char* ArchName(Arch a) { return a == Arch::kGpt2 ? "gpt2" : "llama"; }

int64_t ModelConfig::ParameterCount() const {
  const int64_t d = dim, q = q_dim(), kv = kv_dim(), f = ffn_dim, v = vocab_size;
  int64_t per_layer = 0, rest = v * d;
  if (arch == Arch::kGpt2) {
    per_layer = d * (q + 2 * kv) + (q + 2 * kv) + q * d + d + 2 * d * f + f + d + 4 * d;
    rest += int64_t{context_length} * d + 2 * d;
  } else {
    per_layer = d * (q + 2 * kv) + q * d + 3 * d * f + 2 * d + (qkv_bias ? q + 2 * kv : 0);
    rest += d;
  }
  if (!tied_embeddings) rest += v * d;
  return per_layer * n_layers + rest;
}

}  // namespace kvc
