// Context shift at the cache level: RemoveRange keeps the first slots, moves the tail down and
// re-positions its keys; the policy arithmetic of sinks and llama.cpp-style context shift.
#include <cmath>

#include <gtest/gtest.h>

#include "kernels/rope.h"
#include "kvcache/blocked_kv_cache.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/shift_policy.h"

namespace kvc {
namespace {

TEST(ShiftPolicy, SinksKeepFirstAndRecent) {
  const ShiftPolicy p = ShiftPolicy::Sinks(4, 64);
  EXPECT_EQ(p.DiscardFor(60, 1), 0);
  EXPECT_EQ(p.DiscardFor(68, 0), 0);
  EXPECT_EQ(p.DiscardFor(68, 1), 8);   // at least window/8 at once
  EXPECT_EQ(p.DiscardFor(68, 20), 20);
  EXPECT_EQ(p.DiscardFor(5, 100), 1);  // never more than what lies after the sinks
}

TEST(ShiftPolicy, ContextShiftDropsHalf) {
  const ShiftPolicy p = ShiftPolicy::ContextShift(1, 512);
  EXPECT_EQ(p.DiscardFor(511, 1), 0);
  EXPECT_EQ(p.DiscardFor(512, 1), 255);
  EXPECT_FALSE(ShiftPolicy{}.active());
  EXPECT_EQ(ShiftPolicy{}.DiscardFor(1 << 20, 1), 0);
}

class RemoveRangeTest : public ::testing::TestWithParam<std::tuple<KVLayout, KVType, KVGrouping, int>> {};

TEST_P(RemoveRangeTest, MovesTailAndRekeys) {
  const auto [layout, type, grouping, residual] = GetParam();
  KVSpec shape;
  shape.n_layers = 2;
  shape.n_kv_heads = 2;
  shape.head_dim = 8;
  shape.max_tokens = 64;
  auto cache = MakeKVCache(shape, {.layout = layout, .block_size = 4, .type_k = type, .type_v = type,
                                   .group = 4, .grouping = grouping, .residual = residual});
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  auto* blocked = dynamic_cast<BlockedKVCache*>(cache.value().get());
  ASSERT_NE(blocked, nullptr);
  const int32_t row = 16, n = 40;
  auto value = [](int32_t slot, int32_t i) { return 0.25f * (slot % 7) + 0.01f * i - 0.3f; };
  std::vector<float> k(n * row), v(n * row);
  for (int32_t t = 0; t < n; ++t)
    for (int32_t i = 0; i < row; ++i) k[t * row + i] = v[t * row + i] = value(t, i);
  ASSERT_TRUE(cache.value()->Reserve(n).ok());
  for (int32_t l = 0; l < 2; ++l) cache.value()->Write(l, 0, n, k.data(), v.data());
  cache.value()->Commit(n);
  // Rekey marks keys by adding the shift, so moved keys are distinguishable.
  ASSERT_TRUE(cache.value()->RemoveRange(3, 10, [&](float* keys, int32_t m, int32_t delta) {
    EXPECT_EQ(delta, -10);
    for (int32_t i = 0; i < m * row; ++i) keys[i] += 1.0f;
  }).ok());
  ASSERT_EQ(cache.value()->size(), n - 10);
  std::vector<float> rk((n - 10) * row), rv((n - 10) * row);
  const double tol = type == KVType::kF32 ? 1e-6 : type == KVType::kF16 ? 2e-3 : type == KVType::kQ8 ? 0.02 : 0.3;
  for (int32_t l = 0; l < 2; ++l) {
    blocked->ReadRows(l, 0, n - 10, rk.data(), rv.data());
    for (int32_t t = 0; t < n - 10; ++t) {
      const int32_t src = t < 3 ? t : t + 10;
      for (int32_t i = 0; i < row; ++i) {
        EXPECT_NEAR(rv[t * row + i], value(src, i), tol) << "slot " << t;
        EXPECT_NEAR(rk[t * row + i], value(src, i) + (t < 3 ? 0.0f : 1.0f), tol) << "slot " << t;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Caches, RemoveRangeTest,
    ::testing::Values(std::tuple{KVLayout::kPaged, KVType::kF32, KVGrouping::kPerToken, 0},
                      std::tuple{KVLayout::kContiguous, KVType::kF16, KVGrouping::kPerToken, 0},
                      std::tuple{KVLayout::kGrowable, KVType::kQ8, KVGrouping::kPerToken, 5},
                      std::tuple{KVLayout::kPaged, KVType::kQ4, KVGrouping::kKivi, 8},
                      std::tuple{KVLayout::kContiguous, KVType::kQ4, KVGrouping::kKivi, 8}));

TEST(Rope, RotationsCompose) {
  const Rope rope(16, 16, 10000.0f);
  std::vector<float> a(32), b(32);
  for (int i = 0; i < 32; ++i) a[i] = b[i] = std::sin(i * 0.7f);
  rope.Apply(a.data(), 2, 100);
  rope.Apply(a.data(), 2, -37);
  rope.Apply(b.data(), 2, 63);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(a[i], b[i], 1e-5);
}

}  // namespace
}  // namespace kvc
