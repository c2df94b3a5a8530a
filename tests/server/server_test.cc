// The HTTP server end to end on loopback: the test starts an engine and a server on a free port
// of 127.0.0.1 and drives it with httplib's client. Completions, chat, server-sent events (the
// chunks concatenate to the non-streamed text), models, health, metrics, hostile requests
// (OpenAI-style errors, the server stays up) and concurrent clients (each answer equals its
// answer alone at temperature 0).
#include <httplib.h>

#include <future>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/generator.h"
#include "model/synth_fixture.h"
#include "server/http_server.h"

namespace kvc {
namespace {

using json = nlohmann::json;

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = LoadedModel::Load(testing::SynthModelPath("tiny"));
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = new LoadedModel(std::move(m.value()));
    pool_ = new ThreadPool(2);
    EngineOptions eo;
    eo.context_length = 128;
    eo.num_blocks = 48;  // fewer than 8 full contexts: concurrency also exercises the scheduler
    eo.kv.block_size = 8;
    eo.scheduler.max_running = 6;
    eo.scheduler.step_tokens = 64;
    auto e = Engine::Create(*model_->file, pool_, eo);
    ASSERT_TRUE(e.ok()) << e.status().message();
    engine_ = e.value().release();
    engine_->Start();
    ServerOptions so;
    so.port = 0;
    so.model_id = "tiny-test";
    so.max_body_bytes = 16 << 10;
    so.default_max_tokens = 24;
    server_ = new HttpServer(*engine_, *model_->tokenizer, so);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.message();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete engine_;
    delete pool_;
    delete model_;
  }

  static httplib::Client Client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60, 0);
    return c;
  }
  static httplib::Result Post(const std::string& path, const std::string& body) {
    return Client().Post(path.c_str(), body, "application/json");
  }
  // The error object of a failed request, checked for the OpenAI shape.
  static json ErrorOf(const httplib::Result& r, int status) {
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << r->body;
    if (!j.is_object() || !j.contains("error")) return {};
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    return j["error"];
  }
  // Concatenated text of an SSE body, and its finish reason.
  static std::string SseText(const std::string& body, bool chat, std::string* finish) {
    std::string text;
    size_t pos = 0;
    bool done = false;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
      const size_t end = body.find("\n\n", pos);
      const std::string payload = body.substr(pos + 6, end - pos - 6);
      pos = end;
      if (payload == "[DONE]") {
        done = true;
        break;
      }
      json j = json::parse(payload);
      if (j["choices"].empty()) continue;  // usage chunk
      const json& c = j["choices"][0];
      if (!c["finish_reason"].is_null()) *finish = c["finish_reason"];
      if (chat) {
        if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
      } else {
        text += c["text"].get<std::string>();
      }
    }
    EXPECT_TRUE(done) << "no [DONE] in " << body;
    return text;
  }
  static std::string CompletionBody(const std::string& prompt, int max_tokens, bool stream) {
    return json{{"model", "tiny-test"}, {"prompt", prompt}, {"max_tokens", max_tokens},
                {"temperature", 0}, {"stream", stream}}.dump();
  }
  static std::string Complete(const std::string& prompt, int max_tokens) {
    auto r = Post("/v1/completions", CompletionBody(prompt, max_tokens, false));
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    return r && r->status == 200 ? json::parse(r->body)["choices"][0]["text"].get<std::string>() : "";
  }

  static LoadedModel* model_;
  static ThreadPool* pool_;
  static Engine* engine_;
  static HttpServer* server_;
};

LoadedModel* ServerTest::model_ = nullptr;
ThreadPool* ServerTest::pool_ = nullptr;
Engine* ServerTest::engine_ = nullptr;
HttpServer* ServerTest::server_ = nullptr;

TEST_F(ServerTest, HealthAndModels) {
  auto h = Client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(json::parse(h->body)["status"], "ok");
  auto m = Client().Get("/v1/models");
  ASSERT_TRUE(m);
  const json j = json::parse(m->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "tiny-test");
}

TEST_F(ServerTest, CompletionAndStreamedChunksConcatenateToTheSameText) {
  auto r = Post("/v1/completions", CompletionBody("Once upon a time", 12, false));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  const std::string text = j["choices"][0]["text"];
  const std::string finish = j["choices"][0]["finish_reason"];
  EXPECT_TRUE(finish == "length" || finish == "stop");
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 12);

  auto s = Post("/v1/completions", CompletionBody("Once upon a time", 12, true));
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  EXPECT_NE(s->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  std::string sfinish;
  EXPECT_EQ(SseText(s->body, false, &sfinish), text);
  EXPECT_EQ(sfinish, finish);
}

