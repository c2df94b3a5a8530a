// Activation quantizer used by the Q8_0 / Q4_0 kernels: the vector path is bit-identical to the
// scalar reference, |x - d q| <= d / 2 (plus f32 rounding of x * 127 / absmax), |q| <= 127, and
// the stored block sums match.
#include "quant/act_quant.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace kvc {
namespace {

TEST(ActQuant, WorkedInt8Example) {
  // The absmax int8 example from the source documents (seed 003), padded to one block.
  std::vector<float> x = {1.2f, -0.5f, -4.3f, 1.2f, -3.1f, 0.8f, 2.4f, 5.4f};
  x.resize(32, 0.0f);
  int8_t qs[32];
  float d;
  int32_t sum;
  QuantizeActsQ8Ref(x.data(), 32, qs, &d, &sum);
  const int expected[8] = {28, -12, -101, 28, -73, 19, 56, 127};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(qs[i], expected[i]) << i;
  for (int i = 8; i < 32; ++i) EXPECT_EQ(qs[i], 0);
  EXPECT_FLOAT_EQ(d, 5.4f / 127);
  EXPECT_EQ(sum, 28 - 12 - 101 + 28 - 73 + 19 + 56 + 127);
}

TEST(ActQuant, ZeroBlockHasZeroScale) {
  const std::vector<float> x(64, 0.0f);
  int8_t qs[64];
  float d[2];
  int32_t sum[2];
  QuantizeActsQ8(x.data(), 64, qs, d, sum);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(qs[i], 0);
  EXPECT_EQ(d[0], 0.0f);
  EXPECT_EQ(sum[1], 0);
}

TEST(ActQuant, VectorMatchesReferenceAndBounds) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  const int64_t n = 32 * 257;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t blk = i / 32;
    x[i] = g(rng) * std::ldexp(1.0f, static_cast<int>(blk % 41) - 20);
    if (blk % 7 == 3) x[i] = 0.0f;
    if (i % 61 == 9) x[i] *= -300.0f;
  }
  // Exact ties of x * 127 / absmax: absmax 127 makes the factor 1, so k + 0.5 must round to even.
  for (int i = 0; i < 32; ++i) x[i] = i == 0 ? 127.0f : (i % 2 ? 2.5f : -3.5f);
  std::vector<int8_t> q(n), q_ref(n);
  std::vector<float> d(n / 32), d_ref(n / 32);
  std::vector<int32_t> s(n / 32), s_ref(n / 32);
  QuantizeActsQ8(x.data(), n, q.data(), d.data(), s.data());
  QuantizeActsQ8Ref(x.data(), n, q_ref.data(), d_ref.data(), s_ref.data());
  EXPECT_EQ(q, q_ref);
  EXPECT_EQ(d, d_ref);
  EXPECT_EQ(s, s_ref);
  EXPECT_EQ(q[1], 2);   // 2.5 -> 2
  EXPECT_EQ(q[2], -4);  // -3.5 -> -4
  for (int64_t b = 0; b < n / 32; ++b) {
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      const int64_t k = b * 32 + i;
      ASSERT_LE(std::abs(q[k]), 127);
      sum += q[k];
      const double err = std::fabs(x[k] - static_cast<double>(d[b]) * q[k]);
      ASSERT_LE(err, d[b] * (0.5 + 1e-5)) << "block " << b << " element " << i;
    }
    EXPECT_EQ(sum, s[b]);
  }
}

}  // namespace
}  // namespace kvc
