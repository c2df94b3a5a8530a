// Reference weight quantizers: exact known vectors, byte layouts, zero blocks, extremes, and the
// round-trip error bounds
//   Q8_0: |x - x^| <= d / 2 + 127 |d - d16|        (d = absmax / 127, d16 = d stored as f16)
//   Q4_0: |x - x^| <= |d| + 8 |d - d16|            (d = max / -8; values near -max round to 7 d)
#include "quant/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "quant/block_r16.h"
#include "quant/ggml_blocks.h"

namespace kvc {
namespace {

std::vector<float> RoundTrip(DType type, const std::vector<float>& x) {
  std::vector<uint8_t> bytes(RowBytes(type, static_cast<int64_t>(x.size())));
  QuantizeRow(type, x.data(), bytes.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  DequantizeRow(type, bytes.data(), y.data(), static_cast<int64_t>(x.size()));
  return y;
}

TEST(QuantizeQ8_0, ExactWhenScaleIsOne) {
  // absmax 127 gives d = 1 (exact in f16), so integers in [-127, 127] survive unchanged.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(8 * i - 127);
  BlockQ8_0 b;
  QuantizeRow(DType::kQ8_0, x.data(), &b, 32);
  EXPECT_EQ(b.d, 0x3c00);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(b.qs[i], 8 * i - 127);
  EXPECT_EQ(RoundTrip(DType::kQ8_0, x), x);
}

TEST(QuantizeQ8_0, ZeroBlock) {
  const std::vector<float> x(64, 0.0f);
  std::vector<BlockQ8_0> b(2);
  QuantizeRow(DType::kQ8_0, x.data(), b.data(), 64);
  for (const BlockQ8_0& blk : b) {
    EXPECT_EQ(blk.d, 0);
    for (int8_t q : blk.qs) EXPECT_EQ(q, 0);
  }
  EXPECT_EQ(RoundTrip(DType::kQ8_0, x), x);
}

TEST(QuantizeQ8_0, DequantizesTheBlockLayout) {
  BlockQ8_0 b;
  b.d = F32ToF16(0.5f);
  for (int i = 0; i < 32; ++i) b.qs[i] = static_cast<int8_t>(i % 2 ? -128 + i : 127 - i);
  float y[32];
  DequantizeRow(DType::kQ8_0, &b, y, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.5f * b.qs[i]);
}

TEST(QuantizeQ4_0, ExactWhenScaleIsOne) {
  // The largest magnitude is -8, so d = 1 and integers in [-8, 7] are exact.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i % 16 - 8);
  BlockQ4_0 b;
  QuantizeRow(DType::kQ4_0, x.data(), &b, 32);
  EXPECT_EQ(F16ToF32(b.d), 1.0f);
  // Byte j: element j in the low nibble, element j + 16 in the high nibble (both = j - 8 here).
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], (j & 0x0f) | (j << 4));
  EXPECT_EQ(RoundTrip(DType::kQ4_0, x), x);
}

TEST(QuantizeQ4_0, DequantizesTheNibbleLayout) {
  BlockQ4_0 b;
  b.d = F32ToF16(2.0f);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  DequantizeRow(DType::kQ4_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 2.0f * (j - 8));
    EXPECT_EQ(y[j + 16], 2.0f * (7 - j));
  }
}

TEST(QuantizeQ4_0, ZeroBlockIsAllEights) {
  const std::vector<float> x(32, 0.0f);
  BlockQ4_0 b;
  QuantizeRow(DType::kQ4_0, x.data(), &b, 32);
  EXPECT_EQ(F16ToF32(b.d), 0.0f);  // -0: the scale is max / -8
  for (uint8_t q : b.qs) EXPECT_EQ(q, 0x88);
  EXPECT_EQ(RoundTrip(DType::kQ4_0, x), x);
}

TEST(QuantizeQ4_0, PositiveMaximumMapsToMinusEight) {
  std::vector<float> x(32, 0.0f);
  x[3] = 7.0f;   // largest magnitude, positive: d = -7 / 8
  x[4] = -7.0f;  // the opposite end cannot be represented exactly: 7 d = -6.125
  const std::vector<float> y = RoundTrip(DType::kQ4_0, x);
  EXPECT_EQ(y[3], 7.0f);
  EXPECT_NEAR(y[4], -6.125f, 1e-6f);
  EXPECT_EQ(y[0], 0.0f);
}

// Random blocks at many magnitudes, with outliers, sign flips and denormal-scale blocks.
std::vector<float> TestVector(std::mt19937* rng) {
  std::normal_distribution<float> g;
  std::vector<float> x(32 * 64);
  for (size_t i = 0; i < x.size(); ++i) {
    const int blk = static_cast<int>(i / 32);
    const float scale = std::ldexp(1.0f, blk % 33 - 20);  // 2^-20 .. 2^12
    x[i] = g(*rng) * scale;
    if (i % 53 == 7) x[i] *= -40.0f;
  }
  x[5 * 32] = 60000.0f;  // near the f16 limit of the scale times 127
  return x;
}