TEST_F(ServerTest, ChatCompletionStreamedAndNot) {
  const json msgs = json::array({{{"role", "system"}, {"content", "You are terse."}},
                                 {{"role", "user"}, {"content", "Tell me a story."}}});
  json body = {{"messages", msgs}, {"max_tokens", 10}, {"temperature", 0}};
  auto r = Post("/v1/chat/completions", body.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  const std::string text = j["choices"][0]["message"]["content"];
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto s = Post("/v1/chat/completions", body.dump());
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200);
  std::string finish;
  EXPECT_EQ(SseText(s->body, true, &finish), text);
  EXPECT_NE(s->body.find("\"usage\""), std::string::npos);
  EXPECT_NE(s->body.find("\"role\":\"assistant\""), std::string::npos);
}

TEST_F(ServerTest, StopStringCutsTheText) {
  const std::string full = Complete("The little dog", 16);
  ASSERT_GE(full.size(), 4u);
  json body = json::parse(CompletionBody("The little dog", 16, false));
  body["stop"] = full.substr(2, 2);
  auto r = Post("/v1/completions", body.dump());
  ASSERT_TRUE(r && r->status == 200);
  const json j = json::parse(r->body);
  const std::string cut = j["choices"][0]["text"];
  EXPECT_EQ(cut, full.substr(0, full.find(full.substr(2, 2))));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

TEST_F(ServerTest, HostileRequestsGetOpenAIErrorsAndTheServerStaysUp) {
  EXPECT_NE(ErrorOf(Post("/v1/completions", "{not json"), 400)["message"].get<std::string>().find("JSON"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(Post("/v1/completions", "[1,2]"), 400)["type"], "invalid_request_error");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": 5})"), 400)["param"], "prompt");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": "a", "max_tokens": "ten"})"), 400)["param"],
            "max_tokens");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": "a", "temperature": "hot"})"), 400)["param"],
            "temperature");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": "a", "temperature": -1})"), 400)["param"],
            "temperature");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": "a", "stream": "yes"})"), 400)["param"], "stream");
  EXPECT_EQ(ErrorOf(Post("/v1/chat/completions", R"({"messages": 5})"), 400)["param"], "messages");
  EXPECT_EQ(ErrorOf(Post("/v1/chat/completions", R"({"messages": [{"role": "pirate", "content": "x"}]})"), 400)["param"],
            "messages");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": "a", "max_tokens": 1000000})"), 400)["code"],
            "context_length_exceeded");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": "a", "max_tokens": 1e300})"), 400)["param"],
            "max_tokens");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": "a", "max_tokens": 99999999999999})"), 400)["code"],
            "context_length_exceeded");
  const std::string long_prompt(2000, 'x');
  EXPECT_EQ(ErrorOf(Post("/v1/completions", json{{"prompt", long_prompt}, {"max_tokens", 1}}.dump()), 400)["code"],
            "context_length_exceeded");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"prompt": [1, 99999], "max_tokens": 1})"), 400)["type"],
            "invalid_request_error");
  EXPECT_EQ(ErrorOf(Post("/v1/completions", R"({"model": "gpt-9", "prompt": "a"})"), 404)["code"],
            "model_not_found");
  const std::string huge = json{{"prompt", std::string(64 << 10, 'a')}}.dump();
  ErrorOf(Post("/v1/completions", huge), 413);
  ErrorOf(Client().Get("/v1/nothing"), 404);
  auto h = Client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  Complete("Still alive", 4);  // and it still completes
}

TEST_F(ServerTest, MetricsCountBlocksAndPrefixHits) {
  const std::string prompt =
      "A long shared system prompt that spans several cache blocks of eight tokens each, "
      "so that the second request can reuse them";
  Complete(prompt, 4);
  Complete(prompt, 4);
  auto m = Client().Get("/metrics");
  ASSERT_TRUE(m);
  ASSERT_EQ(m->status, 200);
  for (const char* name : {"kvcache_kv_blocks_total 48", "kvcache_kv_blocks_used", "kvcache_kv_blocks_cached",
                           "kvcache_prefix_hit_rate", "kvcache_generation_tokens_per_second",
                           "kvcache_queue_length", "kvcache_preemptions_total"}) {
    EXPECT_NE(m->body.find(name), std::string::npos) << name;
  }
  EXPECT_GT(engine_->Metrics().prefix_hit_tokens, 0);
}

TEST_F(ServerTest, ConcurrentClientsEachGetTheirAnswerAlone) {
  constexpr int kClients = 10;
  std::vector<std::string> prompts, alone;
  for (int i = 0; i < kClients; ++i) {
    prompts.push_back("Client " + std::to_string(i) + " asks about " + std::string(i % 4 + 1, 'z'));
    alone.push_back(Complete(prompts.back(), 20));
  }
  std::vector<std::future<std::string>> answers;
  for (int i = 0; i < kClients; ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      const bool stream = i % 2 == 1;
      auto r = Post("/v1/completions", CompletionBody(prompts[i], 20, stream));
      if (!r || r->status != 200) return std::string("<error>");
      if (!stream) return json::parse(r->body)["choices"][0]["text"].get<std::string>();
      std::string finish;
      return SseText(r->body, false, &finish);
    }));
  }
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(answers[i].get(), alone[i]) << "client " << i;
}

}  // namespace
}  // namespace kvc
