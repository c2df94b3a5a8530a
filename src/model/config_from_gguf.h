// ModelConfig from GGUF metadata alone: the tensor table is consulted for the vocabulary size
// only and no weight is read, so planning for a 70B file costs a few header pages.
#pragma once

#include <string>

#include "core/status.h"
#include "formats/gguf.h"
#include "model/model_config.h"

namespace kvc {

// The hyperparameters ModelFile would load from `g` (same keys and checks), without requiring
// or validating the weights. vocab_size comes from token_embd.weight when present, else 0.
// Errors name the file and the missing or bad key.
Result<ModelConfig> ConfigFromGguf(const GgufFile& g);

// Opens `path` (memory-mapped; only the header is touched) and reads its config.
Result<ModelConfig> ReadConfigFromGguf(const std::string& path);

}  // namespace kvc
