#include "kernels/norm.h"

#include <cmath>
#include <cstring>

#include "kernels/exp_approx.h"

namespace kvc {

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  float ss = 0;
#pragma omp simd reduction(+ : ss)
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
}

void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* out) {
  float mean = 0;
#pragma omp simd reduction(+ : mean)
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= static_cast<float>(n);
  float var = 0;
#pragma omp simd reduction(+ : var)
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.0f / std::sqrt(var / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - mean) * inv * w[i] + b[i];
}

// silu(x) = x sigmoid(x), with sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) below,
// e = e^-|x| <= 1: no overflow, and the vector exponential instead of libm's scalar one (prefill
// runs this over tokens x ffn_dim values per layer).
void SiluMul(float* gate, const float* up, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    F32x16 x, u;
    std::memcpy(&x, gate + i, sizeof(x));
    std::memcpy(&u, up + i, sizeof(u));
    const F32x16 neg_abs = x < 0 ? x : -x;
    const F32x16 e = ExpNonPositive16(neg_abs);
    const F32x16 num = x < 0 ? e : Splat16(1.0f);
    const F32x16 y = x * (num / (1.0f + e)) * u;
    std::memcpy(gate + i, &y, sizeof(y));
  }
  for (; i < n; ++i) {
    const float x = gate[i], e = ExpNonPositive(-std::fabs(x));
    gate[i] = x * ((x < 0 ? e : 1.0f) / (1.0f + e)) * up[i];
  }
}

// tanh(y) = sign(y) (1 - e) / (1 + e) with e = e^-2|y| <= 1, as for SiluMul.
void Gelu(float* x, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    F32x16 v;
    std::memcpy(&v, x + i, sizeof(v));
    const F32x16 y = kSqrt2OverPi * (v + 0.044715f * v * v * v);
    const F32x16 e = ExpNonPositive16(y < 0 ? 2.0f * y : -2.0f * y);
    const F32x16 t = (1.0f - e) / (1.0f + e);
    const F32x16 out = 0.5f * v * (1.0f + (y < 0 ? -t : t));
    std::memcpy(x + i, &out, sizeof(out));
  }
  for (; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
  }
}

void AddInPlace(float* x, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += b[i];
}

}  // namespace kvc
