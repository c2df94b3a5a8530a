#include "kernels/rope.h"

#include <cmath>

namespace kvc {

Rope::Rope(int32_t head_dim, int32_t rope_dim, float theta)
    : head_dim_(head_dim), rope_dim_(rope_dim > 0 ? rope_dim : head_dim) {
  for (int32_t i = 0; i < rope_dim_; i += 2) {
    inv_freq_.push_back(std::pow(static_cast<double>(theta), -static_cast<double>(i) / rope_dim_));
  }
}

void Rope::Apply(float* x, int32_t n_heads, int32_t pos) const {
  // Angles in double: at positions in the tens of thousands f32 angles lose the low bits.
  const int32_t half = rope_dim_ / 2;
  float cs[512], sn[512];
  for (int32_t i = 0; i < half; ++i) {
    const double a = pos * inv_freq_[i];
    cs[i] = static_cast<float>(std::cos(a));
    sn[i] = static_cast<float>(std::sin(a));
  }
  for (int32_t h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim_;
    for (int32_t i = 0; i < half; ++i) {
      const float a = v[2 * i], b = v[2 * i + 1];
      v[2 * i] = a * cs[i] - b * sn[i];
      v[2 * i + 1] = a * sn[i] + b * cs[i];
    }
  }
}

}  // namespace kvc
