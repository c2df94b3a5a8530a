// kvcache bench-serve end to end: on a tiny synthetic model it starts its own servers (prefix
// cache on, then off), drives them for a moment and writes every documented JSON field; bad
// arguments fail with a clear message.
#include <filesystem>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli/cli_runner.h"
#include "model/synth_fixture.h"

namespace kvc {
namespace {

using json = nlohmann::json;
using testing::RunKvcache;

void ExpectPercentiles(const json& p, const std::string& what) {
  ASSERT_TRUE(p.is_object()) << what;
  for (const char* k : {"count", "mean", "p50", "p90", "p99"}) ASSERT_TRUE(p[k].is_number()) << what << "." << k;
  EXPECT_GT(p["count"].get<int>(), 0) << what;
  EXPECT_GT(p["p50"].get<double>(), 0) << what;
  EXPECT_LE(p["p50"].get<double>(), p["p90"].get<double>()) << what;
  EXPECT_LE(p["p90"].get<double>(), p["p99"].get<double>()) << what;
}

TEST(BenchServe, InProcessWithAndWithoutPrefixCacheWritesTheJson) {
  const std::string model = testing::SynthModelPath("tiny");
  const std::string out = testing::TempPath("kvc_bench_serve_", ".json");
  const auto r = RunKvcache("bench-serve -m " + model + " -t 1 --clients 1,3 --requests 6 --max-tokens 8 "
                            "--system-tokens 96 --conversations 2 --json " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The Markdown tables.
  EXPECT_NE(r.out.find("| prefix cache | clients |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| on | 3 | 6 | 0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| off | 1 | 6 | 0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("turn 2 TTFT"), std::string::npos) << r.out;

  const json j = json::parse(testing::ReadFile(out), nullptr, false);
  std::filesystem::remove(out);
  ASSERT_TRUE(j.is_object()) << "not JSON";
  EXPECT_EQ(j["command"], "bench-serve");
  EXPECT_EQ(j["config"]["clients"], json::array({1, 3}));
  EXPECT_EQ(j["config"]["max_tokens"], 8);
  EXPECT_EQ(j["config"]["system_tokens"], 96);
  ASSERT_EQ(j["runs"].size(), 2u);
  for (const json& run : j["runs"]) {
    const bool on = run["prefix_cache"] == "on";
    EXPECT_TRUE(on || run["prefix_cache"] == "off");
    EXPECT_GT(run["prompt_tokens_mean"].get<int>(), 30);
    ASSERT_EQ(run["levels"].size(), 2u);
    for (const json& l : run["levels"]) {
      const std::string what = std::string(on ? "on" : "off") + " x" + l["clients"].dump();
      EXPECT_EQ(l["requests"], 6) << what;
      EXPECT_EQ(l["errors"], 0) << what;
      EXPECT_GT(l["seconds"].get<double>(), 0) << what;
      EXPECT_GT(l["requests_per_second"].get<double>(), 0) << what;
      EXPECT_GT(l["generated_tokens"].get<int>(), 0) << what;
      EXPECT_LE(l["generated_tokens"].get<int>(), 6 * 8) << what;
      EXPECT_GT(l["generated_tokens_per_second"].get<double>(), 0) << what;
      EXPECT_GT(l["prompt_tokens"].get<int>(), 6 * 30) << what;
      ExpectPercentiles(l["ttft_ms"], what + " ttft");
      ExpectPercentiles(l["itl_ms"], what + " itl");
      ASSERT_TRUE(l["prefix_hit_rate"].is_number()) << what;
      if (on) {
        // Six requests share the system prompt: those admitted after the first ones computed it
        // find it cached.
        EXPECT_GT(l["prefix_hit_rate"].get<double>(), 0.1) << what;
        EXPECT_GT(l["cached_tokens"].get<int>(), 0) << what;
      } else {
        EXPECT_EQ(l["prefix_hit_rate"].get<double>(), 0) << what;
        EXPECT_EQ(l["cached_tokens"].get<int>(), 0) << what;
      }
    }
    const json& m = run["multi_turn"];
    EXPECT_EQ(m["conversations"], 2);
    EXPECT_EQ(m["errors"], 0);
    ExpectPercentiles(m["turn1_ttft_ms"], "turn 1");
    ExpectPercentiles(m["turn2_ttft_ms"], "turn 2");
    EXPECT_GT(m["turn2_prompt_tokens"].get<double>(), 0);
    if (on) {
      EXPECT_GT(m["turn2_cached_tokens"].get<double>(), 0);  // turn 1's prompt came back
    } else {
      EXPECT_EQ(m["turn2_cached_tokens"].get<double>(), 0);
    }
  }
}

TEST(BenchServe, BadArgumentsFailClearly) {
  const std::string model = testing::SynthModelPath("tiny");
  auto r = RunKvcache("bench-serve --clients 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("either --url"), std::string::npos) << r.err;
  r = RunKvcache("bench-serve -m " + model + " --url http://127.0.0.1:1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("either --url"), std::string::npos) << r.err;
  r = RunKvcache("bench-serve -m " + model + " --clients 1,x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad --clients entry 'x'"), std::string::npos) << r.err;
  r = RunKvcache("bench-serve -m " + model + " --prefix-cache maybe");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--prefix-cache"), std::string::npos) << r.err;
  // Nothing listens on port 1.
  r = RunKvcache("bench-serve --url http://127.0.0.1:1 --clients 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/v1/models"), std::string::npos) << r.err;
  r = RunKvcache("bench-serve --url http://127.0.0.1:notaport");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad port"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvc
