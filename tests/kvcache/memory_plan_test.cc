// MemoryPlan: the worked examples to the byte, the quantized group costs, and every adjustment
// (residual, window, KIVI groups, block rounding) checked against hand-computed totals.
#include "kvcache/memory_plan.h"

#include <gtest/gtest.h>

#include "kvcache/kv_cache_factory.h"

namespace kvc {
namespace {

constexpr KVShape kLlama2_7B{32, 32, 128};
constexpr KVShape kGpt3_175B{96, 96, 128};
constexpr KVShape kStories260K{5, 4, 8};

MemoryPlanOptions Opts(int64_t tokens, int64_t batch, KVType type) {
  MemoryPlanOptions o;
  o.tokens = tokens;
  o.batch = batch;
  o.k_type = o.v_type = type;
  return o;
}

MemoryPlan Plan(const KVShape& shape, const MemoryPlanOptions& o) {
  auto p = PlanKVMemory(shape, o);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? p.value() : MemoryPlan{};
}

uint64_t TermSum(const MemoryPlan& p) {
  uint64_t s = 0;
  for (const FormulaTerm& t : p.terms) s += t.bytes;
  return s;
}

TEST(MemoryPlan, Batch32Ctx2048Fp32Is64GiB) {
  const MemoryPlan p = Plan({32, 32, 128}, Opts(2048, 32, KVType::kF32));
  EXPECT_EQ(p.total_bytes, 68'719'476'736ull);
  EXPECT_EQ(p.total_bytes, 64ull << 30);
  EXPECT_EQ(p.elements, 2ull * 32 * 2048 * 32 * 32 * 128);
  ASSERT_EQ(p.terms.size(), 1u);  // the textbook formula, one term with its leading 2
  const FormulaTerm& t = p.terms[0];
  EXPECT_EQ(t.what, "K+V f32");
  EXPECT_EQ(t.sides, 2);
  EXPECT_EQ(t.batch, 32);
  EXPECT_EQ(t.tokens, 2048);
  EXPECT_EQ(t.layers, 32);
  EXPECT_EQ(t.kv_heads, 32);
  EXPECT_EQ(t.head_dim, 128);
  EXPECT_EQ(t.bpe.num, 4u);
  EXPECT_EQ(t.bpe.den, 1u);
  EXPECT_EQ(t.bytes, p.total_bytes);
  EXPECT_EQ(p.k.code_bytes, p.total_bytes / 2);
  EXPECT_EQ(p.k.param_bytes + p.k.residual_bytes + p.k.padding_bytes, 0u);
}

TEST(MemoryPlan, Llama2_7BFp16) {
  const MemoryPlan p1k = Plan(kLlama2_7B, Opts(1024, 1, KVType::kF16));
  EXPECT_EQ(p1k.k.bytes_per_token.num + p1k.v.bytes_per_token.num, 524'288u);  // 512 KiB
  EXPECT_EQ(p1k.k.bytes_per_token.den, 1u);
  EXPECT_EQ(p1k.total_bytes, 512ull << 20);
  EXPECT_EQ(Plan(kLlama2_7B, Opts(4096, 1, KVType::kF16)).total_bytes, 2ull << 30);
  EXPECT_EQ(Plan(kLlama2_7B, Opts(10'000, 1, KVType::kF16)).total_bytes, 5'242'880'000ull);
  // bf16 costs what f16 costs.
  EXPECT_EQ(Plan(kLlama2_7B, Opts(4096, 1, KVType::kBF16)).total_bytes, 2ull << 30);
}

TEST(MemoryPlan, Gpt3_175BBatch64) {
  const MemoryPlan p = Plan(kGpt3_175B, Opts(512 + 32, 64, KVType::kF16));
  EXPECT_EQ(p.total_bytes, 164'282'499'072ull);
  EXPECT_EQ(TermSum(p), p.total_bytes);
}

// Per group of G elements: q8 = G + 2, q4 = G/2 + 3, q2 = G/4 + 3 bytes; no residual.
TEST(MemoryPlan, QuantizedGroupCosts) {
  struct Case {
    KVType type;
    uint64_t (*bytes)(uint64_t g);
  };
  const Case cases[] = {{KVType::kQ8, [](uint64_t g) { return g + 2; }},
                        {KVType::kQ4, [](uint64_t g) { return g / 2 + 3; }},
                        {KVType::kQ2, [](uint64_t g) { return g / 4 + 3; }}};
  for (const Case& c : cases) {
    for (int64_t g : {8, 16, 32, 64, 128}) {
      MemoryPlanOptions o = Opts(1000, 3, c.type);
      o.group = g;
      o.residual = 0;
      const MemoryPlan p = Plan(kLlama2_7B, o);
      const uint64_t groups_per_side = 3ull * 1000 * 32 * 32 * (128 / g);
      EXPECT_EQ(p.k.code_bytes, groups_per_side * (g * KVTypeBits(c.type) / 8));
      EXPECT_EQ(p.k.param_bytes, groups_per_side * KVGroupParamBytes(c.type));
      EXPECT_EQ(p.total_bytes, 2 * groups_per_side * c.bytes(g)) << KVTypeName(c.type) << g;
      // Agrees with the cache's own byte formula.
      EXPECT_EQ(p.k.total_bytes, KVBytes(c.type, 3ll * 1000 * 32 * 32 * 128, g));
      EXPECT_EQ(p.k.bpe.num, c.bytes(g));
      EXPECT_EQ(p.k.bpe.den, static_cast<uint64_t>(g));
      EXPECT_EQ(p.k.bytes_per_token.den, 1u);
      EXPECT_EQ(p.k.bytes_per_token.num, 32ull * 32 * (128 / g) * c.bytes(g));
    }
  }
}

// stories260K: head_dim 8, so the default group of 32 is clipped to 8.
TEST(MemoryPlan, HeadDim8ClipsTheGroup) {
  MemoryPlanOptions o = Opts(512, 1, KVType::kQ4);
  o.residual = 0;
  MemoryPlan p = Plan(kStories260K, o);
  EXPECT_EQ(p.k.group, 8);
  EXPECT_EQ(p.k.bytes_per_token.num, 5u * 4 * (8 / 2 + 3));  // 140
  EXPECT_EQ(p.total_bytes, 2ull * 512 * 140);
  o.k_type = o.v_type = KVType::kQ8;
  EXPECT_EQ(Plan(kStories260K, o).k.bytes_per_token.num, 5u * 4 * (8 + 2));
  o.k_type = o.v_type = KVType::kQ2;
  EXPECT_EQ(Plan(kStories260K, o).k.bytes_per_token.num, 5u * 4 * (8 / 4 + 3));
  o.k_type = o.v_type = KVType::kF32;
  EXPECT_EQ(Plan(kStories260K, o).total_bytes, 2ull * 512 * 5 * 4 * 8 * 4);
}

TEST(MemoryPlan, ResidualDefaultsAndCap) {
  const KVGrouping token = KVGrouping::kPerToken, kivi = KVGrouping::kKivi;
  EXPECT_EQ(DefaultResidual(KVType::kQ4, KVType::kQ4, token), 128);
  EXPECT_EQ(DefaultResidual(KVType::kQ2, KVType::kQ2, token), 128);
  EXPECT_EQ(DefaultResidual(KVType::kQ8, KVType::kQ4, token), 128);  // one low-bit side
  EXPECT_EQ(DefaultResidual(KVType::kQ8, KVType::kQ8, token), 0);
  EXPECT_EQ(DefaultResidual(KVType::kQ8, KVType::kQ8, kivi), 128);  // KIVI keys gather groups
  EXPECT_EQ(DefaultResidual(KVType::kF16, KVType::kQ8, kivi), 0);
  EXPECT_EQ(DefaultResidual(KVType::kF16, KVType::kF16, token), 0);
  // q4 at 4096 tokens: 3968 quantized tokens + the most recent 128 in f32, per sequence.
  MemoryPlan p = Plan(kLlama2_7B, Opts(4096, 2, KVType::kQ4));
  EXPECT_EQ(p.k.stored_tokens, 3968);
  EXPECT_EQ(p.k.residual_tokens, 128);
  const uint64_t per_seq = 2ull * 3968 * 32 * 32 * 128 * 19 / 32 + 2ull * 128 * 32 * 32 * 128 * 4;
  EXPECT_EQ(per_seq, 751'828'992ull);
  EXPECT_EQ(p.total_bytes, 2 * per_seq);
  EXPECT_EQ(p.k.residual_bytes, 2ull * 128 * 32 * 32 * 128 * 4);
  ASSERT_EQ(p.terms.size(), 2u);
  EXPECT_EQ(p.terms[1].what, "K+V f32 residual");
  EXPECT_EQ(TermSum(p), p.total_bytes);
  // Capped by the context: 100 tokens all stay in f32.
  p = Plan(kLlama2_7B, Opts(100, 1, KVType::kQ2));
  EXPECT_EQ(p.k.stored_tokens, 0);
  EXPECT_EQ(p.k.residual_tokens, 100);
  EXPECT_EQ(p.total_bytes, 2ull * 100 * 32 * 32 * 128 * 4);
  // An explicit residual applies to quantized types only.
  MemoryPlanOptions o = Opts(1000, 1, KVType::kF16);
  o.residual = 64;
  EXPECT_EQ(Plan(kLlama2_7B, o).total_bytes, 2ull * 1000 * 32 * 32 * 128 * 2);
  o.k_type = KVType::kQ8;
  p = Plan(kLlama2_7B, o);
  EXPECT_EQ(p.k.residual_tokens, 64);
  EXPECT_EQ(p.v.residual_tokens, 0);
  // K and V share slot indices: K's 936 quantized tokens sit in V's 1000 slots (64 empty).
  EXPECT_EQ(p.k.stored_tokens, 936);
  EXPECT_EQ(p.slots, 1000);
  EXPECT_EQ(p.k.padding_tokens, 64);
  EXPECT_EQ(p.v.padding_tokens, 0);
  EXPECT_EQ(p.total_bytes, 1000ull * 32 * 32 * 128 * 34 / 32 + 64ull * 32 * 32 * 128 * 4 +
                               1000ull * 32 * 32 * 128 * 2);
  EXPECT_EQ(TermSum(p), p.total_bytes);
  EXPECT_EQ(p.terms.back().what, "K q8 slot rounding");
}

TEST(MemoryPlan, SlidingWindowStoresOnlyTheWindow) {
  const KVShape mistral{32, 8, 128};
  MemoryPlanOptions o = Opts(32768, 4, KVType::kF16);
  o.window = 4096;
  MemoryPlan p = Plan(mistral, o);
  EXPECT_EQ(p.stored_tokens, 4096);
  EXPECT_EQ(p.total_bytes, 2ull * 4 * 4096 * 32 * 8 * 128 * 2);
  o.tokens = 1000;  // shorter than the window: all of it
  EXPECT_EQ(Plan(mistral, o).stored_tokens, 1000);
  // The ring is allocated whole (capped by the context, not the window).
  o = Opts(10'000, 1, KVType::kQ4);
  o.window = 100;
  p = Plan(mistral, o);
  EXPECT_EQ(p.k.residual_tokens, 128);
  EXPECT_EQ(p.k.stored_tokens, 0);
  o.window = 1000;
  p = Plan(mistral, o);
  EXPECT_EQ(p.k.stored_tokens, 872);
  EXPECT_EQ(p.total_bytes, 2ull * 872 * 32 * 8 * 128 * 19 / 32 + 2ull * 128 * 32 * 8 * 128 * 4);
}

TEST(MemoryPlan, PagedRoundsTokensUpToWholeBlocks) {
  MemoryPlanOptions o = Opts(4100, 3, KVType::kF16);
  o.layout = KVLayout::kPaged;
  o.block_size = 16;
  MemoryPlan p = Plan(kLlama2_7B, o);
  EXPECT_EQ(p.k.padding_tokens, 12);  // 257 blocks = 4112 slots
  EXPECT_EQ(p.total_bytes, 2ull * 3 * 4112 * 32 * 32 * 128 * 2);
  EXPECT_EQ(p.k.padding_bytes, 3ull * 12 * 32 * 32 * 128 * 2);
  ASSERT_EQ(p.terms.size(), 2u);
  EXPECT_EQ(p.terms[1].what, "K+V f16 block rounding");
  EXPECT_EQ(TermSum(p), p.total_bytes);
  o.tokens = 4096;  // already whole blocks
  EXPECT_EQ(Plan(kLlama2_7B, o).k.padding_tokens, 0);
  // Residual tokens live outside the blocks: q4 at 1000 tokens = 872 in blocks -> 880 slots.
  o = Opts(1000, 1, KVType::kQ4);
  o.layout = KVLayout::kPaged;
  p = Plan(kLlama2_7B, o);
  EXPECT_EQ(p.k.stored_tokens, 872);
  EXPECT_EQ(p.k.padding_tokens, 8);
  EXPECT_EQ(p.total_bytes, 2ull * 880 * 32 * 32 * 128 * 19 / 32 + 2ull * 128 * 32 * 32 * 128 * 4);
  // Contiguous and growable never round.
  o.layout = KVLayout::kGrowable;
  EXPECT_EQ(Plan(kLlama2_7B, o).k.padding_tokens, 0);
}

TEST(MemoryPlan, KiviKeysQuantizeWholeTokenGroups) {
  MemoryPlanOptions o = Opts(4100, 1, KVType::kQ4);
  o.grouping = KVGrouping::kKivi;
  MemoryPlan p = Plan(kLlama2_7B, o);
  EXPECT_TRUE(p.k.groups_along_tokens);
  EXPECT_FALSE(p.v.groups_along_tokens);
  EXPECT_EQ(p.k.group, 32);  // along tokens: not clipped to head_dim
  // 4100 - 128 = 3972 tokens leave the ring; keys leave it a whole group at a time: 4000.
  EXPECT_EQ(p.k.stored_tokens, 4000);
  EXPECT_EQ(p.v.stored_tokens, 3972);
  EXPECT_EQ(p.k.residual_tokens, 128);
  EXPECT_EQ(p.v.residual_tokens, 128);
  EXPECT_EQ(p.slots, 4000);
  EXPECT_EQ(p.v.padding_tokens, 28);  // values share the keys' slots
  EXPECT_EQ(p.total_bytes, 2ull * 4000 * 32 * 32 * 128 * 19 / 32 + 2ull * 128 * 32 * 32 * 128 * 4);
  EXPECT_EQ(TermSum(p), p.total_bytes);
  EXPECT_EQ(p.terms.size(), 4u);  // K (KIVI) and V differ: separate storage terms
  // At a group boundary nothing is rounded.
  o.tokens = 4096;
  p = Plan(kLlama2_7B, o);
  EXPECT_EQ(p.k.stored_tokens, 3968);
  EXPECT_EQ(p.v.padding_tokens, 0);
  // head_dim 8: KIVI keys keep groups of 32 tokens while values clip to 8 elements.
  o = Opts(512, 1, KVType::kQ4);
  o.grouping = KVGrouping::kKivi;
  p = Plan(kStories260K, o);
  EXPECT_EQ(p.k.bytes_per_token.num, 5u * 4 * 8 * 19 / 32);  // 95
  EXPECT_EQ(p.v.bytes_per_token.num, 5u * 4 * 7);
  // The ring must hold whole key groups.
  o.residual = 0;
  EXPECT_EQ(PlanKVMemory(kStories260K, o).status().code(), StatusCode::kInvalidArgument);
  o.residual = 48;
  EXPECT_EQ(PlanKVMemory(kStories260K, o).status().code(), StatusCode::kInvalidArgument);
  o.residual = 64;
  EXPECT_TRUE(PlanKVMemory(kStories260K, o).ok());
  // Paged KIVI keys need blocks holding whole token groups: a smaller block rounds up to the
  // group (as the cache does), so 16-token blocks plan exactly like 32-token ones.
  o.layout = KVLayout::kPaged;
  o.block_size = 32;
  const MemoryPlan b32 = Plan(kStories260K, o);
  o.block_size = 16;
  const MemoryPlan b16 = Plan(kStories260K, o);
  EXPECT_EQ(b16.slots, b32.slots);
  EXPECT_EQ(b16.total_bytes, b32.total_bytes);
  o.block_size = 64;
  EXPECT_TRUE(PlanKVMemory(kStories260K, o).ok());
}

TEST(MemoryPlan, MixedTypesGetOneTermPerSide) {
  MemoryPlanOptions o = Opts(4096, 1, KVType::kQ8);
  o.v_type = KVType::kQ4;
  o.residual = 0;
  const MemoryPlan p = Plan(kLlama2_7B, o);
  ASSERT_EQ(p.terms.size(), 2u);
  EXPECT_EQ(p.terms[0].what, "K q8");
  EXPECT_EQ(p.terms[0].sides, 1);
  EXPECT_EQ(p.terms[1].what, "V q4");
  EXPECT_EQ(p.total_bytes, 4096ull * 32 * 32 * 128 * (34 + 19) / 32);
  EXPECT_EQ(p.k.bytes_per_token.num + p.v.bytes_per_token.num, 217'088u);
}

TEST(MemoryPlan, RejectsImpossibleRequests) {
  auto code = [](KVShape s, MemoryPlanOptions o) { return PlanKVMemory(s, o).status().code(); };
  const MemoryPlanOptions f16 = Opts(100, 1, KVType::kF16);
  EXPECT_EQ(code({0, 32, 128}, f16), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({32, 0, 128}, f16), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({32, 32, -1}, f16), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(kLlama2_7B, Opts(0, 1, KVType::kF16)), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(kLlama2_7B, Opts(10, 0, KVType::kF16)), StatusCode::kInvalidArgument);
  MemoryPlanOptions o = Opts(100, 1, KVType::kQ4);
  o.group = 64;  // 96 is not a multiple of 64
  EXPECT_EQ(code({32, 32, 96}, o), StatusCode::kInvalidArgument);
  o.group = 32;
  EXPECT_EQ(code({32, 32, 96}, o), StatusCode::kOk);
  o.group = 512;  // beyond the cache's limit of 256
  EXPECT_EQ(code({32, 32, 1024}, o), StatusCode::kInvalidArgument);
  o.group = 1;  // half a byte per group
  EXPECT_EQ(code(kLlama2_7B, o), StatusCode::kInvalidArgument);
  o.k_type = o.v_type = KVType::kQ8;  // 1 byte + 2 B scale per element: allowed
  EXPECT_EQ(code(kLlama2_7B, o), StatusCode::kOk);
  o = f16;
  o.window = -1;
  EXPECT_EQ(code(kLlama2_7B, o), StatusCode::kInvalidArgument);
  // Past 64 bits: refused, not wrapped.
  const int64_t big = int64_t{1} << 40;
  EXPECT_EQ(code({big, big, 128}, Opts(big, 1, KVType::kF32)), StatusCode::kOutOfRange);
  EXPECT_EQ(code({1 << 20, 1 << 20, 1 << 10}, Opts(1 << 20, 1 << 20, KVType::kF32)),
            StatusCode::kOutOfRange);
}

// The plan is what the cache really allocates: BytesAllocated() of a single-sequence cache filled
// to its capacity, over every type, grouping, layout and a few residuals and shapes (no window:
// the contiguous layout preallocates the whole context whatever the window).
TEST(MemoryPlan, MatchesTheCacheAllocation) {
  const KVType types[] = {KVType::kF32, KVType::kF16, KVType::kBF16,
                          KVType::kQ8,  KVType::kQ4,  KVType::kQ2};
  int checked = 0;
  for (const KVShape& shape : {KVShape{5, 4, 8}, KVShape{2, 2, 64}}) {
    for (int64_t tokens : {1, 100, 300, 512}) {
      for (KVType tk : types) {
        for (KVType tv : {tk, KVType::kF16, KVType::kQ4}) {
          for (KVGrouping grouping : {KVGrouping::kPerToken, KVGrouping::kKivi}) {
            for (KVLayout layout : {KVLayout::kContiguous, KVLayout::kPaged}) {
              for (int64_t residual : {-1, 64}) {
                MemoryPlanOptions o = Opts(tokens, 1, tk);
                o.v_type = tv;
                o.grouping = grouping;
                o.layout = layout;
                o.residual = residual;
                o.block_size = 32;
                auto plan = PlanKVMemory(shape, o);
                ASSERT_TRUE(plan.ok()) << plan.status().message();
                KVSpec spec;
                spec.n_layers = static_cast<int32_t>(shape.n_layers);
                spec.n_kv_heads = static_cast<int32_t>(shape.n_kv_heads);
                spec.head_dim = static_cast<int32_t>(shape.head_dim);
                spec.max_tokens = static_cast<int32_t>(tokens);
                KVCacheOptions co;
                co.layout = layout;
                co.block_size = 32;
                co.type_k = tk;
                co.type_v = tv;
                co.grouping = grouping;
                co.residual = static_cast<int32_t>(residual);
                auto cache = MakeKVCache(spec, co);
                ASSERT_TRUE(cache.ok()) << cache.status().message();
                ASSERT_TRUE((*cache)->Reserve(static_cast<int32_t>(tokens)).ok());
                EXPECT_EQ((*cache)->BytesAllocated(), plan->total_bytes)
                    << KVTypeName(tk) << "/" << KVTypeName(tv) << " "
                    << (grouping == KVGrouping::kKivi ? "kivi" : "token") << " "
                    << KVLayoutName(layout) << " residual " << residual << " tokens " << tokens
                    << " head_dim " << shape.head_dim;
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 500);
}

}  // namespace
}  // namespace kvc
