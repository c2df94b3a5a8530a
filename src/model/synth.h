// Synthetic models: random weights of a given shape written as a standard GGUF (llama.cpp tensor
// names and metadata), for tests, demos and benchmarks of models we cannot download.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "model/model_config.h"
#include "tensor/dtype.h"

namespace kvc {

struct SynthOptions {
  ModelConfig config;           // shape (e.g. from FindPreset); vocab_size may be overridden
  DType type = DType::kF32;     // 2-D weights; 1-D tensors (norms, biases) are always F32
  uint64_t seed = 1;            // same seed and options -> byte-identical file
  std::string vocab_from;       // a GGUF whose tokenizer.* keys are copied; empty = generated
  int threads = 0;              // generation threads; 0 = all hardware threads
};

struct SynthSummary {
  ModelConfig config;    // as written (vocab_size from `vocab_from` when given)
  int64_t parameters = 0;
  uint64_t bytes = 0;    // file size
  double seconds = 0;
};

// Writes the model to `path`. Errors: shapes the type cannot hold (Q8_0/Q4_0 need every matrix
// width to be a multiple of 32), inconsistent configs, unreadable vocab source, I/O (a partial
// file is removed).
Result<SynthSummary> SynthesizeModel(const SynthOptions& options, const std::string& path);

// The GGUF architecture name written for a config: "llama", "qwen2" (llama with q/k/v biases)
// or "gpt2".
std::string SynthArchName(const ModelConfig& config);

}  // namespace kvc
