// Batched decoding over one shared paged pool: one Forward over several sequences of different
// lengths (each with its own block table) gives the logits each gets alone, and the engine's
// continuous batching produces exactly the tokens of running each request alone (greedy).
#include <cmath>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/generator.h"
#include "kvcache/paged_kv_cache.h"
#include "model/synth_fixture.h"
#include "sampling/sampler.h"

namespace kvc {
namespace {

std::vector<int32_t> Prompt(int32_t n, int32_t salt) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < n; ++i) p.push_back(1 + (i * 37 + salt * 101) % 400);
  return p;
}

// Greedy tokens of `prompt` generated alone by the single-sequence Generator.
std::vector<int32_t> Alone(const ModelFile& m, ThreadPool* pool, const std::vector<int32_t>& prompt,
                           int32_t n) {
  Generator gen(m, pool);
  GenerateOptions opt;
  opt.max_new_tokens = n;
  opt.sampling.temperature = 0;
  std::vector<int32_t> out;
  auto st = gen.Generate(prompt, opt, [&](int32_t t) {
    out.push_back(t);
    return true;
  });
  EXPECT_TRUE(st.ok()) << st.status().message();
  return out;
}

// Collects a finished stream's tokens.
std::vector<int32_t> Drain(RequestStream& s, TokenEvent* last = nullptr) {
  std::vector<int32_t> out;
  for (;;) {
    TokenEvent e;
    if (!s.NextFor(std::chrono::milliseconds(0), &e)) break;
    if (e.done) {
      if (last) *last = e;
      break;
    }
    out.push_back(e.token);
  }
  return out;
}

class BatchedDecode : public ::testing::TestWithParam<std::string> {};

TEST_P(BatchedDecode, OneForwardOverManySequencesEqualsEachAlone) {
  auto m = ModelFile::Open(testing::SynthModelPath(GetParam()));
  ASSERT_TRUE(m.ok()) << m.status().message();
  ThreadPool pool(2);
  Transformer tf(*m.value(), &pool);
  const int32_t vocab = tf.config().vocab_size;
  auto spec = MakeKVSpec(tf.KVShape(64), {});
  ASSERT_TRUE(spec.ok());
  auto kv_pool = PagedKVPool::Create(spec.value(), 4, 64).value();
  const std::vector<int32_t> lens = {3, 9, 1, 14};
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::unique_ptr<PagedKVCache>> shared, alone;
  for (size_t i = 0; i < lens.size(); ++i) {
    seqs.push_back(Prompt(lens[i], static_cast<int32_t>(i)));
    shared.push_back(std::make_unique<PagedKVCache>(kv_pool));
    alone.push_back(std::make_unique<PagedKVCache>(PagedKVPool::Create(spec.value(), 4, 16).value()));
  }
  std::vector<float> batch_logits(lens.size() * vocab), one(vocab);
  for (int step = 0; step < 6; ++step) {
    // Step 0 prefills prompts of different lengths in one batch; later steps decode one each.
    std::vector<SeqChunk> batch;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int32_t from = shared[i]->size();
      batch.push_back({std::span<const int32_t>(seqs[i]).subspan(from), from, shared[i].get(),
                       batch_logits.data() + i * vocab, false});
    }
    ASSERT_TRUE(tf.Forward(batch).ok());
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int32_t from = alone[i]->size();
      SeqChunk c{std::span<const int32_t>(seqs[i]).subspan(from), from, alone[i].get(), one.data(), false};
      ASSERT_TRUE(tf.Forward({&c, 1}).ok());
      double diff = 0;
      for (int32_t v = 0; v < vocab; ++v) diff = std::max(diff, double(std::fabs(one[v] - batch_logits[i * vocab + v])));
      EXPECT_LT(diff, 1e-4) << "sequence " << i << " step " << step;
      const int32_t next = Argmax(one.data(), vocab);
      EXPECT_EQ(Argmax(batch_logits.data() + i * vocab, vocab), next);
      seqs[i].push_back(next);
    }
  }
  // The shared pool holds each sequence's blocks, no more.
  int32_t blocks = 0;
  for (auto& c : shared) blocks += static_cast<int32_t>(c->table().size());
  EXPECT_EQ(kv_pool->blocks().num_used(), blocks);
}

TEST_P(BatchedDecode, EngineEqualsGeneratorAlone) {
  auto m = ModelFile::Open(testing::SynthModelPath(GetParam()));
  ASSERT_TRUE(m.ok());
  ThreadPool pool(2);
  EngineOptions eo;
  eo.context_length = 64;
  eo.kv.block_size = 4;
  eo.scheduler.max_running = 4;
  eo.scheduler.step_tokens = 8;  // forces chunked prefill of the longer prompts
  auto engine = Engine::Create(*m.value(), &pool, eo);
  ASSERT_TRUE(engine.ok()) << engine.status().message();
  const std::vector<int32_t> lens = {5, 17, 2, 11, 23, 7};
  const std::vector<int32_t> news = {9, 4, 12, 7, 5, 10};
  RequestOptions ro;
  ro.sampling.temperature = 0;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (size_t i = 0; i < lens.size(); ++i) {
    ro.max_tokens = news[i];
    auto s = engine.value()->Submit(Prompt(lens[i], static_cast<int32_t>(i)), ro);
    ASSERT_TRUE(s.ok()) << s.status().message();
    streams.push_back(s.value());
  }
  engine.value()->RunUntilIdle();
  for (size_t i = 0; i < lens.size(); ++i) {
    TokenEvent last;
    EXPECT_EQ(Drain(*streams[i], &last), Alone(*m.value(), &pool, Prompt(lens[i], static_cast<int32_t>(i)), news[i]))
        << "request " << i;
    EXPECT_TRUE(last.done);
    EXPECT_EQ(last.finish, FinishReason::kLength);
    EXPECT_EQ(last.stats.generated_tokens, news[i]);
  }
  const EngineMetrics mt = engine.value()->Metrics();
  EXPECT_EQ(mt.requests_finished, 6);
  EXPECT_EQ(mt.running, 0);
  EXPECT_EQ(mt.blocks_used, 0);
}

INSTANTIATE_TEST_SUITE_P(Archs, BatchedDecode, ::testing::Values("tiny", "tiny-gpt2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace kvc
