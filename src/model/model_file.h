// Opening a model file: GGUF (llama, gpt2 architectures) or a llama2.c checkpoint, into a
// ModelConfig plus typed views of every weight, read in place from the mapping.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "model/model_config.h"
#include "tensor/mat_view.h"

namespace kvc {

// Weights of one transformer block. Unused entries (per architecture) have data == nullptr.
// Matrices are [out, in] (MatView rows = outputs); vectors are one row.
struct LayerWeights {
  MatView attn_norm, attn_norm_b;     // [dim]
  MatView wq, wk, wv;                 // llama: [q_dim, dim], [kv_dim, dim], [kv_dim, dim]
  MatView bq, bk, bv;                 // optional biases (Qwen2-style)
  MatView wqkv, bqkv;                 // gpt2: fused [q_dim + 2 kv_dim, dim] and its bias
  MatView wo, bo;                     // [dim, q_dim], gpt2 bias [dim]
  MatView ffn_norm, ffn_norm_b;       // [dim]
  MatView w_gate, w_up, w_down;       // llama: [ffn, dim], [ffn, dim], [dim, ffn]; gpt2: up/down
  MatView b_up, b_down;               // gpt2 biases
};

struct ModelWeights {
  MatView tok_embd;             // [vocab, dim]
  MatView pos_embd;             // gpt2: [context, dim]
  MatView out_norm, out_norm_b;  // [dim]
  MatView output;               // [vocab, dim]; == tok_embd when tied
  std::vector<LayerWeights> layers;
};

// An open model: config + weight views + whatever owns the bytes.
class ModelFile {
 public:
  // Opens GGUF or llama2.c (detected from the first bytes). Errors name the file and the problem:
  // missing metadata or tensors, shape mismatches, unsupported architectures and types.
  // `mode`: weights read in place from the page cache (kMap), or loaded into huge-page memory
  // (kLoad: slower start, faster decode).
  static Result<std::unique_ptr<ModelFile>> Open(const std::string& path,
                                                 MappedFile::Mode mode = MappedFile::Mode::kMap);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const std::string& path() const { return path_; }
  // The GGUF file (metadata, tokenizer) or nullptr for a llama2.c checkpoint.
  const GgufFile* gguf() const { return gguf_.get(); }
  // Bytes of all weights (what a decode step streams from memory).
  size_t WeightBytes() const;

 private:
  static Result<std::unique_ptr<ModelFile>> FromGguf(std::unique_ptr<GgufFile> gguf);
  static Result<std::unique_ptr<ModelFile>> FromLlama2c(std::unique_ptr<Llama2cCheckpoint> ck);

  std::string path_;
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<Llama2cCheckpoint> llama2c_;
  std::vector<std::vector<float>> owned_f32_;  // norm/bias vectors converted from other types
};

}  // namespace kvc
