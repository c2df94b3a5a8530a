// A deliberately naive transformer forward pass in double precision, written independently of
// src/model: full recomputation with an explicit causal softmax, no cache, no threads. Tests
// compare the engine against it.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_file.h"

namespace kvc::testing {

// Logits [tokens.size()][vocab] for every position of `tokens` (positions 0..n-1). `window` > 0
// overrides the model's sliding window (each position attends to the last `window` positions).
std::vector<std::vector<double>> NaiveForward(const ModelFile& model,
                                              const std::vector<int32_t>& tokens, int window = 0);

}  // namespace kvc::testing
