// Rotary position embedding, "normal" (GPT-J / llama2.c / ggml NORM) layout: adjacent pairs
// (x[2i], x[2i+1]) rotate by pos * theta^(-2i/rope_dim).
#pragma once

#include <cstdint>
#include <vector>

namespace kvc {

class Rope {
 public:
  Rope(int32_t head_dim, int32_t rope_dim, float theta);

  // Rotates n_heads heads of `x` ([n_heads, head_dim]) in place for position `pos`.
  void Apply(float* x, int32_t n_heads, int32_t pos) const;

 private:
  int32_t head_dim_;
  int32_t rope_dim_;
  std::vector<double> inv_freq_;  // [rope_dim / 2]
};

}  // namespace kvc
