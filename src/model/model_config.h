// Hyperparameters of a decoder-only transformer, independent of the file it came from.
#pragma once

#include <cstdint>
#include <string>

namespace kvc {

enum class Arch {
  kLlama,  // RMSNorm, RoPE, SwiGLU, GQA (Llama 1-3, TinyLlama, SmolLM, Mistral, Qwen2-like)
  kGpt2,   // LayerNorm, learned positions, GELU, fused QKV with bias, tied embeddings
};

const char* ArchName(Arch a);

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string name;
  int32_t dim = 0;             // embedding width
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;      // < n_heads for grouped-query attention
  int32_t head_dim = 0;        // usually dim / n_heads
  int32_t ffn_dim = 0;         // hidden width of the feed-forward block
  int32_t vocab_size = 0;
  int32_t context_length = 0;  // positions the model was trained for
  float norm_eps = 1e-5f;      // RMSNorm / LayerNorm epsilon
  float rope_theta = 10000.0f;
  int32_t rope_dim = 0;        // rotated dimensions per head (llama); 0 = head_dim
  int32_t sliding_window = 0;  // 0 = full attention
  bool tied_embeddings = false;  // output projection reuses the token embedding
  bool qkv_bias = false;         // llama-family models with q/k/v biases (Qwen2)

  int32_t q_dim() const { return n_heads * head_dim; }
  int32_t kv_dim() const { return n_kv_heads * head_dim; }
  // Number of weight parameters (for memory planning and bandwidth estimates).
  int64_t ParameterCount() const;
};

}  // namespace kvc
