// The scheduler under memory pressure and with prefix reuse, through the engine on a tiny
// synthetic model: every request completes with the tokens it gets alone (greedy), preemption
// by recompute happens when the pool is too small, impossible requests are rejected at once,
// and a shared prompt prefix is served from cached blocks.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/generator.h"
#include "model/synth_fixture.h"

namespace kvc {
namespace {

std::vector<int32_t> Prompt(int32_t n, int32_t salt) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < n; ++i) p.push_back(1 + (i * 53 + salt * 29) % 450);
  return p;
}

std::vector<int32_t> Alone(const ModelFile& m, ThreadPool* pool, const std::vector<int32_t>& prompt,
                           int32_t n) {
  Generator gen(m, pool);
  GenerateOptions opt;
  opt.max_new_tokens = n;
  opt.sampling.temperature = 0;
  std::vector<int32_t> out;
  EXPECT_TRUE(gen.Generate(prompt, opt, [&](int32_t t) {
                   out.push_back(t);
                   return true;
                 }).ok());
  return out;
}

std::vector<int32_t> Drain(RequestStream& s, TokenEvent* last) {
  std::vector<int32_t> out;
  TokenEvent e;
  while (s.NextFor(std::chrono::milliseconds(0), &e)) {
    if (e.done) {
      *last = e;
      break;
    }
    out.push_back(e.token);
  }
  return out;
}

struct Fixture {
  std::unique_ptr<ModelFile> model;
  ThreadPool pool{2};
  std::unique_ptr<Engine> engine;

  explicit Fixture(const std::string& preset, int32_t num_blocks, int32_t parallel) {
    model = std::move(ModelFile::Open(testing::SynthModelPath(preset)).value());
    EngineOptions eo;
    eo.context_length = 64;
    eo.num_blocks = num_blocks;
    eo.kv.block_size = 4;
    eo.scheduler.max_running = parallel;
    eo.scheduler.step_tokens = 16;
    auto e = Engine::Create(*model, &pool, eo);
    EXPECT_TRUE(e.ok()) << e.status().message();
    engine = std::move(e.value());
  }
};

TEST(Scheduler, PoolTooSmallPreemptsAndStillCompletesEveryRequestExactly) {
  for (const char* preset : {"tiny", "tiny-gpt2"}) {
    Fixture f(preset, /*num_blocks=*/12, /*parallel=*/4);  // 48 slots; each request needs 32
    RequestOptions ro;
    ro.sampling.temperature = 0;
    ro.max_tokens = 20;
    std::vector<std::shared_ptr<RequestStream>> streams;
    for (int32_t i = 0; i < 6; ++i) {
      auto s = f.engine->Submit(Prompt(9 + i, i), ro);
      ASSERT_TRUE(s.ok()) << s.status().message();
      streams.push_back(s.value());
    }
    f.engine->RunUntilIdle();
    for (int32_t i = 0; i < 6; ++i) {
      TokenEvent last;
      EXPECT_EQ(Drain(*streams[i], &last), Alone(*f.model, &f.pool, Prompt(9 + i, i), 20))
          << preset << " request " << i;
      EXPECT_EQ(last.finish, FinishReason::kLength);
    }
    const EngineMetrics m = f.engine->Metrics();
    EXPECT_GT(m.preemptions, 0) << preset;
    EXPECT_EQ(m.requests_finished, 6);
    EXPECT_EQ(m.blocks_used, 0);
  }
}

TEST(Scheduler, ImpossibleRequestsAreRejectedAtOnce) {
  Fixture f("tiny", /*num_blocks=*/8, /*parallel=*/2);
  RequestOptions ro;
  ro.max_tokens = 20;
  auto too_big = f.engine->Submit(Prompt(20, 1), ro);  // 39 slots = 10 blocks > 8
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(too_big.status().message().find("can never fit"), std::string::npos);
  ro.max_tokens = 10;
  auto overflow = f.engine->Submit(Prompt(60, 1), ro);
  ASSERT_FALSE(overflow.ok());
  EXPECT_EQ(overflow.status().code(), StatusCode::kOutOfRange);
  EXPECT_FALSE(f.engine->Submit({}, ro).ok());
  EXPECT_FALSE(f.engine->Submit({1, 100000}, ro).ok());
  EXPECT_EQ(f.engine->Metrics().waiting, 0);
}

TEST(Scheduler, SharedPrefixIsServedFromCachedBlocks) {
  Fixture f("tiny", /*num_blocks=*/32, /*parallel=*/4);
  const std::vector<int32_t> system = Prompt(22, 7);  // 5 full blocks of 4 + 2
  auto with = [&](int32_t salt) {
    auto p = system;
    for (int32_t t : Prompt(5, salt)) p.push_back(t);
    return p;
  };
  RequestOptions ro;
  ro.sampling.temperature = 0;
  ro.max_tokens = 6;
  auto first = f.engine->Submit(with(1), ro).value();
  f.engine->RunUntilIdle();
  TokenEvent last;
  EXPECT_EQ(Drain(*first, &last), Alone(*f.model, &f.pool, with(1), 6));
  EXPECT_EQ(last.stats.cached_tokens, 0);
  // The first request is done: its blocks are unreferenced but stay cached.
  EngineMetrics m = f.engine->Metrics();
  EXPECT_EQ(m.blocks_used, 0);
  EXPECT_EQ(m.blocks_cached, 8);  // (27 prompt + 5 fed generated) / 4

  auto second = f.engine->Submit(with(2), ro).value();
  auto again = f.engine->Submit(with(1), ro).value();
  f.engine->RunUntilIdle();
  EXPECT_EQ(Drain(*second, &last), Alone(*f.model, &f.pool, with(2), 6));
  EXPECT_EQ(last.stats.cached_tokens, 20);  // the 5 full blocks of the shared system prompt
  EXPECT_EQ(Drain(*again, &last), Alone(*f.model, &f.pool, with(1), 6));
  EXPECT_EQ(last.stats.cached_tokens, 24);  // 27 tokens: 6 full blocks, the last token computed
  m = f.engine->Metrics();
  EXPECT_EQ(m.prompt_tokens, 3 * 27);
  EXPECT_EQ(m.prefix_hit_tokens, 44);
}

TEST(Scheduler, CancelledRequestsFreeTheirBlocks) {
  Fixture f("tiny", /*num_blocks=*/32, /*parallel=*/2);
  RequestOptions ro;
  ro.max_tokens = 30;
  auto a = f.engine->Submit(Prompt(10, 1), ro).value();
  auto b = f.engine->Submit(Prompt(10, 2), ro).value();
  f.engine->Step();
  a->Cancel();
  f.engine->RunUntilIdle();
  TokenEvent last;
  Drain(*a, &last);
  EXPECT_EQ(last.finish, FinishReason::kCancelled);
  EXPECT_EQ(Drain(*b, &last).size(), 30u);
  EXPECT_EQ(f.engine->Metrics().blocks_used, 0);
}

}  // namespace
}  // namespace kvc
