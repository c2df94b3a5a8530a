// BlockPool and the paged cache's bookkeeping as pure data: exact block ids, reference counts,
// free-list order, and "a failed prepare changes nothing".
#include <gtest/gtest.h>

#include "kvcache/block_pool.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/paged_kv_cache.h"

namespace kvc {
namespace {

TEST(BlockPool, AllocatesLowestIdsFirstAndRecycles) {
  BlockPool pool(4);
  EXPECT_EQ(pool.Allocate(), 0);
  EXPECT_EQ(pool.Allocate(), 1);
  EXPECT_EQ(pool.Allocate(), 2);
  EXPECT_EQ(pool.num_free(), 1);
  pool.Unref(1);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.Allocate(), 1);  // most recently freed first
  EXPECT_EQ(pool.Allocate(), 3);
  EXPECT_EQ(pool.Allocate(), std::nullopt);
}

TEST(BlockPool, SharedBlocksFreeOnLastUnref) {
  BlockPool pool(2);
  const BlockId b = *pool.Allocate();
  pool.Ref(b);
  EXPECT_EQ(pool.ref_count(b), 2);
  pool.Unref(b);
  EXPECT_EQ(pool.num_free(), 1);
  pool.Unref(b);
  EXPECT_EQ(pool.num_free(), 2);
}

KVSpec Shape(int32_t max_tokens) {
  KVSpec s;
  s.n_layers = 2;
  s.n_kv_heads = 2;
  s.head_dim = 8;
  s.max_tokens = max_tokens;
  return s;
}

TEST(PagedKVCache, BlockTablesGrowAndShrinkByBlock) {
  auto spec = MakeKVSpec(Shape(64), {});
  ASSERT_TRUE(spec.ok());
  auto pool = PagedKVPool::Create(spec.value(), 4, 6);
  ASSERT_TRUE(pool.ok());
  PagedKVCache a(pool.value()), b(pool.value());
  ASSERT_TRUE(a.Reserve(5).ok());  // 2 blocks
  a.Commit(5);
  ASSERT_TRUE(b.Reserve(4).ok());  // 1 block
  b.Commit(4);
  EXPECT_EQ(a.table(), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(b.table(), (std::vector<BlockId>{2}));
  EXPECT_EQ(pool.value()->blocks().num_free(), 3);
  // 12 more tokens for `a` need 3 more blocks (17 tokens -> 5 blocks), but only 3 are free:
  ASSERT_TRUE(a.Reserve(12).ok());
  a.Commit(17);
  EXPECT_EQ(a.table(), (std::vector<BlockId>{0, 1, 3, 4, 5}));
  // Exhausted: a failed Reserve leaves the table as it was.
  const Status st = b.Reserve(8);
  EXPECT_EQ(st.code(), StatusCode::kOutOfMemory);
  EXPECT_NE(st.message().find("KV block pool exhausted"), std::string::npos);
  EXPECT_EQ(b.table(), (std::vector<BlockId>{2}));
  EXPECT_EQ(b.size(), 4);
  // Truncation returns whole blocks.
  a.Truncate(6);
  EXPECT_EQ(a.table(), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(pool.value()->blocks().num_free(), 3);
  EXPECT_EQ(a.BytesAllocated(), 2 * pool.value()->BytesPerBlock());
}

TEST(PagedKVCache, SlidingWindowReleasesBlocks) {
  auto spec = MakeKVSpec(Shape(1000), {.window = 8});
  ASSERT_TRUE(spec.ok());
  auto pool = PagedKVPool::Create(spec.value(), 4, 8);
  ASSERT_TRUE(pool.ok());
  PagedKVCache c(pool.value());
  std::vector<float> k(2 * 8), v(2 * 8);
  for (int32_t t = 0; t < 100; ++t) {
    ASSERT_TRUE(c.Reserve(1).ok()) << "token " << t;
    for (int32_t l = 0; l < 2; ++l) c.Write(l, t, 1, k.data(), v.data());
    c.Commit(t + 1);
    // The window (8 slots) spans at most 3 blocks of 4.
    EXPECT_LE(pool.value()->blocks().num_used(), 3);
  }
  EXPECT_EQ(c.table()[0], PagedKVCache::kReleased);
}

TEST(ContiguousKVCache, GrowableDoublesCapacity) {
  auto cache = MakeKVCache(Shape(100), {.layout = KVLayout::kGrowable});
  ASSERT_TRUE(cache.ok());
  std::vector<size_t> sizes;
  std::vector<float> k(2 * 8), v(2 * 8);
  for (int32_t t = 0; t < 100; ++t) {
    ASSERT_TRUE(cache.value()->Reserve(1).ok());
    for (int32_t l = 0; l < 2; ++l) cache.value()->Write(l, t, 1, k.data(), v.data());
    cache.value()->Commit(t + 1);
    if (sizes.empty() || sizes.back() != cache.value()->BytesAllocated()) sizes.push_back(cache.value()->BytesAllocated());
  }
  // 16 -> 32 -> 64 -> 100 tokens: three growths, each copying once.
  const size_t per_token = 2ull * 2 * 2 * 8 * 4;
  EXPECT_EQ(sizes, (std::vector<size_t>{16 * per_token, 32 * per_token, 64 * per_token, 100 * per_token}));
  EXPECT_EQ(cache.value()->Reserve(1).code(), StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace kvc
