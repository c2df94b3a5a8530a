// Named model shapes: real published hyperparameters of common models (for synthetic weights,
// memory planning and benchmarks) and tiny ones for unit tests.
#pragma once

#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/model_config.h"

namespace kvc {

// The config of preset `name` (its `name` field set to it); NotFound listing the known names.
Result<ModelConfig> FindPreset(std::string_view name);

// Every preset name, smallest models first.
const std::vector<std::string_view>& PresetNames();

}  // namespace kvc
