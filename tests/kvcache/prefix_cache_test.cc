// Prefix caching as pure data: chained block hashes, hits with exact block ids, the
// never-the-last-token rule, LRU eviction order of released cached blocks, token verification,
// and copy-on-write of a forked sequence's shared partial block.
#include <numeric>

#include <gtest/gtest.h>

#include "kvcache/block_hash.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/paged_kv_cache.h"
#include "kvcache/prefix_index.h"

namespace kvc {
namespace {

constexpr int32_t kBs = 4;

std::vector<int32_t> Iota(int32_t n, int32_t from = 100) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), from);
  return v;
}

// Allocates blocks for `tokens` (full blocks only) and registers them, as a finished prefill does.
std::vector<BlockId> Fill(BlockPool& pool, uint64_t seed, const std::vector<int32_t>& tokens) {
  std::vector<BlockId> table;
  for (size_t i = 0; i < tokens.size() / kBs; ++i) table.push_back(*pool.Allocate());
  std::vector<uint64_t> hashes;
  RegisterFullBlocks(pool, seed, kBs, tokens, table, &hashes);
  EXPECT_EQ(hashes.size(), table.size());
  return table;
}

TEST(BlockHash, ChainsAndDependsOnConfiguration) {
  KVSpec a;
  a.n_layers = 2;
  KVSpec b = a;
  b.type_k = KVType::kF16;
  EXPECT_NE(BlockHashSeed(a, 16), BlockHashSeed(b, 16));
  EXPECT_NE(BlockHashSeed(a, 16), BlockHashSeed(a, 32));
  const std::vector<int32_t> t = {1, 2, 3, 4};
  const uint64_t s = BlockHashSeed(a, 4);
  EXPECT_EQ(ChainBlockHash(s, t), ChainBlockHash(s, t));
  EXPECT_NE(ChainBlockHash(s, t), ChainBlockHash(ChainBlockHash(s, t), t));  // position matters
}

