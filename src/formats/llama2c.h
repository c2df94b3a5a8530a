// llama2.c checkpoints (`run.c` legacy format): a header of seven int32 then f32 weights.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "core/status.h"

namespace kvc {

struct Llama2cConfig {
  int32_t dim = 0;
  int32_t hidden_dim = 0;
  int32_t n_layers = 0;
  int32_t n_heads = 0;
  int32_t n_kv_heads = 0;
  int32_t vocab_size = 0;  // absolute value; the file's sign encodes shared_classifier
  int32_t seq_len = 0;
  bool shared_classifier = true;
};

// f32 weights, read in place from the mapping. Matrices are row-major [out, in].
struct Llama2cCheckpoint {
  Llama2cConfig config;
  const float* token_embedding = nullptr;  // [vocab, dim]
  const float* rms_att = nullptr;          // [layers, dim]
  const float* wq = nullptr;               // [layers, n_heads*head_dim, dim]
  const float* wk = nullptr;               // [layers, n_kv_heads*head_dim, dim]
  const float* wv = nullptr;               // [layers, n_kv_heads*head_dim, dim]
  const float* wo = nullptr;               // [layers, dim, n_heads*head_dim]
  const float* rms_ffn = nullptr;          // [layers, dim]
  const float* w1 = nullptr;               // [layers, hidden, dim]  (gate)
  const float* w2 = nullptr;               // [layers, dim, hidden]  (down)
  const float* w3 = nullptr;               // [layers, hidden, dim]  (up)
  const float* rms_final = nullptr;        // [dim]
  const float* wcls = nullptr;             // [vocab, dim]; == token_embedding when shared
  MappedFile map;                          // keeps the pointers above valid
};

// Maps and validates a checkpoint: header values sane, file size exactly what they imply.
Result<std::unique_ptr<Llama2cCheckpoint>> OpenLlama2c(const std::string& path,
                                                       MappedFile::Mode mode = MappedFile::Mode::kMap);

// Validates an in-memory image (the bytes must outlive the result; `map` stays empty).
Result<std::unique_ptr<Llama2cCheckpoint>> ParseLlama2c(const uint8_t* data, size_t size,
                                                        const std::string& label);

// True when the first bytes look like a GGUF file rather than a llama2.c checkpoint.
bool LooksLikeGguf(const uint8_t* data, size_t size);

}  // namespace kvc
