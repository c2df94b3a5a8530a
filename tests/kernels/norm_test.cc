// Normalizations and pointwise activations (kernels/norm.h) against double-precision references,
// over lengths that exercise the 16-lane body and the scalar tail, and inputs from tiny to
// beyond the exponential's clamp.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/exp_approx.h"
#include "kernels/norm.h"

namespace kvc {
namespace {

std::vector<float> Inputs(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 3.0f);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = g(rng);
    if (i % 11 == 3) x[i] *= 40.0f;  // far into both tails: e^-|x| underflows the clamp
    if (i % 13 == 5) x[i] = 0.0f;
  }
  return x;
}

double SiluRef(double x) { return x / (1.0 + std::exp(-x)); }

TEST(SiluMul, MatchesTheDoubleReference) {
  for (int64_t n : {1, 15, 16, 17, 64, 1000, 8192}) {
    const std::vector<float> gate = Inputs(n, 1 + static_cast<uint32_t>(n));
    const std::vector<float> up = Inputs(n, 100 + static_cast<uint32_t>(n));
    std::vector<float> out = gate;
    SiluMul(out.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = SiluRef(gate[i]) * up[i];
      // The exponential's ~2e-7 and four roundings; an absolute floor covers results that
      // are zero to within the e^-87 clamp.
      EXPECT_NEAR(out[i], ref, 1e-6 * std::fabs(ref) + 1e-30) << "n " << n << ", x " << gate[i];
    }
  }
}

TEST(SiluMul, SignsAndLimits) {
  const std::vector<float> gate = {0.0f, -0.0f, 1e-30f, -1e-30f, 200.0f, -200.0f, 88.0f, -88.0f,
                                   20.0f, -20.0f, 1.0f, -1.0f, 0.5f, -0.5f, 3.0f, -3.0f, 7.0f};
  const std::vector<float> up(gate.size(), 1.0f);
  std::vector<float> out = gate;
  SiluMul(out.data(), up.data(), static_cast<int64_t>(out.size()));
  for (size_t i = 0; i < gate.size(); ++i) {
    EXPECT_TRUE(std::isfinite(out[i])) << gate[i];
    EXPECT_NEAR(out[i], SiluRef(gate[i]), 1e-6 * std::fabs(SiluRef(gate[i])) + 1e-30) << gate[i];
  }
  EXPECT_EQ(out[4], 200.0f);  // silu(x) = x once e^-x is below half an ulp
}

TEST(ExpNonPositive, ScalarAndVectorAgreeWithTheDoubleReference) {
  F32x16 x;
  for (int k = 0; k < 200; ++k) {
    for (int i = 0; i < 16; ++i) x[i] = -0.0437f * static_cast<float>(16 * k + i);  // 0 .. -140
    const F32x16 e = ExpNonPositive16(x);
    for (int i = 0; i < 16; ++i) {
      const double ref = x[i] >= -87.0f ? std::exp(static_cast<double>(x[i])) : std::exp(-87.0);
      EXPECT_NEAR(e[i], ref, 3e-7 * ref) << x[i];
      EXPECT_NEAR(ExpNonPositive(x[i]), ref, 3e-7 * ref) << x[i];
    }
  }
}

TEST(RmsNorm, MatchesTheDoubleReference) {
  for (int64_t n : {1, 17, 2048}) {
    const std::vector<float> x = Inputs(n, 7), w = Inputs(n, 8);
    std::vector<float> out(n);
    RmsNorm(x.data(), w.data(), n, 1e-5f, out.data());
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double inv = 1.0 / std::sqrt(ss / n + 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = x[i] * inv * w[i];
      EXPECT_NEAR(out[i], ref, 1e-5 * std::fabs(ref) + 1e-30) << i;
    }
  }
}

TEST(LayerNorm, MatchesTheDoubleReference) {
  for (int64_t n : {2, 17, 768}) {
    const std::vector<float> x = Inputs(n, 9), w = Inputs(n, 10), b = Inputs(n, 11);
    std::vector<float> out(n);
    LayerNorm(x.data(), w.data(), b.data(), n, 1e-5f, out.data());
    double mean = 0, var = 0;
    for (float v : x) mean += v;
    mean /= n;
    for (float v : x) var += (v - mean) * (v - mean);
    const double inv = 1.0 / std::sqrt(var / n + 1e-5);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = (x[i] - mean) * inv * w[i] + b[i];
      EXPECT_NEAR(out[i], ref, 1e-5 * (std::fabs((x[i] - mean) * inv * w[i]) + std::fabs(b[i])) + 1e-30) << i;
    }
  }
}

TEST(Gelu, MatchesTheDoubleReference) {
  const std::vector<float> x = Inputs(100, 12);
  std::vector<float> out = x;
  Gelu(out.data(), 100);
  for (int i = 0; i < 100; ++i) {
    const double v = x[i];
    const double ref = 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(out[i], ref, 1e-6 * std::fabs(v) + 1e-30) << v;
  }
}

}  // namespace
}  // namespace kvc
