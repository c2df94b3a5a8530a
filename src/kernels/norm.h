// Normalizations and pointwise activations over rows of f32 activations.
#pragma once

#include <cstdint>

namespace kvc {

// out = x / sqrt(mean(x^2) + eps) * w, for one row of n.  out may alias x.
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* out);

// out = (x - mean) / sqrt(var + eps) * w + b, for one row of n.  out may alias x.
void LayerNorm(const float* x, const float* w, const float* b, int64_t n, float eps, float* out);

// gate[i] = silu(gate[i]) * up[i]  (SwiGLU).
void SiluMul(float* gate, const float* up, int64_t n);

// x[i] = gelu(x[i]), tanh approximation (GPT-2).
void Gelu(float* x, int64_t n);

// x[i] += b[i].
void AddInPlace(float* x, const float* b, int64_t n);

}  // namespace kvc
