// kvcache bench end to end on the tiny synthetic model: the Markdown table and every JSON field
// the benchmark of record promises, with values that agree with each other (rooflines from the
// best bandwidth probe, fractions from the medians, paired fractions from each run and the probe
// right after it); bad arguments fail with a clear message.
#include <algorithm>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli/cli_runner.h"
#include "model/synth_fixture.h"

namespace kvc {
namespace {

using json = nlohmann::json;
using testing::RunKvcache;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

TEST(BenchCmd, WritesTheBenchmarkOfRecord) {
  const std::string model = testing::SynthModelPath("tiny");
  const std::string out = testing::TempPath("kvc_bench_", ".json");
  const auto r = RunKvcache("bench -m " + model + " -t 2 -r 2 --pp 16 --tg 8 --depth 0,32 --kv-types f16,q8 "
                            "--table 1,4 --bandwidth-gib 0.0625 --json " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| pp16 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| tg8 @ depth 32, KV paged q8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bandwidth probes (GB/s):"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 4 |"), std::string::npos) << r.out;  // with/without-cache table

  const json j = json::parse(testing::ReadFile(out), nullptr, false);
  std::filesystem::remove(out);
  ASSERT_TRUE(j.is_object()) << "not JSON";
  EXPECT_EQ(j["threads"], 2);
  EXPECT_EQ(j["model"], model);
  for (const char* k : {"pp_tok_s", "tg_tok_s", "bandwidth_gb_s", "bytes_per_token", "roofline_tok_s",
                        "roofline_fraction", "pp_gflop_s", "peak_f32_gflop_s"}) {
    ASSERT_TRUE(j[k].is_number()) << k;
    EXPECT_GT(j[k].get<double>(), 0) << k;
  }
  // One probe before the tests and one after each of the 2 measured decode rounds (round-robin
  // over the 4 configurations, after a warm-up round); the best one is used.
  const json& probes = j["bandwidth_probes_gb_s"];
  ASSERT_EQ(probes.size(), 3u);
  double best = 0;
  for (const json& p : probes) best = std::max(best, p.get<double>());
  EXPECT_DOUBLE_EQ(j["bandwidth_gb_s"].get<double>(), best);

  ASSERT_EQ(j["depth"].size(), 4u);
  for (const json& d : j["depth"]) {
    const std::string what = d["kv"].get<std::string>() + " @ " + d["depth"].dump();
    EXPECT_TRUE(d["depth"] == 0 || d["depth"] == 32) << what;
    EXPECT_TRUE(d["kv_type"] == "f16" || d["kv_type"] == "q8") << what;
    EXPECT_GT(d["tg_tok_s"].get<double>(), 0) << what;
    EXPECT_DOUBLE_EQ(d["tg_tok_s"].get<double>(), d["tg"]["median"].get<double>()) << what;
    EXPECT_LE(d["tg"]["min"].get<double>(), d["tg"]["median"].get<double>()) << what;
    EXPECT_LE(d["tg"]["median"].get<double>(), d["tg"]["max"].get<double>()) << what;
    EXPECT_GE(d["tg"]["stdev"].get<double>(), 0) << what;
    EXPECT_GE(d["tg"]["mean"].get<double>(), d["tg"]["min"].get<double>()) << what;
    // The roofline: the best bandwidth over weights plus this depth's KV bytes.
    EXPECT_NEAR(d["roofline_tok_s"].get<double>(), best * 1e9 / d["bytes_per_token"].get<double>(),
                1e-6 * d["roofline_tok_s"].get<double>()) << what;
    EXPECT_NEAR(d["roofline_fraction"].get<double>(),
                d["tg_tok_s"].get<double>() / d["roofline_tok_s"].get<double>(), 1e-6) << what;
    if (d["depth"] == 32) {
      EXPECT_GT(d["kv_bytes"].get<double>(), 0) << what;
    }
    // Each measured run is followed by a probe of its own; the paired fraction is the median of
    // the runs' shares of those probes.
    ASSERT_EQ(d["tg_runs"].size(), 2u) << what;
    ASSERT_EQ(d["probes_gb_s"].size(), 2u) << what;
    std::vector<double> shares;
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_GT(d["probes_gb_s"][i].get<double>(), 0) << what;
      shares.push_back(d["tg_runs"][i].get<double>() * d["bytes_per_token"].get<double>() /
                       (d["probes_gb_s"][i].get<double>() * 1e9));
    }
    EXPECT_NEAR(d["roofline_fraction_paired"].get<double>(), Median(shares), 1e-6) << what;
  }
  EXPECT_EQ(j["roofline_fraction_paired"], j["depth"][0]["roofline_fraction_paired"]);
  // Each depth against the depth-0 row of its KV type: the share of speed kept, the share the
  // extra KV bytes would keep at depth 0's streaming rate, and the rate they streamed at.
  for (const json& d : j["depth"]) {
    const std::string what = d["kv"].get<std::string>() + " @ " + d["depth"].dump();
    if (d["depth"] == 0) {
      EXPECT_FALSE(d.contains("of_depth0")) << what;
      continue;
    }
    const auto base = std::find_if(j["depth"].begin(), j["depth"].end(),
                                   [&](const json& o) { return o["depth"] == 0 && o["kv"] == d["kv"]; });
    ASSERT_NE(base, j["depth"].end()) << what;
    const double tok = d["tg_tok_s"].get<double>(), tok0 = (*base)["tg_tok_s"].get<double>();
    const double bytes = d["bytes_per_token"].get<double>(), bytes0 = (*base)["bytes_per_token"].get<double>();
    EXPECT_NEAR(d["of_depth0"].get<double>(), tok / tok0, 1e-6) << what;
    EXPECT_NEAR(d["ceiling_of_depth0"].get<double>(), bytes0 / bytes, 1e-6) << what;
    EXPECT_LT(d["ceiling_of_depth0"].get<double>(), 1.0) << what;
    const double kv_gb_s = tok < tok0 ? (bytes - bytes0) / (1 / tok - 1 / tok0) / 1e9 : 0.0;
    EXPECT_NEAR(d["kv_gb_s"].get<double>(), kv_gb_s, 1e-6 * std::max(1.0, kv_gb_s)) << what;
    // Paired by round: tok/s per probed GB/s, against depth 0's in the same round.
    std::vector<double> kept;
    for (size_t i = 0; i < 2; ++i) {
      kept.push_back(d["tg_runs"][i].get<double>() / d["probes_gb_s"][i].get<double>() /
                     ((*base)["tg_runs"][i].get<double>() / (*base)["probes_gb_s"][i].get<double>()));
    }
    EXPECT_NEAR(d["of_depth0_paired"].get<double>(), Median(kept), 1e-6) << what;
  }
  EXPECT_NE(r.out.find("% of depth 0 ("), std::string::npos) << r.out;
  EXPECT_EQ(j["tg_tok_s"], j["depth"][0]["tg_tok_s"]);
  ASSERT_EQ(j["cache_table"].size(), 2u);
  for (const json& row : j["cache_table"]) EXPECT_TRUE(row["same_tokens"].get<bool>());
}

TEST(BenchCmd, BadArgumentsFailClearly) {
  const std::string model = testing::SynthModelPath("tiny");
  auto r = RunKvcache("bench -m " + model + " --depth 0,x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--depth"), std::string::npos) << r.err;
  r = RunKvcache("bench -m " + model + " --kv-types f16,q9");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("q9"), std::string::npos) << r.err;
  r = RunKvcache("bench -m " + model + " --tg 0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--tg: must be a whole number >= 1, got 0"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvc
