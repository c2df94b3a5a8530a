// The synthetic model used when a command is given no -m: generated once (kvcache synth) into a
// cache directory and reused, so demos and benchmarks need no download.
#pragma once

#include <string>

#include "core/status.h"
#include "tensor/dtype.h"

namespace kvc::cli {

// Path of preset `preset` with `type` weights and at least `min_context` positions, creating it
// under $KVCACHE_MODEL_DIR (default ~/.cache/kvcache) when missing.
Result<std::string> EnsureDefaultModel(const std::string& preset, DType type, int32_t min_context);

}  // namespace kvc::cli