TEST(PrefixIndex, HitReusesExactBlocksAndNeverServesTheLastToken) {
  BlockPool pool(8);
  const uint64_t seed = 7;
  const auto first = Iota(12);  // 3 full blocks
  const auto table = Fill(pool, seed, first);
  EXPECT_EQ(table, (std::vector<BlockId>{0, 1, 2}));
  EXPECT_EQ(pool.num_cached(), 3);

  // Same 12 tokens again: only 2 blocks may hit, the last token must be computed.
  auto m = MatchPrefix(pool, seed, kBs, first);
  EXPECT_EQ(m.blocks, (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(m.tokens, 8);

  // A longer prompt sharing 10 tokens: 2 full blocks hit.
  auto other = Iota(10);
  other.push_back(7);
  other.push_back(8);
  other.push_back(9);
  m = MatchPrefix(pool, seed, kBs, other);
  EXPECT_EQ(m.blocks, (std::vector<BlockId>{0, 1}));

  // A different first block: no hit even though later blocks are equal (chained hashes).
  auto shifted = first;
  shifted[0] = 5;
  shifted.push_back(1);
  EXPECT_TRUE(MatchPrefix(pool, seed, kBs, shifted).blocks.empty());
  // Another cache configuration (seed): no hit.
  auto longer = first;
  longer.push_back(1);
  EXPECT_TRUE(MatchPrefix(pool, seed + 1, kBs, longer).blocks.empty());
  EXPECT_EQ(MatchPrefix(pool, seed, kBs, longer).blocks, (std::vector<BlockId>{0, 1, 2}));
}

TEST(PrefixIndex, ReleasedBlocksStayCachedThenEvictLeastRecentlyReleased) {
  BlockPool pool(4);
  const uint64_t seed = 1;
  const auto a = Iota(8, 0);    // blocks 0, 1
  const auto b = Iota(8, 50);   // blocks 2, 3
  const auto ta = Fill(pool, seed, a);
  const auto tb = Fill(pool, seed, b);
  EXPECT_EQ(tb, (std::vector<BlockId>{2, 3}));
  EXPECT_EQ(pool.num_free(), 0);
  // Release b first, then a: LRU order is 3, 2, 1, 0 (each sequence frees from its tail).
  for (auto it = tb.rbegin(); it != tb.rend(); ++it) pool.Unref(*it);
  for (auto it = ta.rbegin(); it != ta.rend(); ++it) pool.Unref(*it);
  EXPECT_EQ(pool.num_available(), 4);
  EXPECT_EQ(pool.num_evictable(), 4);
  EXPECT_EQ(pool.num_cached(), 4);
  auto a_again = a;
  a_again.push_back(99);
  EXPECT_EQ(MatchPrefix(pool, seed, kBs, a_again).blocks, (std::vector<BlockId>{0, 1}));

  // Reviving a's blocks takes them off the LRU.
  pool.Acquire(0);
  pool.Acquire(1);
  EXPECT_EQ(pool.num_evictable(), 2);
  // Memory needed: b's blocks are evicted, oldest released first (3 then 2), and forgotten.
  EXPECT_EQ(pool.Allocate(), 3);
  EXPECT_EQ(pool.Allocate(), 2);
  EXPECT_EQ(pool.Allocate(), std::nullopt);
  EXPECT_EQ(pool.num_evictions(), 2);
  EXPECT_EQ(pool.num_cached(), 2);
  auto b_again = b;
  b_again.push_back(1);
  EXPECT_TRUE(MatchPrefix(pool, seed, kBs, b_again).blocks.empty());
}

TEST(PrefixIndex, HashCollisionIsAMissBecauseTokensAreVerified) {
  BlockPool pool(2);
  const BlockId id = *pool.Allocate();
  const std::vector<int32_t> t = {1, 2, 3, 4};
  pool.Register(id, 42, t);
  EXPECT_EQ(pool.Lookup(42, t), id);
  const std::vector<int32_t> u = {1, 2, 3, 5};
  EXPECT_EQ(pool.Lookup(42, u), std::nullopt);
}

KVSpec Shape() {
  KVSpec s;
  s.n_layers = 2;
  s.n_kv_heads = 1;
  s.head_dim = 4;
  s.max_tokens = 64;
  return MakeKVSpec(s, {}).value();
}

void WriteTokens(KVCache& c, int32_t n, float value) {
  ASSERT_TRUE(c.Reserve(n).ok());
  std::vector<float> rows(static_cast<size_t>(n) * 4, value);
  for (int32_t l = 0; l < 2; ++l) c.Write(l, c.size(), n, rows.data(), rows.data());
  c.Commit(c.size() + n);
}

float KeyAt(const PagedKVCache& c, int32_t slot) {
  std::vector<float> k(4), v(4);
  c.ReadRows(0, slot, 1, k.data(), v.data());
  return k[0];
}

TEST(PagedKVCache, ForkSharesBlocksAndCopiesOnWrite) {
  auto pool = PagedKVPool::Create(Shape(), kBs, 8).value();
  PagedKVCache parent(pool);
  WriteTokens(parent, 6, 1.0f);  // blocks 0 (full), 1 (2 of 4 slots)
  ASSERT_EQ(parent.table(), (std::vector<BlockId>{0, 1}));
  auto child = parent.Fork();
  ASSERT_TRUE(child.ok());
  PagedKVCache& c = *child.value();
  EXPECT_EQ(c.size(), 6);
  EXPECT_EQ(c.table(), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(pool->blocks().ref_count(1), 2);
  EXPECT_EQ(pool->blocks().num_used(), 2);

  WriteTokens(c, 1, 2.0f);  // lands in the shared partial block: copy it first
  EXPECT_EQ(c.table(), (std::vector<BlockId>{0, 2}));
  EXPECT_EQ(pool->blocks().ref_count(1), 1);
  EXPECT_EQ(pool->blocks().ref_count(0), 2);
  WriteTokens(parent, 1, 3.0f);  // the parent's block is private again: no copy
  EXPECT_EQ(parent.table(), (std::vector<BlockId>{0, 1}));
  EXPECT_EQ(KeyAt(c, 5), 1.0f);  // copied content
  EXPECT_EQ(KeyAt(c, 6), 2.0f);
  EXPECT_EQ(KeyAt(parent, 6), 3.0f);
  EXPECT_EQ(KeyAt(parent, 0), 1.0f);
}

TEST(PagedKVCache, AdoptPrefixRevivesCachedBlocksAndFailedCopyChangesNothing) {
  auto pool = PagedKVPool::Create(Shape(), kBs, 3).value();
  const uint64_t seed = BlockHashSeed(pool->spec(), kBs);
  const auto tokens = Iota(8);
  std::vector<BlockId> table;
  {
    PagedKVCache first(pool);
    WriteTokens(first, 8, 4.0f);
    std::vector<uint64_t> hashes;
    RegisterFullBlocks(pool->blocks(), seed, kBs, tokens, first.table(), &hashes);
    table = first.table();
  }
  EXPECT_EQ(pool->blocks().num_evictable(), 2);
  auto prompt = tokens;
  prompt.push_back(5);
  const auto m = MatchPrefix(pool->blocks(), seed, kBs, prompt);
  ASSERT_EQ(m.blocks, table);
  PagedKVCache second(pool);
  ASSERT_TRUE(second.AdoptPrefix(m.blocks).ok());
  EXPECT_EQ(second.size(), 8);
  EXPECT_EQ(pool->blocks().num_evictable(), 0);
  EXPECT_EQ(KeyAt(second, 7), 4.0f);
  // Truncating into a registered block and writing there forgets its hash (private, ref 1).
  second.Truncate(6);
  WriteTokens(second, 1, 9.0f);
  EXPECT_FALSE(pool->blocks().is_cached(second.table()[1]));
  EXPECT_TRUE(pool->blocks().is_cached(second.table()[0]));
  // A fork whose copy-on-write cannot get a block fails and leaves the table as it was.
  auto fork = second.Fork().value();
  ASSERT_TRUE(fork->Reserve(1).ok());  // copies block 1 into the last free block
  PagedKVCache third(pool);
  EXPECT_FALSE(third.Reserve(1).ok());
  EXPECT_TRUE(third.table().empty());
}

}  // namespace
}  // namespace kvc
