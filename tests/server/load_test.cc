// The server under a small memory budget: 24 concurrent requests against a KV pool that holds
// about 3 of them at once. Admission only plans for the tokens a request already has, so up to
// --parallel sequences start and their decode growth runs the pool dry: the scheduler must
// preempt (and later recompute) sequences. Every request still completes with exactly the
// answer it gets alone (greedy), /metrics counts the preemptions, and the server stays healthy
// with every block back afterwards.
#include <httplib.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/generator.h"
#include "model/synth_fixture.h"
#include "server/http_server.h"

namespace kvc {
namespace {

using json = nlohmann::json;

constexpr int kRequests = 24;
constexpr int kPromptTokens = 12;  // 2 blocks of 8
constexpr int kMaxTokens = 48;     // prompt + answer: 59 cached tokens = 8 blocks
constexpr int kBlocks = 24;        // 3 whole requests

struct Answer {
  int status = 0;
  std::string text;
  std::string finish;
  int completion_tokens = -1;  // non-streamed only
};

double MetricValue(const std::string& text, const std::string& name) {
  const size_t p = text.find("\n" + name + " ");
  if (p == std::string::npos) return -1;
  return std::stod(text.substr(p + name.size() + 2));
}

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = LoadedModel::Load(testing::SynthModelPath("tiny"));
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::make_unique<LoadedModel>(std::move(m.value()));
    pool_ = std::make_unique<ThreadPool>(2);
    EngineOptions eo;
    eo.context_length = 128;
    eo.num_blocks = kBlocks;
    eo.kv.block_size = 8;
    eo.scheduler.max_running = 8;
    eo.scheduler.step_tokens = 64;
    auto e = Engine::Create(*model_->file, pool_.get(), eo);
    ASSERT_TRUE(e.ok()) << e.status().message();
    engine_ = std::move(e.value());
    ServerOptions so;
    so.port = 0;
    so.model_id = "load-test";
    so.http_threads = kRequests + 8;
    server_ = std::make_unique<HttpServer>(*engine_, *model_->tokenizer, so);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.message();
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (engine_) engine_->Stop();
  }

  httplib::Client Client() const {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(300, 0);
    return c;
  }

  static std::vector<int32_t> Prompt(int i) {
    std::vector<int32_t> p = {1};
    for (int k = 1; k < kPromptTokens; ++k) p.push_back(3 + (37 * i + 13 * k + k * k) % 500);
    return p;
  }

  Answer Complete(int i, bool stream) const {
    const json body = {{"model", "load-test"}, {"prompt", Prompt(i)}, {"max_tokens", kMaxTokens},
                       {"temperature", 0}, {"stream", stream}};
    auto r = Client().Post("/v1/completions", body.dump(), "application/json");
    Answer a;
    if (!r) return a;
    a.status = r->status;
    if (r->status != 200) {
      a.text = r->body;
      return a;
    }
    if (!stream) {
      const json j = json::parse(r->body);
      a.text = j["choices"][0]["text"];
      a.finish = j["choices"][0]["finish_reason"];
      a.completion_tokens = j["usage"]["completion_tokens"];
      return a;
    }
    size_t pos = 0;
    bool done = false;
    while ((pos = r->body.find("data: ", pos)) != std::string::npos) {
      const size_t end = r->body.find("\n\n", pos);
      const std::string payload = r->body.substr(pos + 6, end - pos - 6);
      pos = end;
      if (payload == "[DONE]") {
        done = true;
        break;
      }
      const json j = json::parse(payload);
      if (j.contains("error")) {
        a.status = 500;
        a.text = payload;
        return a;
      }
      const json& c = j["choices"][0];
      a.text += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) a.finish = c["finish_reason"];
    }
    if (!done) a.status = 599;
    return a;
  }

  std::string Metrics() const {
    auto m = Client().Get("/metrics");
    return m && m->status == 200 ? m->body : "";
  }

  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(LoadTest, PoolForThreeServesTwentyFourConcurrentRequestsExactlyThroughPreemption) {
  // Each request alone (one after another): the reference answers.
  engine_->Start();
  std::vector<Answer> alone;
  for (int i = 0; i < kRequests; ++i) {
    alone.push_back(Complete(i, false));
    ASSERT_EQ(alone.back().status, 200) << alone.back().text;
    if (alone.back().finish == "length") {
      EXPECT_EQ(alone.back().completion_tokens, kMaxTokens);
    }
  }
  ASSERT_EQ(engine_->Metrics().preemptions, 0);  // alone, a request always fits
  engine_->Stop();

  // All 24 at once: with the engine paused they all queue before the first step, so they
  // really are concurrent whatever the connection timing (and the 5-connection listen backlog
  // of cpp-httplib does not matter: the connections are opened a few ms apart).
  std::vector<std::future<Answer>> answers;
  for (int i = 0; i < kRequests; ++i) {
    answers.push_back(std::async(std::launch::async, [this, i] { return Complete(i, i % 2 == 1); }));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (engine_->Metrics().waiting < kRequests && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(engine_->Metrics().waiting, kRequests);
  engine_->Start();

  int generated = 0;
  for (int i = 0; i < kRequests; ++i) {
    const Answer a = answers[i].get();
    ASSERT_EQ(a.status, 200) << "request " << i << ": " << a.text;
    EXPECT_EQ(a.text, alone[i].text) << "request " << i;
    EXPECT_EQ(a.finish, alone[i].finish) << "request " << i;
    if (a.completion_tokens >= 0) {
      EXPECT_EQ(a.completion_tokens, alone[i].completion_tokens) << "request " << i;
    }
    generated += alone[i].completion_tokens;
  }
  EXPECT_GT(generated, kRequests * kMaxTokens / 2);  // long answers: decode growth did happen

  // The engine publishes its counters at the end of a step: wait for the idle snapshot.
  std::string m;
  for (int i = 0; i < 500; ++i) {
    m = Metrics();
    if (MetricValue(m, "kvcache_requests_running") == 0 && MetricValue(m, "kvcache_queue_length") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(MetricValue(m, "kvcache_preemptions_total"), 0) << m;
  RecordProperty("preemptions", std::to_string(MetricValue(m, "kvcache_preemptions_total")));
  RecordProperty("evictions", std::to_string(MetricValue(m, "kvcache_evictions_total")));
  EXPECT_EQ(MetricValue(m, "kvcache_kv_blocks_total"), kBlocks);
  EXPECT_EQ(MetricValue(m, "kvcache_kv_blocks_used"), 0) << m;  // every block came back
  EXPECT_EQ(MetricValue(m, "kvcache_requests_running"), 0);
  EXPECT_EQ(MetricValue(m, "kvcache_queue_length"), 0);
  EXPECT_EQ(MetricValue(m, "kvcache_requests_finished_total"), 2 * kRequests);
  EXPECT_EQ(MetricValue(m, "kvcache_http_errors_total"), 0);

  // Healthy afterwards: health answers and a request still gets its answer.
  auto h = Client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  const Answer again = Complete(7, true);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.text, alone[7].text);
}

}  // namespace
}  // namespace kvc
