// KV cache codecs: the worked int8 example, q4/q2 round-trip bounds, byte layouts, constant and
// one-signed groups, KIVI channel groups, fused dot/axpy, SIMD == reference, error figures.
#include "quant/kv_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kvcache/kv_format.h"

namespace kvc {
namespace {

constexpr KVType kAllTypes[] = {KVType::kF32, KVType::kF16, KVType::kBF16,
                                KVType::kQ8,  KVType::kQ4,  KVType::kQ2};
constexpr KVType kQuantTypes[] = {KVType::kQ8, KVType::kQ4, KVType::kQ2};

int Bits(KVType t) { return KVTypeBits(t); }
int32_t QMax(KVType t) { return (1 << Bits(t)) - 1; }

// One group parsed straight from the documented byte layout.
struct Group {
  float scale;
  int32_t zero;
  std::vector<int32_t> codes;
};

Group Parse(KVType t, const uint8_t* p, int32_t g) {
  Group out;
  for (int32_t i = 0; i < g; ++i) {
    switch (t) {
      case KVType::kQ8: out.codes.push_back(static_cast<int8_t>(p[i])); break;
      case KVType::kQ4: out.codes.push_back((p[i / 2] >> (4 * (i % 2))) & 0xf); break;
      default: out.codes.push_back((p[i / 4] >> (2 * (i % 4))) & 0x3); break;
    }
  }
  const size_t cb = static_cast<size_t>(g) * Bits(t) / 8;
  uint16_t h;
  std::memcpy(&h, p + cb, 2);
  out.scale = F16ToF32(h);
  out.zero = t == KVType::kQ8 ? 0 : p[cb + 2];
  return out;
}

std::vector<float> Gaussian(size_t n, uint32_t seed, float sigma = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> Encode(KVType t, const std::vector<float>& x, int32_t g) {
  std::vector<uint8_t> out(KVBytes(t, static_cast<int64_t>(x.size()), g) + 16, 0xcd);
  QuantizeKVRow(t, x.data(), static_cast<int32_t>(x.size()), g, out.data());
  return out;
}

std::vector<float> Decode(KVType t, const std::vector<uint8_t>& bytes, int32_t n, int32_t g) {
  std::vector<float> out(n);
  DequantizeKVRow(t, bytes.data(), n, g, out.data());
  return out;
}

// Every decoded value within half a step (|S| / 2; q8: scale / 2) of its input.
void ExpectWithinHalfStep(KVType t, const std::vector<float>& x, int32_t g, const char* what) {
  const int32_t n = static_cast<int32_t>(x.size());
  const auto bytes = Encode(t, x, g);
  const auto y = Decode(t, bytes, n, g);
  const size_t gb = KVGroupBytes(t, g);
  for (int32_t k = 0; k < n / g; ++k) {
    const Group grp = Parse(t, bytes.data() + k * gb, g);
    const float half = std::fabs(grp.scale) * 0.5f * (1.0f + 1e-5f);
    for (int32_t i = 0; i < g; ++i) {
      const int32_t e = k * g + i;
      ASSERT_LE(std::fabs(y[e] - x[e]), half + 1e-30f)
          << what << " " << KVTypeName(t) << " g=" << g << " elem " << e << " x=" << x[e];
    }
  }
}

TEST(KVQuant, WorkedExampleInt8Absmax) {
  const std::vector<float> x = {1.2f, -0.5f, -4.3f, 1.2f, -3.1f, 0.8f, 2.4f, 5.4f};
  const auto bytes = Encode(KVType::kQ8, x, 8);
  const Group grp = Parse(KVType::kQ8, bytes.data(), 8);
  EXPECT_EQ(grp.codes, (std::vector<int32_t>{28, -12, -101, 28, -73, 19, 56, 127}));
  // Quantization factor 127 / 5.4 = 23.5; the stored f16 scale is its inverse.
  EXPECT_NEAR(1.0f / grp.scale, 23.5f, 0.05f);
  EXPECT_NEAR(grp.scale, 5.4f / 127.0f, 5.4f / 127.0f / 1024.0f);
  EXPECT_EQ(bytes[10], 0xcd) << "q8 group of 8 must be exactly 10 bytes";
  const auto y = Decode(KVType::kQ8, bytes, 8, 8);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(y[i], x[i], grp.scale / 2 * 1.0001f);
}

TEST(KVQuant, GroupBytesAndValidity) {
  for (int32_t g : {1, 2, 4, 8, 16, 32, 64, 128, 256}) {
    EXPECT_EQ(KVGroupBytes(KVType::kQ8, g), static_cast<size_t>(g + 2));
    if (g % 2 == 0) {
      EXPECT_EQ(KVGroupBytes(KVType::kQ4, g), static_cast<size_t>(g / 2 + 3));
    }
    if (g % 4 == 0) {
      EXPECT_EQ(KVGroupBytes(KVType::kQ2, g), static_cast<size_t>(g / 4 + 3));
    }
    EXPECT_EQ(KVGroupBytes(KVType::kF16, g), static_cast<size_t>(2 * g));
    for (KVType t : kAllTypes) {
      if (KVGroupValid(t, g)) {
        EXPECT_EQ(KVGroupBytes(t, g) * 4, KVBytes(t, 4 * g, g)) << KVTypeName(t);
      }
    }
  }
  EXPECT_TRUE(KVGroupValid(KVType::kQ8, 1));
  EXPECT_TRUE(KVGroupValid(KVType::kQ8, 7));
  EXPECT_FALSE(KVGroupValid(KVType::kQ8, 0));
  EXPECT_FALSE(KVGroupValid(KVType::kQ8, 257));
  EXPECT_TRUE(KVGroupValid(KVType::kQ4, 2));
  EXPECT_FALSE(KVGroupValid(KVType::kQ4, 3));
  EXPECT_FALSE(KVGroupValid(KVType::kQ2, 6));
  EXPECT_TRUE(KVGroupValid(KVType::kQ2, 4));
  EXPECT_TRUE(KVGroupValid(KVType::kQ2, 256));
  EXPECT_FALSE(KVGroupValid(KVType::kQ2, 260));
  EXPECT_TRUE(KVGroupValid(KVType::kF32, 1000));
}

TEST(KVQuant, EncodedRowIsExactlySized) {
  // The byte after the last group stays untouched.
  for (KVType t : kAllTypes) {
    for (auto [n, g] : {std::pair{8, 8}, {32, 32}, {64, 32}, {128, 32}, {128, 16}, {256, 256}}) {
      const auto x = Gaussian(n, 1);
      const size_t bytes = KVBytes(t, n, g);
      if (IsQuantized(t)) {
        EXPECT_EQ(bytes, static_cast<size_t>(n / g) * KVGroupBytes(t, g));
      }
      std::vector<uint8_t> out(bytes + 1, 0xcd);
      QuantizeKVRow(t, x.data(), n, g, out.data());
      EXPECT_EQ(out[bytes], 0xcd) << KVTypeName(t) << " n=" << n << " g=" << g;
      std::vector<uint8_t> ref(bytes + 1, 0xcd);
      QuantizeKVRowRef(t, x.data(), n, g, ref.data());
      EXPECT_EQ(ref[bytes], 0xcd);
    }
  }
}

TEST(KVQuant, AffineRoundTripOnRandomData) {
  for (KVType t : {KVType::kQ4, KVType::kQ2}) {
    const int32_t qmax = QMax(t);
    for (auto [n, g] : {std::pair{8, 8}, {32, 32}, {64, 32}, {128, 32}, {128, 4}, {128, 16},
                        {128, 64}, {128, 128}, {512, 256}}) {
      for (uint32_t seed = 0; seed < 20; ++seed) {
        const auto x = Gaussian(n, seed * 31 + g, 1.0f + seed);
        ExpectWithinHalfStep(t, x, g, "gaussian");
        const auto bytes = Encode(t, x, g);
        for (int32_t k = 0; k < n / g; ++k) {
          const Group grp = Parse(t, bytes.data() + k * KVGroupBytes(t, g), g);
          float lo = x[k * g], hi = lo;
          int32_t arg_lo = 0, arg_hi = 0;
          for (int32_t i = 0; i < g; ++i) {
            if (x[k * g + i] < lo) lo = x[k * g + i], arg_lo = i;
            if (x[k * g + i] > hi) hi = x[k * g + i], arg_hi = i;
          }
          if (!(lo <= 0 && hi >= 0)) continue;  // one-signed groups: see OneSignedGroups
          // S = (max - min) / qmax, rounded up to f16; Z = round(-min / S) within the code range.
          const float s0 = (hi - lo) / qmax;
          EXPECT_GE(grp.scale, s0);
          EXPECT_LE(grp.scale, s0 * (1.0f + 1.0f / 1024.0f));
          EXPECT_EQ(grp.zero, static_cast<int32_t>(std::nearbyint(-lo / grp.scale)));
          EXPECT_LE(grp.zero, qmax);
          EXPECT_EQ(grp.codes[arg_lo], 0);
          EXPECT_GE(grp.codes[arg_hi], qmax - 1);
          for (int32_t c : grp.codes) {
            EXPECT_GE(c, 0);
            EXPECT_LE(c, qmax);
          }
        }
      }
    }
  }
}

TEST(KVQuant, Q8RoundTripOnRandomData) {
  for (auto [n, g] : {std::pair{8, 8}, {32, 32}, {128, 32}, {96, 3}, {128, 1}, {256, 256}}) {
    for (uint32_t seed = 0; seed < 10; ++seed) {
      const auto x = Gaussian(n, seed + 100, 0.5f + seed);
      ExpectWithinHalfStep(KVType::kQ8, x, g, "gaussian");
      const auto bytes = Encode(KVType::kQ8, x, g);
      for (int32_t k = 0; k < n / g; ++k) {
        const Group grp = Parse(KVType::kQ8, bytes.data() + k * KVGroupBytes(KVType::kQ8, g), g);
        int32_t extreme = 0;
        for (int32_t c : grp.codes) {
          EXPECT_LE(std::abs(c), 127);
          extreme = std::max(extreme, std::abs(c));
        }
        EXPECT_EQ(extreme, 127);  // the absmax element takes the full code
      }
    }
  }
}

TEST(KVQuant, FloatTypesArePlainArrays) {
  const auto x = Gaussian(40, 5);
  const auto f32 = Encode(KVType::kF32, x, 8);
  EXPECT_EQ(0, std::memcmp(f32.data(), x.data(), 40 * 4));
  const auto f16 = Encode(KVType::kF16, x, 8);
  const auto bf16 = Encode(KVType::kBF16, x, 8);
  for (int i = 0; i < 40; ++i) {
    uint16_t h, b;
    std::memcpy(&h, f16.data() + 2 * i, 2);
    std::memcpy(&b, bf16.data() + 2 * i, 2);
    EXPECT_EQ(h, F32ToF16(x[i]));
    EXPECT_EQ(b, F32ToBf16(x[i]));
  }
  EXPECT_EQ(Decode(KVType::kF32, f32, 40, 8), x);
}

TEST(KVQuant, ConstantGroupsDecodeExactly) {
  for (KVType t : {KVType::kQ4, KVType::kQ2}) {
    for (float c : {0.0f, 1.0f, 3.25f, -7.5f, 123.5f, -0.125f, 65504.0f, 5.9604644775390625e-8f}) {
      for (int32_t g : {4, 8, 32, 256}) {
        const std::vector<float> x(g * 2, c);
        const auto y = Decode(t, Encode(t, x, g), g * 2, g);
        for (float v : y) ASSERT_EQ(v, c) << KVTypeName(t) << " c=" << c << " g=" << g;
      }
    }
    // Not an f16 value: the nearest f16.
    for (float c : {0.1f, -1e-3f, 3.14159f}) {
      const std::vector<float> x(32, c);
      for (float v : Decode(t, Encode(t, x, 32), 32, 32)) EXPECT_EQ(v, F16ToF32(F32ToF16(c)));
    }
    // Beyond the f16 range: 255 steps of |c| / 255, within half a step.
    for (float c : {1e6f, -3e6f}) ExpectWithinHalfStep(t, std::vector<float>(32, c), 32, "huge constant");
  }
  // q8 keeps its formula (scale = absmax / 127): constants within half a step.
  for (float c : {0.0f, 1.0f, -7.5f, 1e4f}) ExpectWithinHalfStep(KVType::kQ8, std::vector<float>(32, c), 32, "const");
}

TEST(KVQuant, ZerosDecodeToZeros) {
  for (KVType t : kAllTypes) {
    for (int32_t g : {8, 32}) {
      const std::vector<float> x(128, 0.0f);
      const auto bytes = Encode(t, x, g);
      for (float v : Decode(t, bytes, 128, g)) ASSERT_EQ(v, 0.0f) << KVTypeName(t);
    }
  }
  // A zero group next to a non-zero one.
  std::vector<float> x = Gaussian(64, 9);
  std::fill(x.begin(), x.begin() + 32, 0.0f);
  for (KVType t : kQuantTypes) {
    const auto y = Decode(t, Encode(t, x, 32), 64, 32);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.0f);
  }
}

TEST(KVQuant, LargeMagnitudes) {
  for (KVType t : kQuantTypes) {
    // Up to the f16 scale limit: ranges of 65504 * qmax (q8: absmax 65504 * 127).
    for (float sigma : {1e2f, 1e3f, 1e4f, t == KVType::kQ8 ? 1e6f : t == KVType::kQ4 ? 1e5f : 2e4f}) {
      ExpectWithinHalfStep(t, Gaussian(128, 77, sigma), 32, "large");
    }
    ExpectWithinHalfStep(t, Gaussian(128, 78, 1e-5f), 32, "tiny");
  }
}

TEST(KVQuant, BeyondTheF16ScaleSaturates) {
  // Ranges no f16 scale can span clip to the saturated scale instead of overflowing.
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = (i - 15.5f) * 1e6f;
  for (KVType t : kQuantTypes) {
    const auto bytes = Encode(t, x, 32);
    const Group grp = Parse(t, bytes.data(), 32);
    EXPECT_EQ(std::fabs(grp.scale), 65504.0f) << KVTypeName(t);
    const auto y = Decode(t, bytes, 32, 32);
    for (int i = 0; i < 32; ++i) {
      EXPECT_TRUE(std::isfinite(y[i]));
      EXPECT_LE(std::fabs(y[i]), std::fabs(x[i]) + 65504.0f) << KVTypeName(t);
    }
    EXPECT_LT(y[0], 0.0f);
    EXPECT_GT(y[31], 0.0f);
  }
}

TEST(KVQuant, OneSignedGroups) {
  for (KVType t : {KVType::kQ4, KVType::kQ2}) {
    const int32_t qmax = QMax(t);
    // All positive: the scale is stored negative so Z stays a u8; max -> code 0, min -> qmax.
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = 10.0f + i / 31.0f;
    ExpectWithinHalfStep(t, x, 32, "positive");
    Group grp = Parse(t, Encode(t, x, 32).data(), 32);
    EXPECT_LT(grp.scale, 0.0f);
    EXPECT_EQ(grp.codes[31], 0);
    EXPECT_EQ(grp.codes[0], qmax);
    // Offsets small enough for Z <= 255 keep the full-range step.
    for (float& v : x) v = 1.0f + v - 10.0f;  // [1, 2]
    ExpectWithinHalfStep(t, x, 32, "positive near");
    grp = Parse(t, Encode(t, x, 32).data(), 32);
    EXPECT_NEAR(-grp.scale, 1.0f / qmax, 1.0f / qmax / 1000);
    // All negative: positive scale with Z beyond qmax.
    for (float& v : x) v = -v;  // [-2, -1]
    ExpectWithinHalfStep(t, x, 32, "negative");
    grp = Parse(t, Encode(t, x, 32).data(), 32);
    EXPECT_GT(grp.scale, 0.0f);
    EXPECT_GT(grp.zero, qmax);
    // Far offsets: |S| grows to |extreme| / 255, still within half a step.
    for (float sign : {1.0f, -1.0f}) {
      auto y = Gaussian(64, 3, 0.01f, sign * 1000.0f);
      ExpectWithinHalfStep(t, y, 32, "far offset");
      grp = Parse(t, Encode(t, y, 32).data(), 32);
      EXPECT_LE(std::fabs(grp.scale), 1001.0f / 255.0f * 1.001f);
      EXPECT_LE(grp.zero, 255);
    }
  }
}

TEST(KVQuant, NonFiniteInputsAreDefined) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (KVType t : kQuantTypes) {
    for (int32_t g : {8, 32}) {
      auto x = Gaussian(64, 4);
      x[3] = nan;
      std::vector<uint8_t> simd(KVBytes(t, 64, g)), ref(simd.size());
      QuantizeKVRow(t, x.data(), 64, g, simd.data());
      QuantizeKVRowRef(t, x.data(), 64, g, ref.data());
      EXPECT_EQ(simd, ref) << KVTypeName(t);
      const auto y = Decode(t, simd, 64, g);
      EXPECT_EQ(y[3], 0.0f) << "NaN encodes as the zero point (in range here)";
      for (int i = 0; i < 64; ++i) {
        if (i != 3) {
          EXPECT_NEAR(y[i], x[i], 1.0f) << KVTypeName(t);
        }
      }
      std::vector<float> all_nan(64, nan);
      all_nan[40] = inf;
      QuantizeKVRow(t, all_nan.data(), 64, g, simd.data());
      QuantizeKVRowRef(t, all_nan.data(), 64, g, ref.data());
      EXPECT_EQ(simd, ref) << KVTypeName(t);
      for (float v : Decode(t, simd, 64, g)) EXPECT_TRUE(std::isfinite(v));
      for (int32_t k = 0; k < 64 / g; ++k) {
        for (int32_t c : Parse(t, simd.data() + k * KVGroupBytes(t, g), g).codes) {
          EXPECT_LE(std::abs(c), t == KVType::kQ8 ? 127 : QMax(t));
        }
      }
    }
  }
}

TEST(KVQuant, InvalidGroupsAreGraceful) {
  const auto x = Gaussian(24, 1);
  const std::vector<float> q(24, 1.0f);
  for (auto [t, g] : {std::pair{KVType::kQ4, 3}, {KVType::kQ2, 6}, {KVType::kQ8, 0}, {KVType::kQ8, 512},
                      {KVType::kQ8, 5} /* 24 % 5 != 0 */}) {
    std::vector<uint8_t> out(64, 0xcd);
    QuantizeKVRow(t, x.data(), 24, g, out.data());
    for (uint8_t b : out) EXPECT_EQ(b, 0xcd);
    std::vector<float> y(24, 7.0f);
    DequantizeKVRow(t, out.data(), 24, g, y.data());
    for (float v : y) EXPECT_EQ(v, 0.0f);
    EXPECT_EQ(DotKVRow(t, out.data(), q.data(), 24, g), 0.0f);
    std::vector<float> acc(24, 2.0f);
    AxpyKVRow(t, out.data(), 1.0f, acc.data(), 24, g);
    for (float v : acc) EXPECT_EQ(v, 2.0f);
  }
}

TEST(KVQuant, SimdMatchesReferenceBitForBit) {
  std::printf("KVQuantHasSimd: %d\n", KVQuantHasSimd() ? 1 : 0);
  for (KVType t : kAllTypes) {
    for (auto [n, g] : {std::pair{16, 16}, {64, 32}, {128, 32}, {128, 64}, {256, 256}, {1024, 128},
                        {40, 8}, {8, 8}}) {
      for (uint32_t seed = 0; seed < 8; ++seed) {
        auto x = Gaussian(n, seed + 1000, 0.01f * (seed + 1) * (seed + 1), seed == 3 ? 5.0f : 0.0f);
        if (seed == 4) std::fill(x.begin(), x.begin() + std::min(n, 16), 2.5f);   // constant group
        if (seed == 5) for (float& v : x) v = std::fabs(v) + 1.0f;                 // all positive
        if (seed == 6) for (int i = 0; i < n; i += 7) x[i] *= 1e4f;              // outliers
        if (seed == 7) for (int i = 0; i < n; i += 5) x[i] = 1e-40f * i;        // subnormals
        std::vector<uint8_t> a(KVBytes(t, n, g)), b(a.size());
        QuantizeKVRow(t, x.data(), n, g, a.data());
        QuantizeKVRowRef(t, x.data(), n, g, b.data());
        ASSERT_EQ(a, b) << KVTypeName(t) << " n=" << n << " g=" << g << " seed=" << seed;
        std::vector<float> ya(n), yb(n);
        DequantizeKVRow(t, a.data(), n, g, ya.data());
        DequantizeKVRowRef(t, a.data(), n, g, yb.data());
        ASSERT_EQ(0, std::memcmp(ya.data(), yb.data(), n * 4)) << KVTypeName(t) << " g=" << g;
      }
    }
  }
}

// DotKVRow / AxpyKVRow (dispatched and reference) against dequantize-then-dot.
TEST(KVQuant, FusedDotAndAxpyMatchDequantized) {
  for (KVType t : kAllTypes) {
    for (auto [n, g] : {std::pair{8, 8}, {32, 32}, {64, 32}, {128, 32}, {128, 16}, {128, 128},
                        {40, 8}, {256, 4}}) {
      if (!KVGroupValid(t, g)) continue;
      for (uint32_t seed = 0; seed < 10; ++seed) {
        const auto x = Gaussian(n, seed + 7, 1.0f + seed, seed % 3 == 0 ? 2.0f : 0.0f);
        const auto q = Gaussian(n, seed + 8, 0.3f);
        const auto bytes = Encode(t, x, g);
        const auto y = Decode(t, bytes, n, g);
        double ref = 0, mag = 0;
        for (int i = 0; i < n; ++i) {
          ref += static_cast<double>(q[i]) * y[i];
          mag += std::fabs(static_cast<double>(q[i]) * y[i]);
        }
        const double tol = 1e-5 * mag + 1e-30;
        EXPECT_NEAR(DotKVRow(t, bytes.data(), q.data(), n, g), ref, tol) << KVTypeName(t) << " g=" << g;
        EXPECT_NEAR(DotKVRowRef(t, bytes.data(), q.data(), n, g), ref, tol) << KVTypeName(t);

        const float a = 0.37f + seed;
        const auto acc0 = Gaussian(n, seed + 9, 2.0f);
        auto acc = acc0, acc_ref = acc0;
        AxpyKVRow(t, bytes.data(), a, acc.data(), n, g);
        AxpyKVRowRef(t, bytes.data(), a, acc_ref.data(), n, g);
        for (int i = 0; i < n; ++i) {
          const double want = acc0[i] + static_cast<double>(a) * y[i];
          const double etol = 1e-5 * (std::fabs(acc0[i]) + std::fabs(a * y[i])) + 1e-30;
          ASSERT_NEAR(acc[i], want, etol) << KVTypeName(t) << " g=" << g << " i=" << i;
          ASSERT_NEAR(acc_ref[i], want, etol) << KVTypeName(t);
        }
      }
    }
  }
}

TEST(KVQuant, KiviChannelGroups) {
  for (KVType t : kAllTypes) {
    for (auto [n, g] : {std::pair{8, 8}, {64, 32}, {128, 32}, {24, 16}, {32, 4}, {16, 256}}) {
      if (!KVGroupValid(t, g)) continue;
      // Rows: g tokens x n channels; give channels different offsets and spreads like real keys.
      auto rows = Gaussian(static_cast<size_t>(n) * g, n + g);
      for (int j = 0; j < g; ++j) {
        for (int c = 0; c < n; ++c) rows[j * n + c] = rows[j * n + c] * (1 + c % 5) + (c % 7) - 3;
      }
      const size_t gb = KVGroupBytes(t, g);
      std::vector<uint8_t> block(n * gb + 1, 0xcd);
      QuantizeKVChannelGroup(t, rows.data(), n, g, block.data());
      EXPECT_EQ(block[n * gb], 0xcd);

      // Per-channel reference: the channel's g values encoded as one per-token group.
      std::vector<float> expect(static_cast<size_t>(n) * g);
      for (int c = 0; c < n; ++c) {
        std::vector<float> col(g), dec(g);
        for (int j = 0; j < g; ++j) col[j] = rows[j * n + c];
        std::vector<uint8_t> enc(gb);
        QuantizeKVRowRef(t, col.data(), g, g, enc.data());
        EXPECT_EQ(0, std::memcmp(enc.data(), block.data() + c * gb, gb)) << KVTypeName(t) << " c=" << c;
        DequantizeKVRowRef(t, enc.data(), g, g, dec.data());
        for (int j = 0; j < g; ++j) expect[j * n + c] = dec[j];
      }
      std::vector<float> row(n), all(static_cast<size_t>(n) * g);
      for (int j = 0; j < g; ++j) {
        DequantizeKVChannelGroupRow(t, block.data(), n, g, j, row.data());
        ASSERT_EQ(0, std::memcmp(row.data(), expect.data() + j * n, n * 4)) << KVTypeName(t) << " j=" << j;
      }
      DequantizeKVChannelGroup(t, block.data(), n, g, all.data());
      EXPECT_EQ(all, expect);

      const auto q = Gaussian(n, 3);
      std::vector<float> scores(g);
      DotKVChannelGroup(t, block.data(), q.data(), n, g, scores.data());
      for (int j = 0; j < g; ++j) {
        double ref = 0, mag = 0;
        for (int c = 0; c < n; ++c) {
          ref += static_cast<double>(q[c]) * expect[j * n + c];
          mag += std::fabs(static_cast<double>(q[c]) * expect[j * n + c]);
        }
        EXPECT_NEAR(scores[j], ref, 1e-5 * mag + 1e-30) << KVTypeName(t) << " j=" << j;
      }
    }
  }
}

double RelativeRms(KVType t, const std::vector<float>& x, int32_t g) {
  const auto y = Decode(t, Encode(t, x, g), static_cast<int32_t>(x.size()), g);
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    ref += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

TEST(KVQuant, RelativeRmsErrorOnGaussianData) {
  // Bounds sit a little above what min/max scaling with an integer zero point gives; q2 at g >= 32
  // is inherently about 40%+ (4 levels over the group's full range, one of them pinned at 0).
  struct Bound {
    int32_t g;
    double q8, q4, q2;
  };
  const auto x = Gaussian(1 << 17, 2024);
  for (const Bound& b : {Bound{8, 0.01, 0.065, 0.31}, Bound{32, 0.01, 0.09, 0.43},
                         Bound{64, 0.01, 0.10, 0.48}, Bound{128, 0.01, 0.11, 0.53}}) {
    const int32_t g = b.g;
    const double q8 = RelativeRms(KVType::kQ8, x, g);
    const double q4 = RelativeRms(KVType::kQ4, x, g);
    const double q2 = RelativeRms(KVType::kQ2, x, g);
    std::printf("relative RMS error, Gaussian, g=%3d: q8 %.4f%%  q4 %.3f%%  q2 %.2f%%\n", g, 100 * q8,
                100 * q4, 100 * q2);
    EXPECT_LT(q8, b.q8);
    EXPECT_LT(q4, b.q4);
    EXPECT_LT(q2, b.q2);
    EXPECT_LT(q8, q4);
    EXPECT_LT(q4, q2);
  }
  std::printf("relative RMS error, Gaussian: f16 %.5f%%  bf16 %.4f%%\n",
              100 * RelativeRms(KVType::kF16, x, 32), 100 * RelativeRms(KVType::kBF16, x, 32));
}

}  // namespace
}  // namespace kvc
