// Parsing of option values shared by several subcommands.
#pragma once

#include <string>

#include "core/status.h"
#include "tensor/dtype.h"

namespace kvc::cli {

// "f32" | "f16" | "bf16" -> DType, with an error listing the choices.
Result<DType> ParseKVType(const std::string& name);

}  // namespace kvc::cli
