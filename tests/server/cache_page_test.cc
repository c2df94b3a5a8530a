// GET /v1/cache (the KV pool snapshot) and the live page at GET /. Most tests drive the engine one
// step at a time from the test thread (Engine::Step) while the server answers on its own threads,
// so every snapshot is at a known point: blocks in use while a request runs, shared between two
// requests with the same prefix, cached once they finish. One test runs the engine on its thread
// and polls the snapshot during concurrent completions.
#include <httplib.h>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/generator.h"
#include "model/synth_fixture.h"
#include "server/http_server.h"

namespace kvc {
namespace {

using json = nlohmann::json;

class CachePageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = LoadedModel::Load(testing::SynthModelPath("tiny"));
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = new LoadedModel(std::move(m.value()));
    pool_ = new ThreadPool(2);
  }
  static void TearDownTestSuite() {
    delete pool_;
    delete model_;
  }
  void TearDown() override {
    server_.reset();  // before the engine it serves
    engine_.reset();
  }

  // An engine (not started unless `start`) and a server on a free loopback port.
  void Serve(int32_t blocks, int32_t step_tokens, int32_t parallel, bool prefix_cache, bool start) {
    EngineOptions eo;
    eo.context_length = 128;
    eo.num_blocks = blocks;
    eo.kv.block_size = 8;
    eo.scheduler.max_running = parallel;
    eo.scheduler.step_tokens = step_tokens;
    eo.scheduler.prefix_caching = prefix_cache;
    auto e = Engine::Create(*model_->file, pool_, eo);
    ASSERT_TRUE(e.ok()) << e.status().message();
    engine_ = std::move(e.value());
    if (start) engine_->Start();
    ServerOptions so;
    so.port = 0;
    so.model_id = "tiny-test";
    server_ = std::make_unique<HttpServer>(*engine_, *model_->tokenizer, so);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.message();
  }

  httplib::Result Get(const std::string& path) {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60, 0);
    return c.Get(path.c_str());
  }

  // GET /v1/cache, checked for the invariants every snapshot must hold.
  json Cache() {
    auto r = Get("/v1/cache");
    EXPECT_TRUE(r && r->status == 200);
    if (!r || r->status != 200) return {};
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r->body;
    if (!j.is_object()) return {};
    CheckConsistent(j);
    return j;
  }

  static void CheckConsistent(const json& j) {
    const int n = j["num_blocks"];
    const std::string map = j["blocks"];
    ASSERT_EQ(static_cast<int>(map.size()), n);
    ASSERT_EQ(static_cast<int>(j["refs"].size()), n);
    const json& c = j["counts"];
    EXPECT_EQ(c["free"].get<int>() + c["used"].get<int>() + c["shared"].get<int>() + c["cached"].get<int>(), n);
    int used = 0, shared = 0, cached = 0, free = 0, registered = 0;
    for (int i = 0; i < n; ++i) {
      const int refs = j["refs"][i];
      switch (map[i]) {
        case '.': ++free; EXPECT_EQ(refs, 0); break;
        case 'c': ++cached; EXPECT_EQ(refs, 0); break;
        case 'u': ++used; EXPECT_EQ(refs, 1); break;
        case 'U': ++used; ++registered; EXPECT_EQ(refs, 1); break;
        case 's': ++shared; EXPECT_GT(refs, 1); break;
        case 'S': ++shared; ++registered; EXPECT_GT(refs, 1); break;
        default: ADD_FAILURE() << "block " << i << " has state '" << map[i] << "'";
      }
    }
    EXPECT_EQ(c["free"], free);
    EXPECT_EQ(c["used"], used);
    EXPECT_EQ(c["shared"], shared);
    EXPECT_EQ(c["cached"], cached);
    EXPECT_EQ(c["registered"], registered);
    // Every reference to a block is a sequence's block table entry.
    std::vector<int> held(n, 0);
    for (const json& s : j["sequences"]) {
      for (int b : s["blocks"]) {
        ASSERT_TRUE(b >= 0 && b < n);
        ++held[b];
      }
      EXPECT_EQ(s["bytes"].get<size_t>(), s["blocks"].size() * j["bytes_per_block"].get<size_t>());
    }
    for (int i = 0; i < n; ++i) EXPECT_EQ(held[i], j["refs"][i].get<int>()) << "block " << i;
  }

  static std::vector<int32_t> Prompt(int32_t n, int32_t salt = 0) {
    std::vector<int32_t> p(n);
    for (int32_t i = 0; i < n; ++i) p[i] = 3 + (i * 7 + salt) % 200;
    return p;
  }
  std::shared_ptr<RequestStream> Submit(const std::vector<int32_t>& prompt, int32_t max_tokens) {
    RequestOptions ro;
    ro.max_tokens = max_tokens;
    ro.sampling.temperature = 0;
    auto s = engine_->Submit(prompt, ro);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? s.value() : nullptr;
  }

  static LoadedModel* model_;
  static ThreadPool* pool_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> server_;
};

LoadedModel* CachePageTest::model_ = nullptr;
ThreadPool* CachePageTest::pool_ = nullptr;

TEST_F(CachePageTest, PageIsHtml) {
  Serve(32, 64, 4, true, false);
  auto r = Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("<!doctype html>"), std::string::npos);
  EXPECT_NE(r->body.find("id=\"block-map\""), std::string::npos);
  EXPECT_NE(r->body.find("v1/cache"), std::string::npos);
  // Self-contained: nothing fetched from elsewhere.
  EXPECT_EQ(r->body.find("http://"), std::string::npos);
  EXPECT_EQ(r->body.find("https://"), std::string::npos);
}

TEST_F(CachePageTest, IdlePoolIsAllFree) {
  Serve(32, 64, 4, true, false);
  json j = Cache();
  EXPECT_EQ(j["object"], "kv_cache");
  EXPECT_EQ(j["model"], "tiny-test");
  EXPECT_EQ(j["num_blocks"], 32);
  EXPECT_EQ(j["block_size"], 8);
  EXPECT_EQ(j["kv_type"], "f32");
  EXPECT_EQ(j["prefix_caching"], true);
  EXPECT_GT(j["bytes_per_block"].get<size_t>(), 0u);
  EXPECT_EQ(j["bytes_total"].get<size_t>(), 32 * j["bytes_per_block"].get<size_t>());
  EXPECT_EQ(j["counts"]["free"], 32);
  EXPECT_EQ(j["blocks"], std::string(32, '.'));
  EXPECT_TRUE(j["sequences"].empty());
  EXPECT_EQ(j["metrics"]["steps"], 0);
}

TEST_F(CachePageTest, RunningRequestHoldsBlocksThenTheyAreCached) {
  Serve(32, 8, 4, true, false);
  auto stream = Submit(Prompt(20), 10);
  json j = Cache();
  EXPECT_EQ(j["metrics"]["waiting"], 1);  // submitted, not yet seen by the engine

  ASSERT_TRUE(engine_->Step());  // 8 of 20 prompt tokens: one full block, registered
  j = Cache();
  ASSERT_EQ(j["sequences"].size(), 1u);
  EXPECT_EQ(j["sequences"][0]["state"], "prefill");
  EXPECT_EQ(j["sequences"][0]["computed_tokens"], 8);
  EXPECT_EQ(j["sequences"][0]["blocks"].size(), 1u);
  EXPECT_EQ(j["counts"]["used"], 1);
  EXPECT_EQ(j["counts"]["registered"], 1);

  ASSERT_TRUE(engine_->Step());
  ASSERT_TRUE(engine_->Step());  // the prompt is in: 20 tokens, 3 blocks, the first token sampled
  j = Cache();
  const json& s = j["sequences"][0];
  EXPECT_EQ(s["state"], "decode");
  EXPECT_EQ(s["prompt_tokens"], 20);
  EXPECT_EQ(s["generated_tokens"], 1);
  EXPECT_EQ(s["max_tokens"], 10);
  EXPECT_EQ(s["computed_tokens"], 20);
  EXPECT_EQ(s["blocks"], json({0, 1, 2}));  // the pool hands out the lowest ids first
  EXPECT_EQ(j["blocks"].get<std::string>().substr(0, 4), "UUu.");
  EXPECT_EQ(j["counts"]["used"], 3);
  EXPECT_EQ(j["counts"]["free"], 29);
  EXPECT_EQ(j["metrics"]["running"], 1);

  engine_->RunUntilIdle();
  while (!stream->Next().done) {
  }
  j = Cache();
  EXPECT_TRUE(j["sequences"].empty());
  EXPECT_EQ(j["counts"]["used"].get<int>() + j["counts"]["shared"].get<int>(), 0);
  // Whatever ended up in full blocks stays reusable: at least the prompt's two full blocks.
  EXPECT_GE(j["counts"]["cached"].get<int>(), 2);
  EXPECT_EQ(j["counts"]["registered"], 0);
  EXPECT_EQ(j["metrics"]["requests_finished"], 1);
}

