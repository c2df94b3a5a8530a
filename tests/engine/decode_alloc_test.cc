// A decode step (the forward over one token, with its attention over the cache, and the draw of
// the next token) must not touch the heap once its scratch has grown and the cache holds room
// for the tokens: it runs once per token and per sequence. Counts operator new calls
// (core/heap_counter.h) around the decode steps only.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/heap_counter.h"
#include "engine/generator.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/kv_format.h"
#include "model/model_file.h"
#include "model/synth_fixture.h"
#include "model/transformer.h"
#include "sampling/sampler.h"
#include "threading/thread_pool.h"

namespace kvc {
namespace {

struct Case {
  const char* preset;
  DType weights;
  KVCacheOptions kv;
  const char* name;
};

// Decodes `steps` tokens after a prompt; returns the heap allocations of the last `counted`
// steps (each a forward and a draw), after the earlier ones grew every scratch.
long AllocationsPerDecode(const Case& c, int32_t steps, int32_t counted, SamplingParams sp) {
  auto model = ModelFile::Open(testing::SynthModelPath(c.preset, c.weights, 1024));
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return -1;
  ThreadPool pool(2);
  Transformer tf(**model, &pool);
  const int32_t prompt = 37, total = prompt + steps;
  auto cache = MakeKVCache(tf.KVShape(total), c.kv);
  EXPECT_TRUE(cache.ok()) << cache.status().message();
  if (!cache.ok()) return -1;
  KVCache& kv = **cache;
  EXPECT_TRUE(kv.Reserve(total).ok());
  const int32_t vocab = tf.config().vocab_size;
  std::vector<float> logits(vocab);
  std::vector<int32_t> tokens(prompt);
  for (int32_t i = 0; i < prompt; ++i) tokens[i] = (i * 7 + 3) % vocab;
  SeqChunk first{tokens, 0, &kv, logits.data(), false};
  EXPECT_TRUE(tf.Forward({&first, 1}).ok());
  Sampler sampler(sp);
  std::vector<int32_t> token = {sampler.Sample(logits.data(), vocab)};
  long before = 0;
  for (int32_t s = 0; s < steps; ++s) {
    if (s == steps - counted) before = testing::HeapAllocations();
    SeqChunk one{token, kv.size(), &kv, logits.data(), false};
    const Status st = tf.Forward({&one, 1});
    EXPECT_TRUE(st.ok()) << st.message();
    if (!st.ok()) return -1;
    token[0] = sampler.Sample(logits.data(), vocab);
  }
  return testing::HeapAllocations() - before;
}

TEST(DecodeAlloc, NoHeapAllocationPerToken) {
  const SamplingParams greedy{.temperature = 0};
  const SamplingParams top_k{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 1};
  const SamplingParams nucleus{.temperature = 1.0f, .top_k = 0, .top_p = 0.9f, .seed = 2};
  const SamplingParams plain{.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 3};
  const Case cases[] = {
      {"tiny",
       DType::kF32,
       {.type_k = KVType::kF32, .type_v = KVType::kF32},
       "f32 weights, f32 paged KV"},
      {"tiny",
       DType::kQ8_0,
       {.type_k = KVType::kF16, .type_v = KVType::kF16},
       "Q8_0 weights, f16 paged KV"},
      {"tiny",
       DType::kQ8_0,
       {.type_k = KVType::kQ8, .type_v = KVType::kQ8},
       "Q8_0 weights, q8 paged KV"},
      {"tiny",
       DType::kQ4_0,
       {.type_k = KVType::kQ4, .type_v = KVType::kQ4},
       "Q4_0 weights, q4 KV + ring"},
      {"tiny",
       DType::kQ8_0,
       {.layout = KVLayout::kContiguous, .type_k = KVType::kQ8, .type_v = KVType::kQ4},
       "Q8_0 weights, q8/q4 contiguous KV"},
      {"tiny-gpt2", DType::kF32, {.type_k = KVType::kF16, .type_v = KVType::kF16}, "gpt2, f16 KV"},
  };
  for (const Case& c : cases) {
    for (const SamplingParams& sp : {greedy, top_k, nucleus, plain}) {
      // 300 steps: past the 256 slots at which a decode query splits its range over threads.
      EXPECT_EQ(AllocationsPerDecode(c, 300, 40, sp), 0)
          << c.name << ", temperature " << sp.temperature << ", top_k " << sp.top_k << ", top_p "
          << sp.top_p;
    }
  }
}

// The same through the Generator, as `kvcache generate` runs it: the cache grows block by block
// (no reservation up front) and each token goes to the caller's callback. Allocations between
// the callbacks of the last `counted` tokens, for the paged and contiguous layouts and each type
// (the growable layout reallocates as it doubles: that is what it is for).
TEST(DecodeAlloc, GeneratorAllocatesNothingPerToken) {
  auto model = ModelFile::Open(testing::SynthModelPath("tiny", DType::kQ8_0, 1024));
  ASSERT_TRUE(model.ok()) << model.status().message();
  ThreadPool pool(2);
  Generator gen(**model, &pool);
  std::vector<int32_t> prompt(29);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i * 5 + 1);
  for (KVLayout layout : {KVLayout::kPaged, KVLayout::kContiguous}) {
    for (KVType type : {KVType::kF32, KVType::kF16, KVType::kQ8, KVType::kQ4}) {
      GenerateOptions opt;
      opt.max_new_tokens = 300;
      opt.sampling = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 7};
      opt.cache.kv = {.layout = layout, .type_k = type, .type_v = type};
      const int32_t counted = 270;
      int32_t seen = 0;
      long before = 0, after = 0;
      auto r = gen.Generate(prompt, opt, [&](int32_t) {
        ++seen;
        if (seen == opt.max_new_tokens - counted) before = testing::HeapAllocations();
        if (seen == opt.max_new_tokens) after = testing::HeapAllocations();
        return true;
      });
      ASSERT_TRUE(r.ok()) << r.status().message();
      ASSERT_EQ(seen, opt.max_new_tokens);
      EXPECT_EQ(after - before, 0) << KVLayoutName(layout) << " " << KVTypeName(type);
    }
  }
}

}  // namespace
}  // namespace kvc
