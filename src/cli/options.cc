#include "cli/options.h"

namespace kvc::cli {

Result<DType> ParseKVType(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f16") return DType::kF16;
  if (name == "bf16") return DType::kBF16;
  return InvalidArgument("unknown KV cache type '" + name + "' (choices: f32, f16, bf16)");
}

}  // namespace kvc::cli