TEST_F(CachePageTest, SamePrefixSharesBlocksAndCountsHits) {
  Serve(32, 64, 4, true, false);
  auto a = Submit(Prompt(20), 8);
  ASSERT_TRUE(engine_->Step());  // a's prompt: blocks 0, 1 full and registered, 2 partial
  auto b = Submit(Prompt(20), 8);
  ASSERT_TRUE(engine_->Step());  // b adopts blocks 0 and 1 from the prefix cache
  json j = Cache();
  ASSERT_EQ(j["sequences"].size(), 2u);
  EXPECT_EQ(j["counts"]["shared"], 2);
  EXPECT_EQ(j["blocks"].get<std::string>().substr(0, 2), "SS");
  EXPECT_EQ(j["refs"][0], 2);
  EXPECT_EQ(j["sequences"][1]["cached_tokens"], 16);
  EXPECT_EQ(j["sequences"][0]["blocks"][0], j["sequences"][1]["blocks"][0]);
  EXPECT_EQ(j["metrics"]["prefix_hit_tokens"], 16);
  EXPECT_DOUBLE_EQ(j["metrics"]["prefix_hit_rate"].get<double>(), 16.0 / 40.0);
  engine_->RunUntilIdle();
}

TEST_F(CachePageTest, WaitingSequencesHoldNoBlocks) {
  Serve(32, 64, 1, true, false);
  auto a = Submit(Prompt(12, 1), 4);
  auto b = Submit(Prompt(12, 2), 4);
  ASSERT_TRUE(engine_->Step());
  json j = Cache();
  ASSERT_EQ(j["sequences"].size(), 2u);
  EXPECT_EQ(j["sequences"][0]["state"], "decode");
  EXPECT_EQ(j["sequences"][1]["state"], "waiting");
  EXPECT_TRUE(j["sequences"][1]["blocks"].empty());
  EXPECT_EQ(j["sequences"][1]["bytes"], 0);
  EXPECT_EQ(j["metrics"]["waiting"], 1);
  engine_->RunUntilIdle();
}

TEST_F(CachePageTest, NoPrefixCacheLeavesNothingCached) {
  Serve(32, 64, 4, false, false);
  auto a = Submit(Prompt(20), 6);
  engine_->RunUntilIdle();
  json j = Cache();
  EXPECT_EQ(j["prefix_caching"], false);
  EXPECT_EQ(j["counts"]["free"], 32);
  EXPECT_EQ(j["counts"]["cached"], 0);
}

// The engine on its own thread, clients over HTTP, and a poller reading snapshots meanwhile:
// each snapshot is consistent, some show blocks in use, and the end state is all cached or free.
TEST_F(CachePageTest, LiveSnapshotsWhileCompletionsRun) {
  Serve(48, 64, 4, true, true);
  std::atomic<bool> done{false};
  std::atomic<int> polls{0}, busy{0};
  std::thread poller([&] {
    while (!done.load()) {
      json j = Cache();
      if (j.is_object() && j["counts"]["used"].get<int>() + j["counts"]["shared"].get<int>() > 0) ++busy;
      ++polls;
    }
  });
  std::vector<std::future<int>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::async(std::launch::async, [&, i] {
      httplib::Client c("127.0.0.1", server_->port());
      c.set_read_timeout(120, 0);
      std::vector<int32_t> prompt = Prompt(30);
      prompt.push_back(3 + i);  // a shared 30-token prefix, then a different last token
      const json body = {{"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}};
      auto r = c.Post("/v1/completions", body.dump(), "application/json");
      return r ? r->status : -1;
    }));
  }
  for (auto& f : clients) EXPECT_EQ(f.get(), 200);
  // Keep polling until the snapshot has caught up with the last step.
  json j;
  for (int i = 0; i < 1000; ++i) {
    j = Cache();
    if (j["metrics"]["requests_finished"] == 6 && j["sequences"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  done = true;
  poller.join();
  EXPECT_GT(polls.load(), 0);
  EXPECT_EQ(j["metrics"]["requests_finished"], 6);
  EXPECT_TRUE(j["sequences"].empty());
  EXPECT_EQ(j["counts"]["used"].get<int>() + j["counts"]["shared"].get<int>(), 0);
  EXPECT_GT(j["counts"]["cached"].get<int>(), 0);
  EXPECT_GT(j["metrics"]["prefix_hit_tokens"].get<int>(), 0);
  std::printf("%d snapshots, %d with blocks in use\n", polls.load(), busy.load());
}

}  // namespace
}  // namespace kvc