TEST(QuantizeQ8_0, RoundTripErrorBound) {
  std::mt19937 rng(1);
  const std::vector<float> x = TestVector(&rng);
  std::vector<BlockQ8_0> b(x.size() / 32);
  QuantizeRow(DType::kQ8_0, x.data(), b.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  DequantizeRow(DType::kQ8_0, b.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t k = 0; k < b.size(); ++k) {
    double amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[k * 32 + i])));
    const double d = amax / 127, d16 = F16ToF32(b[k].d);
    const double bound = d / 2 + 127 * std::fabs(d - d16) + 1e-6 * amax;
    for (int i = 0; i < 32; ++i) {
      ASSERT_LE(std::fabs(x[k * 32 + i] - static_cast<double>(y[k * 32 + i])), bound)
          << "block " << k << " element " << i;
    }
  }
}

TEST(QuantizeQ4_0, RoundTripErrorBound) {
  std::mt19937 rng(2);
  const std::vector<float> x = TestVector(&rng);
  std::vector<BlockQ4_0> b(x.size() / 32);
  QuantizeRow(DType::kQ4_0, x.data(), b.data(), static_cast<int64_t>(x.size()));
  std::vector<float> y(x.size());
  DequantizeRow(DType::kQ4_0, b.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t k = 0; k < b.size(); ++k) {
    double amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(static_cast<double>(x[k * 32 + i])));
    const double d = amax / 8, d16 = std::fabs(F16ToF32(b[k].d));
    const double bound = d + 8 * std::fabs(d - d16) + 1e-6 * amax;
    for (int i = 0; i < 32; ++i) {
      ASSERT_LE(std::fabs(x[k * 32 + i] - static_cast<double>(y[k * 32 + i])), bound)
          << "block " << k << " element " << i;
    }
  }
}

TEST(QuantizeFloat, HalfAndBfloatRoundTrips) {
  // Values representable in the target type come back exactly; others within half an ulp.
  std::vector<float> x = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 0.333333f};
  x.resize(64, 1.5f);
  const std::vector<float> h = RoundTrip(DType::kF16, x);
  const std::vector<float> b = RoundTrip(DType::kBF16, x);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], F16ToF32(F32ToF16(x[i])));
    EXPECT_EQ(b[i], Bf16ToF32(F32ToBf16(x[i])));
    EXPECT_LE(std::fabs(h[i] - x[i]), std::fabs(x[i]) * std::ldexp(1.0, -11));
    EXPECT_LE(std::fabs(b[i] - x[i]), std::fabs(x[i]) * std::ldexp(1.0, -8));
  }
  EXPECT_EQ(RoundTrip(DType::kF32, x), x);
}

TEST(QuantizeRowBytes, MatchesBlockLayouts) {
  EXPECT_EQ(RowBytes(DType::kQ8_0, 2048), 64u * sizeof(BlockQ8_0));
  EXPECT_EQ(RowBytes(DType::kQ4_0, 2048), 64u * sizeof(BlockQ4_0));
  EXPECT_EQ(RowBytes(DType::kF16, 7), 14u);
  EXPECT_EQ(RowBytes(DType::kF32, 3), 12u);
}

// The R16 layouts hold the same blocks in another order, wherever the row sits (the layout
// follows the row's address modulo 64): repacking, unpacking and dequantizing give the plain rows
// back bit for bit, and the quants of a row land on a 64-byte boundary.
template <typename Block>
void CheckRepackAtEitherAlignment(DType plain, DType r16) {
  std::mt19937 rng(7);
  for (int64_t cols : {512, 1024, 1536, 4096}) {
    const int64_t rows = 5, nb = cols / 32;
    const size_t rb = RowBytes(plain, cols);
    std::vector<Block> blocks(nb * rows);
    for (Block& b : blocks) {
      b.d = static_cast<uint16_t>(rng() & 0x7bff);  // finite f16
      for (auto& v : b.qs) v = static_cast<std::remove_reference_t<decltype(v)>>(rng());
    }
    for (size_t phase : {0, 32}) {
      SCOPED_TRACE(::testing::Message()
                   << DTypeName(r16) << " cols " << cols << " phase " << phase);
      std::vector<uint8_t> store(rb * rows + 128);
      uint8_t* base = store.data() + (64 - reinterpret_cast<uintptr_t>(store.data()) % 64) + phase;
      std::memcpy(base, blocks.data(), rb * rows);
      RepackRowsR16InPlace<Block>(base, rows, cols);
      std::vector<float> want(cols), got(cols);
      std::vector<Block> back(nb);
      for (int64_t r = 0; r < rows; ++r) {
        const uint8_t* row = base + r * rb;
        EXPECT_EQ(reinterpret_cast<uintptr_t>(row + R16Lead(row, nb)) % 64, 0u);
        UnpackRowR16<Block>(row, back.data(), cols);
        EXPECT_EQ(0, std::memcmp(back.data(), &blocks[r * nb], rb)) << "row " << r;
        DequantizeRow(plain, &blocks[r * nb], want.data(), cols);
        DequantizeRow(r16, row, got.data(), cols);
        EXPECT_EQ(want, got) << "row " << r;
      }
    }
  }
}

TEST(QuantizeR16, RepackKeepsEveryBlockAtEitherAlignment) {
  CheckRepackAtEitherAlignment<BlockQ8_0>(DType::kQ8_0, DType::kQ8_0_R16);
  CheckRepackAtEitherAlignment<BlockQ4_0>(DType::kQ4_0, DType::kQ4_0_R16);
}

}  // namespace
}  // namespace kvc
